"""``multissl eval sts``: STS Spearman x 100 (cosine) of any encoder on any STS layout, with bootstrap
95% intervals over pairs.

The model (``--model``) is an exported multissl folder, a run folder (its ``export/``), any transformers /
sentence-transformers folder, a hub id, or 'minilm'; pooling comes from the folder
(``multissl_encoder.json`` or sentence-transformers' ``1_Pooling/config.json``) unless ``--pooling``
says otherwise. Every distinct sentence of every set is encoded once, then all sets are scored.

``--suite senteval --data ROOT`` prints the table SimCSE-style papers report: STS12-16 (Spearman over
the concatenation of each year's subsets, SentEval "all"), STS-B test, SICK-R test and their average.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SUITE_ROWS = {"STS12": "STS12", "STS13": "STS13", "STS14": "STS14", "STS15": "STS15", "STS16": "STS16",
              "STSBenchmark": "STS-B", "SICKRelatedness": "SICK-R"}


def _folder_pooling(name: str) -> str | None:
    from multissl.encoders.hf import resolve_model

    path = Path(resolve_model(name))
    meta = path / "multissl_encoder.json"
    if meta.exists():
        return json.loads(meta.read_text()).get("pooling")
    st = path / "1_Pooling" / "config.json"
    if st.exists():
        cfg = json.loads(st.read_text())
        if cfg.get("pooling_mode_cls_token"):
            return "cls"
        if cfg.get("pooling_mode_max_tokens"):
            return "max"
        return "mean"
    return None


@dataclass
class ScoredSet:
    """One row of the output: the pairs it scored and where they came from."""

    key: str
    source: str
    pairs: object  # STSPairs


def collect_sets(sources: list[str], split: str) -> list[ScoredSet]:
    """Every subset of every source, keyed ``<label>/<subset>`` (label = year for SentEval folders), plus
    ``<label>/all`` for a source with several subsets and for every SentEval year folder. Duplicate keys are refused, never overwritten."""
    from multissl.data import resolve_data_path
    from multissl.errors import DataError
    from multissl.text.data import _concat, load_sts, sts_label

    out: list[ScoredSet] = []
    for source in sources:
        parts = load_sts(source, split)
        label = sts_label(source)
        year_folder = label[3:].isdigit() and resolve_data_path(source, "STS data").is_dir()
        if len(parts) == 1 and not year_folder:
            name = parts[0].name
            if name.startswith("SICK-R"):
                key = name
            elif name in (label, Path(source).name.removesuffix(".gz")):
                key = label
            else:
                key = f"{label}/{name}"
            out.append(ScoredSet(key, source, parts[0]))
            continue
        out.extend(ScoredSet(f"{label}/{p.name}", source, p) for p in parts)
        out.append(ScoredSet(f"{label}/all", source, _concat(parts, f"{label}/all")))
    keys = [s.key for s in out]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise DataError(f"two sources give the same result key(s) {dup}: pass each set once (SentEval folders are "
                        "keyed by their year, STS12..STS16)")
    return out


def suite_sets(root: str) -> list[ScoredSet]:
    """The seven test sets of the SentEval STS table under ``root``."""
    from multissl.text.data import _concat, find_senteval_suite, load_sts

    out = []
    for name, folder in find_senteval_suite(root).items():
        parts = load_sts(str(folder), "test")
        pairs = parts[0] if len(parts) == 1 else _concat(parts, name)
        out.append(ScoredSet(SUITE_ROWS[name], str(folder), pairs))
    return out


def score_model(ref: str, args, sets: list[ScoredSet]) -> tuple[str, int, dict[str, dict], dict[str, np.ndarray]]:
    """(pooling, sentences encoded, rows, bootstrap draws) of one model on every set: the sentences of all
    sets are encoded once, then each set is scored (and resampled with the shared seed)."""
    import torch

    from multissl.encoders.hf import HFEncoder
    from multissl.eval.bootstrap import bootstrap_draws, interval_from_draws
    from multissl.eval.metrics import spearman
    from multissl.eval.modelref import exported_model
    from multissl.text.sts import SentenceBank

    model = exported_model(ref)
    pooling = args.pooling or _folder_pooling(model) or "mean"
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    enc = HFEncoder(model, pooling=pooling, max_length=args.max_length).to(device).eval()
    bank = SentenceBank(lambda b: enc(**b), enc.tokenizer, [s.pairs for s in sets], args.max_length,
                        args.batch_size, device)
    rows: dict[str, dict] = {}
    draws: dict[str, np.ndarray] = {}
    for s in sets:
        x = bank.cosines(s.pairs).double().numpy()
        y = s.pairs.scores.double().numpy()
        value = 100.0 * spearman(x, y)
        row = {"spearman": value, "pairs": len(s.pairs), "source": s.source}
        if args.bootstrap > 0:
            draws[s.key] = bootstrap_draws(lambda i, x=x, y=y: 100.0 * spearman(x[i], y[i]), len(x), args.bootstrap,
                                           args.seed)
            iv = interval_from_draws(value, draws[s.key])
            row.update(low=iv.low, high=iv.high)
        if s.pairs.note:
            row["note"] = s.pairs.note
        rows[s.key] = row
    from multissl.eval.guards import require_finite

    require_finite({k: r["spearman"] for k, r in rows.items()}, f"STS of {ref}")
    return pooling, bank.encoded, rows, draws


def _average(rows: dict[str, dict], draws: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean Spearman over the sets; its interval resamples every set independently, averaged draw by draw."""
    from multissl.eval.bootstrap import interval_from_draws

    avg = float(np.mean([r["spearman"] for r in rows.values()]))
    out = {"spearman": avg}
    if draws:
        iv = interval_from_draws(avg, np.mean(np.stack([draws[k] for k in rows]), 0))
        out.update(low=iv.low, high=iv.high)
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="multissl eval sts", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model folder, run folder, hub id, or 'minilm'")
    p.add_argument("--compare", default=None, metavar="MODEL",
                   help="a second model scored on the same pairs: its table and the paired difference per set")
    p.add_argument("--data", default=["stsb/sts-test.csv"], nargs="+",
                   help="STS sets: STS-B csv(.gz), SentEval STS folder / STS.input file (.gz too), SICK.txt / "
                        "SICK_*.txt file or folder, hf:NAME:SPLIT; with --suite: the one folder holding them all")
    p.add_argument("--suite", choices=["senteval"], default=None,
                   help="the standard table: STS12-16 (all), STS-B test, SICK-R test and their average")
    p.add_argument("--split", default="test", help="split to read from a folder / SICK.txt (train/dev/test/all)")
    p.add_argument("--pooling", default=None, help="override pooling (mean, cls, cls_before_pooler, pooler, max)")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% intervals (0 = off)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resamples")
    p.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    args = p.parse_args(argv)

    from multissl.errors import DataError

    if args.suite:
        if len(args.data) != 1 or args.data == ["stsb/sts-test.csv"]:
            raise DataError("--suite senteval needs --data FOLDER: the folder holding STS12-16, STSBenchmark and SICK")
        if args.split != "test":
            raise DataError("--suite senteval is the test-set table papers report; drop --split or score the "
                            "sets one by one with --data")
        sets = suite_sets(args.data[0])
    else:
        sets = collect_sets(args.data, args.split)

    pooling, encoded, rows, draws = score_model(args.model, args, sets)
    result: dict = {"model": args.model, "pooling": pooling, "split": args.split, "sentences_encoded": encoded,
                    "bootstrap": args.bootstrap, "scores": rows}
    if args.suite:
        result["average"] = _average(rows, draws)
    if args.compare:
        from multissl.eval.bootstrap import interval_from_draws

        pooling2, _, rows2, draws2 = score_model(args.compare, args, sets)
        paired = {}
        for key in rows:
            d = rows[key]["spearman"] - rows2[key]["spearman"]
            paired[key] = {"difference": d}
            if args.bootstrap > 0:  # the same resampled pairs for both models (same seed, same n)
                iv = interval_from_draws(d, draws[key] - draws2[key])
                paired[key].update(low=iv.low, high=iv.high)
        if args.suite:
            avg2 = _average(rows2, draws2)
            d = result["average"]["spearman"] - avg2["spearman"]
            paired["average"] = {"difference": d}
            if args.bootstrap > 0:
                diff = np.mean(np.stack([draws[k] - draws2[k] for k in rows]), 0)
                iv = interval_from_draws(d, diff)
                paired["average"].update(low=iv.low, high=iv.high)
        result["compare"] = {"model": args.compare, "pooling": pooling2, "scores": rows2, "paired_difference": paired}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    ci = args.bootstrap > 0
    print(f"model {args.model} (pooling {pooling}); Spearman x 100 of cosine similarity"
          + (f", 95% bootstrap interval over pairs ({args.bootstrap} resamples)" if ci else "")
          + f"; {encoded} distinct sentences encoded once")
    for key, r in rows.items():
        band = f"  [{r['low']:6.2f}, {r['high']:6.2f}]" if ci else ""
        print(f"  {key:<28} {r['pairs']:6d} pairs  {r['spearman']:6.2f}{band}")
        if "note" in r:
            print(f"  {'':<28} scored: {r['note']}")
    if args.compare:
        print(f"model {args.compare} (pooling {result['compare']['pooling']}) and the paired difference "
              f"({args.model} - {args.compare}, same resampled pairs)")
        for key, r in result["compare"]["scores"].items():
            d = result["compare"]["paired_difference"][key]
            band = f"  [{r['low']:6.2f}, {r['high']:6.2f}]" if ci else ""
            dband = f" [{d['low']:+6.2f}, {d['high']:+6.2f}]" if ci else ""
            print(f"  {key:<28} {r['pairs']:6d} pairs  {r['spearman']:6.2f}{band}   diff {d['difference']:+6.2f}{dband}")
    if args.suite:
        a = result["average"]
        band = f"  [{a['low']:6.2f}, {a['high']:6.2f}]" if ci else ""
        print(f"  {'Avg.':<28} {'':12} {a['spearman']:6.2f}{band}")
    return 0
