"""`multissl eval code` on the published layouts (CoSQA query json + code_idx_map.txt, CodeXGLUE test.jsonl +
codebase.jsonl), built from the shipped mined set: full code base by default, gold-only only when asked and
flagged, protocol MRR cut-offs, per-query ranks, one code-base encoding per model, BM25 floor, paired intervals."""

import gzip
import json

import pytest
import torch

from multissl.cli import main
from multissl.code.data import load_retrieval
from multissl.code.lexical import identifier_tokens
from multissl.encoders.hf import HFEncoder, load_tokenizer
from multissl.errors import DataError
from multissl.eval.bm25 import BM25
from multissl.eval.ranks import first_hit_ranks


def _rows(n: int) -> list[dict]:
    from multissl.data import resolve_data_path

    with gzip.open(resolve_data_path("codesearch/test.jsonl.gz"), "rt", encoding="utf-8") as fh:
        return [json.loads(line) for _, line in zip(range(n), fh, strict=False)]


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """CoSQA: dev (10) and test (20) query json sharing code_idx_map.txt of 80 codes; CodeXGLUE: test.jsonl
    (20 queries) + codebase.jsonl (80 codes); a lone copy of the CoSQA test query file."""
    rows = _rows(80)
    root = tmp_path_factory.mktemp("layouts")
    cosqa = root / "cosqa"
    cosqa.mkdir()
    (cosqa / "code_idx_map.txt").write_text(json.dumps({r["code"]: i for i, r in enumerate(rows)}))
    for name, lo, hi in (("cosqa-retrieval-dev-10.json", 40, 50), ("cosqa-retrieval-test-20.json", 50, 70)):
        q = [{"idx": f"cosqa-{i}", "doc": rows[i]["docstring"], "code": rows[i]["code"], "retrieval_idx": i}
             for i in range(lo, hi)]
        (cosqa / name).write_text(json.dumps(q))
    alone = root / "alone"
    alone.mkdir()
    (alone / "cosqa-retrieval-test-20.json").write_text((cosqa / "cosqa-retrieval-test-20.json").read_text())
    cxg = root / "codexglue"
    cxg.mkdir()
    (cxg / "codebase.jsonl").write_text("\n".join(json.dumps({"url": r["url"], "code": r["code"]}) for r in rows))
    (cxg / "test.jsonl").write_text("\n".join(json.dumps({"url": r["url"], "docstring": r["docstring"],
                                                          "code": r["code"]}) for r in rows[:20]))
    return root


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from transformers import BertConfig, BertModel

    tok = load_tokenizer("minilm")
    out = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=512)
        folder = tmp_path_factory.mktemp(f"tiny{seed}") / "bert"
        HFEncoder("", model=BertModel(cfg), tokenizer=tok).save_pretrained(folder)
        out.append(str(folder))
    return out


