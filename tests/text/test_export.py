"""Export: the folder loads with AutoModel and SentenceTransformer and gives multissl's embeddings;
`multissl eval sts` and `multissl embed` work on it; GradCache SimCSE equals plain SimCSE."""

import json

import pytest
import torch

from multissl.cli import main
from multissl.recipes import load_recipe
from multissl.run import build_parts

QUICK = ["train.progress=false", "data.limit=256", "data.eval_max_pairs=32", "train.eval_at_start=true",
         "train.eval_every=0"]


def test_export_loads_in_transformers_and_sentence_transformers(tiny_bert, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "text/simcse-minilm", f"model.name={tiny_bert}", "train.max_steps=2",
                 "train.batch_size=16", *QUICK, "--run-dir", str(run)]) == 0
    res = json.loads((run / "results.json").read_text())
    assert res["selected_checkpoint"] == "best" and "test/stsb_spearman" in res["metrics"]
    export = run / "export"
    sentences = ["A man is playing a guitar.", "Two dogs run on the beach.", "short"]

    from transformers import AutoModel, AutoTokenizer

    from multissl.encoders.hf import HFEncoder

    ours = HFEncoder.from_folder(export).eval()
    ref = ours.encode(sentences)
    auto, tok = AutoModel.from_pretrained(export).eval(), AutoTokenizer.from_pretrained(export)
    enc = tok(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = auto(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    assert torch.allclose((h * m).sum(1) / m.sum(1), ref, atol=1e-5)
    st = pytest.importorskip("sentence_transformers")
    st_emb = st.SentenceTransformer(str(export), device="cpu").encode(sentences, convert_to_tensor=True)
    assert torch.allclose(st_emb.cpu(), ref, atol=1e-5)

    capsys.readouterr()
    assert main(["eval", "sts", "--model", str(export), "--data", "stsb/sts-dev.csv.gz", "--json",
                 "--device", "cpu"]) == 0
    score = json.loads(capsys.readouterr().out)["scores"]["sts-dev.csv.gz"]
    assert score["low"] <= score["spearman"] <= score["high"] and score["pairs"] == 1500
    capsys.readouterr()
    assert main(["eval", "sts", "--model", str(run), "--data", "stsb/sts-dev.csv.gz", "--json", "--bootstrap", "0",
                 "--device", "cpu"]) == 0  # a run folder evaluates its export/
    assert json.loads(capsys.readouterr().out)["scores"]["sts-dev.csv.gz"]["spearman"] == \
        pytest.approx(score["spearman"], abs=1e-6)
    # the same figure computed independently: the export's embeddings (checked above against AutoModel),
    # cosine similarity, and scipy's Spearman against the gold scores
    from scipy.stats import spearmanr

    from multissl.text.data import load_sts

    pairs = load_sts("stsb/sts-dev.csv.gz", "dev")[0]
    with torch.no_grad():
        a, b = ours.encode(pairs.s1), ours.encode(pairs.s2)
    expected = 100 * spearmanr(torch.nn.functional.cosine_similarity(a, b).numpy(), pairs.scores.numpy())[0]
    assert abs(score["spearman"] - expected) < 1e-3, (score, expected)
    out = tmp_path / "emb.npy"
    (tmp_path / "s.txt").write_text("\n".join(sentences))
    assert main(["embed", "--run", str(run), "--data", str(tmp_path / "s.txt"), "--out", str(out)]) == 0
    import numpy as np

    assert np.allclose(np.load(out), ref.numpy(), atol=1e-5)


def test_export_of_minilm_is_a_drop_in_replacement(tmp_path):
    """The export keeps the base pipeline (Transformer -> Pooling -> Normalize, max_seq_length 256):
    sentence-transformers gives the base model's embeddings from it, also past 128 tokens."""
    st = pytest.importorskip("sentence_transformers")
    from multissl.encoders.hf import HFEncoder, resolve_model

    enc = HFEncoder("minilm", pooling="mean", max_length=128)
    out = enc.save_pretrained(tmp_path / "export")
    types = [m["type"].rsplit(".", 1)[-1] for m in json.loads((out / "modules.json").read_text())]
    assert types == ["Transformer", "Pooling", "Normalize"]
    assert json.loads((out / "sentence_bert_config.json").read_text())["max_seq_length"] == 256
    long_text = " ".join(["the quick brown fox jumps over the lazy dog"] * 25)  # ~225 tokens
    sentences = ["A man is playing a guitar.", long_text]
    base = st.SentenceTransformer(resolve_model("minilm"), device="cpu")
    ours = st.SentenceTransformer(str(out), device="cpu")
    assert ours.max_seq_length == base.max_seq_length == 256
    a, b = base.encode(sentences, convert_to_tensor=True), ours.encode(sentences, convert_to_tensor=True)
    assert torch.allclose(a, b, atol=1e-5) and torch.allclose(b.norm(dim=-1), torch.ones(2), atol=1e-5)
    changed = enc.save_pretrained(tmp_path / "changed", normalize=False, max_seq_length=64)  # a recipe's choice
    assert len(json.loads((changed / "modules.json").read_text())) == 2
    assert json.loads((changed / "sentence_bert_config.json").read_text())["max_seq_length"] == 64


def test_gradcache_simcse_gradients_equal_plain(tiny_bert):
    grads = []
    for chunk in (0, 5):
        recipe = load_recipe("text/simcse-minilm", [f"model.name={tiny_bert}", "data.limit=64",
                                                    f"method.gradcache_chunk={chunk}", "model.dropout=0.0",
                                                    "method.mlp=train"])
        _, parts = build_parts(recipe)
        method = parts.method.train()
        batch = parts.collate_fn(parts.train_data.items[:12])
        loss = method(batch).loss
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in method.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-5)
    assert len(grads[0][1]) == len(grads[1][1])
    for a, b in zip(grads[0][1], grads[1][1], strict=True):
        assert torch.allclose(a, b, atol=1e-4)
