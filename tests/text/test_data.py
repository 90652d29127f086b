"""Corpora and STS layouts (STS-B release, SentEval STS12-16, SICK-R) and ESimCSE word repetition."""

import gzip
import random

import pytest

from multissl.errors import DataError
from multissl.text.augment import word_repetition
from multissl.text.data import load_sentences, load_sts, load_sts_all


def test_shipped_corpus_and_stsb_sizes():
    wiki = load_sentences("wiki1m/wiki1m_head11913.txt.gz")
    assert len(wiki) == 11913 and wiki[0] == "YMCA in South Australia"
    assert len(load_sts_all("stsb/sts-train.csv.gz")) == 5749
    dev = load_sts_all("stsb/sts-dev.csv.gz")
    test = load_sts_all("stsb/sts-test.csv")
    assert (len(dev), len(test)) == (1500, 1379)
    assert 0.0 <= float(test.scores.min()) and float(test.scores.max()) <= 5.0
    assert dev.s1[0] and dev.s2[0]


def test_table_and_jsonl_corpora(tmp_path):
    (tmp_path / "c.csv").write_text("id,text\n1,first sentence\n2,second one\n")
    (tmp_path / "c.jsonl").write_text('{"sentence": "a b c"}\n{"sentence": "d e"}\n')
    with gzip.open(tmp_path / "c.txt.gz", "wt") as fh:
        fh.write("x y\n\n z \n")
    assert load_sentences(str(tmp_path / "c.csv")) == ["first sentence", "second one"]
    assert load_sentences(str(tmp_path / "c.jsonl")) == ["a b c", "d e"]
    assert load_sentences(str(tmp_path / "c.txt.gz")) == ["x y", "z"]
    with pytest.raises(DataError):
        load_sentences(str(tmp_path / "missing.txt"))


def test_senteval_and_sick_layouts(tmp_path):
    sts12 = tmp_path / "STS12"
    sts12.mkdir()
    (sts12 / "STS.input.MSRpar.txt").write_text("a cat\ta feline\nred\tblue\nx\ty\n")
    (sts12 / "STS.gs.MSRpar.txt").write_text("4.5\n\n1.0\n")  # empty gold = unscored, dropped
    (sts12 / "STS.input.OnWN.txt").write_text("p\tq\n")
    (sts12 / "STS.gs.OnWN.txt").write_text("2\n")
    parts = load_sts(str(sts12))
    assert [p.name for p in parts] == ["MSRpar", "OnWN"] and len(parts[0]) == 2
    assert len(load_sts_all(str(sts12))) == 3
    sick = tmp_path / "SICK_test_annotated.txt"
    sick.write_text("pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
                    "1\tA man\tA person\t4.2\tENTAILMENT\n")
    pairs = load_sts_all(str(sick))
    assert pairs.s1 == ["A man"] and float(pairs.scores[0]) == pytest.approx(4.2)
    assert len(load_sts_all(str(tmp_path), "test")) == 1  # folder with SICK files


def test_word_repetition_follows_the_official_rule():
    rng = random.Random(0)
    ids = [101] + list(range(1000, 1030)) + [102]  # L = 32 -> at most min(10, int(0.32 * 32)) - 1 = 9 extra
    for _ in range(200):
        out = word_repetition(ids, 0.32, 10, rng)
        assert out[0] == 101 and out[-1] == 102 and out.count(101) == 1 and out.count(102) == 1
        extra = len(out) - len(ids)
        assert 0 <= extra <= 9
        assert sorted(set(out)) == sorted(set(ids))  # only existing tokens, each at most twice
        assert all(out.count(t) <= 2 for t in ids)
    assert word_repetition([101, 5, 102], 0.32) == [101, 5, 102]  # int(0.32 * 3) == 0: unchanged
