"""Exports load back with identical embeddings: text in sentence-transformers (head as Dense modules) and
transformers, vision and audio in transformers' AutoModel + the head; last-token pooling round-trips too."""

import numpy as np
import pytest
import torch

from multissl.encoders.auto import AudioEncoder, VisionEncoder
from multissl.encoders.finetuned import load_finetuned, save_finetuned
from multissl.encoders.hf import HFEncoder
from multissl.finetune.methods import PairsContrastive, SupCon

SENTENCES = ["A man is playing a guitar.", "Two dogs run on the beach.", "short"]


def _perturb(method):
    """Random head weights (a trained head, as far as the export is concerned)."""
    torch.manual_seed(3)
    with torch.no_grad():
        for p in method.head.parameters():
            p.normal_(0, 0.2)


@pytest.mark.parametrize("pooling, head", [("mean", "mlp"), ("last_token", "linear"), ("cls", "none")])
def test_text_export_sentence_transformers_and_transformers(tiny_text, tmp_path, pooling, head):
    enc = HFEncoder(tiny_text, pooling=pooling, max_length=64)
    method = PairsContrastive(enc, head=head, head_dim=24).eval()
    _perturb(method)
    ref = method.embed(enc.tokenize(SENTENCES))
    save_finetuned(method.encoder, method.head, tmp_path / "export")
    loaded = load_finetuned(tmp_path / "export")
    if loaded.normalize:  # the base pipeline (the MiniLM tokenizer's folder) ends in Normalize
        ref = torch.nn.functional.normalize(ref, dim=-1)

    st = pytest.importorskip("sentence_transformers")
    st_emb = st.SentenceTransformer(str(tmp_path / "export"), device="cpu").encode(SENTENCES, convert_to_tensor=True)
    assert st_emb.shape == ref.shape
    assert torch.allclose(st_emb.cpu(), ref, atol=1e-5)
    assert torch.allclose(loaded.encode(SENTENCES), ref, atol=1e-5)

    from transformers import AutoModel

    backbone = AutoModel.from_pretrained(tmp_path / "export").eval()
    with torch.no_grad():
        h = backbone(**enc.tokenize(SENTENCES)).last_hidden_state
    assert torch.allclose(h, enc.model(**enc.tokenize(SENTENCES)).last_hidden_state, atol=1e-6)


def test_vision_and_audio_export_round_trip(tiny_vit, tiny_w2v, tmp_path):
    from transformers import AutoFeatureExtractor, AutoImageProcessor, AutoModel

    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=g) for _ in range(3)]
    waves = [np.sin(np.linspace(0, 200 * (i + 1), n)).astype("float32") for i, n in enumerate((4000, 6000, 8000))]
    for enc, items, loader in ((VisionEncoder(tiny_vit), images, AutoImageProcessor),
                               (AudioEncoder(tiny_w2v), waves, AutoFeatureExtractor)):
        method = SupCon(enc, head="mlp", head_dim=16).eval()
        _perturb(method)
        ref = method.embed(enc.prepare(items))
        out = tmp_path / type(enc).__name__
        save_finetuned(method.encoder, method.head, out)
        assert torch.allclose(load_finetuned(out).encode(items), ref, atol=1e-5)
        model, pre = AutoModel.from_pretrained(out).eval(), loader.from_pretrained(out)
        assert type(model) is type(enc.model) and type(pre) is type(getattr(enc, "processor", None) or enc.feature_extractor)
        with torch.no_grad():
            backbone = enc(**enc.prepare(items))
            again = (VisionEncoder(str(out), model=model, processor=pre) if loader is AutoImageProcessor
                     else AudioEncoder(str(out), model=model, feature_extractor=pre))(**enc.prepare(items))
        assert torch.allclose(backbone, again, atol=1e-5)


def test_lora_trains_adapters_only_and_exports_merged(tiny_text, tmp_path):
    pytest.importorskip("peft")
    from multissl.encoders.lora import add_lora, is_lora

    enc = HFEncoder(tiny_text, pooling="mean", max_length=64)
    enc.model = add_lora(enc.model, r=4, alpha=8)
    method = PairsContrastive(enc, head="linear")
    trainable = [n for n, p in method.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    with torch.no_grad():  # a trained adapter (lora_B starts at zero)
        for n, p in method.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    method.eval()
    ref = method.embed(enc.tokenize(SENTENCES))
    save_finetuned(method.encoder, method.head, tmp_path / "export")
    assert is_lora(method.encoder.model)  # the live model keeps its adapters
    if load_finetuned(tmp_path / "export").normalize:
        ref = torch.nn.functional.normalize(ref, dim=-1)
    st = pytest.importorskip("sentence_transformers")
    st_emb = st.SentenceTransformer(str(tmp_path / "export"), device="cpu").encode(SENTENCES, convert_to_tensor=True)
    assert torch.allclose(st_emb.cpu(), ref, atol=1e-5)
    assert not any("lora" in k for k in __import__("safetensors.torch").torch.load_file(
        str(tmp_path / "export" / "model.safetensors")))


def test_minilm_export_keeps_the_base_pipeline_with_the_head():
    """The packaged all-MiniLM-L6-v2 ends in Normalize: the export keeps it, after the head's Dense modules."""
    import json
    import tempfile
    from pathlib import Path

    import torch.nn.functional as F

    enc = HFEncoder("minilm", pooling="mean", max_length=64)
    method = PairsContrastive(enc, head="linear", head_dim=32).eval()
    _perturb(method)
    ref = F.normalize(method.embed(enc.tokenize(SENTENCES)), dim=-1)
    with tempfile.TemporaryDirectory() as tmp:
        save_finetuned(method.encoder, method.head, tmp)
        types = [m["type"].rsplit(".", 1)[-1] for m in json.loads((Path(tmp) / "modules.json").read_text())]
        assert types == ["Transformer", "Pooling", "Dense", "Normalize"]
        st = pytest.importorskip("sentence_transformers").SentenceTransformer(tmp, device="cpu")
        assert st.max_seq_length == 64
        assert torch.allclose(st.encode(SENTENCES, convert_to_tensor=True).cpu(), ref, atol=1e-5)
        assert torch.allclose(load_finetuned(tmp).encode(SENTENCES), ref, atol=1e-5)
