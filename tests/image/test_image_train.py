"""End-to-end CPU runs of every image method on the shipped CIFAR-10 subset (tiny CNN, 16 px views).

Every method trains end to end in the default selection (20-30 steps each) and must lower its own loss
on held-out test images below the run's initial weights' by a margin chosen on seed 0 and asserted on
seed 1; 150-step runs of every method are marked slow.
"""

import json

import pytest
import torch

from multissl.image.data import load_images
from multissl.recipes import load_recipe
from multissl.run import build_parts, run_recipe
from multissl.train.checkpoint import load_weights

BASE = ["model.backbone=tiny-16", "model.channels_last=false", "data.image_size=16", "augment.size=16",
        "train.batch_size=64", "train.lr=0.1", "train.progress=false", "train.eval_every_epochs=100",
        "eval.linear_probe=false", "eval.diagnostics=false", "train.log_every=5"]
EXTRA = {
    "simclr": ["method.proj_hidden=128", "method.proj_dim=64"],
    "dcl": ["method.proj_hidden=128", "method.proj_dim=64"],
    "mocov2": ["method.proj_hidden=128", "method.proj_dim=64", "method.queue_size=256"],
    "mochi": ["method.proj_hidden=128", "method.proj_dim=64", "method.queue_size=256", "method.num_hard=64",
              "method.num_mixed=64", "method.num_self_mixed=16"],
    "byol": ["method.proj_hidden=128", "method.proj_dim=64", "method.pred_hidden=128"],
    "barlowtwins": ["method.proj_dims=[128,128,128]"],
    "swav": ["method.proj_hidden=128", "method.proj_dim=64", "method.num_prototypes=30", "augment.small_size=8",
             "augment.num_small=2", "method.freeze_prototypes_epochs=0"],
}


def _recipe(method, steps, *more):
    return load_recipe(f"image/{method}-cifar10", BASE + EXTRA[method] + [f"train.max_steps={steps}", *more])


