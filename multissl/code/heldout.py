"""Keep a held-out code-search check out of training: leakage of its queries or code into training pairs.

A held-out set (shipped: ``code-cosqa`` = ``data/code-cosqa``, CoSQA web queries against CodeSearchNet
functions) is only a check of generalisation if none of its queries and none of its functions are
trained on. :func:`find_leakage` compares training pairs with every query and code of a held-out
folder or file (all its query files and its code base) after normalisation:

- queries: lower-cased alphanumeric words (punctuation and spacing ignored);
- code: the function with docstrings and comments removed and whitespace collapsed (``ast`` round
  trip when the code parses, a regular-expression fallback otherwise), so a function mined without its
  docstring matches the same function shipped with one.

The training recipes call :func:`check_heldout` with ``data.heldout`` (``on_overlap: error`` refuses
to train, ``drop`` removes the overlapping pairs and says how many).
"""

from __future__ import annotations

import ast
import hashlib
import json
import random
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from multissl.code.data import query_of, read_records
from multissl.data import resolve_data_path
from multissl.errors import DataError

_WORDS = re.compile(r"[a-z0-9]+")
_TRIPLE = re.compile(r"(\"\"\"|''')[\s\S]*?\1")
_COMMENT = re.compile(r"#[^\n]*")


def normalise_query(text: str) -> str:
    return " ".join(_WORDS.findall(text.lower()))


def _docstrings(tree: ast.AST):
    """(function or class node, its docstring statement) for every docstring in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                yield node, first


def _strip_docstrings(tree: ast.AST) -> None:
    for node, _ in list(_docstrings(tree)):
        node.body = node.body[1:] or [ast.Pass()]


def code_fingerprint(code: str) -> str:
    """A hash of the code without docstrings, comments and layout."""
    src = textwrap.dedent(code)
    try:
        tree = ast.parse(src)
        _strip_docstrings(tree)
        text = ast.unparse(tree)
    except (SyntaxError, ValueError, RecursionError):
        text = _COMMENT.sub("", _TRIPLE.sub("", src))
    return hashlib.sha1(" ".join(text.split()).encode()).hexdigest()


def remove_docstrings(code: str) -> str:
    """The code with the lines of its function / class docstrings removed (a body left empty gets
    ``pass``); everything else (comments, layout, identifiers) unchanged. Unparsable code is returned as is."""
    lines = textwrap.dedent(code).splitlines()
    try:
        tree = ast.parse("\n".join(lines))
    except (SyntaxError, ValueError, RecursionError):
        return code
    drop: set[int] = set()
    replace: dict[int, str] = {}  # a body that held only its docstring keeps a ``pass`` on its first line
    for node, doc in _docstrings(tree):
        if doc.lineno > node.lineno:  # a docstring on the ``def`` line itself is left alone
            drop |= set(range(doc.lineno - 1, doc.end_lineno))
            if len(node.body) == 1:
                replace[doc.lineno - 1] = " " * doc.col_offset + "pass"
    if not drop:
        return code
    return "\n".join(replace.get(i, line) for i, line in enumerate(lines) if i not in drop or i in replace)


@dataclass
class HeldOut:
    """Normalised queries and code fingerprints of a held-out set."""

    name: str
    queries: set[str] = field(default_factory=set)
    codes: set[str] = field(default_factory=set)


def load_heldout(path: str) -> HeldOut:
    """Every query and code of a held-out folder (all its json / jsonl / code-map files) or file."""
    p = resolve_data_path(path, "held-out code-search data")
    files = [p] if p.is_file() else sorted(f for f in p.iterdir() if f.is_file() and
                                           re.search(r"\.(json|jsonl|txt)(\.gz)?$", f.name))
    out = HeldOut(str(path))
    for f in files:
        obj = read_records(f)
        if isinstance(obj, dict):  # CoSQA's code_idx_map.txt: {code: index}
            out.codes.update(code_fingerprint(c) for c in obj)
            continue
        for rec in obj:
            try:
                out.queries.add(normalise_query(query_of(rec)))
            except DataError:
                pass
            for key in ("code", "function", "original_string"):
                if isinstance(rec.get(key), str):
                    out.codes.add(code_fingerprint(rec[key]))
    if not out.queries and not out.codes:
        raise DataError(f"held-out set {path}: no query or code found in {[f.name for f in files]}")
    return out


@dataclass
class Leakage:
    query_hits: list[int]  # indices of training pairs whose query is a held-out query
    code_hits: list[int]  # indices of training pairs whose code is a held-out function

    @property
    def indices(self) -> set[int]:
        return set(self.query_hits) | set(self.code_hits)


def find_leakage(pairs: list[tuple[str, str]], heldout: HeldOut) -> Leakage:
    q_hits = [i for i, (q, _) in enumerate(pairs) if normalise_query(q) in heldout.queries]
    c_hits = [i for i, (_, c) in enumerate(pairs) if code_fingerprint(c) in heldout.codes]
    return Leakage(q_hits, c_hits)


def check_heldout(pairs: list[tuple[str, str]], heldout: list[str | HeldOut], on_overlap: str = "error") -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Training pairs with no held-out query or code: ``error`` raises on any overlap, ``drop`` removes it.
    ``heldout``: paths, or sets already read by :func:`load_heldout` (to check several training sets
    against one read). Returns the pairs kept and the counts found per held-out set."""
    if on_overlap not in ("error", "drop"):
        raise DataError(f"data.heldout_overlap must be 'error' or 'drop', got '{on_overlap}'")
    counts: dict[str, int] = {}
    drop: set[int] = set()
    for h in heldout:
        h = load_heldout(h) if isinstance(h, str) else h
        path = h.name
        leak = find_leakage(pairs, h)
        counts[path] = len(leak.indices)
        if leak.indices and on_overlap == "error":
            i = min(leak.indices)
            raise DataError(f"training pairs overlap the held-out set {path}: {len(leak.query_hits)} queries and "
                            f"{len(leak.code_hits)} functions (first: pair {i}, query '{pairs[i][0][:80]}'). Remove "
                            "them, or set data.heldout_overlap=drop")
        drop |= leak.indices
    return [p for i, p in enumerate(pairs) if i not in drop], counts


