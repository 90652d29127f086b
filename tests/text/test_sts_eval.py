"""`multissl eval sts` on the published layouts (fixtures in conftest.py, built from shipped STS-B rows):
gzipped SentEval folders, SICK.txt with SemEval_set, one key per year, encode once, the SentEval table."""

import json
import shutil

import pytest

from multissl.cli import main
from multissl.errors import DataError
from multissl.text.data import find_senteval_suite, load_sts


def _run(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["eval", "sts", *args, "--json", "--device", "cpu"]) == 0
    return json.loads(capsys.readouterr().out)


def test_gzipped_senteval_folder_is_read(senteval_root):
    parts = load_sts(str(senteval_root / "STS" / "STS14-en-test"))
    assert [p.name for p in parts] == ["headlines", "images"]
    assert [len(p) for p in parts] == [39, 39]  # the unscored pair (empty gold line) is dropped
    assert "1 unscored pairs dropped" in parts[0].note


def test_sick_txt_split_by_semeval_set(senteval_root, tiny_bert, capsys):
    sick = senteval_root / "SICK"
    assert len(load_sts(str(sick), "test")[0]) == 50
    assert len(load_sts(str(sick / "SICK.txt"), "train")[0]) == 45
    assert len(load_sts(str(sick), "all")[0]) == 100
    out = _run(capsys, "--model", tiny_bert, "--data", str(sick), "--bootstrap", "0")
    row = out["scores"]["SICK-R/test"]
    assert row["pairs"] == 50 and row["note"] == "SemEval_set=TEST: 50 of 100 pairs"
    with pytest.raises(DataError, match="unknown split"):
        load_sts(str(sick), "validation-set")


def test_years_never_overwrite_each_other(senteval_root, tiny_bert, capsys):
    years = sorted(str(p) for p in (senteval_root / "STS").glob("STS1*"))
    out = _run(capsys, "--model", tiny_bert, "--data", *years, "--bootstrap", "0")["scores"]
    subsets = [k for k in out if not k.endswith("/all")]
    assert len(subsets) == 9 and len([k for k in out if k.endswith("/all")]) == 5
    assert {k for k in subsets if k.endswith("headlines")} == {f"STS{y}/headlines" for y in (13, 14, 15, 16)}
    alone = _run(capsys, "--model", tiny_bert, "--data", years[2], "--bootstrap", "0")["scores"]
    assert set(alone) == {"STS14/headlines", "STS14/images", "STS14/all"}
    for k, v in alone.items():
        assert out[k]["spearman"] == pytest.approx(v["spearman"], abs=1e-6)
    assert main(["eval", "sts", "--model", tiny_bert, "--data", years[0], years[0], "--device", "cpu"]) != 0
    assert "same result key" in capsys.readouterr().err


def test_each_sentence_is_encoded_once(senteval_root, tiny_bert, capsys, monkeypatch):
    from multissl.text import sts

    seen: list[str] = []
    real = sts.encode_texts

    def counting(embed, tokenizer, texts, *a, **k):
        seen.extend(texts)
        return real(embed, tokenizer, texts, *a, **k)

    monkeypatch.setattr(sts, "encode_texts", counting)
    folder = senteval_root / "STS" / "STS15-en-test"
    out = _run(capsys, "--model", tiny_bert, "--data", str(folder), "--bootstrap", "0")
    distinct = {s for p in load_sts(str(folder)) for s in p.s1 + p.s2}
    assert len(seen) == len(set(seen)) == len(distinct) == out["sentences_encoded"]
    assert "STS15/all" in out["scores"]


def test_senteval_suite_table_with_intervals(senteval_root, tiny_bert, capsys, tmp_path):
    out = _run(capsys, "--model", tiny_bert, "--suite", "senteval", "--data", str(senteval_root),
               "--bootstrap", "200")
    rows = out["scores"]
    assert list(rows) == ["STS12", "STS13", "STS14", "STS15", "STS16", "STS-B", "SICK-R"]
    assert rows["SICK-R"]["pairs"] == 50 and rows["STS-B"]["pairs"] == 60 and rows["STS14"]["pairs"] == 78
    for r in rows.values():
        assert r["low"] <= r["spearman"] <= r["high"] and r["high"] - r["low"] > 0
    avg = out["average"]
    assert avg["spearman"] == pytest.approx(sum(r["spearman"] for r in rows.values()) / 7)
    assert avg["low"] < avg["spearman"] < avg["high"]
    capsys.readouterr()
    assert main(["eval", "sts", "--model", tiny_bert, "--suite", "senteval", "--data", str(senteval_root),
                 "--bootstrap", "0", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "Avg." in text and "SemEval_set=TEST: 50 of 100 pairs" in text
    partial = tmp_path / "partial"
    shutil.copytree(senteval_root / "STS", partial / "STS")
    with pytest.raises(DataError, match="SICKRelatedness"):
        find_senteval_suite(str(partial))


def test_compare_gives_the_paired_difference(senteval_root, tiny_bert, capsys, tmp_path):
    import torch
    from transformers import BertConfig, BertModel

    from multissl.encoders.hf import HFEncoder, load_tokenizer

    torch.manual_seed(1)
    tok = load_tokenizer("minilm")
    other = tmp_path / "other"
    HFEncoder("", pooling="mean", model=BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1,
                                                             num_attention_heads=2, intermediate_size=64)),
              tokenizer=tok).save_pretrained(other)
    out = _run(capsys, "--model", tiny_bert, "--compare", str(other), "--suite", "senteval", "--data",
               str(senteval_root), "--bootstrap", "200")
    paired = out["compare"]["paired_difference"]
    for key, row in out["scores"].items():
        d = paired[key]
        assert d["difference"] == pytest.approx(row["spearman"] - out["compare"]["scores"][key]["spearman"])
        assert d["low"] <= d["difference"] <= d["high"]
    assert "average" in paired
    same = _run(capsys, "--model", tiny_bert, "--compare", tiny_bert, "--data", str(senteval_root / "SICK"),
                "--bootstrap", "100")
    assert same["compare"]["paired_difference"]["SICK-R/test"] == {"difference": 0.0, "low": 0.0, "high": 0.0}
