"""Supervised-SimCSE triplets from NLI pairs: (premise, entailment hypothesis, contradiction hypothesis).

Gao, Yao, Chen (EMNLP 2021) build ``nli_for_simcse.csv`` (``sent0,sent1,hard_neg``) from SNLI + MNLI:
for each premise that has both an entailment and a contradiction hypothesis, the entailment is the
positive and the contradiction the hard negative. Here: one row per entailment hypothesis of a premise,
its hard negative the premise's contradictions taken in turn (the file's exact pairing rule is not
published with it); premises lacking either label give no row; neutral pairs are not used.

Reads SNLI's official ``.jsonl`` (``gold_label``, ``sentence1``, ``sentence2``; '-' labels skipped) or
headerless TSV rows ``label, label, premise, hypothesis`` with labels 3 / 2 / 1 = entailment /
contradiction / neutral (the layout of the SNLI-train sample shipped in ``data/snli-triplets``'s
source). ``--exclude`` drops every triplet with a sentence that also occurs in the given STS tables
(SNLI premises are Flickr30k captions, some of which are STS-B sentences).

    python -m multissl.finetune.nli SRC [SRC...] --out data/snli-triplets/snli_train_triplets.csv \
        --exclude data/stsb/sts-dev.csv.gz data/stsb/sts-test.csv
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import re
from collections import defaultdict
from pathlib import Path

TSV_LABELS = {"3": "entailment", "2": "contradiction", "1": "neutral"}


def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def read_nli(path: Path) -> list[tuple[str, str, str]]:
    """(premise, hypothesis, label name) rows of an SNLI .jsonl or a label/label/premise/hypothesis TSV."""
    rows = []
    with _open(path) as f:
        if ".jsonl" in path.name:
            for line in f:
                r = json.loads(line)
                if r["gold_label"] in ("entailment", "contradiction", "neutral"):
                    rows.append((r["sentence1"].strip(), r["sentence2"].strip(), r["gold_label"]))
        else:
            for r in csv.reader(f, delimiter="\t"):
                if len(r) == 4 and r[0] in TSV_LABELS:
                    rows.append((r[2].strip(), r[3].strip(), TSV_LABELS[r[0]]))
    return rows


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def sts_sentences(path: Path) -> set[str]:
    """Normalised sentences of an STS-B release table (TAB layout: sentence 1 and 2 in fields 5, 6)."""
    out = set()
    with _open(path) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) >= 7:
                out.update((_key(fields[5]), _key(fields[6])))
    return out


def build_triplets(rows: list[tuple[str, str, str]], exclude: set[str] | None = None):
    """(premise, entailment, contradiction) triplets in premise order of first appearance; the number
    of triplets dropped by ``exclude``."""
    by_premise: dict[str, dict[str, list[str]]] = defaultdict(lambda: {"entailment": [], "contradiction": []})
    for premise, hypothesis, label in rows:
        if label in ("entailment", "contradiction") and hypothesis not in by_premise[premise][label]:
            by_premise[premise][label].append(hypothesis)
    triplets, dropped = [], 0
    for premise, hyp in by_premise.items():
        for j, positive in enumerate(hyp["entailment"]):
            if not hyp["contradiction"]:
                break
            row = (premise, positive, hyp["contradiction"][j % len(hyp["contradiction"])])
            if exclude and any(_key(t) in exclude for t in row):
                dropped += 1
                continue
            triplets.append(row)
    return triplets, dropped


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sources", nargs="+", type=Path, help="SNLI .jsonl or label/label/premise/hypothesis TSV files")
    ap.add_argument("--out", type=Path, required=True, help="CSV with header sent0,sent1,hard_neg (.gz allowed)")
    ap.add_argument("--exclude", nargs="*", type=Path, default=[], help="STS tables whose sentences are left out")
    args = ap.parse_args(argv)
    rows = [r for src in args.sources for r in read_nli(src)]
    exclude = set().union(*(sts_sentences(p) for p in args.exclude)) if args.exclude else None
    triplets, dropped = build_triplets(rows, exclude)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if args.out.suffix == ".gz" else open
    with opener(args.out, "wt", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sent0", "sent1", "hard_neg"])
        w.writerows(triplets)
    print(f"{len(rows)} NLI pairs -> {len(triplets)} triplets ({dropped} dropped: a sentence in --exclude) "
          f"-> {args.out}")


if __name__ == "__main__":
    main()
