"""The contract between a recipe and an adapter: a Task builds the method, data and evaluators.

An adapter registers tasks in its ``catalog.py`` (``TASKS = {"text.simcse": ("multissl.text.tasks:SimCSETask",
"one line")}``). A task's ``config_class`` is a dataclass whose fields are the recipe sections besides
``name``, ``description``, ``task`` and ``train`` (typically ``model``, ``data``, ``method``, ``eval``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from multissl.core.method import Method
    from multissl.recipes import Recipe

Metrics = dict[str, float]


@dataclass
class TaskParts:
    """What the trainer needs to run a recipe.

    ``evaluate`` returns VALIDATION metrics only (keys like 'val/spearman'); the trainer calls it
    periodically and selects the best checkpoint on ``train.select_metric``. ``final_evaluate`` runs
    once on the selected weights and may report test metrics (keys like 'test/spearman').
    """

    method: Method
    train_data: Dataset
    collate_fn: Callable[[list[Any]], Any] | None = None
    evaluate: Callable[[Method], Metrics] | None = None
    final_evaluate: Callable[[Method], Metrics] | None = None
    export: Callable[[Method, Path], None] | None = None


def section_kwargs(section: Any) -> dict[str, Any]:
    """A recipe section (dataclass) as constructor keywords: ``Method(inputs, **section_kwargs(cfg.method))``
    writes each parameter once, in the section, with the paper's value as its default."""
    return {f.name: getattr(section, f.name) for f in fields(section)}


class Task:
    """Base class of a recipe kind. Subclasses set ``config_class`` and implement :meth:`build`."""

    config_class: ClassVar[type]
    description: ClassVar[str] = ""
    embed_keywords: ClassVar[tuple[str, ...]] = ()  # `multissl embed --data WORD` values that are not paths

    def build(self, recipe: Recipe) -> TaskParts:  # pragma: no cover - abstract
        raise NotImplementedError

    def build_method(self, recipe: Recipe) -> Method:
        """Only the method, for ``multissl embed`` (weights are loaded afterwards). The default builds the
        whole task; a task whose method needs no training data overrides it to skip loading the data."""
        return self.build(recipe).method

    def embed_data(self, recipe: Recipe, path: str) -> tuple[Dataset, Callable | None]:
        """Dataset (and collate) of inputs to embed for ``multissl embed --data PATH``."""
        raise NotImplementedError(f"{type(self).__name__} does not support `multissl embed` yet")
