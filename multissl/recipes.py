"""Recipes: YAML files (safe_load) validated into typed objects, with ``key.sub=value`` overrides.

A recipe has ``name``, ``description``, ``task`` (a registered task), ``train`` (:class:`TrainConfig`)
and the task's own sections. Recipes are found by path or by short name (``text/simcse-minilm``)
under the project's ``recipes/`` folder.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from multissl.config import from_dict, to_dict
from multissl.errors import RecipeError, did_you_mean

TOP_LEVEL = ("name", "description", "task", "train")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's booleans: only true / false (any case) are booleans.

    YAML 1.1 also reads yes / no / on / off / y / n as booleans, so ``data.source=off`` became False:
    here they stay the text the user typed, and a bool field accepts them (``config._convert``)."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in rs if tag != "tag:yaml.org,2002:bool"]
    for ch, rs in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` with YAML 1.2 booleans (see :class:`_Loader`)."""
    return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader subclass


def recipes_root() -> Path:
    """The ``recipes/`` folder shipped beside the package (an editable install / source checkout)."""
    return Path(__file__).resolve().parent.parent / "recipes"


def list_recipes() -> dict[str, tuple[Path, str]]:
    """Short name -> (path, description) of every shipped recipe; reads YAML only (fast)."""
    out = {}
    root = recipes_root()
    for path in sorted(root.glob("**/*.yaml")):
        try:
            data = safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            data = {}
        out[str(path.relative_to(root).with_suffix(""))] = (path, str(data.get("description", "")))
    return out


def resolve_recipe_path(name_or_path: str) -> Path:
    """A recipe file from a path or a short name, or a RecipeError listing close names."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = list_recipes()
    key = name_or_path.removesuffix(".yaml").removeprefix("recipes/")
    if key in shipped:
        return shipped[key][0]
    raise RecipeError(
        f"Recipe '{name_or_path}' not found (neither a file nor a shipped recipe).{did_you_mean(key, shipped)} "
        "Run `multissl recipes` to list them."
    )


def parse_override(text: str) -> tuple[list[str], Any]:
    """'train.lr=3e-5' -> (['train', 'lr'], 3e-05); the value is parsed as YAML."""
    if "=" not in text:
        raise RecipeError(f"Override '{text}' must look like key.sub=value")
    key, _, raw = text.partition("=")
    try:
        value = safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of ``data`` with each dotted override set (unknown keys are caught by validation)."""
    data = copy.deepcopy(data)
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for i, k in enumerate(keys[:-1]):
            child = node.get(k)
            if child is None:
                child = node[k] = {}
            if not isinstance(child, dict):
                raise RecipeError(f"Override '{text}': '{'.'.join(keys[: i + 1])}' is not a section")
            node = child
        node[keys[-1]] = value
    return data


@dataclass
class Recipe:
    """A validated recipe: common fields, the train config and the task's config object."""

    name: str
    description: str
    task: str
    train: Any  # TrainConfig
    config: Any  # the task's config dataclass
    source: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "description": self.description, "task": self.task, "train": to_dict(self.train)}
        out.update(to_dict(self.config))
        return out


def build_recipe(data: dict[str, Any], source: Path | None = None) -> Recipe:
    """Validate a recipe dict against its task's schema."""
    from multissl.registry import lookup
    from multissl.train.config import TrainConfig

    if not isinstance(data, dict):
        raise RecipeError("A recipe must be a YAML mapping with at least 'name' and 'task'")
    if "task" not in data:
        raise RecipeError("Recipe has no 'task' key; run `multissl recipes` to see examples")
    task_cls = lookup("TASKS", str(data["task"])).load()
    config_cls = task_cls.config_class
    import dataclasses

    sections = [f.name for f in dataclasses.fields(config_cls)]
    valid = list(TOP_LEVEL) + sections
    for key in data:
        if key not in valid:
            raise RecipeError(f"Unknown recipe key '{key}'.{did_you_mean(str(key), valid)} Valid keys: {', '.join(valid)}.")
    name = str(data.get("name") or (source.stem if source else "recipe"))
    train = from_dict(TrainConfig, data.get("train") or {}, "train")
    config = from_dict(config_cls, {k: data[k] for k in sections if k in data}, "")
    return Recipe(name, str(data.get("description", "")), str(data["task"]), train, config, source)


def load_recipe(name_or_path: str, overrides: list[str] | None = None) -> Recipe:
    """Read, override and validate a recipe; every problem is a RecipeError naming the key."""
    path = resolve_recipe_path(name_or_path)
    try:
        data = safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RecipeError(f"Recipe {path} is not valid YAML: {exc}") from None
    data = apply_overrides(data or {}, overrides or [])
    return build_recipe(data, path)
