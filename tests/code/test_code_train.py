"""End to end on a slice of the shipped mined set: CoCoSoDa and the fine-tuning stage train a small
randomly initialised BERT (MiniLM's tokenizer) for a few steps and the held-out MRR beats the untrained
encoder; the method's loss pieces behave as in the official code."""

import json

import pytest
import torch

from multissl.code.methods import CoCoSoDa
from multissl.core import Progress, after_optimizer_step
from multissl.encoders.hf import HFEncoder, load_tokenizer
from multissl.recipes import load_recipe
from multissl.run import build_parts, run_recipe

SLICE = ["data.max_train_pairs=1024", "data.code_length=64", "data.query_length=32", "data.max_valid_codebase=200",
         "data.max_test_codebase=200", "train.batch_size=32", "train.max_steps=25", "train.lr=0.001",
         "train.progress=false", "train.log_every=10", "eval.batch_size=128"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    tok = load_tokenizer("minilm")
    cfg = BertConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=128, max_position_embeddings=512)
    folder = tmp_path_factory.mktemp("tiny") / "bert"
    HFEncoder("x", model=BertModel(cfg), tokenizer=tok).save_pretrained(folder)
    return str(folder)


def _gain(recipe_name, overrides, tmp_path):
    recipe = load_recipe(recipe_name, overrides)
    _, parts = build_parts(recipe)
    with torch.no_grad():
        parts.method.eval()
        before = parts.evaluate(parts.method)["val/mrr"]
    res = run_recipe(recipe, run_dir=str(tmp_path / "run"))
    return before, res


def test_cocosoda_trains_and_beats_untrained_encoder(tiny_model, tmp_path):
    over = SLICE + [f"model.name_or_path={tiny_model}", "method.queue_size=128", "method.momentum=0.99",
                    "method.paper_compat_scale=false", "method.temperature=0.05"]
    before, res = _gain("code/cocosoda-minilm", over, tmp_path)
    m = res["metrics"]
    assert m["val/mrr"] > before + 0.03, (before, m["val/mrr"])
    assert m["test/mrr"] > 0.1 and 0 <= m["test/r@1"] <= m["test/r@5"] <= m["test/r@10"] <= 1
    logs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # the queues start as random unit vectors (easy negatives) and fill with real keys, so the loss need not fall
    assert all(r["loss_query2aug_code"] == r["loss_query2aug_code"] for r in logs if "loss" in r)
    export = tmp_path / "run" / "export"
    assert (export / "modules.json").exists() and (export / "config.json").exists()


def test_finetune_trains_and_beats_untrained_encoder(tiny_model, tmp_path):
    before, res = _gain("code/finetune-minilm", SLICE + [f"model.name_or_path={tiny_model}"], tmp_path)
    assert res["metrics"]["val/mrr"] > before + 0.03
    assert res["selected_checkpoint"] == "best"


def test_cocosoda_loss_matches_the_official_scale_and_queues(tiny_model):
    enc = HFEncoder(tiny_model)
    m = CoCoSoDa(enc, queue_size=8, paper_compat_scale=True, aug_schedule="cycle")
    assert abs(1 / m.effective_temperature - 20 / 0.07) < 1e-6
    assert m.type_token_ids.numel() == 7 and int(m.type_token_ids.min()) >= 30522
    from multissl.code.tasks import CodeSearchCollator

    batch = CodeSearchCollator(enc.tokenizer, 32, 16)([("add two numbers", "def add(a, b):\n    return a + b\n"),
                                                      ("read a file", "def read(p):\n    return open(p).read()\n"),
                                                      ("sort items", "def s(x):\n    return sorted(x)\n"),
                                                      ("join words", "def j(w):\n    return ' '.join(w)\n")])
    before = m.code_queue.keys().clone()
    out = m(batch)
    assert torch.isfinite(out.loss) and {k for k in out.logs if k.startswith("loss_")} == {
        "loss_code2query", "loss_code2aug_query", "loss_query2code", "loss_query2aug_code"}
    assert torch.equal(before, m.code_queue.keys()) and m.code_queue.num_staged == 4  # staged, not pushed
    out.loss.backward()
    assert all(p.grad is None for p in m.key_model.parameters())  # keys carry no gradient
    after_optimizer_step(m, Progress(1, 10, 0, 10))  # the trainer's hook: EMA, one push, step counter
    assert not torch.equal(before[:4], m.code_queue.keys()[:4]) and int(m.steps) == 1
    m.intra_modal = True
    assert len([k for k in m(batch).logs if k.startswith("loss_")]) == 6
    after_optimizer_step(m, Progress(2, 10, 0, 10))
    assert int(m.steps) == 2 and m.pick_augmentation() == "replace_one_type"  # the official step % 4 cycle


def test_eval_code_command_on_a_codesearchnet_file(tiny_model, tmp_path, capsys):
    from multissl.cli import main

    rows = [{"url": f"u{i}", "code_tokens": ["def", f"name{i}", "(", ")", ":", "return", str(i)],
             "docstring_tokens": [f"name{i}", "returns", str(i)]} for i in range(20)]
    (tmp_path / "test.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert main(["eval", "code", "--data", str(tmp_path / "test.jsonl"), "--model", tiny_model, "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["splits"]["test"]
    res = out["results"][tiny_model]
    assert out["queries"] == 20 and out["codebase"] == 20 and 0 < res["mrr"] <= 1 and res["r@1"] <= res["r@10"]
    assert out["protocol"] == "codesearchnet" and out["mrr_cutoff"] == 1000 and out["full_codebase"]
