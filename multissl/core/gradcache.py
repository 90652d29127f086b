"""Cached (GradCache-style) contrastive losses: large in-batch negatives with the memory of a small batch.

Gao, Zhang, Han, Callan. "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup"
(RepL4NLP 2021); the same idea as sentence-transformers' ``CachedMultipleNegativesRankingLoss``.

The encoder runs over the batch in chunks twice: first without a graph to get every embedding, then,
during ``loss.backward()``, chunk by chunk again with the RNG state (dropout masks) of the first pass
restored, back-propagating the cached gradient of the loss with respect to that chunk's embeddings.
Only the cheap part (similarities, heads applied in ``loss_fn``) keeps a full-batch graph, so the loss
value and every gradient equal the plain loss on the whole batch while the encoder's activation memory
is that of one chunk.

The replay happens inside a custom autograd function, so it composes with any loop: the multissl
trainer (gradient accumulation, autocast) or a user's ``loss.backward()``. Under DDP the replayed
backward runs re-entrantly (like reentrant activation checkpointing): use it single-process or with
``find_unused_parameters`` off and static graphs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch


class _RngState:
    """CPU and (current) CUDA generator states, captured before a chunk and restorable for its replay."""

    def __init__(self, device: torch.device | None) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda_device = device if (device is not None and device.type == "cuda") else None
        self.cuda = torch.cuda.get_rng_state(self.cuda_device) if self.cuda_device is not None else None

    def fork(self):
        devices = [self.cuda_device] if self.cuda_device is not None else []
        ctx = torch.random.fork_rng(devices=devices, enabled=True)

        class _Ctx:
            def __enter__(inner):
                ctx.__enter__()
                torch.set_rng_state(self.cpu)
                if self.cuda is not None:
                    torch.cuda.set_rng_state(self.cuda, self.cuda_device)

            def __exit__(inner, *exc):
                return ctx.__exit__(*exc)

        return _Ctx()


def _device_of(x: Any) -> torch.device | None:
    if isinstance(x, torch.Tensor):
        return x.device
    if isinstance(x, dict):
        for v in x.values():
            d = _device_of(v)
            if d is not None:
                return d
    if isinstance(x, (list, tuple)):
        for v in x:
            d = _device_of(v)
            if d is not None:
                return d
    return None


class _Replay(torch.autograd.Function):
    """Returns a precomputed chunk embedding; its backward re-encodes the chunk and back-propagates."""

    @staticmethod
    def forward(ctx, anchor: torch.Tensor, embedding: torch.Tensor, replay: Callable[[torch.Tensor], None]):
        ctx.replay = replay
        return embedding

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        ctx.replay(grad)
        return None, None, None


def cached_embeddings(
    embed_fn: Callable[[Any], torch.Tensor], chunks: Sequence[Any],
) -> torch.Tensor:
    """Embed ``chunks`` one by one without a graph; return their concatenation (N, D) as a tensor whose
    backward replays ``embed_fn`` per chunk (same dropout masks) and back-propagates into its parameters.

    Call it once per view (e.g. twice on the same chunks for SimCSE's two dropout views), then compute
    any loss on the results: ``loss.backward()`` gives the gradients of the uncached computation.
    """
    outs = []
    anchor = torch.empty(0, requires_grad=True)  # makes autograd call _Replay.backward
    for chunk in chunks:
        device = _device_of(chunk)
        state = _RngState(device)
        autocast = _autocast_state(device)
        with torch.no_grad():
            emb = embed_fn(chunk)

        def replay(grad: torch.Tensor, chunk=chunk, state=state, autocast=autocast) -> None:
            with state.fork(), torch.enable_grad(), _autocast_ctx(autocast):
                out = embed_fn(chunk)
            torch.autograd.backward(out, grad.to(out.dtype))

        if torch.is_grad_enabled():
            emb = _Replay.apply(anchor, emb.detach(), replay)
        outs.append(emb)
    return torch.cat(outs, 0)


def _autocast_state(device: torch.device | None) -> tuple[str, bool, torch.dtype] | None:
    if device is None:
        return None
    kind = device.type
    try:
        return kind, torch.is_autocast_enabled(kind), torch.get_autocast_dtype(kind)
    except (AttributeError, RuntimeError, TypeError):  # older torch / unsupported device type
        return None


def _autocast_ctx(state: tuple[str, bool, torch.dtype] | None):
    import contextlib

    if state is None or not state[1]:
        return contextlib.nullcontext()
    return torch.autocast(state[0], dtype=state[2])


def split_batch(batch: dict[str, torch.Tensor], chunk_size: int) -> list[dict[str, torch.Tensor]]:
    """Split a dict of (B, ...) tensors into chunks of ``chunk_size`` rows (the last may be smaller)."""
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    n = next(iter(batch.values())).shape[0]
    return [{k: v[i : i + chunk_size] for k, v in batch.items()} for i in range(0, n, chunk_size)]
