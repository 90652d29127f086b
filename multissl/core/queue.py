"""FIFO feature queue of past keys (MoCo, ESimCSE, CoCoSoDa, ALBEF), with optional ids.

The queue is a module with buffers, so it lives on the method's device and is saved in every
checkpoint. A method's ``forward`` only STAGES the keys it wants enqueued (:meth:`FeatureQueue.stage`,
appended per micro-batch); the trainer pushes them once per optimizer step, gathered over processes
(:meth:`FeatureQueue.flush`, called by :func:`multissl.core.method.after_optimizer_step`). So gradient
accumulation and many processes fill the queue exactly as one process on the global batch does, and
every micro-batch of a step sees the same queue.
"""

from __future__ import annotations

import torch
from torch import nn

from multissl.core.distributed import all_gather_no_grad, world_size


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
        self._staged: list[tuple[torch.Tensor, torch.Tensor]] = []  # (keys, ids) per micro-batch, not saved

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

    @property
    def num_staged(self) -> int:
        """Keys staged on this process since the last flush."""
        return sum(k.shape[0] for k, _ in self._staged)

    @torch.no_grad()
    def stage(self, keys: torch.Tensor, ids: torch.Tensor | None = None) -> None:
        """Stage keys (B, dim) to enqueue at the next :meth:`flush` (appended, never overwritten).

        Called from a method's ``forward``; a no-op in eval mode, so validation never fills the queue.
        """
        if not self.training:
            return
        keys = keys.detach()
        if ids is None:
            ids = torch.full((keys.shape[0],), -1, dtype=torch.long, device=keys.device)
        self._staged.append((keys, ids.detach().long()))

    @torch.no_grad()
    def flush(self, gather: bool = True) -> int:
        """Push every staged key at once, gathered over processes; returns how many keys were pushed.

        With equal micro-batches on every process the gathered order is micro-batch-major, then rank
        (the order of one process on the global batch: micro-batch 1 of ranks 0..W-1, then micro-batch 2).
        """
        staged, self._staged = self._staged, []
        if gather and world_size() > 1:
            counts = all_gather_no_grad(torch.tensor([len(staged)], device=self._keys.device))
            if int(counts.min()) != int(counts.max()):
                raise RuntimeError(f"FeatureQueue.flush: processes staged {counts.tolist()} micro-batches")
            if not staged:
                return 0
            shapes = {k.shape for k, _ in staged}
            if len(shapes) == 1:  # (M, b, D) -> gathered (W*M, b, D) -> micro-batch-major (M*W*b, D)
                m = len(staged)
                keys = all_gather_no_grad(torch.stack([k for k, _ in staged]))
                ids = all_gather_no_grad(torch.stack([i for _, i in staged]))
                w = keys.shape[0] // m
                keys = keys.view(w, m, *keys.shape[1:]).transpose(0, 1).reshape(-1, keys.shape[-1])
                ids = ids.view(w, m, -1).transpose(0, 1).reshape(-1)
            else:
                keys = all_gather_no_grad(torch.cat([k for k, _ in staged]))
                ids = all_gather_no_grad(torch.cat([i for _, i in staged]))
        else:
            if not staged:
                return 0
            keys, ids = torch.cat([k for k, _ in staged]), torch.cat([i for _, i in staged])
        self.push(keys, ids, gather=False)
        return keys.shape[0]

    @torch.no_grad()
    def push(self, keys: torch.Tensor, ids: torch.Tensor | None = None, gather: bool = True) -> None:
        """Append keys (B, dim) now (gathered over processes when ``gather``), overwriting the oldest.

        Methods stage keys instead (:meth:`stage`); ``push`` is for filling a queue outside training.
        """
        keys = keys.detach().to(self._keys.dtype)
        if ids is None:
            ids = torch.full((keys.shape[0],), -1, dtype=torch.long, device=keys.device)
        if gather:
            keys, ids = all_gather_no_grad(keys), all_gather_no_grad(ids.long())
        if keys.shape[0] >= self.size:  # keep only the newest ``size`` keys
            keys, ids = keys[-self.size :], ids[-self.size :]
        n, p = keys.shape[0], int(self.ptr)
        idx = (torch.arange(n, device=keys.device) + p) % self.size
        self._keys[idx] = keys.to(self._keys.device)
        self._ids[idx] = ids.to(self._ids.device)
        self.ptr.fill_((p + n) % self.size)
        self.filled.fill_(min(self.size, int(self.filled) + n))
