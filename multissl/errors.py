"""One error family for everything a user can fix: each message says what went wrong and what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MultisslError(Exception):
    """An error caused by user input (recipe, data, model, checkpoint); printed without a traceback."""


class RecipeError(MultisslError):
    """A recipe key or value is invalid."""


class DataError(MultisslError):
    """A data file or folder is missing or unreadable."""


class CheckpointError(MultisslError):
    """A checkpoint is missing, incomplete or corrupt."""


class TrainingDivergedError(MultisslError):
    """The loss became NaN or infinite."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean X?' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""
