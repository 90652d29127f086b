"""CoCoSoDa soft data augmentation: lexical types from Python's tokenizer mapped onto subwords, each
operator keeps types, touches only what it should, and never changes special tokens or padding."""

import pytest
import torch

from multissl.code.augment import (
    AUGMENTATIONS,
    LEXICAL_TYPES,
    TYPE_TOKENS,
    lexical_spans,
    soft_augment,
    tokenize_code,
)
from multissl.encoders.hf import load_tokenizer
from multissl.encoders.masking import special_tokens_mask

CODE = ['def add(a, b=1):\n    # sum them\n    return a + b * 2 if a else "none"\n',
        "for item in items:\n    total += item.value\n",
        "x = (1,"]  # does not tokenize: regex fallback


@pytest.fixture(scope="module")
def tok():
    t = load_tokenizer("minilm")
    t.add_tokens([x for x in TYPE_TOKENS if x not in t.get_vocab()])
    return t


@pytest.fixture(scope="module")
def batch(tok):
    enc = tokenize_code(tok, CODE, 48)
    q = tok(["add two numbers", "sum the values of items", "a tuple"], padding=True, return_tensors="pt")
    special = special_tokens_mask(enc["input_ids"], tok.all_special_ids) | (enc["attention_mask"] == 0)
    qspecial = special_tokens_mask(q["input_ids"], tok.all_special_ids) | (q["attention_mask"] == 0)
    return enc, q, special, qspecial


def _types(tok, enc, row):
    return {t: LEXICAL_TYPES[k] for t, k in zip(tok.convert_ids_to_tokens(enc["input_ids"][row]),
                                                 enc["token_types"][row].tolist()) if k >= 0}


def test_lexical_types_follow_python_tokenizer(tok, batch):
    enc = batch[0]
    t0 = _types(tok, enc, 0)
    assert t0["def"] == "keyword" and t0["return"] == "keyword" and t0["add"] == "identifier"
    assert t0["+"] == "operator" and t0["("] == "separator" and t0["2"] == "number"
    assert t0["none"] == "string" and t0["sum"] == "comment"
    assert _types(tok, enc, 1)["+"] == "operator"  # '+=' split into subwords keeps the operator type
    assert [s[2] for s in lexical_spans("x = (1,")] == [LEXICAL_TYPES.index(t) for t in
                                                        ("identifier", "operator", "separator", "number", "separator")]
    special = enc["token_types"][enc["attention_mask"] == 0]
    assert (special == -1).all() and (enc["token_types"][:, 0] == -1).all()  # [CLS] and padding have no type


@pytest.mark.parametrize("kind", AUGMENTATIONS)
def test_special_tokens_and_padding_never_change(tok, batch, kind):
    enc, q, special, qspecial = batch
    type_ids = torch.tensor(tok.convert_tokens_to_ids(list(TYPE_TOKENS)))
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        code, query = soft_augment(kind, enc["input_ids"], enc["token_types"], special, q["input_ids"], qspecial,
                                   mask_token_id=tok.mask_token_id, vocab_size=len(tok), type_token_ids=type_ids,
                                   rate=1.0, generator=g)
        assert torch.equal(code[special], enc["input_ids"][special])
        assert torch.equal(query[qspecial], q["input_ids"][qspecial])
        assert code.shape == enc["input_ids"].shape and query.shape == q["input_ids"].shape
        if kind != "mask":
            assert torch.equal(query, q["input_ids"])  # only masking touches the query (official code)
        else:
            assert (query != q["input_ids"]).any()


def test_replacement_preserves_each_tokens_type(tok, batch):
    enc, q, special, qspecial = batch
    type_ids = torch.tensor(tok.convert_tokens_to_ids(list(TYPE_TOKENS)))
    code, _ = soft_augment("replace_type", enc["input_ids"], enc["token_types"], special, q["input_ids"], qspecial,
                           mask_token_id=tok.mask_token_id, vocab_size=len(tok), type_token_ids=type_ids, rate=1.0,
                           generator=torch.Generator().manual_seed(0))
    changed = code != enc["input_ids"]
    assert changed.float().sum() > 0.6 * (~special).sum()  # 80% of all typed subwords at rate 1
    assert torch.equal(code[changed], type_ids[enc["token_types"][changed]])  # each becomes ITS type's token


def test_one_type_operators_touch_a_single_type(tok, batch):
    enc, q, special, qspecial = batch
    type_ids = torch.tensor(tok.convert_tokens_to_ids(list(TYPE_TOKENS)))
    for kind in ("replace_one_type", "mask_one_type"):
        for seed in range(4):
            code, _ = soft_augment(kind, enc["input_ids"], enc["token_types"], special, q["input_ids"], qspecial,
                                   mask_token_id=tok.mask_token_id, vocab_size=len(tok), type_token_ids=type_ids,
                                   rate=1.0, generator=torch.Generator().manual_seed(seed))
            changed = code != enc["input_ids"]
            assert changed.any()
            assert enc["token_types"][changed].unique().numel() == 1
            if kind == "mask_one_type":
                assert (code[changed] == tok.mask_token_id).all()


def test_mask_rate_is_respected(tok):
    ids = torch.randint(1000, 2000, (64, 100))
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = True
    types = torch.zeros_like(ids)
    code, _ = soft_augment("mask", ids, types, special, ids, special, mask_token_id=103, vocab_size=30522,
                           type_token_ids=torch.arange(7), rate=0.1, generator=torch.Generator().manual_seed(0))
    frac = ((code == 103).float().sum() / (~special).sum()).item()
    assert 0.06 < frac < 0.10  # 80% of 10% become [MASK]
