"""Batched device-side augmentations: exact ops vs torchvision, per-sample randomness, seeding."""

import torch
import torchvision.transforms.v2.functional as TF

from multissl.image.augment import (
    BatchAugment,
    ViewConfig,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    color_jitter,
    crop_boxes,
    gaussian_blur,
    grayscale,
    hsv_to_rgb,
    random_resized_crop,
    random_solarize,
    rgb_to_hsv,
    to_float,
)


def _images(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)


def test_colour_ops_match_torchvision():
    x = to_float(_images(8))
    f = torch.full((8,), 0.3)
    assert torch.allclose(adjust_hue(x, f), TF.adjust_hue(x, 0.3), atol=1e-4)
    assert torch.allclose(adjust_saturation(x, f + 1.2), TF.adjust_saturation(x, 1.5), atol=1e-4)
    assert torch.allclose(adjust_contrast(x, f + 1.2), TF.adjust_contrast(x, 1.5), atol=1e-4)
    assert torch.allclose(grayscale(x), TF.rgb_to_grayscale(x), atol=1e-3)
    assert torch.allclose(hsv_to_rgb(rgb_to_hsv(x)), x, atol=1e-5)


def test_crop_identity_and_flip():
    x = to_float(_images(4))
    assert torch.allclose(random_resized_crop(x, 32, (1, 1), (1, 1), flip_p=0.0), x, atol=1e-5)
    assert torch.allclose(random_resized_crop(x, 32, (1, 1), (1, 1), flip_p=1.0), x.flip(-1), atol=1e-5)


def test_crop_boxes_follow_scale_and_ratio():
    x = torch.zeros(1)
    w, h, cx, _cy = crop_boxes(4000, 1.0, (0.08, 1.0), (3 / 4, 4 / 3), x)
    area = w * h
    assert area.min() >= 0.08 - 1e-4 and area.max() <= 1 + 1e-6
    assert ((w / h) >= 3 / 4 - 1e-4).all() and ((w / h) <= 4 / 3 + 1e-4).all()
    assert ((cx - w / 2) >= -1e-6).all() and ((cx + w / 2) <= 1 + 1e-6).all()
    assert w.std() > 0.1  # per-sample boxes


def test_per_sample_parameters_and_probabilities():
    x = to_float(_images(1)).expand(400, -1, -1, -1).contiguous()
    out = color_jitter(x, 0.4, 0.4, 0.4, 0.1, p=0.8)
    changed = (out - x).abs().flatten(1).amax(1) > 1e-4
    assert 0.7 < changed.float().mean() < 0.9  # ~p of the samples are jittered, each differently
    assert out[changed].flatten(1).std(0).mean() > 0.01
    sol = random_solarize(x, p=0.2)
    frac = ((sol - x).abs().flatten(1).amax(1) > 0).float().mean()
    assert 0.12 < frac < 0.28
    blurred = gaussian_blur(x[:8], p=1.0)
    assert blurred.shape == x[:8].shape and (blurred - x[:8]).abs().mean() > 0.01


def test_pipeline_seeded_shapes_and_single_image():
    aug = BatchAugment(ViewConfig(size=24, blur_p=0.5, solarize_p=0.2))
    imgs = _images(32)
    torch.manual_seed(1)
    a = aug(imgs)
    torch.manual_seed(1)
    b = aug(imgs)
    c = aug(imgs)
    assert a.shape == (32, 3, 24, 24) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert aug(imgs[0]).shape == (3, 24, 24)  # per-sample use on CPU
    assert abs(float(a.mean())) < 1.0 and 0.3 < float(a.std()) < 2.0  # normalised


def test_simclr_view_applies_each_stage_at_its_rate():
    """SimCLR's view (the recipe's first view): with the same seed, switching one stage off changes exactly
    the images that stage touched, at the stage's probability (colour jitter 0.8, grayscale 0.2, flip 0.5;
    256 images, 4-sigma bands). A pipeline that silently skips a stage makes zero images differ."""
    from dataclasses import replace

    from multissl.image.tasks import Augment

    view = Augment().view(0)
    x = _images(256, seed=1)
    for field, p in (("jitter_p", 0.8), ("grayscale_p", 0.2), ("flip_p", 0.5)):
        torch.manual_seed(0)
        on = BatchAugment(view)(x)
        torch.manual_seed(0)
        off = BatchAugment(replace(view, **{field: 0.0}))(x)
        changed = float((on - off).abs().flatten(1).amax(1).gt(1e-4).float().mean())
        band = 4 * (p * (1 - p) / 256) ** 0.5
        assert abs(changed - p) < band, (field, changed, p)
