"""Typed run configs: ``--set FIELD=VALUE`` overrides, JSON round trip.

Every model in ratespike keeps all its constants in one frozen dataclass with the paper's values as
defaults. This module is the one place that turns command-line strings into typed field values, so
every rule and every spiking experiment gets the same checks: an unknown field or a value of the wrong
type is a :class:`~bridge.errors.ConfigError` naming the field.
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from bridge.errors import ConfigError, unknown_choice

C = TypeVar("C")

#: largest seed torch and NumPy take (torch.manual_seed refuses 2**63 and above)
MAX_SEED = 2**63 - 1

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(field: str, text: str, tp: Any) -> Any:
    """Convert the string ``text`` to the annotated type ``tp`` of config field ``field``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.lower() in {"none", "null", ""}:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(field, text, a)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"field {field!r}: cannot read {text!r} as {tp}")
    if origin is typing.Literal:
        for a in args:
            if str(a) == text:
                return a
        raise unknown_choice(f"value for {field!r}", text, [str(a) for a in args])
    if origin in (tuple, list):
        parts = [p for p in text.replace("[", "").replace("]", "").replace("(", "").replace(")", "").split(",")]
        parts = [p.strip() for p in parts if p.strip()]
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            vals = [_convert(field, p, args[0]) for p in parts]
        elif origin is tuple and args:
            if len(parts) != len(args):
                raise ConfigError(f"field {field!r} expects {len(args)} comma-separated values, got {text!r}")
            vals = [_convert(field, p, a) for p, a in zip(parts, args)]
        else:
            vals = [_convert(field, p, args[0] if args else str) for p in parts]
        return tuple(vals) if origin is tuple else vals
    if tp is bool:
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"field {field!r} expects true or false, got {text!r}")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            try:
                f = float(text)
            except ValueError:
                f = None
            if f is not None and math.isfinite(f) and f.is_integer():
                return int(f)
            raise ConfigError(f"field {field!r} expects an integer, got {text!r}") from None
    if tp is float:
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"field {field!r} expects a number, got {text!r}") from None
        if not math.isfinite(value):
            raise ConfigError(f"field {field!r} expects a finite number, got {text!r}")
        return value
    if tp is str:
        return text
    raise ConfigError(f"field {field!r} of type {tp} cannot be set from the command line")


def field_types(cfg_or_cls: Any) -> dict[str, Any]:
    """The resolved type annotation of every init field of a config dataclass."""
    cls = cfg_or_cls if isinstance(cfg_or_cls, type) else type(cfg_or_cls)
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def parse_overrides(cfg: Any, items: Iterable[str]) -> dict[str, Any]:
    """Parse ``FIELD=VALUE`` strings into typed values for the fields of ``cfg``.

    Raises
    ------
    ConfigError
        For a malformed item, an unknown field, or a value that does not fit the field's type.
    """
    types_ = field_types(cfg)
    changes: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects FIELD=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip()
        if key not in types_:
            raise unknown_choice(f"config field for {type(cfg).__name__}", key, types_)
        changes[key] = _convert(key, text.strip(), types_[key])
    return changes


def replace_config(cfg: C, changes: Mapping[str, Any]) -> C:
    """``dataclasses.replace`` that reports an invalid combination as a ConfigError."""
    for key, value in changes.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"field {key!r} expects a finite number, got {value!r}")
    try:
        return dataclasses.replace(cfg, **changes)  # type: ignore[type-var]
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from None


def apply_overrides(cfg: C, items: Iterable[str]) -> C:
    """Return ``cfg`` with the ``FIELD=VALUE`` overrides applied and validated."""
    return replace_config(cfg, parse_overrides(cfg, items))


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(to_json(cfg))


def to_json(cfg: Any) -> str:
    """The config as one JSON string, fields in declaration order, with its class name."""
    d = {"__class__": type(cfg).__name__}
    d.update(dataclasses.asdict(cfg))
    return json.dumps(d, default=str)


def check_positive(cfg: Any, *names: str) -> None:
    """Raise ConfigError unless every named numeric field of ``cfg`` is > 0."""
    for n in names:
        v = getattr(cfg, n)
        if not v > 0:
            raise ConfigError(f"{n} must be > 0, got {v!r}")


def check_range(name: str, value: float, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = False) -> None:
    """Raise ConfigError unless ``lo <= value <= hi`` (open bounds when asked)."""
    bad = (lo is not None and (value < lo or (lo_open and value == lo))) or (
        hi is not None and (value > hi or (hi_open and value == hi)))
    if bad:
        lb = "(" if lo_open else "["
        hb = ")" if hi_open else "]"
        raise ConfigError(f"{name} must be in {lb}{lo if lo is not None else '-inf'}, "
                          f"{hi if hi is not None else 'inf'}{hb}, got {value!r}")
