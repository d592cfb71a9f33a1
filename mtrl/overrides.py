"""Configs to and from JSON, and ``--set KEY=VALUE`` overrides, validated by pydantic: the one
implementation for every config dataclass (``RunConfig``, ``EnvSettings``, ...). A leaf
module (it imports nothing of mtrl), so every layer may use it.

pydantic's ``TypeAdapter`` converts and validates the frozen config dataclasses as they are
(nested groups, ``Optional``/union/``Literal`` fields, tuples of tuples, bools from text) and
runs their ``__post_init__`` checks, so no per-type conversion is written here. What stays
ours is the command-line syntax: dots reach nested groups, tuple fields take comma-separated
values or JSON, ``none``/``null`` clear an optional field, and every mistake is one line
naming the key. All overrides go into one plain dict and the config is built and checked
once, so a cross-field check never sees half of the user's overrides (issue 21, defect 2b).
"""

from __future__ import annotations

import functools
import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

T = TypeVar("T")
Path = tuple[str, ...]


@functools.cache
def _adapter(cls: type) -> TypeAdapter[Any]:
    return TypeAdapter(cls)


def to_json(config: Any) -> str:
    """The config as JSON (tuples as lists), the format checkpoints store."""
    # fallback=str: an unusual value in an ``Any`` field is written as text, as it always was.
    data = _adapter(type(config)).dump_python(config, mode="json", fallback=str, warnings=False)
    return json.dumps(data)


def from_json(cls: type[T], text: str) -> T:
    """Rebuild ``cls`` from ``to_json`` output; keys missing from older runs take defaults."""
    data = json.loads(text)
    unknown = _unknown_keys(cls, data, ())
    if unknown:
        raise ValueError(f"unknown config key(s) {unknown} for {cls.__name__}")
    return _validate(cls, data, {})


def apply_overrides(config: T, pairs: Sequence[str]) -> T:
    """``["learner.lr=3e-4", "tasks=classic/CartPole,dmc/cartpole-balance"]`` on ``config``.

    Later pairs win over earlier ones for the same key; the result is validated once.
    """
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"bad override {pair!r}: expected KEY=VALUE (a dotted field name)")
        values.pop(key, None)  # the last one given counts (and keeps its place)
        values[key] = text
    return replace_values(config, values)


def replace_values(config: T, values: Mapping[str, Any]) -> T:
    """``{"atari.size": 84, "atari.grayscale": "true"}`` on ``config``: text is read as
    ``--set`` reads it, other values are taken as they are; validated once, like overrides."""
    cls = type(config)
    data = _adapter(cls).dump_python(config, warnings=False)  # nested dicts, tuples kept
    given: dict[Path, Any] = {}
    for key, value in values.items():
        path = tuple(key.split("."))
        hint = _field_hint(cls, path, key)
        node = data
        for name in path[:-1]:
            node = node[name]
        node[path[-1]] = _from_text(hint, value, key) if isinstance(value, str) else value
        given[path] = value
    return _validate(cls, data, given)


def _validate(cls: type[T], data: dict[str, Any], given: dict[Path, Any]) -> T:
    try:
        return _adapter(cls).validate_python(_tuples(data))
    except ValidationError as error:
        raise ValueError(_describe(cls, error, given)) from None


def _describe(cls: type, error: ValidationError, given: dict[Path, Any]) -> str:
    """One line for all of pydantic's errors, each naming the key (and the user's text)."""
    lines: dict[Path, str] = {}
    for item in error.errors():
        path = _field_path(cls, item["loc"])
        if path in lines:  # a union reports once per member: the first says enough
            continue
        message = item["msg"]
        if item["type"] in ("value_error", "assertion_error"):
            # A __post_init__ check: its message already names the values at fault.
            text = str(item.get("ctx", {}).get("error", message))
            named = not path or text.startswith("bad ")  # "bad setting atari.size=2: ..."
            lines[path] = text if named else f"{'.'.join(path)}: {text}"
            continue
        key = next((k for k in given if path[: len(k)] == k), None)
        if key:
            shown = f"{'.'.join(key)}={given[key]!r}"
        else:  # a value from the script or a checkpoint: shortened, it may be a whole group
            shown = f"{'.'.join(path) or 'config'}={_short(item['input'])}"
        lines[path] = f"bad value {shown}: {message[:1].lower()}{message[1:]}"
    return "; ".join(lines.values()).replace("\n", " ")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _field_path(cls: type, loc: tuple[int | str, ...]) -> Path:
    """The config field an error location points into (item indices and union tags cut)."""
    path: list[str] = []
    for part in loc:
        if not (is_dataclass(cls) and isinstance(part, str)):
            break
        hints = typing.get_type_hints(cls)
        if part not in hints:
            break
        path.append(part)
        cls = hints[part]
    return tuple(path)


def _field_hint(cls: type, path: Path, key: str) -> Any:
    """The type of the field ``path`` names; a one-line error for unknown keys and groups."""
    hint: Any = cls
    for depth, name in enumerate(path):
        if not is_dataclass(hint):
            parent = ".".join(path[:depth])
            raise ValueError(f"unknown config key {key!r}: {parent} has no sub-fields")
        names = [f.name for f in fields(hint)]
        if name not in names:
            raise ValueError(f"unknown config key {key!r}; valid here: {', '.join(names)}")
        hint = typing.get_type_hints(hint)[name]
    if is_dataclass(hint):
        raise ValueError(f"config key {key!r} is a group; set one of its fields")
    return hint


def _from_text(hint: Any, text: str, key: str) -> Any:
    """What pydantic converts further: JSON lists, comma lists, None, or the text itself."""
    options = _options(hint)
    stripped = text.strip()
    if stripped[:1] in ("[", "{") and str not in options:
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as error:
            raise ValueError(f"bad value {key}={text!r}: not valid JSON ({error})") from None
    if stripped.lower() in ("none", "null") and type(None) in options:
        return None
    if any(typing.get_origin(o) is tuple or o is tuple for o in options):
        return tuple(part for part in text.split(",") if part)
    return text


def _options(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _tuples(value: Any) -> Any:
    """JSON lists back to tuples at every depth: the configs hold only tuples, and values of
    ``Any`` fields (``model_overrides``) must stay hashable like the defaults."""
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(_tuples(v) for v in value)
    return value


def _unknown_keys(cls: type, data: Any, prefix: Path) -> list[str]:
    """Keys of ``data`` (at any depth) that name no field of ``cls``, dotted."""
    if not (is_dataclass(cls) and isinstance(data, dict)):
        return []
    hints = typing.get_type_hints(cls)
    unknown = [".".join((*prefix, k)) for k in data if k not in hints]
    for name, value in data.items():
        if name in hints:
            unknown += _unknown_keys(hints[name], value, (*prefix, name))
    return sorted(unknown)