def _json(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["eval", "code", *args, "--json", "--code-length", "64", "--query-length", "32"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_query_file_alone_is_refused_unless_gold_only_is_asked(layouts, tiny_models, capsys):
    lone = str(layouts / "alone" / "cosqa-retrieval-test-20.json")
    with pytest.raises(DataError, match="--candidates gold-only"):
        load_retrieval(lone)
    out = _json(capsys, "--data", lone, "--model", tiny_models[0], "--candidates", "gold-only", "--bootstrap", "0")
    e = out["splits"]["test"]
    assert e["codebase"] == 20 and e["full_codebase"] is False and e["candidates"].startswith("GOLD-ONLY")
    assert main(["eval", "code", "--data", lone, "--model", tiny_models[0], "--candidates", "gold-only",
                 "--bootstrap", "0", "--no-bm25"]) == 0
    assert "warning" in capsys.readouterr().err


def test_cosqa_folder_full_codebase_no_cutoff_and_one_encoding(layouts, tiny_models, capsys, monkeypatch, tmp_path):
    from multissl.code import evaluate

    encoded: list[int] = []
    real = evaluate.ModelRanker._encode

    def counting(self, texts, length):
        encoded.append(len(texts))
        return real(self, texts, length)

    monkeypatch.setattr(evaluate.ModelRanker, "_encode", counting)
    per_query = tmp_path / "ranks.jsonl"
    out = _json(capsys, "--data", str(layouts / "cosqa"), "--split", "dev", "test", "--model", tiny_models[0],
                "--per-query", str(per_query), "--bootstrap", "200")
    assert encoded == [80, 10, 20]  # the shared code base once, then each split's queries
    for split, n in (("dev", 10), ("test", 20)):
        e = out["splits"][split]
        assert (e["protocol"], e["mrr_cutoff"], e["codebase"], e["queries"]) == ("cosqa", None, 80, n)
        assert e["full_codebase"] and "code_idx_map.txt" in e["candidates"]
    lines = [json.loads(x) for x in per_query.read_text().splitlines()]
    assert len(lines) == 30
    test = [x for x in lines if x["split"] == "test"]
    res = out["splits"]["test"]["results"]
    for name in (tiny_models[0], "bm25"):
        mrr = sum(1 / x["ranks"][name] for x in test) / len(test)
        assert res[name]["mrr"] == pytest.approx(mrr)
        assert res[name]["mrr_low"] <= res[name]["mrr"] <= res[name]["mrr_high"]


def test_codexglue_codebase_beside_the_query_file_and_cutoff_option(layouts, tiny_models, capsys):
    q = str(layouts / "codexglue" / "test.jsonl")
    rset = load_retrieval(q)
    assert rset.protocol == "codexglue" and len(rset.codes) == 80 and "codebase.jsonl" in rset.candidates
    base = _json(capsys, "--data", q, "--model", tiny_models[0], "--bootstrap", "0", "--no-bm25")
    cut = _json(capsys, "--data", q, "--model", tiny_models[0], "--bootstrap", "0", "--no-bm25", "--mrr-cutoff", "3")
    assert base["splits"]["test"]["mrr_cutoff"] == 1000 and cut["splits"]["test"]["mrr_cutoff"] == 3
    r_base, r_cut = base["splits"]["test"]["results"][tiny_models[0]], cut["splits"]["test"]["results"][tiny_models[0]]
    assert r_cut["mrr"] < r_base["mrr"] and r_cut["r@1"] == r_base["r@1"]


def test_two_models_give_a_paired_difference(layouts, tiny_models, capsys):
    out = _json(capsys, "--data", str(layouts / "codexglue" / "test.jsonl"), "--model", *tiny_models,
                "--bootstrap", "300")
    e = out["splits"]["test"]
    d = e["paired_mrr_difference"]
    a, b = (e["results"][m]["mrr"] for m in tiny_models)
    assert d["first_minus_second"] == pytest.approx(a - b) and d["low"] <= a - b <= d["high"]
    same = _json(capsys, "--data", str(layouts / "codexglue" / "test.jsonl"), "--model", tiny_models[0],
                 tiny_models[0], "--bootstrap", "100", "--no-bm25")
    assert same["splits"]["test"]["paired_mrr_difference"]["high"] == 0.0


def test_bm25_matches_the_formula_and_is_a_real_floor():
    assert identifier_tokens("def getHTTPResponse_code(x2):") == ["def", "get", "http", "response", "code", "x", "2"]
    docs = [["a", "b", "b"], ["b", "c"], ["c", "c", "c", "d"]]
    s = BM25(docs).scores([["b", "d"]])[0].double()
    n, avgdl, k1, b = 3, 3.0, 1.2, 0.75

    def term(tf, dl, df):
        idf = torch.log1p(torch.tensor((n - df + 0.5) / (df + 0.5), dtype=torch.float64))
        return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))

    expected = torch.stack([term(2, 3, 2), term(1, 2, 2), term(1, 4, 1)])
    assert torch.allclose(s, expected, atol=1e-5)
    rset = load_retrieval("codesearch", "test").slice_codebase(300)
    from multissl.code.evaluate import bm25_ranks

    ranks = bm25_ranks(rset)
    chance = sum(1 / r for r in range(1, len(rset.codes) + 1)) / len(rset.codes)
    assert float((1 / ranks).mean()) > 10 * chance  # docstrings share identifiers with their functions


def test_ranks_count_ties_at_their_expected_position():
    q = torch.tensor([[1.0, 0.0]])
    keys = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert first_hit_ranks(q, keys, torch.tensor([0])).tolist() == [2.0]  # tied with 2 others: 1 + 2/2
