"""Per-sample random numbers that do not depend on how the global batch is split over processes.

Inside :func:`shared_batch_seed` (the trainer enters it around every micro-batch with a seed made of
(run seed, optimizer step, micro-batch)), :func:`batch_rand` draws the random numbers of the WHOLE
global batch from a generator that every process seeds alike, and returns this process's rows. So
sample ``i`` of a global batch gets the same augmentation with 1 or N processes, and resuming needs no
saved state. Outside the context (a plain PyTorch loop) it is ``torch.rand`` on the global RNG.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import torch

from multissl.core.distributed import rank, world_size

_GENERATORS: ContextVar[dict | None] = ContextVar("multissl_batch_generators", default=None)


@contextlib.contextmanager
def shared_batch_seed(seed: int) -> Iterator[None]:
    """Within this block, :func:`batch_rand` draws from generators seeded with ``seed`` on every process."""
    token = _GENERATORS.set({"seed": int(seed) % (2**63)})
    try:
        yield
    finally:
        _GENERATORS.reset(token)


def step_seed(seed: int, step: int, micro: int) -> int:
    """A seed for micro-batch ``micro`` of optimizer step ``step`` (the same on every process)."""
    return (seed * 1_000_003 + step) * 1_009 + micro


def batch_rand(rows: int, *shape: int, device: torch.device | str | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Uniform [0, 1) numbers of shape (rows, *shape) for this process's ``rows`` samples.

    Under :func:`shared_batch_seed` the numbers of sample ``i`` are those of global row
    ``rank * rows + i``, identical to what one process drawing for the global batch gets.
    """
    gens = _GENERATORS.get()
    if gens is None:
        return torch.rand((rows, *shape), device=device, dtype=dtype)
    device = torch.device(device) if device is not None else torch.device("cpu")
    key = str(device)
    if key not in gens:
        gens[key] = torch.Generator(device=device).manual_seed(gens["seed"])
    world = world_size()
    full = torch.rand((rows * world, *shape), device=device, dtype=dtype, generator=gens[key])
    return full[rank() * rows : (rank() + 1) * rows] if world > 1 else full
