"""Tiny end-to-end runs per model family: the fine-tuned model beats the untrained model in the same
configuration (the step-0 validation of the same run: same seed, same initial weights, same split).

The compared score is the validation score at the LAST step (not the selected best, which would be
chosen on the same split). Configurations and margins were chosen on seed 0 and are asserted on seed 1;
the measured seed-0 / seed-1 figures are in each docstring.
"""

import json

import pytest

from multissl.cli import main


def _run(recipe: str, tmp_path, overrides: list[str]) -> tuple[dict, dict, dict]:
    run = tmp_path / "run"
    assert main(["train", recipe, "train.progress=false", "train.eval_at_start=true", *overrides,
                 "--run-dir", str(run)]) == 0
    evals = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
             if any(k.startswith("val/") for k in r)]
    results = json.loads((run / "results.json").read_text())
    return evals[0], evals[-1], results


@pytest.mark.learning
def test_pairs_text_learns_code_search(tiny_text, tmp_path):
    """contrastive.pairs, a tiny random BERT (MiniLM tokenizer), 40 steps of batch 32 on 2,000 shipped
    docstring -> function pairs; validation MRR over 200 validation functions.
    Seed 0: 0.040 -> 0.064. Seed 1: asserted +0.01."""
    first, last, _ = _run("finetune/pairs-codesearch-minilm", tmp_path, [
        f"model.name={tiny_text}", "train.max_steps=40", "train.batch_size=32", "data.limit=2000",
        "data.valid_limit=200", "model.max_length=64", "train.lr=1e-3", "train.eval_every=20", "train.seed=1"])
    assert last["val/mrr"] > first["val/mrr"] + 0.01, (first, last)
    assert (tmp_path / "run" / "export" / "modules.json").exists()


@pytest.mark.learning
def test_supcon_audio_learns_spoken_digits(tmp_path):
    """contrastive.supcon, a tiny RANDOMLY initialised wav2vec2 on the shipped FSDD subset (180 training
    clips, 60 validation clips of take 5), 24 steps of batch 30; validation kNN and linear-probe accuracy.
    Seed 0 (the recipe's 42): kNN 15.0 -> 35.0, linear 23.3 -> 43.3 (mean gain +20). Seed 1: asserted
    mean gain > 8 points (one clip is 1.7 points; 12 steps gave +3.3 / +10 on seed 1, too close)."""
    first, last, res = _run("finetune/supcon-fsdd-wav2vec2", tmp_path, [
        "train.max_steps=24", "train.eval_every=24", "train.seed=1"])
    gain = (last["val/knn_acc"] + last["val/linear_acc"] - first["val/knn_acc"] - first["val/linear_acc"]) / 2
    assert gain > 8, (first, last)
    assert "test/knn_acc" in res["metrics"] and "test/linear_acc" in res["metrics"]


@pytest.mark.slow
@pytest.mark.learning
def test_pairs_minilm_learns_code_search(tmp_path):
    """The packaged all-MiniLM-L6-v2, top 2 layers trained, 10 steps of batch 16 (slow: ~3 min on a loaded
    2-core machine). Seed 0 (42): MRR 0.711 -> 0.724 on 100 validation pairs. Seed 1: asserted +0.005."""
    first, last, _ = _run("finetune/pairs-codesearch-minilm", tmp_path, [
        "train.max_steps=10", "train.batch_size=16", "data.valid_limit=100", "model.max_length=64",
        "model.freeze_layers=4", "train.lr=1e-4", "train.eval_every=0", "train.seed=1"])
    assert last["val/mrr"] > first["val/mrr"] + 0.005, (first, last)


def test_supcon_image_pipeline_runs_and_exports(tmp_path):
    """The image path end to end (class-folder archive, SimCLR views, tiny random ViT, probes, export,
    `multissl embed`); no learning claim here: a tiny ViT from random init does not beat its untrained kNN
    within a CI budget (docs/notes/finetune.md); `test_supcon_image_learns_cifar_classes` makes it."""
    from transformers import AutoImageProcessor, AutoModel

    _, _, res = _run("finetune/supcon-cifar10-vit", tmp_path, [
        "data.limit=120", "train.max_steps=2", "train.batch_size=16", "train.eval_every=0", "train.seed=1"])
    assert {"val/knn_acc", "test/knn_acc", "test/linear_acc"} <= set(res["metrics"])
    export = tmp_path / "run" / "export"
    assert type(AutoModel.from_pretrained(export)).__name__ == "ViTModel"
    assert AutoImageProcessor.from_pretrained(export) is not None
    import tarfile

    import numpy as np

    from multissl.data import resolve_data_path

    with tarfile.open(resolve_data_path("cifar10-mini/test.tar.gz")) as tar:
        members = [m for m in tar.getmembers() if m.isfile()][:12]
        tar.extractall(tmp_path / "imgs", members=members, filter="data")
    out = tmp_path / "emb.npy"
    assert main(["embed", "--run", str(tmp_path / "run"), "--data", str(tmp_path / "imgs"), "--out", str(out)]) == 0
    assert np.load(out).shape == (12, 128)


