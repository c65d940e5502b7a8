"""Typed run configs: ``--set FIELD=VALUE`` overrides, JSON round trip.

Every model in ratespike keeps all its constants in one frozen dataclass with the paper's values as
defaults. This module is the one place that turns command-line strings into typed field values, so
every rule and every spiking experiment gets the same checks: an unknown field or a value of the wrong
type is a :class:`~bridge.errors.ConfigError` naming the field.

Composed configs: a field whose type is itself a config dataclass is a sub-config (the spiking experiments
are made of ``neuron``, ``input``, ``rule``, ``protocol`` ... parts). Its fields are addressed by dotted paths
(``neuron.tau_mem_ms``); a field name that occurs once in the whole tree may also be given bare
(``tau_mem_ms``), one that occurs in several sub-configs must be dotted (``rule.w_max``, ``inhibition.w_max``).
:func:`parse_overrides`, :func:`replace_config` and :func:`from_dict` accept both; :func:`to_json` writes the
tree as nested objects, each with its ``"__class__"``.
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
    """The resolved type annotation of every init field of a config dataclass (sub-configs as their class)."""
    cls = cfg_or_cls if isinstance(cfg_or_cls, type) else type(cfg_or_cls)
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _is_config(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def field_paths(cfg_or_cls: Any) -> dict[str, Any]:
    """Every leaf field of a (possibly composed) config as ``dotted.path -> type``, in declaration order."""
    out: dict[str, Any] = {}
    for name, tp in field_types(cfg_or_cls).items():
        if _is_config(tp):
            out.update({f"{name}.{k}": v for k, v in field_paths(tp).items()})
        else:
            out[name] = tp
    return out


def resolve_path(cfg_or_cls: Any, key: str) -> str:
    """The dotted path of ``key``: a path itself, or a leaf name that occurs once in the config tree.

    Raises
    ------
    ConfigError
        For an unknown name, or a bare name that several sub-configs have (the message lists the paths).
    """
    paths = field_paths(cfg_or_cls)
    if key in paths:
        return key
    hits = [p for p in paths if p.rsplit(".", 1)[-1] == key]
    if len(hits) == 1:
        return hits[0]
    cls = cfg_or_cls if isinstance(cfg_or_cls, type) else type(cfg_or_cls)
    if len(hits) > 1:
        raise ConfigError(f"config field {key!r} of {cls.__name__} is ambiguous: write one of "
                          + ", ".join(hits))
    raise unknown_choice(f"config field for {cls.__name__}", key, paths)


def get_path(cfg: Any, key: str) -> Any:
    """The value of a field given by dotted path or unique bare name."""
    value = cfg
    for part in resolve_path(cfg, key).split("."):
        value = getattr(value, part)
    return value


def parse_overrides(cfg: Any, items: Iterable[str]) -> dict[str, Any]:
    """Parse ``FIELD=VALUE`` strings into typed values for the fields of ``cfg``, keyed by dotted path.

    ``FIELD`` is a field name, a dotted path into a composed config, or a leaf name unique in the tree.

    Raises
    ------
    ConfigError
        For a malformed item, an unknown or ambiguous field, or a value that does not fit the field's type.
    """
    types_ = field_paths(cfg)
    changes: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects FIELD=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        path = resolve_path(cfg, key.strip())
        changes[path] = _convert(path, text.strip(), types_[path])
    return changes


def replace_config(cfg: C, changes: Mapping[str, Any]) -> C:
    """``dataclasses.replace`` that reports an invalid combination as a ConfigError.

    Keys are field names, dotted paths into sub-configs, or leaf names unique in the config tree; every
    sub-config touched is rebuilt (and so validated), then the config itself.
    """
    for key, value in changes.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"field {key!r} expects a finite number, got {value!r}")
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    names = field_types(cfg)
    for key, value in changes.items():
        path = key if key in names else resolve_path(cfg, key)
        head, _, rest = path.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    for head, sub in nested.items():
        direct[head] = replace_config(direct.get(head, getattr(cfg, head)), sub)
    try:
        return dataclasses.replace(cfg, **direct)  # type: ignore[type-var]
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from None


def apply_overrides(cfg: C, items: Iterable[str]) -> C:
    """Return ``cfg`` with the ``FIELD=VALUE`` overrides applied and validated."""
    return replace_config(cfg, parse_overrides(cfg, items))


def from_dict(cls: type[C], d: Mapping[str, Any]) -> C:
    """A config of class ``cls`` from a (nested) dict such as :func:`to_dict` gives; missing fields take defaults.

    Lists become tuples where the field is a tuple; ``"__class__"`` keys are ignored; an unknown field is a
    ConfigError.
    """
    types_ = field_types(cls)
    kw: dict[str, Any] = {}
    for key, value in d.items():
        if key == "__class__":
            continue
        if key not in types_:
            raise unknown_choice(f"config field for {cls.__name__}", key, types_)
        tp = types_[key]
        if _is_config(tp) and isinstance(value, Mapping):
            kw[key] = from_dict(tp, value)
        elif isinstance(value, list) and typing.get_origin(tp) is not list:
            kw[key] = tuple(value)
        else:
            kw[key] = value
    try:
        return cls(**kw)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from None


def flat_fields(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A recorded config dict (schema 1 flat or schema 2 nested) as ``dotted.path -> value``, ``__class__`` left out."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if k == "__class__":
            continue
        if isinstance(v, Mapping):
            out.update(flat_fields(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def recorded_field(d: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """The value of field ``name`` (a dotted path, or a leaf name unique in the tree) of a recorded config dict."""
    flat = flat_fields(d)
    if name in flat:
        return flat[name]
    hits = [v for k, v in flat.items() if k.rsplit(".", 1)[-1] == name]
    return hits[0] if len(hits) == 1 else default


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(to_json(cfg))


def _as_dict(cfg: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"__class__": type(cfg).__name__}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        d[f.name] = _as_dict(v) if dataclasses.is_dataclass(v) and not isinstance(v, type) else v
    return d


def to_json(cfg: Any) -> str:
    """The config as one JSON string, fields in declaration order, with its class name (sub-configs nested)."""
    return json.dumps(_as_dict(cfg), default=str)


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