def cosqa_subbase(src: str, out: str | Path, size: int | None, seed: int = 0, no_docstrings: bool = False) -> Path:
    """A smaller CoSQA-layout folder for CPU budgets: the same dev and test query files, and a code map of
    every gold function of those files plus ``size`` - #gold seeded random others from the code base
    (``size`` None: the whole code base). Figures on it are NOT the published protocol (fewer distractors):
    say so wherever they are shown. ``no_docstrings``: every function loses its docstring
    (:func:`remove_docstrings`), to measure how much a model matches queries against docstrings."""
    folder = resolve_data_path(src, "CoSQA folder")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    code_map = next(read_records(f) for f in sorted(folder.iterdir()) if f.name.startswith("code_idx_map"))
    gold: set[int] = set()
    for f in sorted(folder.glob("cosqa-retrieval-*.json*")):
        rows = read_records(f)
        gold |= {int(r["retrieval_idx"]) for r in rows}
        (out / f.name.removesuffix(".gz")).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    others = sorted(set(code_map.values()) - gold)
    n_others = len(others) if size is None else max(0, min(len(others), size - len(gold)))
    keep = gold | set(random.Random(seed).sample(others, n_others))
    sub = {(remove_docstrings(code) if no_docstrings else code): i for code, i in code_map.items() if i in keep}
    if len(sub) != len(keep):
        raise DataError(f"{len(keep) - len(sub)} functions became identical without docstrings: the code map "
                        "needs one entry per function")
    (out / "code_idx_map.txt").write_text(json.dumps(sub, indent=1), encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m multissl.code.heldout --train codesearch --heldout code-cosqa``: count the overlap;
    ``--subbase N --out DIR``: write a CoSQA folder with an N-function code base (see cosqa_subbase)."""
    import argparse

    from multissl.code.data import load_pairs

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--train", default="codesearch")
    ap.add_argument("--splits", nargs="+", default=["train", "valid", "test"])
    ap.add_argument("--heldout", nargs="+", default=["code-cosqa"])
    ap.add_argument("--subbase", type=int, default=None, help="write a CoSQA folder with an N-function code base")
    ap.add_argument("--strip-docstrings", action="store_true",
                    help="with --out: write the CoSQA folder with every function's docstring removed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    if a.subbase or a.strip_docstrings:
        if not a.out:
            ap.error("--subbase / --strip-docstrings need --out")
        print(cosqa_subbase(a.heldout[0], a.out, a.subbase, a.seed, a.strip_docstrings))
        return 0
    for path in a.heldout:
        h = load_heldout(path)
        for split in a.splits:
            leak = find_leakage(load_pairs(a.train, split), h)
            print(f"{a.train}/{split} vs {path} ({len(h.queries)} queries, {len(h.codes)} functions): "
                  f"{len(leak.query_hits)} shared queries, {len(leak.code_hits)} shared functions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "HeldOut",
    "Leakage",
    "check_heldout",
    "code_fingerprint",
    "cosqa_subbase",
    "find_leakage",
    "load_heldout",
    "normalise_query",
    "remove_docstrings",
]
