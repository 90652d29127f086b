"""The ``multissl`` command: train | eval | embed | recipes | bench.

Everything heavy is imported inside the command that needs it, so ``multissl --help`` is instant.
User errors (MultisslError) print one clear line and exit 2, with no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from multissl.errors import MultisslError

EPILOG = """examples:
  multissl recipes                                  list the shipped recipes
  multissl train tabular/scarf-digits               train a recipe (path or short name)
  multissl train text/simcse-minilm train.lr=3e-5   override any recipe key
  multissl train RECIPE --resume runs/NAME/TIME     resume an interrupted run exactly
  multissl eval --help                              list evaluations (sts, code, retrieval, ...)
  multissl embed --run runs/NAME/TIME --data PATH --out emb.npy
  multissl bench overhead                           trainer vs a bare PyTorch loop
  multissl report runs/ --out report                one HTML page of all runs and bench records
  multissl mine-negatives --data pairs.csv --out triplets.jsonl   hard negatives for contrastive.pairs
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="multissl", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    from multissl import __version__

    p.add_argument("--version", action="version", version=f"multissl {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train a recipe", description="Train a recipe; overrides look like train.lr=1e-4.")
    t.add_argument("recipe", help="recipe file or short name (see `multissl recipes`)")
    t.add_argument("overrides", nargs="*", help="dotted overrides key.sub=value")
    t.add_argument("--resume", metavar="DIR", help="run folder (or checkpoint) to resume exactly")
    t.add_argument("--output-dir", metavar="DIR", help="parent folder of runs (default: train.output_dir)")
    t.add_argument("--run-dir", metavar="DIR", help="exact run folder to write (default: <output>/<name>/<time>)")
    t.add_argument("--overwrite", action="store_true", help="replace the run already in --run-dir (refused without it)")

    e = sub.add_parser("eval", help="evaluate a model on a benchmark (multissl eval NAME --help)", add_help=False)
    e.add_argument("name", nargs="?", help="evaluation name")
    e.add_argument("args", nargs=argparse.REMAINDER)

    m = sub.add_parser("embed", help="write embeddings of inputs to .npy or .parquet")
    m.add_argument("--run", required=True, metavar="DIR", help="run folder (its recipe and selected checkpoint)")
    m.add_argument("--data", required=True, metavar="PATH", help="inputs to embed (format depends on the task)")
    m.add_argument("--out", required=True, metavar="FILE", help="output .npy or .parquet")
    m.add_argument("--checkpoint", choices=("best", "last"), default=None, help="default: best if present")
    m.add_argument("--batch-size", type=int, default=128)

    r = sub.add_parser("recipes", help="list shipped recipes with one-line descriptions")
    r.add_argument("filter", nargs="?", help="only names containing this text")

    sub.add_parser("mine-negatives", help="write (anchor, positive, negatives) with hard negatives mined by a model "
                   "(multissl mine-negatives --help)", add_help=False)

    b = sub.add_parser("bench", help="benchmarks against peers (multissl bench NAME --help)", add_help=False)
    b.add_argument("name", nargs="?", help="benchmark name, or 'report'")
    b.add_argument("args", nargs=argparse.REMAINDER)

    rp = sub.add_parser("report", help="static HTML report (index.html + report.json) of runs and bench records",
                        description="Write DIR/index.html (opens from disk), DIR/report.json and DIR/img/ from "
                        "run folders and runs/bench/*.jsonl records: one section per modality.")
    rp.add_argument("runs", nargs="*", default=["runs"], metavar="RUNS_DIR", help="folders of runs (default: runs)")
    rp.add_argument("--out", default="report", metavar="DIR", help="output folder (default: report)")
    return p


def _listing(kind: str, title: str) -> str:
    from multissl.registry import entries

    rows = entries(kind)
    width = max((len(n) for n in rows), default=10)
    lines = [title] + [f"  {n:<{width}}  {e.description}" for n, e in sorted(rows.items())]
    return "\n".join(lines)


