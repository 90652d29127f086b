"""Collate functions for contrastive fine-tuning: raw rows -> prepared encoder inputs, ids and views.

Views for SupCon (Khosla et al. 2020): images get SimCLR-style random resized crops, flips, colour
jitter and greyscale; audio gets a random crop and a random gain; text passes the same tokens twice
(dropout makes the views, as in SimCSE).
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
    """SimCLR's augmentations (Chen et al. 2020) on (3, H, W) uint8 images, at the image's own size."""

    def __init__(self, size: int, crop_scale_min: float = 0.2, jitter: float = 0.4, grayscale: float = 0.2) -> None:
        from torchvision.transforms import v2

        self.transform = v2.Compose([
            v2.RandomResizedCrop(size, scale=(crop_scale_min, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(jitter, jitter, jitter, jitter / 4)], p=0.8),
            v2.RandomGrayscale(p=grayscale),
        ])

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.transform(image)


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

    ``augment`` is applied independently per view (None: the same inputs each view, text's dropout views).
    """

    def __init__(self, prepare: Prepare, augment: Callable[[Any], Any] | None = None, num_views: int = 2) -> None:
        self.prepare, self.augment, self.num_views = prepare, augment, num_views

    def __call__(self, rows: list[tuple[Any, int]]) -> dict[str, Any]:
        items = [r[0] for r in rows]
        labels = torch.tensor([r[1] for r in rows], dtype=torch.long)
        if self.augment is None:
            first = self.prepare(items)
            views = [first] + [dict(first) for _ in range(self.num_views - 1)]
        else:
            views = [self.prepare([self.augment(x) for x in items]) for _ in range(self.num_views)]
        return {"views": views, "labels": labels}
