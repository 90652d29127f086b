"""Each batched augmentation does what it says, per sample, with its probability."""

import pytest
import torch

from multissl.biosignal.augment import (
    AugmentConfig,
    augment,
    channel_permute,
    cutout,
    gaussian_noise,
    magnitude_warp,
    time_warp,
)


@pytest.fixture
def x():
    torch.manual_seed(0)
    return torch.randn(64, 3, 200)


@pytest.mark.parametrize("fn", [cutout, magnitude_warp, gaussian_noise, time_warp, channel_permute])
def test_probability_zero_is_identity_and_one_changes_every_sample(fn, x):
    assert torch.equal(fn(x, 0.0), x)
    y = fn(x, 1.0)
    assert y.shape == x.shape
    changed = (y != x).flatten(1).any(1).float().mean()
    # a random channel order is the identity 1 time in 3! = 6
    assert changed > (0.7 if fn is channel_permute else 0.999)


@pytest.mark.parametrize("fn", [cutout, magnitude_warp, gaussian_noise, time_warp, channel_permute])
def test_probability_is_per_sample(fn):
    x = torch.randn(2000, 2, 50)
    changed = (fn(x, 0.3) != x).flatten(1).any(1).float().mean()
    expected = 0.3 * (0.5 if fn is channel_permute else 1.0)  # 2 channels: half the permutations swap
    assert abs(changed - expected) < 0.05


def test_cutout_zeroes_one_contiguous_window_of_the_fraction(x):
    y = cutout(x, 1.0, fraction=0.1)
    zero = (y == 0).all(1)  # (B, L) zeroed in every channel
    assert (zero.sum(1) == 20).all()
    idx = zero.float().argmax(1)
    for b in range(x.shape[0]):  # contiguous
        assert zero[b, idx[b] : idx[b] + 20].all()
    assert torch.equal(y[~(y == 0)], x[~(y == 0)])


def test_magnitude_warp_is_a_smooth_positive_scale_shared_by_channels(x):
    y = magnitude_warp(x, 1.0, sigma=0.2)
    ratio = y / x  # (B, C, L): the same curve for every channel
    assert torch.allclose(ratio[:, 0], ratio[:, 1], atol=1e-4)
    assert (ratio > 0).all() and (ratio - 1).abs().mean() < 0.3
    assert (ratio[:, 0, 1:] - ratio[:, 0, :-1]).abs().max() < 0.05  # smooth in time


def test_gaussian_noise_has_the_requested_std():
    x = torch.zeros(256, 1, 400)
    y = gaussian_noise(x, 1.0, sigma=0.05)
    assert abs(float(y.std()) - 0.05) < 0.003


def test_time_warp_keeps_endpoints_and_monotone_signals_monotone():
    ramp = torch.linspace(0, 1, 300).expand(32, 2, 300).clone()
    y = time_warp(ramp, 1.0, sigma=0.3)
    assert torch.allclose(y[..., 0], ramp[..., 0], atol=1e-5)
    assert torch.allclose(y[..., -1], ramp[..., -1], atol=1e-5)
    assert (y[..., 1:] - y[..., :-1] >= -1e-6).all()
    assert not torch.allclose(y, ramp, atol=1e-3)


def test_channel_permute_keeps_each_samples_channels(x):
    y = channel_permute(x, 1.0)
    for b in range(8):
        rows = {tuple(r.tolist()) for r in x[b, :, :5]}
        assert {tuple(r.tolist()) for r in y[b, :, :5]} == rows
    one = torch.randn(4, 1, 10)
    assert torch.equal(channel_permute(one, 1.0), one)


def test_pipeline_keeps_shape_and_device(x):
    y = augment(x, AugmentConfig())
    assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()
