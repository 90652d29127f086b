"""EMA updates and schedules, FIFO queue semantics, heads and temperature."""

import math

import torch

from multissl.core import (
    MLP,
    FeatureQueue,
    MomentumSchedule,
    Temperature,
    ema_update,
    momentum_copy,
)


def test_ema_update_formula_and_frozen_copy():
    online = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    target = momentum_copy(online)
    assert all(not p.requires_grad for p in target.parameters())
    before = [p.clone() for p in target.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
    online[1].running_mean.fill_(3.0)
    ema_update(target, online, 0.9)
    for b, t, o in zip(before, target.parameters(), online.parameters(), strict=True):
        assert torch.allclose(t, 0.9 * b + 0.1 * o)
    assert torch.equal(target[1].running_mean, torch.zeros(2))  # parameters only, as MoCo / BYOL
    ema_update(target, online, 0.9, copy_buffers=True)
    assert torch.equal(target[1].running_mean, online[1].running_mean)


def test_momentum_schedules():
    const = MomentumSchedule(0.99, kind="constant")
    assert const(0.0) == const(0.7) == 0.99
    cos = MomentumSchedule(0.996, 1.0, "cosine")
    assert math.isclose(cos(0.0), 0.996) and math.isclose(cos(1.0), 1.0)
    assert math.isclose(cos(0.5), 1 - 0.004 * 0.5)


def test_queue_fifo_wraps_and_keeps_ids():
    q = FeatureQueue(size=5, dim=2)
    assert len(q) == 0 and q.keys().shape == (0, 2)
    q.push(torch.ones(3, 2), ids=torch.tensor([1, 2, 3]))
    q.push(2 * torch.ones(3, 2), ids=torch.tensor([4, 5, 6]))
    assert len(q) == 5
    assert sorted(q.ids().tolist()) == [2, 3, 4, 5, 6]  # oldest (id 1) overwritten
    q.push(3 * torch.ones(7, 2), ids=torch.arange(10, 17))  # larger than the queue: newest 5 kept
    assert sorted(q.ids().tolist()) == [12, 13, 14, 15, 16]
    keys = q.keys()
    q.push(torch.zeros(1, 2))
    assert keys.sum() == 3 * 10  # keys() is a copy: later pushes do not change a loss's inputs


def test_queue_is_in_state_dict():
    q = FeatureQueue(4, 3)
    q.push(torch.randn(2, 3))
    r = FeatureQueue(4, 3)
    r.load_state_dict(q.state_dict())
    assert torch.equal(r.keys(), q.keys()) and int(r.ptr) == 2


def test_mlp_and_temperature():
    head = MLP([8, 16, 4])
    assert head(torch.randn(5, 8)).shape == (5, 4)
    t = Temperature(0.07, learnable=True)
    with torch.no_grad():
        t.value.fill_(5.0)
    t.clamp_()
    assert t().item() == 0.5
    assert isinstance(t.value, torch.nn.Parameter)
    clip = Temperature(0.07, learnable=True, parametrization="log_inverse")
    assert math.isclose(clip().item(), 0.07, rel_tol=1e-5)


def test_queue_stage_appends_and_flush_pushes_once():
    q = FeatureQueue(size=8, dim=2)
    q.stage(torch.ones(3, 2), ids=torch.tensor([1, 2, 3]))
    q.stage(2 * torch.ones(3, 2), ids=torch.tensor([4, 5, 6]))  # a second micro-batch: appended
    assert len(q) == 0 and q.num_staged == 6  # nothing pushed before the optimizer step
    assert q.flush() == 6 and q.num_staged == 0
    assert q.ids().tolist() == [1, 2, 3, 4, 5, 6] and int(q.ptr) == 6
    assert q.flush() == 0
    q.eval()
    q.stage(torch.ones(3, 2))  # eval mode (validation): never staged
    assert q.num_staged == 0
