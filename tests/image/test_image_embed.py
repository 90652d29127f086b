"""`multissl embed` on an image run builds only the model (no training images are loaded)."""

import numpy as np
import torch

from multissl.recipes import load_recipe
from multissl.run import embed_run, run_recipe

QUICK = ["model.backbone=tiny-8", "model.channels_last=false", "data.image_size=16", "augment.size=16",
         "method.proj_hidden=32", "method.proj_dim=16", "data.limit_train=128", "train.batch_size=32",
         "train.max_steps=1", "train.progress=false", "train.select_metric=null", "eval.linear_probe=false",
         "eval.diagnostics=false"]


def test_embed_builds_only_the_model(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    run_recipe(load_recipe("image/simclr-cifar10", QUICK), run_dir=str(tmp_path / "run"))
    from multissl.image.tasks import ImageTask

    def no_training_data(self, recipe):
        raise AssertionError("embed must not build the task (it loads the training set)")

    monkeypatch.setattr(ImageTask, "build", no_training_data)
    out = embed_run(tmp_path / "run", "cifar10-mini/test.tar.gz", tmp_path / "emb.npy")
    emb = np.load(out)
    assert emb.shape[1] == 32 and emb.shape[0] > 0 and np.isfinite(emb).all()
