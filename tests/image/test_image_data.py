"""Image-folder loading: class folders or split archives, resizing, deterministic order, clear errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from multissl.errors import DataError
from multissl.image.data import (
    ImageTensorDataset,
    batch_collate,
    load_image_folder,
    load_images,
    val_split,
)


def test_shipped_subset_archive():
    s = load_images("cifar10-mini", "test")
    assert s.images.shape == (1000, 3, 32, 32) and s.images.dtype == torch.uint8
    assert s.labels.bincount().tolist() == [100] * 10 and s.classes[0] == "airplane"


def test_folder_tree_resize_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("b", "a"):
        (tmp_path / "train" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(tmp_path / "train" / cls / f"{i}.png")
    s = load_image_folder(str(tmp_path), "train", image_size=32)
    assert s.images.shape == (6, 3, 32, 32) and s.classes == ["a", "b"] and s.labels.tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(DataError):
        load_image_folder(str(tmp_path), "test")
    ds = ImageTensorDataset(s.images)
    assert batch_collate(ds.__getitems__([0, 5])).shape == (2, 3, 32, 32)
    bank, val = val_split(100, 0.1, 0)
    assert len(val) == 10 and len(set(bank.tolist()) | set(val.tolist())) == 100
