"""Image towers from Hugging Face folders, pretrained weights that cannot be fetched (one line, at once) or
come from a local file, and `multissl eval retrieval` with bootstrap intervals and paired differences."""

import json

import pytest
import torch

from multissl.errors import RecipeError
from multissl.vl.models import ImageTower
from multissl.vl.retrieval import (
    _draws,
    bootstrap_recalls,
    paired_recalls,
    recalls_from_ranks,
)


def _tiny_vit(folder):
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=32,
                       patch_size=8), add_pooling_layer=False).save_pretrained(folder)
    return folder


def test_hf_image_towers_vit_and_convnet(tmp_path):
    from transformers import ResNetConfig, ResNetModel

    vit = _tiny_vit(tmp_path / "vit")
    tower = ImageTower(f"hf:{vit}", 32)
    assert tower.width == 32 and tower(torch.randn(2, 3, 32, 32)).shape == (2, 1 + 16, 32)
    assert tower(torch.randn(2, 3, 64, 64)).shape == (2, 1 + 64, 32)  # position embeddings interpolated
    from transformers import ViTModel

    saved = ViTModel.from_pretrained(vit).embeddings.patch_embeddings.projection.weight
    assert torch.equal(tower.backbone.embeddings.patch_embeddings.projection.weight, saved)  # weights loaded
    fresh = ImageTower(f"hf:{vit}", 32, pretrained=False)
    assert not torch.equal(fresh.backbone.embeddings.patch_embeddings.projection.weight, saved)
    ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1])).save_pretrained(tmp_path / "rn")
    cnn = ImageTower(f"hf:{tmp_path / 'rn'}", 64)
    tokens = cnn(torch.randn(2, 3, 64, 64))
    assert cnn.width == 16 and tokens.shape[0] == 2 and tokens.shape[2] == 16
    assert torch.allclose(tokens[:, 0], tokens[:, 1:].mean(1), atol=1e-6)  # global token = mean of the grid


def test_unfetchable_weights_fail_at_once_with_one_line(monkeypatch, tmp_path):
    from multissl.recipes import load_recipe
    from multissl.run import build_parts

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "empty-cache" / "hub"))
    with pytest.raises(RecipeError) as err:
        ImageTower("open_clip:ViT-B-32", 224, "openai")
    msg = str(err.value)
    assert "openai" in msg and "ViT-B-32" in msg and "model.image_pretrained=/path/to/" in msg and "\n" not in msg
    recipe = load_recipe("vl/clip-flickr8k", ["model.image_pretrained=true", "data.image_size=32"])
    assert recipe.config.model.image_pretrained is True  # 'true' is accepted, as the help says
    with pytest.raises(RecipeError, match="timm weights for 'resnet18'.*model.image_pretrained=/path/to/"):
        build_parts(recipe)
    with pytest.raises(RecipeError, match="not found"):
        ImageTower("timm:resnet18", 32, str(tmp_path / "missing.safetensors"))


def test_local_weights_file_is_loaded(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(1)
    src = ImageTower("timm:resnet18", 32)
    file = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in src.backbone.state_dict().items()}, str(file))
    torch.manual_seed(2)
    loaded = ImageTower("timm:resnet18", 32, str(file))
    assert torch.equal(loaded.backbone.conv1.weight, src.backbone.conv1.weight)


def test_image_clustered_bootstrap_and_paired_difference():
    gen = torch.Generator().manual_seed(0)
    owner = torch.arange(20).repeat_interleave(5)
    ranks = {"i2t": torch.randint(1, 15, (20,), generator=gen).double(),
             "t2i": torch.randint(1, 15, (100,), generator=gen).double(), "owner": owner}
    import numpy as np

    idx = np.random.default_rng(0).integers(0, 20, size=(3, 20))
    draws = _draws(ranks, idx)
    for row in range(3):  # a draw = the recalls of the images drawn, each with its five captions
        pick = torch.as_tensor(idx[row])
        caps = torch.cat([torch.nonzero(owner == i).flatten() for i in pick.tolist()])
        sub = {"i2t": ranks["i2t"][pick], "t2i": ranks["t2i"][caps], "owner": owner[caps]}
        assert draws["t2i_r@5"][row] == pytest.approx(100 * float((sub["t2i"] <= 5).double().mean()))
        assert draws["i2t_r@1"][row] == pytest.approx(100 * float((sub["i2t"] <= 1).double().mean()))
    ci = bootstrap_recalls(ranks, 300)
    point = recalls_from_ranks(ranks)
    for key, (lo, hi) in ci.items():
        assert lo <= point[key] <= hi
    same = paired_recalls(ranks, ranks, 200)
    assert all(v["difference"] == v["low"] == v["high"] == 0.0 for v in same.values())
    better = dict(ranks, t2i=torch.ones(100, dtype=torch.float64))
    diff = paired_recalls(better, ranks, 200)["t2i_r@1"]
    assert diff["difference"] > 0 and diff["low"] > 0


def test_eval_retrieval_command_reports_intervals(capsys):
    from multissl.cli import main

    torch.manual_seed(0)
    assert main(["eval", "retrieval", "--data", "flickr8k-mini/captions.jsonl", "--recipe", "vl/itc-flickr8k",
                 "--bootstrap", "200", "--device", "cpu", "data.image_size=32", "data.max_length=16",
                 "model.freeze_text=true"]) == 0
    out = json.loads(capsys.readouterr().out)
    entry = out["models"]["fresh:vl/itc-flickr8k"]
    assert out["images"] == 50 and out["captions"] == 250
    for key, value in entry["metrics"].items():
        lo, hi = entry["ci95"][key]
        assert lo <= value <= hi
