"""Collate functions for contrastive fine-tuning: raw rows -> prepared encoder inputs, ids and views.

Views for SupCon (Khosla et al. 2020): images get the reference code's two crops (random resized
crop, flip, colour jitter, greyscale; :class:`ImageViews`, on the image adapter's batched ops); audio
gets a random crop and a random gain; text passes the same tokens twice (dropout makes the views, as
in SimCSE).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch

from multissl.finetune.data import text_id

Prepare = Callable[[list[Any]], dict[str, torch.Tensor]]


def prepare_fn(encoder: Any) -> Prepare:
    """The encoder's ``prepare`` (vision / audio) or ``tokenize`` (text)."""
    prep = getattr(encoder, "prepare", None)
    return prep if prep is not None else encoder.tokenize


class PairsCollate:
    """Rows of :class:`~multissl.finetune.data.PairRows` -> ``anchor``, ``positive``, ``negative`` inputs + ids.

    Ids are hashes of the texts; a row with a user id uses it for its anchor and positive.
    """

    def __init__(self, prepare: Prepare) -> None:
        self.prepare = prepare

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        anchors = [r["anchor"] for r in rows]
        positives = [r["positive"] for r in rows]
        negatives = [n for r in rows for n in r["negatives"]]
        if len({len(r["negatives"]) for r in rows}) > 1:
            raise ValueError("every row of a batch needs the same number of negatives")
        a_id = [text_id(a) if r["group"] is None else r["group"] for a, r in zip(anchors, rows, strict=True)]
        p_id = [text_id(p) if r["group"] is None else r["group"] for p, r in zip(positives, rows, strict=True)]
        out: dict[str, Any] = {"anchor": self.prepare(anchors), "positive": self.prepare(positives),
                               "anchor_id": torch.tensor(a_id), "positive_id": torch.tensor(p_id)}
        if negatives:
            out["negative"] = self.prepare(negatives)
            out["negative_id"] = torch.tensor([text_id(n) for n in negatives])
        return out


class ImageViews:
    """Two-crop views of Khosla et al.'s reference code (SupContrast ``main_supcon.py``, itself SimCLR's
    CIFAR set): RandomResizedCrop(scale ``crop_scale_min``-1), horizontal flip, ColorJitter(j, j, j, j/4)
    with p = 0.8, greyscale with p = ``grayscale``; then the model's own normalisation. ``colour=False``
    keeps crop + flip only (the reference cross-entropy baseline, ``main_ce.py``).

    Runs :class:`multissl.image.augment.BatchAugment` (the image adapter's batched torchvision-equivalent
    ops) on a list of (3, H, W) uint8 images -> ``{"pixel_values": (B, 3, size, size)}``, at the size,
    mean and std the encoder's image processor uses at evaluation.
    """

    def __init__(self, size: int, mean: tuple[float, ...], std: tuple[float, ...], crop_scale_min: float = 0.2,
                 jitter: float = 0.4, grayscale: float = 0.2, colour: bool = True) -> None:
        from multissl.image.augment import BatchAugment, ViewConfig

        self.augment = BatchAugment(ViewConfig(
            size=size, scale=(crop_scale_min, 1.0), jitter_p=0.8 if colour else 0.0, brightness=jitter,
            contrast=jitter, saturation=jitter, hue=jitter / 4, grayscale_p=grayscale if colour else 0.0,
            mean=tuple(mean), std=tuple(std)))

    @classmethod
    def for_processor(cls, processor: Any, **kwargs: Any) -> ImageViews:
        """Size, mean and std of a transformers image processor (``size`` = height / shortest edge)."""
        size = getattr(processor, "crop_size", None) if getattr(processor, "do_center_crop", False) else None
        size = size or getattr(processor, "size", None) or {}
        if isinstance(size, int):
            side = size
        else:  # a dict or transformers' SizeDict
            pick = size.get if isinstance(size, dict) else (lambda k: getattr(size, k, None))
            side = int(pick("height") or pick("shortest_edge") or 224)
        if getattr(processor, "do_normalize", True):
            mean, std = tuple(processor.image_mean), tuple(processor.image_std)
        else:
            mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        return cls(side, mean, std, **kwargs)

    def __call__(self, images: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        if len({tuple(im.shape) for im in images}) == 1:
            return {"pixel_values": self.augment(torch.stack(images))}
        return {"pixel_values": torch.stack([self.augment(im) for im in images])}


class AudioViews:
    """A random crop of at most ``crop_samples`` and a random gain in +-``gain_db`` dB."""

    def __init__(self, crop_samples: int, gain_db: float = 6.0) -> None:
        self.crop_samples, self.gain_db = crop_samples, gain_db

    def __call__(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.shape[0] > self.crop_samples:
            start = random.randrange(wave.shape[0] - self.crop_samples + 1)
            wave = wave[start : start + self.crop_samples]
        gain = 10 ** (random.uniform(-self.gain_db, self.gain_db) / 20)
        return wave * gain


class LabelledCollate:
    """(item, label) pairs -> ``views`` (``num_views`` prepared inputs) and ``labels`` (B,).

    ``augment`` is applied independently per item and view, then ``prepare`` (audio); ``batch_views``
    turns the whole list of items into one prepared view (images: :class:`ImageViews`); with neither,
    every view is the same prepared inputs (text: dropout makes the views).
    """

    def __init__(self, prepare: Prepare, augment: Callable[[Any], Any] | None = None, num_views: int = 2,
                 batch_views: Prepare | None = None) -> None:
        self.prepare, self.augment, self.num_views, self.batch_views = prepare, augment, num_views, batch_views

    def __call__(self, rows: list[tuple[Any, int]]) -> dict[str, Any]:
        items = [r[0] for r in rows]
        labels = torch.tensor([r[1] for r in rows], dtype=torch.long)
        if self.batch_views is not None:
            views = [self.batch_views(items) for _ in range(self.num_views)]
        elif self.augment is None:
            first = self.prepare(items)
            views = [first] + [dict(first) for _ in range(self.num_views - 1)]
        else:
            views = [self.prepare([self.augment(x) for x in items]) for _ in range(self.num_views)]
        return {"views": views, "labels": labels}
