"""Image sets as in-memory uint8 tensors: class-folder trees, their .tar(.gz) archives, or `datasets` sets.

A split is decoded once into a (N, C, S, S) uint8 tensor (150 MB for CIFAR-10's 50,000 images), so a
training batch is one indexing op; the augmentations then run batched on the training device
(:mod:`multissl.image.augment`). Layouts read:

- ``ROOT/<split>/<class>/*.jpg|png`` folders, or ``ROOT/<split>.tar.gz`` archives holding
  ``<split>/<class>/<file>`` (CIFAR-10 as JPEGs: ``$MULTISSL_DATA/cifar10``; the shipped subset
  ``cifar10-mini``);
- ``hf:NAME`` (online users): ``datasets.load_dataset(NAME, split=...)`` with an image and a label column.

Images whose size differs from ``image_size`` are resized (shorter side) and centre-cropped.
"""

from __future__ import annotations

import io
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from multissl.data import resolve_data_path
from multissl.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")


@dataclass
class ImageSet:
    """uint8 images (N, C, S, S), integer labels (N,) (-1 = unlabelled) and the class names."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]

    def __len__(self) -> int:
        return self.images.shape[0]


def _to_array(data: bytes | object, size: int, channels: int) -> np.ndarray:
    from PIL import Image

    img = Image.open(io.BytesIO(data)) if isinstance(data, bytes) else data
    img = img.convert("RGB" if channels == 3 else "L")
    if img.size != (size, size):
        w, h = img.size
        s = size / min(w, h)
        img = img.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BICUBIC)
        w, h = img.size
        left, top = (w - size) // 2, (h - size) // 2
        img = img.crop((left, top, left + size, top + size))
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _decode_all(items: list[bytes | object], size: int, channels: int, names: list[str] | None = None) -> torch.Tensor:
    if not items:
        return torch.zeros(0, channels, size, size, dtype=torch.uint8)

    def decode(i: int) -> np.ndarray:
        try:
            return _to_array(items[i], size, channels)
        except (OSError, ValueError, SyntaxError) as exc:  # PIL's UnidentifiedImageError is an OSError
            name = names[i] if names else f"item {i}"
            raise DataError(f"{name} is not a readable image ({type(exc).__name__}); remove it from the image "
                            "folder or replace it") from None

    with ThreadPoolExecutor(max_workers=8) as pool:  # PIL releases the GIL while decoding
        arrays = list(pool.map(decode, range(len(items)), chunksize=256))
    return torch.from_numpy(np.stack(arrays))


def _from_members(pairs: list[tuple], size: int, channels: int,
                  classes: list[str] | None) -> ImageSet:
    """pairs of (class name, bytes or path) -> ImageSet, in sorted (class, file) order."""
    names = classes or sorted({p[0] for p in pairs})
    index = {c: i for i, c in enumerate(names)}
    pairs = [p for p in pairs if p[0] in index]
    data = [p[1].read_bytes() if isinstance(p[1], Path) else p[1] for p in pairs]
    labels = torch.tensor([index[p[0]] for p in pairs], dtype=torch.long)
    where = [str(p[1]) if isinstance(p[1], Path) else (p[2] if len(p) > 2 else f"{p[0]}/item {i}")
             for i, p in enumerate(pairs)]
    return ImageSet(_decode_all(data, size, channels, where), labels, names)


def _read_tar(path: Path, split: str) -> list[tuple[str, str, bytes]]:
    out = []
    with tarfile.open(path) as tar:
        for m in tar:
            if not m.isfile() or not m.name.lower().endswith(IMAGE_SUFFIXES):
                continue
            parts = Path(m.name).parts
            if len(parts) < 2:
                continue
            cls = parts[-2]
            fh = tar.extractfile(m)
            if fh is not None:
                out.append((cls, m.name, fh.read()))
    if not out:
        raise DataError(f"{path} holds no images in <{split}>/<class>/<file> folders")
    return out


def load_image_folder(root: str, split: str, image_size: int = 32, channels: int = 3,
                      classes: list[str] | None = None) -> ImageSet:
    """Load ``split`` of an image-folder data set (folder tree or ``<split>.tar[.gz]``), sorted by
    class then file name (deterministic)."""
    base = resolve_data_path(root, "image data root")
    if base.is_file() and base.name.split(".")[0] == split:
        archive = base
    else:
        folder = base / split
        archive = next((base / f"{split}{s}" for s in (".tar.gz", ".tgz", ".tar") if (base / f"{split}{s}").exists()),
                       None)
        if folder.is_dir():
            files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise DataError(f"{folder} has no image files ({', '.join(IMAGE_SUFFIXES)}) in class folders")
            pairs = [(p.parent.name, p) for p in files]
            return _from_members(pairs, image_size, channels, classes)
        if archive is None:
            raise DataError(f"No '{split}' split under {base}: expected a folder {folder}/<class>/<image> or an "
                            f"archive {base}/{split}.tar.gz")
    members = sorted(_read_tar(archive, split), key=lambda t: (t[0], t[1]))
    return _from_members([(c, b, f"{archive}:{m}") for c, m, b in members], image_size, channels, classes)


def load_hf_images(name: str, split: str, image_size: int = 32, channels: int = 3, image_key: str = "img",
                   label_key: str = "label") -> ImageSet:
    """A Hugging Face ``datasets`` image set (online), e.g. ``uoft-cs/cifar10`` with keys img / label."""
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover
        raise DataError("hf: image sets need the `datasets` package") from exc
    try:
        ds = datasets.load_dataset(name, split=split)
    except Exception as exc:  # noqa: BLE001 - offline, unknown name or split: one clear DataError
        raise DataError(f"Cannot load the datasets set '{name}' split '{split}': {exc}") from None
    if image_key not in ds.column_names:
        raise DataError(f"'{name}' has no column '{image_key}' (columns: {ds.column_names}); set data.image_key")
    feats = ds.features.get(label_key)
    classes = list(getattr(feats, "names", []) or [])
    labels = torch.tensor(ds[label_key] if label_key in ds.column_names else [-1] * len(ds), dtype=torch.long)
    images = _decode_all(list(ds[image_key]), image_size, channels)
    return ImageSet(images, labels, classes or [str(i) for i in range(int(labels.max()) + 1)])


def load_images(root: str, split: str, image_size: int = 32, channels: int = 3, image_key: str = "img",
                label_key: str = "label", classes: list[str] | None = None) -> ImageSet:
    """Dispatch on ``root``: ``hf:NAME`` for `datasets`, otherwise an image-folder tree or archive.

    Decoded sets are cached in the process (keyed by path, modification time and options), so several
    runs in one process (tests, sweeps) decode once; the returned tensors must not be modified in place.
    """
    if root.startswith("hf:"):
        return load_hf_images(root[3:], split, image_size, channels, image_key, label_key)
    p = resolve_data_path(root, "image data root")
    key = (str(p.resolve()), p.stat().st_mtime, split, image_size, channels, tuple(classes or ()))
    if key not in _CACHE:
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = load_image_folder(str(p), split, image_size, channels, classes)
    hit = _CACHE[key]
    return ImageSet(hit.images, hit.labels, list(hit.classes))


_CACHE: dict[tuple, ImageSet] = {}


def val_split(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(bank, val) indices: a seeded random ``fraction`` of the training set held out for validation."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = round(fraction * n)
    return perm[k:].sort().values, perm[:k].sort().values


class ImageTensorDataset(Dataset):
    """Rows of a uint8 image tensor; ``__getitems__`` returns a whole batch (B, C, H, W) in one indexing op."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]

    def __getitems__(self, indices: list[int]) -> torch.Tensor:
        return self.images[torch.as_tensor(indices, dtype=torch.long)]


def batch_collate(batch: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
    """Collate for :class:`ImageTensorDataset`: a batch from ``__getitems__`` passes through."""
    return batch if isinstance(batch, torch.Tensor) else torch.stack(batch)
