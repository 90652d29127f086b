"""Real Stack Overflow searches as code-search training pairs: CoNaLa's annotated questions.

CoNaLa (Yin, Deng, Chen, Vasilescu, Neubig, MSR 2018; conala-corpus.github.io) pairs Stack Overflow
"how to" questions with the Python snippet that answers them. Its ``intent`` field is the question's
TITLE, written by the person asking (e.g. "Url decode UTF-8 in Python"): how people actually phrase a
code search, unlike a docstring's first line. ``rewritten_intent`` is an annotator's paraphrase naming
the snippet's variables; it is not a search and is used only when a row has no title.

One row per question: query = the title, code = the question's distinct annotated snippets joined by
newlines (several snippets of one question would otherwise be false in-batch negatives of each other).
``valid`` is a seeded share of the TRAIN questions; CoNaLa's own test questions become ``test``.

    python -m multissl.code.conala conala_annotations.zip --out data/code-conala

Reads the release zip (``conala_annotations.zip`` or ``conala-corpus-v1.1.zip``) or its json files
(``examples.annotated.{train,test}.json`` / ``conala-{train,test}.json``), never unpickles anything.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import zipfile
from pathlib import Path

from multissl.errors import DataError

SPLIT_FILES = {"train": ("examples.annotated.train.json", "conala-train.json"),
               "test": ("examples.annotated.test.json", "conala-test.json")}


def _read_json_split(src: Path, split: str) -> list[dict]:
    names = SPLIT_FILES[split]
    if src.is_file() and zipfile.is_zipfile(src):
        with zipfile.ZipFile(src) as zf:
            members = [m for m in zf.namelist() if Path(m).name in names]
            if not members:
                raise DataError(f"{src} holds none of {names}: is it CoNaLa's release zip?")
            return json.loads(zf.read(min(members, key=len)).decode("utf-8"))
    folder = src if src.is_dir() else src.parent
    for name in names:
        if (folder / name).exists():
            return json.loads((folder / name).read_text(encoding="utf-8"))
    raise DataError(f"no CoNaLa {split} file ({' / '.join(names)}) in {folder}")


def question_rows(records: list[dict]) -> list[dict]:
    """One (query, code) row per question id, in first-seen order."""
    by_q: dict[int, dict] = {}
    for r in records:
        qid = r.get("question_id")
        snippet = (r.get("snippet") or "").strip()
        title = " ".join((r.get("intent") or r.get("rewritten_intent") or "").split())
        if qid is None or not snippet or not title:
            continue
        row = by_q.setdefault(qid, {"query": title, "snippets": [], "question_id": qid,
                                    "url": f"https://stackoverflow.com/q/{qid}"})
        if snippet not in row["snippets"]:
            row["snippets"].append(snippet)
    return [{"query": r["query"], "code": "\n".join(r["snippets"]), "question_id": r["question_id"], "url": r["url"]}
            for r in by_q.values()]


def build(src: str | Path, out: str | Path, valid_share: float = 0.1, seed: int = 0) -> dict[str, int]:
    """Write ``train`` / ``valid`` / ``test`` .jsonl.gz under ``out``; returns the row counts."""
    src, out = Path(src), Path(out)
    train = question_rows(_read_json_split(src, "train"))
    test = question_rows(_read_json_split(src, "test"))
    test_ids = {r["question_id"] for r in test}
    train = [r for r in train if r["question_id"] not in test_ids]
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    n_valid = round(valid_share * len(train))
    valid_idx = set(order[:n_valid])
    splits = {"train": [r for i, r in enumerate(train) if i not in valid_idx],
              "valid": [r for i, r in enumerate(train) if i in valid_idx], "test": test}
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        with gzip.GzipFile(out / f"{name}.jsonl.gz", "wb", mtime=0) as fh:
            fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))
    return {k: len(v) for k, v in splits.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="CoNaLa question titles -> code-search pairs (train/valid/test jsonl.gz)")
    ap.add_argument("src", help="conala_annotations.zip / conala-corpus-v1.1.zip, or a folder with its json files")
    ap.add_argument("--out", required=True)
    ap.add_argument("--valid-share", type=float, default=0.1, help="share of TRAIN questions held out for validation")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    print(json.dumps(build(a.src, a.out, a.valid_share, a.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
