"""Supervised-SimCSE triplets from NLI pairs (multissl.finetune.nli) and the shipped SNLI slice."""

import hashlib
import json
from pathlib import Path

from multissl.finetune.nli import _key, build_triplets, read_nli, sts_sentences

DATA = Path(__file__).resolve().parents[2] / "data"


def test_triplets_need_entailment_and_contradiction_of_the_same_premise(tmp_path):
    rows = [("p1", "e1", "entailment"), ("p1", "c1", "contradiction"), ("p1", "n1", "neutral"),
            ("p1", "e2", "entailment"), ("p2", "e3", "entailment"), ("p2", "n2", "neutral"),
            ("p3", "c3", "contradiction"), ("p4", "e4", "entailment"), ("p4", "c4", "contradiction"),
            ("p4", "c5", "contradiction")]
    triplets, dropped = build_triplets(rows)
    assert triplets == [("p1", "e1", "c1"), ("p1", "e2", "c1"), ("p4", "e4", "c4")] and dropped == 0
    triplets, dropped = build_triplets(rows, exclude={"e2"})  # normalised sentence keys
    assert ("p1", "e2", "c1") not in triplets and dropped == 1


def test_both_nli_layouts_read(tmp_path):
    (tmp_path / "snli_1.0_train.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"gold_label": "entailment", "sentence1": "A dog runs.", "sentence2": "An animal moves."},
        {"gold_label": "-", "sentence1": "A dog runs.", "sentence2": "Unclear."},
        {"gold_label": "contradiction", "sentence1": "A dog runs.", "sentence2": "A dog sleeps."}]) + "\n")
    (tmp_path / "pairs.tsv").write_text("3\t3\tA dog runs.\tAn animal moves.\n2\t2\tA dog runs.\tA dog sleeps.\n"
                                        "1\t1\tA dog runs.\tThe dog is fast.\n")
    a, b = read_nli(tmp_path / "snli_1.0_train.jsonl"), read_nli(tmp_path / "pairs.tsv")
    assert a == [("A dog runs.", "An animal moves.", "entailment"), ("A dog runs.", "A dog sleeps.", "contradiction")]
    assert b[:2] == a and b[2][2] == "neutral"
    assert build_triplets(a)[0] == [("A dog runs.", "An animal moves.", "A dog sleeps.")]


def test_shipped_slice_is_the_recorded_file_and_loads_through_the_recipe():
    path = DATA / "snli-triplets" / "snli_train_triplets.csv"
    digest = (DATA / "snli-triplets" / "SHA256SUMS").read_text().split()[0]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    from multissl.finetune.data import load_pairs
    from multissl.recipes import load_recipe

    d = load_recipe("finetune/supsimcse-snli-minilm").config.data
    rows = load_pairs(d.train, d.anchor_column, d.positive_column, d.negative_columns)
    assert len(rows) == 431 and all(len(n) == 1 for n in rows.negatives)
    sts = sts_sentences(DATA / "stsb" / "sts-dev.csv.gz") | sts_sentences(DATA / "stsb" / "sts-test.csv")
    texts = rows.anchors + rows.positives + [n[0] for n in rows.negatives]
    assert not any(_key(t) in sts for t in texts)  # nothing of STS-B dev / test is trained on
