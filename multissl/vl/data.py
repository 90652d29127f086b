"""Image-caption data: the common caption layouts, an in-memory image cache and ALBEF's augmentation.

Layouts read by :func:`load_captions` (each gives ``CaptionSet``: image paths, their captions, split):
- ``captions.jsonl``: one ``{"image", "captions": [...], "split"}`` per line (the shipped Flickr8k sets);
- COCO ``captions_*.json`` (``images`` + ``annotations``; the split is taken from the file name);
- Karpathy ``dataset_*.json`` (``images[*].filename / sentences[*].raw / split``);
- CSV / TSV with an image-path column and a caption column (``image,caption[,split]`` header);
- WebDataset ``.tar`` shards (``key.jpg`` + ``key.txt`` members; several captions = several lines).

Augmentation follows ALBEF's retrieval fine-tuning (Li et al., NeurIPS 2021, ``create_dataset``):
RandomResizedCrop(scale 0.5-1), horizontal flip, RandAugment(2 ops, magnitude 7), CLIP/ALBEF
normalisation. Images are decoded once, resized to the training resolution and cached as uint8.
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import Dataset

from multissl.data import resolve_data_path
from multissl.errors import DataError

# ALBEF / CLIP normalisation
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class CaptionSet:
    """Images (paths or raw bytes) with their captions; ``split[i]`` is 'train' / 'val' / 'test' / ''."""

    images: list[str | bytes] = field(default_factory=list)
    captions: list[list[str]] = field(default_factory=list)
    split: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def subset(self, split: str | None) -> CaptionSet:
        keep = [i for i, s in enumerate(self.split) if split is None or s == split]
        return CaptionSet([self.images[i] for i in keep], [self.captions[i] for i in keep],
                          [self.split[i] for i in keep], [self.names[i] for i in keep])

    def __len__(self) -> int:
        return len(self.images)


def _split_from_name(name: str) -> str:
    low = name.lower()
    for key, value in (("train", "train"), ("val", "val"), ("dev", "val"), ("test", "test")):
        if key in low:
            return value
    return ""


def _jsonl(path: Path) -> CaptionSet:
    out = CaptionSet()
    for n, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        row = json.loads(line)
        if "image" not in row or not (row.get("captions") or row.get("caption")):
            raise DataError(f"{path}:{n + 1}: each line needs 'image' and 'captions' (or 'caption')")
        caps = row.get("captions") or [row["caption"]]
        out.images.append(str(path.parent / row["image"]))
        out.captions.append([str(c) for c in (caps if isinstance(caps, list) else [caps])])
        out.split.append(str(row.get("split", "")))
        out.names.append(Path(row["image"]).name)
    return out


def _coco(path: Path, obj: dict, image_root: Path) -> CaptionSet:
    by_id: dict[int, list[str]] = {}
    for ann in obj["annotations"]:
        by_id.setdefault(ann["image_id"], []).append(ann["caption"].strip())
    split = _split_from_name(path.name)
    out = CaptionSet()
    for img in obj["images"]:
        if img["id"] in by_id:
            out.images.append(str(image_root / img["file_name"]))
            out.captions.append(by_id[img["id"]])
            out.split.append(split)
            out.names.append(img["file_name"])
    return out


def _karpathy(obj: dict, image_root: Path) -> CaptionSet:
    out = CaptionSet()
    for img in obj["images"]:
        name = img.get("filename") or img.get("file_name")
        sub = img.get("filepath", "")
        out.images.append(str(image_root / sub / name))
        out.captions.append([s.get("raw") or " ".join(s["tokens"]) for s in img["sentences"]])
        split = img.get("split", "")
        out.split.append({"restval": "train"}.get(split, split))
        out.names.append(name)
    return out


def _table(path: Path, image_root: Path) -> CaptionSet:
    delim = "\t" if path.suffix in (".tsv", ".tab") else ","
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=delim))
    if not rows or not {"image", "caption"} <= set(rows[0]):
        raise DataError(f"{path}: a CSV/TSV needs a header with 'image' and 'caption' columns (optional 'split')")
    grouped: dict[str, int] = {}
    out = CaptionSet()
    for r in rows:
        key = r["image"]
        if key not in grouped:
            grouped[key] = len(out.images)
            out.images.append(str(image_root / key))
            out.captions.append([])
            out.split.append(r.get("split", "") or "")
            out.names.append(Path(key).name)
        out.captions[grouped[key]].append(r["caption"])
    return out


def _tar(paths: list[Path]) -> CaptionSet:
    out = CaptionSet()
    for p in paths:
        items: dict[str, dict[str, bytes]] = {}
        with tarfile.open(p) as tf:
            for m in tf.getmembers():
                if not m.isfile():
                    continue
                key, _, ext = m.name.rpartition(".")
                items.setdefault(key, {})[ext.lower()] = tf.extractfile(m).read()
        for key, parts in sorted(items.items()):
            img = next((parts[e] for e in ("jpg", "jpeg", "png", "webp") if e in parts), None)
            txt = parts.get("txt") or parts.get("caption")
            if img is None or txt is None:
                continue
            out.images.append(img)
            out.captions.append([c for c in txt.decode().splitlines() if c.strip()])
            out.split.append(_split_from_name(p.name))
            out.names.append(Path(key).name)
    return out


def load_captions(path: str, image_root: str | None = None) -> CaptionSet:
    """Read any supported caption layout (see module docstring); ``image_root`` defaults to the file's folder."""
    p = resolve_data_path(path, "caption data")
    if p.is_dir():
        for name in ("captions.jsonl",):
            if (p / name).exists():
                return _jsonl(p / name)
        shards = sorted(p.glob("*.tar"))
        if shards:
            return _tar(shards)
        raise DataError(f"{p}: no captions.jsonl or .tar shards in this folder; pass the caption file itself")
    root = Path(image_root) if image_root else p.parent
    if p.suffix == ".jsonl":
        return _jsonl(p)
    if p.suffix == ".tar":
        return _tar([p])
    if p.suffix in (".csv", ".tsv", ".tab"):
        return _table(p, root)
    if p.suffix == ".json":
        obj = json.loads(p.read_text())
        if isinstance(obj, dict) and "annotations" in obj and "images" in obj:
            return _coco(p, obj, root)
        if isinstance(obj, dict) and "images" in obj and obj["images"] and "sentences" in obj["images"][0]:
            return _karpathy(obj, root)
    raise DataError(f"{p}: unknown caption layout; use captions.jsonl, COCO captions_*.json, Karpathy "
                    "dataset_*.json, CSV/TSV (image,caption[,split]) or WebDataset .tar shards")


