"""Typed configuration from plain dicts: dataclasses validated with clear, "did you mean" errors.

Every recipe section is a dataclass whose fields carry the paper's default and a one-line help
(``param(default, "help")``). :func:`from_dict` checks keys and types and names the exact dotted key
that is wrong, so a typo fails before any work starts.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from multissl.errors import RecipeError, did_you_mean

_MISSING = dataclasses.MISSING
_BOOL_WORDS = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False, "y": True, "n": False}


def param(default: Any = _MISSING, help: str = "", **kwargs: Any) -> Any:
    """A dataclass field with a help line; mutable defaults (lists, dicts) are copied per instance."""
    metadata = {"help": help}
    if isinstance(default, (list, dict, set)) or dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda d=default: copy.deepcopy(d), metadata=metadata, **kwargs)
    if default is _MISSING:
        return dataclasses.field(metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def field_help(cls: type) -> dict[str, str]:
    """Field name -> help line of a config dataclass."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``, raising :class:`RecipeError` naming the bad dotted key."""
    if data is None:
        data = {}
    if dataclasses.is_dataclass(data):
        return data
    if not isinstance(data, dict):
        raise RecipeError(f"'{where or cls.__name__}' must be a mapping of keys to values, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in fields:
            prefix = f"{where}." if where else ""
            hint = did_you_mean(str(key), fields).replace("'", f"'{prefix}", 1) if did_you_mean(str(key), fields) else ""
            raise RecipeError(f"Unknown recipe key '{path}'.{hint} Valid keys here: {', '.join(sorted(fields))}.")
        kwargs[key] = _convert(hints[key], value, path)
    missing = [n for n, f in fields.items() if n not in kwargs and f.default is _MISSING
               and f.default_factory is _MISSING]
    if missing:
        raise RecipeError(f"Missing required recipe key(s): {', '.join((where + '.' if where else '') + m for m in missing)}")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except (ValueError, AssertionError) as exc:
            raise RecipeError(f"Invalid value in '{where or cls.__name__}': {exc}") from None
    return obj


def to_dict(obj: Any) -> Any:
    """A plain (YAML-serialisable) dict of a config dataclass."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, path)
            except RecipeError as exc:
                errors.append(str(exc))
        names = " or ".join(_type_name(a) for a in args)
        raise RecipeError(f"Recipe key '{path}' must be {names}, got {value!r}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            hint = did_you_mean(str(value), [str(c) for c in choices])
            raise RecipeError(f"Recipe key '{path}' must be one of {list(choices)}, got {value!r}.{hint}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise RecipeError(f"Recipe key '{path}' must be a list, got {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise RecipeError(f"Recipe key '{path}' must have {len(args)} items, got {len(value)}")
            return tuple(_convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
        item = args[0] if args else Any
        out = [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"Recipe key '{path}' must be a mapping, got {value!r}")
        vt = get_args(tp)[1] if get_args(tp) else Any
        return {k: _convert(vt, v, f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _BOOL_WORDS:  # YAML 1.1 words, read as text
            return _BOOL_WORDS[value.lower()]
        raise RecipeError(f"Recipe key '{path}' must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise RecipeError(f"Recipe key '{path}' must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise RecipeError(f"Recipe key '{path}' must be a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise RecipeError(f"Recipe key '{path}' must be a string, got {value!r}")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise RecipeError(f"Recipe key '{path}' must be {_type_name(tp)}, got {value!r}")