def _train(method, steps, tmp_path, *more):
    torch.set_num_threads(1)
    res = run_recipe(_recipe(method, steps, *more), run_dir=str(tmp_path / method))
    rows = [json.loads(line) for line in (tmp_path / method / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    return res["metrics"], losses


def heldout_loss(method, images: torch.Tensor, seed: int = 123) -> float:
    """The method's own loss on images it never trained on, with seeded views (every model compared sees
    identical views). Batch-norm uses the batch's statistics (train mode) for every model: with running
    statistics, a run whose weights never moved still lowers the MoCo loss by about 1 % through the
    statistics the training forwards collected, which is not learning."""
    method.train()
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    with torch.no_grad():
        loss = float(method(images).loss)
    torch.set_rng_state(state)
    return loss


def measure(method, steps, seed, tmp_path, *more):
    """(untrained, trained, metrics, losses) of one method in one configuration and seed. Scores: the
    method's loss on 256 test images (``heldout_loss``). The untrained model is the run's
    own initial weights (``build_parts`` seeds them). MoCo / MoCHi are scored against the initial model's
    queue (random unit keys) for both models: a queue of real keys raises the loss while the model
    improves, so comparing each model with its own queue would measure the queue, not the encoder."""
    torch.set_num_threads(1)
    recipe = _recipe(method, steps, f"train.seed={seed}", *more)
    _, parts = build_parts(recipe)
    test = load_images("cifar10-mini", "test").images[:256]
    queues = {k: v.clone() for k, v in parts.method.state_dict().items() if k.startswith("queue.")}
    before = {"loss": heldout_loss(parts.method, test)}
    metrics, losses = _train(method, steps, tmp_path, f"train.seed={seed}", *more)
    load_weights(parts.method, tmp_path / method / "checkpoints" / "last" / "model.safetensors")
    parts.method.load_state_dict(queues, strict=False)
    after = {"loss": heldout_loss(parts.method, test)}
    return before, after, metrics, losses


# Required fall of the held-out loss, as a fraction of the untrained model's: half the fall measured on
# seed 0 (20 steps; SimCLR 30), asserted on seed 1. Every seed's figures: docs/notes/testing.md.
DROP = {"simclr": 0.033, "dcl": 0.046, "mocov2": 0.057, "mochi": 0.088, "byol": 0.35, "barlowtwins": 0.23,
        "swav": 0.07}


@pytest.mark.learning
def test_simclr_beats_random_init(tmp_path, capsys):
    """SimCLR, 30 steps, seed 1: the held-out loss falls below the run's own initial weights' by DROP (chosen
    on seed 0); also the linear probe, diagnostics, plot, export and offline evaluation."""
    before, after, metrics, losses = measure("simclr", 30, 1, tmp_path, "eval.linear_probe=true",
                                             "eval.diagnostics=true")
    assert after["loss"] < (1 - DROP["simclr"]) * before["loss"], (before, after)
    assert losses[-1] < losses[0]
    assert {"test/knn_acc", "test/linear_acc", "val/linear_acc"} <= set(metrics)  # the probes ran (no bar:
    # the random-init CNN already scores 0.24-0.29, so an absolute threshold here would prove nothing)
    assert 0 < metrics["test/alignment"] < 2 and metrics["test/uniformity"] < 0
    assert (tmp_path / "simclr" / "plots" / "projection.png").stat().st_size > 1000
    assert (tmp_path / "simclr" / "export" / "backbone.safetensors").exists()
    from multissl.image.evaluate import main as eval_main

    # offline evaluation of the saved run

    capsys.readouterr()
    assert eval_main(["--run", str(tmp_path / "simclr"), "--no-linear"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert abs(again["test/knn_acc"] - metrics["test/knn_acc"]) < 1e-6


@pytest.mark.learning
@pytest.mark.parametrize("method", ["dcl", "mocov2", "mochi", "byol", "barlowtwins", "swav"])
def test_method_family_trains(method, tmp_path):
    """Every other image method, 20 steps, seed 1: the held-out loss falls below the run's own initial
    weights' by DROP[method] (chosen on seed 0). The test kNN is not asserted here: after 20 steps its
    gain over the random-init CNN (0.24-0.27) is within seed noise (-2.7 to +3.2 points, seeds 0-2)."""
    before, after, _, _ = measure(method, 20, 1, tmp_path)
    assert after["loss"] < (1 - DROP[method]) * before["loss"], (before, after)


@pytest.mark.slow
@pytest.mark.learning
@pytest.mark.parametrize("method", ["simclr", "dcl", "mocov2", "mochi", "byol", "barlowtwins", "swav"])
def test_every_method_longer(method, tmp_path):
    """150 steps, seed 1: the held-out loss falls at least as far as the 20-step runs must."""
    before, after, _, losses = measure(method, 150, 1, tmp_path)
    assert losses[-1] < losses[1], losses
    assert after["loss"] < (1 - DROP[method]) * before["loss"], (before, after)


def test_resume_is_exact(tmp_path):
    """4 steps in one go == 2 steps, then resume for 2 (augmentations come from the saved RNG)."""
    more = ["train.scheduler=constant", "train.checkpoint_every=2", "train.eval_every_epochs=100",
            "method.queue_size=128", "data.limit_train=640"]
    torch.set_num_threads(1)
    run_recipe(_recipe("mocov2", 4, *more), run_dir=str(tmp_path / "full"))
    run_recipe(_recipe("mocov2", 2, *more), run_dir=str(tmp_path / "part"))
    run_recipe(_recipe("mocov2", 4, *more), resume=str(tmp_path / "part"), run_dir=str(tmp_path / "part"))
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "full" / "checkpoints" / "last" / "model.safetensors"))
    b = load_file(str(tmp_path / "part" / "checkpoints" / "last" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
