"""Typed configs: dataclasses with defaults, dotted overrides, strict validation.

An experiment's config is a tree of dataclasses. Every field has a default and, through :func:`param`,
a help text and optional bounds. Presets and the CLI's ``--set a.b=value`` override fields by dotted
key; values given as strings are parsed by the field's type. Unknown keys, ill-typed values and values
out of range raise :class:`~genlab.errors.ConfigError` naming the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import types
import typing
from typing import Any, Literal, Mapping, get_args, get_origin

from genlab.errors import ConfigError

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_BOUNDS = {"gt": (">", lambda v, b: v > b), "ge": (">=", lambda v, b: v >= b),
           "lt": ("<", lambda v, b: v < b), "le": ("<=", lambda v, b: v <= b)}


def param(default: Any, help: str = "", **bounds: float) -> Any:
    """A config field with a help text and optional bounds (gt, ge, lt, le)."""
    unknown = set(bounds) - set(_BOUNDS)
    if unknown:
        raise TypeError(f"unknown bound(s) {sorted(unknown)}")
    return dataclasses.field(default=default, metadata={"help": help, **bounds})


def section(factory: type, help: str = "") -> Any:
    """A nested config section."""
    return dataclasses.field(default_factory=factory, metadata={"help": help})


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=False)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is tuple:
        return f"a list of {_type_name(get_args(tp)[0])}"
    if tp is type(None):
        return "none"
    return f"a {getattr(tp, '__name__', str(tp))}"


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert ``value`` (a JSON value or a CLI string) to the field type ``tp``, or raise ConfigError."""
    origin = get_origin(tp)
    bad = ConfigError(f"config key '{key}' expects {_type_name(tp)}, got {value!r}",
                      hint=f"set it with --set {key}=VALUE")
    if origin is Literal:
        choices = get_args(tp)
        for choice in choices:
            try:
                if coerce(value, type(choice), key) == choice:
                    return choice
            except ConfigError:
                continue
        raise ConfigError(f"config key '{key}' must be one of {', '.join(repr(c) for c in choices)}; "
                          f"got {value!r}", hint=f"set it with --set {key}=<one of the values above>")
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in ("none", "null"))):
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except ConfigError:
                continue
        raise bad
    if origin is tuple:
        item_type = get_args(tp)[0]
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else [v for v in text.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise bad
        return tuple(coerce(v.strip() if isinstance(v, str) else v, item_type, key) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                try:
                    as_float = float(value)
                except ValueError:
                    raise bad from None
                if as_float.is_integer():
                    return int(as_float)
        raise bad
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise bad from None
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    if dataclasses.is_dataclass(tp):
        if isinstance(value, Mapping):
            return from_dict(tp, value, prefix=key + ".")
        raise ConfigError(f"config key '{key}' is a section; set its fields, e.g. --set {key}.FIELD=VALUE")
    raise TypeError(f"unsupported config type {tp!r} for '{key}'")


def _unknown_key(key: str, allowed: list[str]) -> ConfigError:
    leaf = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(leaf, allowed, n=1)
    parent = key.rsplit(".", 1)[0] if "." in key else ""
    where = f" under '{parent}'" if parent else ""
    hint = f"did you mean '{close[0]}'? " if close else ""
    return ConfigError(f"unknown config key '{key}'; allowed keys{where}: {', '.join(allowed)}",
                       hint=hint + "run `genlab show EXPERIMENT` to list every key with its default")


def from_dict(cls: type, data: Mapping[str, Any], prefix: str = "") -> Any:
    """Build config ``cls`` from a (possibly partial) nested dict; unknown keys are errors. Missing fields
    keep their defaults, a section's being those of its own factory (a family's sampler defaults)."""
    cfg = _fill(cls(), data, prefix)
    return validate(cfg) if not prefix else cfg


def _fill(cfg: Any, data: Mapping[str, Any], prefix: str) -> Any:
    hints = _hints(type(cfg))
    names = [f.name for f in dataclasses.fields(cfg)]
    changes = {}
    for key, value in data.items():
        if key not in names:
            raise _unknown_key(prefix + key, names)
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            changes[key] = _fill(current, value, prefix + key + ".")
        else:
            changes[key] = coerce(value, hints[key], prefix + key)
    return dataclasses.replace(cfg, **changes)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready nested dict of a config (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def override(cfg: Any, overrides: Mapping[str, Any]) -> Any:
    """Return a copy of ``cfg`` with dotted-key overrides applied and the result validated."""
    for key, value in overrides.items():
        cfg = _set(cfg, key.split("."), value, prefix="")
    return validate(cfg)


def _set(cfg: Any, path: list[str], value: Any, prefix: str) -> Any:
    names = [f.name for f in dataclasses.fields(cfg)]
    head, rest = path[0], path[1:]
    key = prefix + head
    if head not in names:
        raise _unknown_key(key, names)
    tp = _hints(type(cfg))[head]
    if rest:
        child = getattr(cfg, head)
        if not dataclasses.is_dataclass(child):
            raise ConfigError(f"config key '{key}' is a value, not a section; use --set {key}=VALUE")
        new = _set(child, rest, value, prefix=key + ".")
    else:
        new = coerce(value, tp, key)
    return dataclasses.replace(cfg, **{head: new})


def validate(cfg: Any, prefix: str = "") -> Any:
    """Check every field's bounds (recursively) and the config's own ``check()`` if it has one."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        key = prefix + f.name
        if dataclasses.is_dataclass(value):
            validate(value, key + ".")
            continue
        for bound, (symbol, ok) in _BOUNDS.items():
            limit = f.metadata.get(bound)
            if limit is None or value is None:
                continue
            values = value if isinstance(value, tuple) else (value,)
            if not all(ok(v, limit) for v in values):
                raise ConfigError(f"config key '{key}' must be {symbol} {limit}; got {value!r}",
                                  hint=f"set a valid value with --set {key}=VALUE")
    check = getattr(cfg, "check", None)
    if callable(check):
        check()
    return cfg


def parse_assignments(items: list[str]) -> dict[str, str]:
    """Parse CLI ``key=value`` strings into a dict (values stay strings; fields parse them)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}", hint="for example --set train.lr=0.01")
        out[key.strip()] = value.strip()
    return out


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested dict as dotted keys."""
    out = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, prefix + key + "."))
        else:
            out[prefix + key] = value
    return out


def describe(cls: Any, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, default, help) for every field of a config class (or instance), depth first."""
    rows = []
    default = cls() if isinstance(cls, type) else cls
    for f in dataclasses.fields(default):
        value = getattr(default, f.name)
        if dataclasses.is_dataclass(value):
            rows.extend(describe(value, prefix + f.name + "."))
        else:
            rows.append((prefix + f.name, value, f.metadata.get("help", "")))
    return rows


def config_hash(data: Mapping[str, Any]) -> str:
    """A short, stable hash of a config dict (key order does not matter)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]
