"""Image views for SupCon: the reference code's two crops on the image adapter's batched ops, normalised
exactly as the model's own image processor normalises at evaluation."""

import torch

from multissl.finetune.views import ImageViews, LabelledCollate


def test_image_views_use_the_processors_size_and_normalisation(tiny_vit):
    from transformers import AutoImageProcessor

    proc = AutoImageProcessor.from_pretrained(tiny_vit)
    views = ImageViews.for_processor(proc, colour=False)
    # a constant-colour image is unchanged by crops and flips: the view must equal the processor's output
    flat = torch.zeros(3, 40, 40, dtype=torch.uint8)
    flat[0], flat[1], flat[2] = 200, 90, 30
    got = views([flat, flat])["pixel_values"]
    want = proc(images=[flat.permute(1, 2, 0).numpy()], return_tensors="pt")["pixel_values"]
    assert got.shape == (2, 3, 32, 32)
    torch.testing.assert_close(got, want.expand(2, -1, -1, -1), atol=1e-3, rtol=0)


def test_supcon_views_differ_and_ce_views_keep_colour():
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=g) for _ in range(64)]
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    torch.manual_seed(0)
    batch = LabelledCollate(lambda x: {}, num_views=2, batch_views=ImageViews(32, mean, std))(
        [(im, i % 4) for i, im in enumerate(images)])
    a, b = batch["views"][0]["pixel_values"], batch["views"][1]["pixel_values"]
    assert a.shape == b.shape == (64, 3, 32, 32)
    assert ((a - b).abs().flatten(1).amax(1) > 0.1).all()  # two independent views of every image

    def gray(x):  # R == G everywhere
        return (x[:, 0] - x[:, 1]).abs().flatten(1).amax(1) < 1e-5

    assert 0.05 < gray(a).float().mean() < 0.45  # greyscale at p = 0.2 (64 draws)
    # colour=False (the cross-entropy baseline of the reference, crop + flip): no image turns grey, and a
    # pixel's colour stays one of the image's own colours up to bilinear mixing of the neighbours
    torch.manual_seed(0)
    plain = ImageViews(32, mean, std, colour=False)(images)["pixel_values"]
    assert not gray(plain).any()
    lo = torch.stack(images).float().div(255).amin((2, 3))
    hi = torch.stack(images).float().div(255).amax((2, 3))
    raw = plain * 0.25 + 0.5
    assert (raw >= lo[..., None, None] - 1e-4).all() and (raw <= hi[..., None, None] + 1e-4).all()
