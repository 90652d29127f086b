"""A short SimCLR run (tiny CNN with BatchNorm, device-side views) written to RUN_DIR; run it with 1
process (plain python) or 2 processes (torchrun, gloo) on the same global batch:
``python tests/train/dist_simclr_worker.py RUN_DIR [overrides...]``."""

import sys

import torch

from multissl.recipes import load_recipe
from multissl.run import build_parts
from multissl.train.trainer import Trainer

OVERRIDES = ["model.backbone=tiny-8", "model.channels_last=false", "data.image_size=16", "augment.size=16",
             "method.proj_hidden=32", "method.proj_dim=16", "data.limit_train=256", "train.batch_size=32",
             "train.max_steps=4", "train.lr=0.5", "train.log_every=1", "train.progress=false",
             "train.sync_batchnorm=true", "train.eval_every_epochs=100", "train.select_metric=null",
             "train.checkpoint_every=1000", "eval.linear_probe=false", "eval.diagnostics=false"]


def run(run_dir: str, *more: str) -> None:
    torch.set_num_threads(1)
    recipe = load_recipe("image/simclr-cifar10", OVERRIDES + list(more))
    _, parts = build_parts(recipe)
    parts.evaluate = parts.final_evaluate = parts.export = None  # only the training losses are compared
    Trainer(parts, recipe.train, run_dir).fit()


if __name__ == "__main__":
    run(sys.argv[1], *sys.argv[2:])  # extra recipe overrides, e.g. train.sync_batchnorm=false
