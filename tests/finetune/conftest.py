"""Small model folders for the fine-tuning tests: a tiny random BERT with the MiniLM tokenizer, and tiny
random ViT / wav2vec2 folders (no pretrained image or audio weights exist offline)."""

import pytest


@pytest.fixture(scope="session")
def tiny_text(tmp_path_factory):
    import torch
    from transformers import BertConfig, BertModel

    from multissl.encoders.hf import HFEncoder, load_tokenizer

    torch.manual_seed(0)
    tok = load_tokenizer("minilm")
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=tok.pad_token_id)
    path = tmp_path_factory.mktemp("tiny_text")
    HFEncoder(pooling="mean", max_length=64, model=BertModel(config), tokenizer=tok).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory):
    from multissl.encoders.tiny import tiny_vit

    return str(tiny_vit(tmp_path_factory.mktemp("tiny_vit"), hidden_size=32, num_layers=2, num_heads=2))


@pytest.fixture(scope="session")
def tiny_w2v(tmp_path_factory):
    from multissl.encoders.tiny import tiny_wav2vec2

    return str(tiny_wav2vec2(tmp_path_factory.mktemp("tiny_w2v"), hidden_size=32, num_layers=2, num_heads=2))


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """One intra-op thread (see ``one_torch_thread`` in tests/conftest.py)."""
    yield