CLASSES = ("airplane", "automobile", "bird", "cat")


def _cifar_classes(tmp_path, classes=CLASSES):
    """The shipped CIFAR-10 training images of ``classes`` (300 each) as a class-folder tree."""
    import tarfile

    from multissl.data import resolve_data_path

    out = tmp_path / "cifar"
    with tarfile.open(resolve_data_path("cifar10-mini/train.tar.gz")) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.split("/")[1] in classes]
        tar.extractall(out, members=members, filter="data")
    return out / "train"


def untrained_image_knn(recipe_args: list[str], seed: int) -> float:
    """Validation kNN of the run's initial weights, batch-norm statistics re-estimated on the (unaugmented)
    training images (a fresh network's 0 / 1 running statistics would credit training with what is only
    normalisation; the trainer's forwards re-estimate them even at learning rate 0)."""
    import torch

    from multissl.eval.batchnorm import recalibrate_batchnorm
    from multissl.finetune.tasks import build_encoder, labelled_splits, probe_scores
    from multissl.recipes import load_recipe

    cfg = load_recipe("finetune/supcon-cifar10-vit", [*recipe_args, f"train.seed={seed}"]).config
    encoder = build_encoder(cfg.model, seed)
    train, valid, _ = labelled_splits(cfg, seed=seed)
    batches = [encoder.prepare(train.items[i : i + 64]) for i in range(0, len(train), 64)]
    holder = torch.nn.Module()
    holder.encoder = recalibrate_batchnorm(encoder, batches, lambda m, b: m(**b))
    return probe_scores(holder, train, valid, cfg.eval, "val/")["val/knn_acc"]


def image_supcon_gain(tmp_path, seed: int, model: str = "tiny:resnet") -> tuple[float, float, float]:
    """(untrained kNN with re-estimated batch norm, the run's step-0 kNN, the run's last kNN) of the fast
    image configuration (see the test); ``model`` = tiny:vit / tiny:convnext for the note's comparison."""
    args = [f"data.train={_cifar_classes(tmp_path)}", "data.test=null", "data.valid_fraction=0.25",
            f"model.name={model}", "train.batch_size=64", "train.lr=2e-3", "train.warmup_ratio=0.1"]
    first, last, _ = _run("finetune/supcon-cifar10-vit", tmp_path, [
        *args, "train.max_steps=40", "train.eval_every=40", f"train.seed={seed}"])
    return untrained_image_knn(args, seed), first["val/knn_acc"], last["val/knn_acc"]


@pytest.mark.learning
def test_supcon_image_learns_cifar_classes(tmp_path):
    """contrastive.supcon on images, the recipe's views (Khosla et al.'s two crops), a tiny RANDOMLY
    initialised ResNet (AutoModel from a ResNetConfig: batch norm, the reference code's architecture
    family; the LayerNorm-only tiny ViT / ConvNeXt do not beat their untrained kNN within a CI budget,
    see docs/notes/finetune.md), 40 steps of batch 64 on 900 shipped training images of 4 classes,
    validation kNN on the other 300.
    Baseline: the same initial weights with batch-norm statistics re-estimated on the training images.
    Seed 0: untrained 57.7 (50.0 with the fresh 0 / 1 statistics) -> 63.7 after 40 steps (+6.0 = 18 images).
    Seed 1: asserted +3.0 (half of seed 0)."""
    untrained, _, last = image_supcon_gain(tmp_path, seed=1)
    assert last > untrained + 3.0, (untrained, last)


@pytest.mark.slow
@pytest.mark.learning
def test_supcon_vit_learns_cifar_slowly(tmp_path):
    """The smallest tiny-ViT configuration seen to beat its untrained kNN (slow: ~4 min on a quiet 2-core
    CPU, 12 min measured at load ~17): the recipe (tiny random ViT, patch 4, Khosla et al.'s views, head MLP->128,
    temperature 0.1, AdamW 1e-3 wd 0.05), 200 steps of batch 128 on 2,700 CIFAR-10 images, validation kNN
    on the held-out 300 at the last step vs step 0 (no batch norm: step 0 is the untrained model).
    Seed 0: 26.7 -> 29.0 (+2.3 = 7 images). Seed 1: asserted +1.15 (half of seed 0); measured 24.0 -> 25.3
    (+1.3 = 4 images: a thin pass)."""
    first, last, _ = _run("finetune/supcon-cifar10-vit", tmp_path, [
        "train.max_steps=200", "train.eval_every=100", "data.test=null", "train.seed=1"])
    assert last["val/knn_acc"] > first["val/knn_acc"] + 1.15, (first, last)
