"""The method-state contract under the trainer: keys staged per micro-batch and pushed once per optimizer
step, EMA once per step at the method's named timing; gradient accumulation equals one big batch."""

import torch
from torch import nn

from multissl.core import (
    LossOutput,
    Method,
    Progress,
    after_optimizer_step,
    before_optimizer_step,
)
from multissl.data import SequenceDataset
from multissl.image.augment import ViewConfig, normalize, to_float
from multissl.image.methods import MoCoV2
from multissl.tasks import TaskParts
from multissl.train.config import TrainConfig
from multissl.train.trainer import Trainer


class FixedViewMoCo(MoCoV2):
    """MoCo v2 with deterministic views (the image and its mirror), so that a micro-batch sees exactly
    the views it would see inside the big batch (random augmentations draw per call, not per sample)."""

    def views(self, images):
        x = normalize(to_float(images), self.mean, self.std)
        return [x, x.flip(-1)]


def _moco(queue_size=40, **kw):
    torch.manual_seed(0)
    # no BatchNorm anywhere: batch statistics of B/2 differ from those of B, everything else is equal
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return FixedViewMoCo(backbone, 8, [ViewConfig(size=16)] * 2, proj_hidden=16, proj_dim=8,
                         queue_size=queue_size, momentum=0.9, **kw)


def _images(n=64):
    g = torch.Generator().manual_seed(1)
    return SequenceDataset(torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=g))


def _fit(method, tmp_path, batch_size, accum, steps):
    cfg = TrainConfig(max_steps=steps, batch_size=batch_size, grad_accum_steps=accum, optimizer="sgd", lr=0.5,
                      sgd_momentum=0.0, progress=False, log_every=1, checkpoint_every=10**6)
    Trainer(TaskParts(method, _images()), cfg, tmp_path).fit()
    return method


def test_accumulation_enqueues_every_micro_batch(tmp_path):
    """Defect 1: with grad_accum_steps=2 and 8 per micro-batch, one step must enqueue 16 keys (not 8)."""
    m = _fit(_moco(queue_size=64), tmp_path, batch_size=8, accum=2, steps=1)
    assert int(m.queue.ptr) == 16


def test_accumulation_equals_one_big_batch(tmp_path):
    """grad_accum_steps=2 at batch B/2 gives the queue (content and order) and EMA weights of
    grad_accum_steps=1 at batch B: equal up to float summation order (queue-only negatives, no BN,
    fixed views; the loss is a per-row mean, so the mean of two half-batch means is the big-batch mean)."""
    big = _fit(_moco(), tmp_path / "big", batch_size=16, accum=1, steps=3)  # 48 keys wrap a 40-slot queue
    acc = _fit(_moco(), tmp_path / "acc", batch_size=8, accum=2, steps=3)
    assert int(big.queue.ptr) == int(acc.queue.ptr) == 8
    assert torch.allclose(big.queue.keys(), acc.queue.keys(), atol=1e-5)
    for name in ("key_backbone", "key_projector", "backbone", "projector"):
        for (n, p), q in zip(getattr(big, name).named_parameters(), getattr(acc, name).parameters(), strict=True):
            assert torch.allclose(p, q, atol=1e-5), (name, n, (p - q).abs().max())
    start = _moco()
    assert not torch.allclose(start.key_backbone[0].weight, big.key_backbone[0].weight)  # the EMA moved


class Recorder(Method):
    """Records the order of the contract's calls."""

    def __init__(self, timing):
        super().__init__()
        self.ema_timing = timing
        self.calls = []

    def forward(self, batch):
        return LossOutput(batch.sum())

    def momentum_update(self, progress):
        self.calls.append(("ema", progress.step, torch.is_grad_enabled()))

    def before_step(self, progress):
        self.calls.append(("before", progress.step))

    def after_step(self, progress):
        self.calls.append(("after", progress.step))


def test_ema_runs_at_the_named_timing():
    for timing, expected in (("before_step", [("before", 0), ("ema", 0, False), ("after", 1)]),
                             ("after_step", [("before", 0), ("ema", 1, False), ("after", 1)])):
        m = Recorder(timing)
        before_optimizer_step(m, Progress(0, 10, 0, 10))
        after_optimizer_step(m, Progress(1, 10, 0, 10))
        assert m.calls == expected
    bad = Recorder("in_forward")
    try:
        after_optimizer_step(bad, Progress(1, 10, 0, 10))
    except ValueError as e:
        assert "ema_timing" in str(e)
    else:
        raise AssertionError("an unknown ema_timing must be refused")


def test_swav_and_mochi_queues_keep_every_micro_batch():
    """Defect 1 for MoCHi and SwAV: two micro-batches of 8 before one optimizer step push 16 keys."""
    from multissl.image.methods import MoCHi, SwAV
    from multissl.image.models import build_backbone

    torch.manual_seed(0)
    images = _images(16).items
    net, dim = build_backbone("tiny-8")
    views = [ViewConfig(size=16)] * 2
    swav = SwAV(net, dim, views + [ViewConfig(size=8, scale=(0.05, 0.14))], proj_hidden=16, proj_dim=8,
                num_prototypes=5, queue_size=64, queue_start_epoch=0)
    mochi = MoCHi(build_backbone("tiny-8")[0], dim, views, num_hard=4, num_mixed=2, num_self_mixed=1,
                  proj_hidden=16, proj_dim=8, queue_size=64)
    for m in (swav, mochi):
        for micro in (images[:8], images[8:]):
            m(micro).loss.backward()
        before_optimizer_step(m, Progress(0, 10, 0, 10))
        after_optimizer_step(m, Progress(1, 10, 0, 10))
    assert [int(q.ptr) for q in swav.queues] == [16, 16]
    assert int(mochi.queue.ptr) == 16
