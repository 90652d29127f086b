"""The model argument shared by every ``multissl eval`` command (``--model``): an exported folder, a
run folder written by ``multissl train`` (its ``export/`` folder), a hub id or a short alias."""

from __future__ import annotations

from pathlib import Path

from multissl.errors import MultisslError


def is_run_folder(ref: str) -> bool:
    """True for a folder written by ``multissl train`` (it holds ``recipe.yaml``)."""
    return (Path(ref) / "recipe.yaml").is_file()


def exported_model(ref: str) -> str:
    """The Hugging Face folder to load for ``ref``: a run folder's ``export/``, else ``ref`` unchanged."""
    if not is_run_folder(ref):
        return ref
    export = Path(ref) / "export"
    if not (export / "config.json").is_file():
        raise MultisslError(f"{ref} is a run folder without an exported encoder (no export/config.json); "
                            "train to the end, or pass the exported folder itself")
    return str(export)
