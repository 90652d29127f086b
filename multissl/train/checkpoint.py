"""Checkpoints that lose nothing: weights (safetensors), optimizer, scheduler, RNG and loop state,
written to a temporary folder and renamed into place, so a kill at any moment leaves the previous
checkpoint intact."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from multissl.errors import CheckpointError

WEIGHTS = "model.safetensors"
STATE = "trainer_state.json"
OPTIM = "optimizer.pt"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states in a form ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state()
    state = {
        "python": _to_lists(random.getstate()),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_to_tuples(state["python"]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(x: Any) -> Any:
    return [_to_lists(v) for v in x] if isinstance(x, tuple) else x


def _to_tuples(x: Any) -> Any:
    return tuple(_to_tuples(v) for v in x) if isinstance(x, list) else x


def save_weights(module: torch.nn.Module, path: Path) -> None:
    """State dict (parameters and buffers: EMA copies, queues) to safetensors; shared tensors once."""
    from safetensors.torch import save_file

    state = module.state_dict()
    seen: dict[tuple, str] = {}
    tensors = {}
    for name, t in state.items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.dtype) if t.numel() else None
        if key is not None and key in seen:
            continue  # tied weight: stored once, restored by load_state_dict(strict=False) tying
        if key is not None:
            seen[key] = name
        tensors[name] = t.detach().to("cpu").contiguous()
    save_file(tensors, str(path), metadata={"format": "pt"})


def load_weights(module: torch.nn.Module, path: Path) -> None:
    """Load safetensors weights into ``module``; a CheckpointError if the file is corrupt or mismatched."""
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises several types on corrupt files
        raise CheckpointError(f"Cannot read weights {path}: {exc}. The file is corrupt or incomplete; "
                              "resume from another checkpoint or start again.") from None
    current = module.state_dict()
    missing = [k for k in current if k not in tensors]
    unexpected = [k for k in tensors if k not in current]
    # tied weights are stored once: a missing key that shares storage with a stored one is fine
    ptrs = {current[k].untyped_storage().data_ptr() for k in tensors if k in current}
    missing = [k for k in missing if current[k].untyped_storage().data_ptr() not in ptrs]
    if missing or unexpected:
        raise CheckpointError(
            f"Weights {path} do not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}. "
            "Was the checkpoint written by a different recipe?")
    module.load_state_dict(tensors, strict=False)


def write_checkpoint(
    folder: Path, module: torch.nn.Module, state: dict[str, Any], optimizer_state: dict[str, Any] | None = None,
    extra_rng: dict[str, Any] | None = None,
) -> None:
    """Atomically (re)write ``folder`` with weights, loop state, optimizer/scheduler and RNG."""
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_weights(module, tmp / WEIGHTS)
    if optimizer_state is not None:
        torch.save(optimizer_state, tmp / OPTIM)
    torch.save(extra_rng if extra_rng is not None else rng_state(), tmp / "rng.pt")
    (tmp / STATE).write_text(json.dumps(state, indent=2))
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(tmp)
    old = folder.with_name(f".{folder.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    _fsync_dir(folder.parent)
    if old.exists():
        shutil.rmtree(old)


def find_checkpoint(path: Path) -> Path:
    """The checkpoint folder for a run folder, a checkpoints/ folder or a checkpoint itself."""
    path = Path(path)
    candidates = [path, path / "last", path / "checkpoints" / "last", path / ".last.old",
                  path / "checkpoints" / ".last.old"]
    for c in candidates:
        if (c / STATE).is_file() and (c / WEIGHTS).is_file():
            return c
    if not path.exists():
        raise CheckpointError(f"Checkpoint path {path} does not exist.")
    raise CheckpointError(
        f"No complete checkpoint under {path} (looked for {STATE} and {WEIGHTS} in {path}, "
        f"{path}/last, {path}/checkpoints/last). Pass a run folder written by `multissl train`.")


def read_state(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(folder) / STATE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"Cannot read {folder}/{STATE}: {exc}. The checkpoint is corrupt.") from None


def read_torch(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with a clear error on corruption."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"Cannot read {path}: {exc}. The checkpoint is corrupt or incomplete.") from None