def cmd_train(args: argparse.Namespace) -> int:
    from multissl.recipes import load_recipe
    from multissl.run import run_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    results = run_recipe(recipe, resume=args.resume, output_dir=args.output_dir, run_dir=args.run_dir,
                          overwrite=args.overwrite)
    import json

    print(json.dumps(results.get("metrics", {}), indent=2))
    return 0


def _dispatch(kind: str, name: str | None, argv: list[str], title: str) -> int:
    from multissl.registry import lookup

    if name in (None, "-h", "--help"):
        print(_listing(kind, title))
        return 0
    fn = lookup(kind, name).load()
    return int(fn(argv) or 0)


def cmd_embed(args: argparse.Namespace) -> int:
    from multissl.run import embed_run

    path = embed_run(Path(args.run), args.data, Path(args.out), args.checkpoint, args.batch_size)
    print(f"wrote {path}")
    return 0


def cmd_recipes(args: argparse.Namespace) -> int:
    from multissl.recipes import list_recipes

    rows = {k: v for k, v in list_recipes().items() if not args.filter or args.filter in k}
    width = max((len(k) for k in rows), default=10)
    for k, (_, desc) in rows.items():
        print(f"{k:<{width}}  {desc}")
    return 0


def guarded(fn: Callable[[], int | None]) -> int:
    """Run ``fn()`` as the CLI does: a user error (MultisslError, an unreadable file or folder, a file
    that is not UTF-8) prints ONE line ``multissl: error: ...`` and returns 2, never a traceback
    (set ``MULTISSL_TRACEBACK=1`` to see the traceback of an OSError / UnicodeDecodeError)."""
    try:
        return int(fn() or 0)
    except MultisslError as exc:
        print(f"multissl: error: {exc}", file=sys.stderr)
        return 2
    except (UnicodeDecodeError, OSError):
        if os.environ.get("MULTISSL_TRACEBACK"):
            raise
        return _system_error(sys.exc_info()[1])
    except KeyboardInterrupt:
        print("multissl: interrupted; resume with --resume RUN_DIR", file=sys.stderr)
        return 130


def _system_error(exc: BaseException | None) -> int:
    """One line for an OSError or UnicodeDecodeError that reached the CLI; exit code 2."""
    if isinstance(exc, UnicodeDecodeError):  # a loader that did not name its file: one line, with the offset
        print(f"multissl: error: an input file is not UTF-8 text (byte offset {exc.start}: {exc.reason}); "
              "convert it to UTF-8", file=sys.stderr)
    elif isinstance(exc, OSError):  # the system refused a path (permissions, a file where a folder goes)
        print(f"multissl: error: {exc.strerror or exc} ({exc.filename or 'file system'}); check that path",
              file=sys.stderr)
    return 2


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser, argv: list[str]) -> int:
    if args.command == "mine-negatives":  # its own argparse (multissl.finetune.mine)
        from multissl.finetune.mine import main as mine_negatives

        return mine_negatives(argv[1:])
    if args.command == "train":
        return cmd_train(args)
    if args.command == "eval":
        return _dispatch("EVALS", args.name, args.args, "evaluations (multissl eval NAME --help):")
    if args.command == "bench":
        if args.name == "report":
            from multissl.bench.harness import report

            return report(args.args)
        return _dispatch("BENCHES", args.name, args.args, "benchmarks (multissl bench NAME --help; "
                         "multissl bench report gathers all records):")
    if args.command == "embed":
        return cmd_embed(args)
    if args.command == "recipes":
        return cmd_recipes(args)
    if args.command == "report":
        from multissl.report.build import main as report_main

        return report_main([*args.runs, "--out", args.out])
    parser.print_help()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if argv and argv[0] == "mine-negatives":
        args = argparse.Namespace(command=argv[0])
    elif argv and argv[0] in ("eval", "bench"):  # NAME and everything after it belong to that command
        args = argparse.Namespace(command=argv[0], name=argv[1] if len(argv) > 1 else None, args=argv[2:])
    else:
        args = parser.parse_args(argv)
    try:
        return guarded(lambda: _run(args, parser, argv))
    finally:
        if os.environ.get("MULTISSL_DEBUG_IMPORTS"):
            print(sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "transformers"})[:5], file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
