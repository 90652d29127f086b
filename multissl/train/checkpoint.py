"""Checkpoints that lose nothing: weights (safetensors), optimizer, scheduler, RNG and loop state,
written to a temporary folder and renamed into place, so a kill at any moment leaves the previous
checkpoint intact. When ``last`` is replaced the old one is kept as ``previous``, so a run whose
``last`` already diverges has an earlier state to resume from. ``trainer_state.json`` records the SHA-256 of every file beside it, checked on
every load, so a damaged file is refused instead of giving NaN weights."""

from __future__ import annotations

import hashlib
import json
import math
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
PREVIOUS = "previous"  # the last checkpoint before checkpoints/last (kept when last is replaced)
HASHES = "sha256"  # key of trainer_state.json: {file name: SHA-256 hex digest}


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
    _chmod_like_others(path)


def _chmod_like_others(path: Path) -> None:
    """Give ``path`` the mode an ordinary new file gets (0644 under the usual umask); safetensors
    writes 0600."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_file(path: Path) -> None:
    """Check ``path`` against the SHA-256 its folder's trainer_state.json records (if it records one)."""
    path = Path(path)
    state_file = path.parent / STATE
    if not state_file.is_file() or path.name == STATE:
        return
    try:
        recorded = json.loads(state_file.read_text()).get(HASHES, {})
    except (OSError, ValueError, AttributeError):
        return  # read_state reports a broken state file with its own message
    want = recorded.get(path.name) if isinstance(recorded, dict) else None
    if want is not None and sha256(path) != want:
        raise CheckpointError(f"{path} is corrupt: it does not match the SHA-256 recorded in {state_file} when it "
                              "was written (damaged or replaced). Resume from another checkpoint (e.g. "
                              "checkpoints/best or checkpoints/last) or start again.")

def load_weights(module: torch.nn.Module, path: Path) -> None:
    """Load safetensors weights into ``module``; a CheckpointError if the file is corrupt or mismatched."""
    from safetensors.torch import load_file

    verify_file(path)
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
    shapes = [k for k in tensors if k in current and tuple(tensors[k].shape) != tuple(current[k].shape)]
    if shapes:
        k = shapes[0]
        raise CheckpointError(
            f"Weights {path} do not fit the model built from the recipe: {k} is {tuple(tensors[k].shape)} in the "
            f"checkpoint and {tuple(current[k].shape)} in the recipe's model ({len(shapes)} tensors differ). "
            "Use the recipe the checkpoint was trained with (its recipe.yaml).")
    bad = [k for k, t in tensors.items() if t.is_floating_point() and bool(torch.isnan(t).any())]
    if bad:
        raise CheckpointError(f"Weights {path} hold NaN values ({bad[0]} and {len(bad) - 1} more); "
                              "resume from another checkpoint or start again.")
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
    state = {**state, HASHES: {f.name: sha256(f) for f in sorted(tmp.iterdir())}}
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
        if folder.name == "last":  # the replaced last becomes previous: a fallback when last is already diverging
            previous = folder.with_name(PREVIOUS)
            if previous.exists():
                shutil.rmtree(previous)
            old.rename(previous)
        else:
            shutil.rmtree(old)


def verify_checkpoint(folder: Path) -> None:
    """Check every file a checkpoint's trainer_state.json records against its SHA-256."""
    for name in read_state_hashes(folder):
        if not (Path(folder) / name).is_file():
            raise CheckpointError(f"{folder}/{name} is missing; the checkpoint is incomplete. Resume from another "
                                  "checkpoint or start again.")
        verify_file(Path(folder) / name)


def read_state_hashes(folder: Path) -> dict[str, str]:
    """The {file: SHA-256} a checkpoint recorded ({} for checkpoints written before hashes existed)."""
    try:
        recorded = json.loads((Path(folder) / STATE).read_text()).get(HASHES, {})
    except (OSError, ValueError, AttributeError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


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


_STATE_TYPES = {"step": int, "epoch": int, "micro_in_epoch": int, "total_steps": int, "world_size": int}


def read_state(folder: Path) -> dict[str, Any]:
    """The loop state of a checkpoint (without its file hashes); a CheckpointError naming a bad value."""
    path = Path(folder) / STATE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"Cannot read {path}: {exc}. The checkpoint is corrupt.") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds {type(state).__name__}, not the loop state; the checkpoint is corrupt.")
    for key, kind in _STATE_TYPES.items():
        v = state.get(key, 0)
        if not isinstance(v, kind) or isinstance(v, bool) or v < 0:
            raise CheckpointError(f"{path}: '{key}' is {v!r}, not a count; the checkpoint is corrupt. Resume from "
                                  "another checkpoint or start again.")
    for key in ("best_metric", "last_val_step", "best_step"):
        v = state.get(key)
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v)):
            raise CheckpointError(f"{path}: '{key}' is {v!r}, not a finite number; the checkpoint is corrupt.")
    state.pop(HASHES, None)
    return state


def read_torch(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with a clear error on corruption."""
    verify_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"Cannot read {path}: {exc}. The checkpoint is corrupt or incomplete.") from None


def restore_optimizer(optimizer: torch.optim.Optimizer, scheduler: Any, saved: dict[str, Any]) -> dict[str, tuple]:
    """Load a checkpoint's optimizer and scheduler state, keeping the recipe's hyperparameters.

    ``optimizer`` and ``scheduler`` were just built from the recipe; their moments, step counts and
    schedule position come from ``saved``, while lr, weight decay, betas, ... stay the recipe's, so a
    resumed run with ``train.lr=...`` really runs at that rate from the resume step on (the schedule's
    multiplier at that step applies to the new peak). Returns {hyperparameter: (saved, now)} changed.
    """
    fresh = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    fresh_base = list(getattr(scheduler, "base_lrs", []))
    try:
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"The checkpoint's optimizer state does not fit this recipe's optimizer ({exc}); "
                              "resume with the recipe the run was trained with.") from None
    changed: dict[str, tuple] = {}
    for group, want in zip(optimizer.param_groups, fresh, strict=True):
        for k, v in want.items():
            if k in ("lr", "initial_lr"):
                continue
            if group.get(k) != v:
                changed[k] = (group.get(k), v)
                group[k] = v
    old_base = list(getattr(scheduler, "base_lrs", []))
    if fresh_base and old_base != fresh_base:
        changed["lr"] = (old_base[0], fresh_base[0])
        scheduler.base_lrs = fresh_base
        for group, base, fn in zip(optimizer.param_groups, fresh_base, scheduler.lr_lambdas, strict=True):
            group["initial_lr"] = base
            group["lr"] = base * fn(scheduler.last_epoch)
        scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]
    return changed
