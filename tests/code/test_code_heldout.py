"""The held-out web-query check (data/code-cosqa): its published CoSQA layout is read (gzipped code map),
its queries and functions are kept out of training (the leakage check fails when one is put in), and the
recipe options of the generalisation study (query rewriting, WiSE-FT interpolation) do what they say."""

import gzip
import json
import random

import pytest
import torch

from multissl.code.data import load_retrieval
from multissl.code.heldout import (
    check_heldout,
    code_fingerprint,
    find_leakage,
    load_heldout,
)
from multissl.code.querystyle import QueryRewriter, identifier_query, web_style
from multissl.code.tasks import CodeSearchCollator
from multissl.core.momentum import interpolate_weights
from multissl.encoders.hf import load_tokenizer
from multissl.errors import DataError

CODES = [f'def f{i}(x):\n    """Docstring {i}."""\n    return x + {i}\n' for i in range(12)]
QUERIES = ["python add one to a number", "how to sum two ints in python", "python increment value"]


@pytest.fixture()
def cosqa_gz(tmp_path):
    """A CoSQA-layout folder as shipped: gzipped query files and gzipped code_idx_map.txt."""
    folder = tmp_path / "code-cosqa"
    folder.mkdir()
    with gzip.open(folder / "code_idx_map.txt.gz", "wt") as fh:
        json.dump({c: i for i, c in enumerate(CODES)}, fh, indent=1)
    for split, gold in (("dev", [3, 5]), ("test", [7])):
        rows = [{"idx": f"cosqa-{split}-{j}", "doc": QUERIES[j + (0 if split == "dev" else 2)], "retrieval_idx": g,
                 "label": 1} for j, g in enumerate(gold)]
        with gzip.open(folder / f"cosqa-retrieval-{split}-{len(gold)}.json.gz", "wt") as fh:
            json.dump(rows, fh)
    return folder


def test_gzipped_cosqa_layout_is_read_with_its_full_code_base(cosqa_gz):
    dev = load_retrieval(str(cosqa_gz), "dev")
    test = load_retrieval(str(cosqa_gz), "test")
    assert dev.protocol == "cosqa" and len(dev.codes) == 12 and dev.queries == QUERIES[:2]
    assert [dev.codes[r] for r in dev.relevant] == [CODES[3], CODES[5]] and test.relevant == [7]


def test_shipped_heldout_set_is_cosqa_dev_and_test():
    dev, test = load_retrieval("code-cosqa", "dev"), load_retrieval("code-cosqa", "test")
    assert (len(dev), len(test), len(dev.codes), dev.protocol) == (500, 500, 6267, "cosqa")
    assert not set(dev.queries) & set(test.queries)


def test_leakage_check_fails_when_a_heldout_query_or_function_is_trained_on(cosqa_gz):
    clean = [("Return the sum.", "def g(a, b):\n    return a * b - 1\n"), ("Open a file.", "def h(p):\n    return 2\n")]
    kept, counts = check_heldout(clean, [str(cosqa_gz)])
    assert kept == clean and counts == {str(cosqa_gz): 0}
    with_query = clean + [("Python  add one to a number!", "def other():\n    return 0\n")]  # case/punctuation differ
    with pytest.raises(DataError, match="overlap the held-out set"):
        check_heldout(with_query, [str(cosqa_gz)])
    # the same function mined without its docstring, at a different indentation, is caught too
    mined = "    def f4(x):\n        return x + 4\n"
    assert code_fingerprint(mined) == code_fingerprint(CODES[4])
    with_code = clean + [("Add four.", mined)]
    leak = find_leakage(with_code, load_heldout(str(cosqa_gz)))
    assert leak.code_hits == [2] and leak.query_hits == []
    kept, counts = check_heldout(with_code + with_query[-1:], [str(cosqa_gz)], "drop")
    assert kept == clean and counts[str(cosqa_gz)] == 2


def test_training_recipes_keep_the_heldout_set_out():
    from multissl.recipes import load_recipe

    for name in ("code/finetune-minilm", "code/finetune-minilm-robust", "code/cocosoda-minilm"):
        d = load_recipe(name, []).config.data
        assert "code-cosqa" in d.heldout, name


def test_web_style_rewrite_and_identifier_queries():
    rng = random.Random(0)
    out = web_style("Returns the keys that map to the top n values in the given :class:`dict`.", rng, language_rate=0)
    words = out.split()
    assert words[0] == "get" and out == out.lower() and "the" not in words and 3 <= len(words) <= 8
    assert all(w.isalnum() for w in words)
    assert web_style("Creates a pretty table.", random.Random(1), language_rate=0).startswith("create pretty table")
    assert identifier_query("def getHTTPResponse_code(self):\n    pass") == "get http response code"
    rewrite = QueryRewriter(["docstring", "web"], rate=1.0, seed=0)
    assert rewrite("Returns the value.", "def v(): pass") != "Returns the value."
    assert QueryRewriter(["docstring", "web"], rate=0.0)("Returns the value.", "") == "Returns the value."
    tok = load_tokenizer("minilm")
    pairs = [("Returns the sum of the given values.", "def total(v):\n    return sum(v)\n")] * 4
    plain = CodeSearchCollator(tok, 32, 16, with_types=False)(pairs)["query_input_ids"]
    styled = CodeSearchCollator(tok, 32, 16, with_types=False, rewrite=QueryRewriter(["web"], 1.0))(pairs)
    assert not torch.equal(plain, styled["query_input_ids"][:, :plain.shape[1]]) or plain.shape != styled["query_input_ids"].shape


def test_wise_interpolation_and_the_recipe_option_export_the_mix(tmp_path):
    a = {"w": torch.zeros(3), "ids": torch.arange(3)}
    b = {"w": torch.ones(3) * 2, "ids": torch.arange(3)}
    assert torch.equal(interpolate_weights(a, b, 0.25)["w"], torch.full((3,), 0.5))
    assert torch.equal(interpolate_weights(a, b, 1.0)["w"], b["w"]) and interpolate_weights(a, b, 0.5)["ids"] is b["ids"]
    from transformers import BertConfig, BertModel

    from multissl.encoders.hf import HFEncoder
    from multissl.recipes import load_recipe
    from multissl.run import run_recipe

    torch.manual_seed(0)
    tok = load_tokenizer("minilm")
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    start = tmp_path / "start"
    HFEncoder("x", model=BertModel(cfg), tokenizer=tok).save_pretrained(start)
    base = {"data.max_train_pairs=64", "data.code_length=32", "data.query_length=16", "data.max_valid_codebase=40",
            "data.final_test=false", "train.batch_size=16", "train.max_steps=3", "train.lr=0.01",
            "train.progress=false", f"model.name_or_path={start}", "data.query_styles=[web]", "data.query_rewrite_rate=0.5",
            "data.heldout=[]"}
    w0 = HFEncoder(str(start)).model.state_dict()
    exports = {}
    for alpha in (0.0, 1.0):
        run = tmp_path / f"run{alpha}"
        run_recipe(load_recipe("code/finetune-minilm", sorted(base) + [f"method.wise_alpha={alpha}"]), run_dir=str(run))
        exports[alpha] = HFEncoder(str(run / "export")).model.state_dict()
    key = "encoder.layer.0.attention.self.query.weight"
    assert torch.allclose(exports[0.0][key], w0[key])  # alpha 0 serves the starting weights
    assert not torch.allclose(exports[1.0][key], w0[key], atol=1e-4)  # plain fine-tuning moved them
