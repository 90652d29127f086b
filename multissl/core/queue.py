"""FIFO feature queue of past keys (MoCo, ESimCSE, CoCoSoDa, ALBEF), with optional ids.

The queue is a module with buffers, so it lives on the method's device and is saved in every
checkpoint. Under several processes, keys are gathered from all processes before the push; push
after the loss has been computed (the trainer's ``after_step`` or at the end of ``forward``).
"""

from __future__ import annotations

import torch
from torch import nn

from multissl.core.distributed import all_gather_no_grad


class FeatureQueue(nn.Module):
    """Ring buffer of the ``size`` most recent keys (size, dim); ``ids`` tag each key (-1 = none)."""

    def __init__(self, size: int, dim: int, init: str = "zeros") -> None:
        super().__init__()
        if size <= 0:
            raise ValueError(f"queue size must be positive, got {size}")
        keys = torch.zeros(size, dim)
        if init == "random":
            keys = nn.functional.normalize(torch.randn(size, dim), dim=1)
        self.register_buffer("_keys", keys)
        self.register_buffer("_ids", torch.full((size,), -1, dtype=torch.long))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("filled", torch.tensor(size if init == "random" else 0, dtype=torch.long))

    @property
    def size(self) -> int:
        return self._keys.shape[0]

    def __len__(self) -> int:
        return int(self.filled)

    def keys(self) -> torch.Tensor:
        """The stored keys (filled slots only), as a detached copy safe to use in a loss."""
        n = int(self.filled)
        return self._keys[:n].detach().clone() if n < self.size else self._keys.detach().clone()

    def ids(self) -> torch.Tensor:
        """Ids of the stored keys, aligned with :meth:`keys`."""
        n = int(self.filled)
        return self._ids[:n].clone() if n < self.size else self._ids.clone()

    @torch.no_grad()
    def push(self, keys: torch.Tensor, ids: torch.Tensor | None = None, gather: bool = True) -> None:
        """Append keys (B, dim) (gathered over processes when ``gather``), overwriting the oldest."""
        keys = keys.detach().to(self._keys.dtype)
        if ids is None:
            ids = torch.full((keys.shape[0],), -1, dtype=torch.long, device=keys.device)
        if gather:
            keys, ids = all_gather_no_grad(keys), all_gather_no_grad(ids.long())
        if keys.shape[0] >= self.size:  # keep only the newest ``size`` keys
            keys, ids = keys[-self.size :], ids[-self.size :]
        n, p = keys.shape[0], int(self.ptr)
        idx = (torch.arange(n, device=keys.device) + p) % self.size
        self._keys[idx] = keys
        self._ids[idx] = ids.to(self._ids.device)
        self.ptr.fill_((p + n) % self.size)
        self.filled.fill_(min(self.size, int(self.filled) + n))