def load_images(images: list[str | bytes], size: int) -> torch.Tensor:
    """Decode and resize (squash) every image to ``size`` x ``size``; (N, 3, S, S) uint8."""
    from PIL import Image

    out = torch.empty(len(images), 3, size, size, dtype=torch.uint8)
    for i, src in enumerate(images):
        try:
            img = Image.open(io.BytesIO(src) if isinstance(src, bytes) else src).convert("RGB")
        except (OSError, FileNotFoundError) as exc:
            raise DataError(f"Cannot read image {src if isinstance(src, str) else '<bytes>'}: {exc}") from None
        if img.size != (size, size):
            img = img.resize((size, size), Image.BICUBIC)
        out[i] = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(size, size, 3).permute(2, 0, 1)
    return out


def train_transform(size: int, scale_min: float = 0.5, randaugment: bool = True) -> Callable:
    """ALBEF's training augmentation on uint8 (3, S, S) tensors -> normalised float."""
    from torchvision.transforms import v2

    ops = [v2.RandomResizedCrop(size, scale=(scale_min, 1.0), antialias=True), v2.RandomHorizontalFlip()]
    if randaugment:
        ops.append(v2.RandAugment(num_ops=2, magnitude=7))
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]
    return v2.Compose(ops)


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, S, S) -> normalised float (evaluation: no augmentation)."""
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


class PairDataset(Dataset):
    """Training items. ``sampling='image'``: one item per image with a random one of its captions
    (no image twice in a batch); ``'pair'``: every (image, caption) pair is an item (ALBEF)."""

    def __init__(self, images: torch.Tensor, captions: list[list[str]], sampling: str = "image") -> None:
        if sampling not in ("image", "pair"):
            raise DataError(f"data.sampling must be 'image' or 'pair', got {sampling!r}")
        self.images, self.captions, self.sampling = images, captions, sampling
        self.index = ([(i, -1) for i in range(len(captions))] if sampling == "image"
                      else [(i, j) for i, caps in enumerate(captions) for j in range(len(caps))])

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, n: int) -> tuple[torch.Tensor, str, int]:
        i, j = self.index[n]
        caps = self.captions[i]
        if j < 0:
            j = int(torch.randint(len(caps), ()).item())
        return self.images[i], caps[j], i


class Batch(dict):
    """A training batch: ``image`` (B, 3, S, S), optional ``image_aug``, ``input_ids``,
    ``attention_mask`` (B, L), ``image_ids`` (B,)."""


class PairCollate:
    """Augment the images (one or two views) and tokenize the captions."""

    def __init__(self, tokenize: Callable[[list[str]], dict], size: int, two_views: bool = False,
                 scale_min: float = 0.5, randaugment: bool = True) -> None:
        self.tokenize, self.two_views = tokenize, two_views
        self.transform = train_transform(size, scale_min, randaugment)

    def __call__(self, items: list[tuple[torch.Tensor, str, int]]) -> Batch:
        imgs = [it[0] for it in items]
        batch = Batch(image=torch.stack([self.transform(x) for x in imgs]))
        if self.two_views:
            batch["image_aug"] = torch.stack([self.transform(x) for x in imgs])
        enc = self.tokenize([it[1] for it in items])
        batch["input_ids"], batch["attention_mask"] = enc["input_ids"], enc["attention_mask"]
        batch["image_ids"] = torch.tensor([it[2] for it in items], dtype=torch.long)
        return batch
