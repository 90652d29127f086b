"""Pretrained image-tower weights: a local file, the local Hugging Face cache, or a download, and when
none is possible one clear line at once (never minutes of retries ending in a traceback).

``model.image_pretrained`` is read per library: timm ``true`` / ``false``; open_clip a tag (``openai``,
``laion2b_s34b_b79k``) or a checkpoint file; ``hf:`` towers ``true`` (default) / ``false`` (random
init); torchvision a state-dict file. A path to an existing file always means "load this file".
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from multissl.errors import RecipeError

HUB_HOST = "huggingface.co"


def as_flag(value: bool | str, default: bool = False) -> bool:
    """``true`` / ``false`` written as a bool or a string ('' = ``default``)."""
    if isinstance(value, bool):
        return value
    v = value.strip().lower()
    if v == "":
        return default
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no", "none"):
        return False
    raise RecipeError(f"model.image_pretrained: expected true or false (or a local weights file), got '{value}'")


def local_file(value: bool | str) -> Path | None:
    """The weights file ``value`` names, when it is the path of an existing file."""
    if isinstance(value, str) and value.strip():
        p = Path(value).expanduser()
        if p.is_file():
            return p
        if any(value.endswith(ext) for ext in (".safetensors", ".bin", ".pt", ".pth", ".ckpt")):
            raise RecipeError(f"model.image_pretrained: weights file '{value}' not found")
    return None


def hub_reachable() -> bool:
    """False when the Hugging Face hub cannot be reached: HF_HUB_OFFLINE=1, or its name does not resolve
    (a DNS lookup only; the hub client would otherwise retry for minutes)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.getaddrinfo(HUB_HOST, 443)
    except OSError:
        return False
    return True


def cached_hub_file(repo_id: str, filenames: tuple[str, ...]) -> Path | None:
    """A file of ``repo_id`` already in the local Hugging Face cache, else None."""
    from huggingface_hub import try_to_load_from_cache

    for name in filenames:
        hit = try_to_load_from_cache(repo_id.strip("/"), name)
        if isinstance(hit, str) and Path(hit).is_file():
            return Path(hit)
    return None


def unavailable(what: str, source: str, how: str) -> RecipeError:
    return RecipeError(f"cannot fetch {what} ({source}): the Hugging Face hub is not reachable and the weights are "
                       f"not in the local cache. {how}")


def timm_weights(model: str, value: bool | str) -> Path | bool:
    """For ``timm.create_model``: a local file to load, True (download / cache) or False."""
    path = local_file(value)
    if path is not None:
        return path
    if not as_flag(value):
        return False
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(model)
    except Exception:  # noqa: BLE001 - unknown names fail in create_model with timm's own message
        cfg = None
    repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if repo:
        cached = cached_hub_file(repo, ("model.safetensors", "pytorch_model.bin", "open_clip_model.safetensors"))
        if cached is not None:
            return cached
    if not hub_reachable():
        raise unavailable(f"timm weights for '{model}'", f"hub repo {repo or 'unknown'}",
                          "Download them where you are online and pass the file: "
                          "model.image_pretrained=/path/to/model.safetensors (or false to train from scratch).")
    return True


def open_clip_weights(model: str, value: bool | str) -> str | None:
    """For ``open_clip.create_model``: a tag, a local checkpoint path, or None (random init)."""
    path = local_file(value)
    if path is not None:
        return str(path)
    if isinstance(value, bool):
        if value:
            raise RecipeError("model.image_pretrained for open_clip is a tag (e.g. 'openai') or a checkpoint file, "
                              "not true")
        return None
    tag = value.strip()
    if tag.lower() in ("", "false", "none"):
        return None
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model, tag)
    if not cfg:
        tags = [t for m, t in open_clip.list_pretrained() if m == model]
        raise RecipeError(f"open_clip has no weights '{tag}' for {model}; tags: {tags[:8]}")
    repo = cfg.get("hf_hub", "")
    if repo:
        cached = cached_hub_file(repo, ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"))
        if cached is not None:
            return str(cached)
    if not hub_reachable():
        raise unavailable(f"open_clip weights '{tag}' for {model}", f"hub repo {repo.strip('/') or cfg.get('url')}",
                          "Download open_clip_model.safetensors where you are online and pass it: "
                          "model.image_pretrained=/path/to/open_clip_model.safetensors.")
    return tag


def hf_weights(name: str, value: bool | str) -> bool:
    """For ``hf:`` towers: load the weights (True, default) or build from the config only (False)."""
    load = as_flag(value, default=True)
    if load and not Path(name).expanduser().exists() and not hub_reachable():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(name, "config.json"), str):
            raise unavailable(f"the Hugging Face model '{name}'", "hub", "Pass a local folder written by "
                              "save_pretrained: model.image_tower=hf:/path/to/folder.")
    return load
