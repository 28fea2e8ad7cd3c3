"""Frozen, validated configs: each field declares its range once; validation, widgets and JSON read it.

    @dataclass(frozen=True)
    class MyConfig(Config):
        width: int = spec(128, lo=1, hi=65536, log=True, doc="hidden width")

Construction raises ValueError naming the field and its allowed range. `widgets/` builds its controls
from the same `spec` metadata, so a range is written in exactly one place.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import math
import numbers
import typing
import zlib
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Self

import numpy as np

__all__ = ["MAX_CODE_BYTES", "Config"]  # spec, group, leaves and get_path describe Config classes (the API)

_MISSING = object()


def spec(
    default: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    choices: Iterable[Any] | None = None,
    log: bool = False,
    check: str | None = None,
    doc: str = "",
    step: float | None = None,
    soft: tuple[float, float] | None = None,
) -> Any:  # the field's default to the type checker, as `dataclasses.field` is
    """A dataclass field with its allowed range (lo..hi, or choices) and a one-line description; `soft`: the
    span of its slider (what a demo needs), inside lo..hi; the range stays lo..hi, reached by typing."""
    meta = dict(
        lo=lo,
        hi=hi,
        lo_open=lo_open,
        choices=tuple(choices) if choices else None,
        log=log,
        check=check,
        doc=doc,
        step=step,
        soft=_soft(lo, hi, soft),
    )
    return dataclasses.field(default=default, metadata=meta)


def _soft(lo: float | None, hi: float | None, soft: Any) -> tuple[float, float] | None:
    """A slider span (a, b) with lo <= a < b <= hi, or None; a ValueError naming `soft` otherwise."""
    if soft is None:
        return None
    ok = isinstance(soft, tuple) and len(soft) == 2 and all(isinstance(v, (int, float)) for v in soft)
    if not ok or not (soft[0] < soft[1]) or (lo is not None and soft[0] < lo) or (hi is not None and soft[1] > hi):
        raise ValueError(f"soft: must be a pair (a, b) with {lo} <= a < b <= {hi}, got {soft!r}")
    return soft


def group(
    default: Config, *, fixed: Iterable[str] = (), limits: Mapping[str, Mapping[str, Any]] | None = None, doc: str = ""
) -> Any:
    """A field holding a nested Config (a `model:`, `train:` or `data:` group) with this experiment's defaults.
    `fixed`: its fields this experiment sets itself (hidden in the form; a value other than the default is
    refused); `limits`: narrower ranges of its fields here, with the reason where a shared range is narrowed,
    e.g. {"steps": dict(hi=10_000, why="every step is traced")}, or another slider span, dict(soft=(10, 1000))."""
    names = {f.name for f in dataclasses.fields(default)}
    unknown = (set(fixed) | set(limits or {})) - names
    if unknown:
        raise TypeError(f"group: {type(default).__name__} has no fields {sorted(unknown)}")
    meta = dict(_DEFAULT_META, doc=doc, group=default, fixed=tuple(fixed), limits=dict(limits or {}))
    return dataclasses.field(default=default, metadata=meta)


def _range_text(meta: Mapping[str, Any]) -> str:
    lo, hi = meta["lo"], meta["hi"]
    left = "(" if meta["lo_open"] else "["
    return f"{left}{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"


def _check_activation(value: object) -> str:
    from workbench.core.activations import get_activation  # the registry is the one source of truth

    if not isinstance(value, str):
        raise ValueError(f"activation: must be a name or an expression in x (text), got {type(value).__name__}")
    get_activation(value)
    return value


_CHECKS = {"activation": _check_activation}


def _number(name: str, meta: dict, kind: type, value: Any):
    """One int or float against its declared range."""
    rng = _range_text(meta)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: must be a number in {rng}, got {value!r}")
    try:
        as_float = float(value)
    except OverflowError:
        raise ValueError(
            f"{name}: must be a finite number in {rng}, got a number with {len(str(value))} digits"
        ) from None
    if not math.isfinite(as_float):
        raise ValueError(f"{name}: must be a finite number in {rng}, got {value!r}")
    if kind is int:
        if not as_float.is_integer():
            raise ValueError(f"{name}: must be an integer in {rng}, got {value!r}")
        value = int(typing.cast(typing.SupportsInt, value))  # numbers.Real does not declare __int__; int and float do
    lo, hi = meta.get("lo"), meta.get("hi")
    too_low = lo is not None and (value <= lo if meta.get("lo_open") else value < lo)
    if too_low or (hi is not None and value > hi):
        raise ValueError(f"{name}: must be in {rng}, got {value!r}")
    return value if kind is int else as_float


MAX_ENTRIES = 64  # entries of a tuple field (widths, class sizes, ...)


def check_field(name: str, meta: dict, kind: Any, value: Any) -> Any:
    """Validate one value against its field's declared type (`int`, `float`, `bool`, `str` or
    `tuple[T, ...]`, checked per element) and range; return it normalised."""
    if meta.get("group") is not None:
        return _check_group(name, meta, kind, value)
    if kind is tuple:
        raise TypeError(f"{name}: declare a tuple field with its element type, e.g. tuple[int, ...]")
    if typing.get_origin(kind) is tuple:
        element = typing.get_args(kind)[0]
        if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)) or not value:
            raise ValueError(
                f"{name}: must be a non-empty list of {element.__name__}s in {_range_text(meta)}, got {value!r}"
            )
        if len(value) > MAX_ENTRIES:  # every entry is a run, a line or a class: a long list is a mistake or a hang
            raise ValueError(f"{name}: must hold at most {MAX_ENTRIES} entries, got {len(value)}")
        return tuple(check_field(name, meta, element, v) for v in value)
    if isinstance(value, (tuple, list, dict, set, np.ndarray)):
        allowed = f" in {_range_text(meta)}" if kind in (int, float) else ""
        raise ValueError(f"{name}: must be a single {getattr(kind, '__name__', 'value')}{allowed}, got {value!r:.80}")
    if meta.get("choices"):
        if not isinstance(value, type(meta["choices"][0])) or value not in meta["choices"]:
            raise ValueError(f"{name}: must be one of {', '.join(map(str, meta['choices']))}, got {value!r}")
        return value
    if meta.get("check"):
        return _CHECKS[meta["check"]](value)
    if kind is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name}: must be True or False, got {value!r}")
        return bool(value)
    if kind in (int, float):
        return _number(name, meta, kind, value)
    if kind is str and not isinstance(value, str):
        raise ValueError(f"{name}: must be text, got {value!r}")
    return value


def _check_group(name: str, meta: dict, kind: type[Config], value: Any) -> Config:
    """A group's value (an instance, or a dict of fields over this experiment's defaults) within its fixed fields
    and limits; errors name the field by its path, e.g. 'model.width: must be in [1, 65536], got -5'."""
    default = meta["group"]
    if isinstance(value, dict):
        _check_limits(name, meta, kind, value)
        try:
            value = kind.from_dict({**default.to_dict(), **value})
        except ValueError as err:
            raise ValueError(f"{name}.{err}") from None
    if not isinstance(value, kind):
        raise ValueError(f"{name}: must be a {kind.__name__} or a JSON object of its fields, got {value!r:.80}")
    for sub in meta["fixed"]:
        if getattr(value, sub) != getattr(default, sub):
            raise ValueError(
                f"{name}.{sub}: this experiment sets it itself; leave it at {getattr(default, sub)!r}, "
                f"got {getattr(value, sub)!r}"
            )
    _check_limits(name, meta, kind, {sub: getattr(value, sub) for sub in meta["limits"]})
    return value


def _check_limits(name: str, meta: dict, kind: type[Config], values: Mapping[str, Any]) -> None:
    """A group's fields among `values` against the experiment's narrower limits, named by their path."""
    subfields = {f.name: f for f in dataclasses.fields(kind)}
    for sub, narrower in meta.get("limits", {}).items():
        if sub in values:
            sub_meta = {**_DEFAULT_META, **subfields[sub].metadata, **narrower}
            check_field(f"{name}.{sub}", sub_meta, field_types(kind)[sub], values[sub])


def leaves(cls: type[Config]) -> list[tuple[str, dataclasses.Field[Any], Any, dict[str, Any]]]:
    """(path, field, type, range) of every field a user sets: plain fields, then each group's fields by their
    dotted path ('train.lr'), less its fixed ones, with its limits applied."""
    out = []
    for f in dataclasses.fields(cls):
        meta = {**_DEFAULT_META, **f.metadata}
        if meta.get("group") is None:
            out.append((f.name, f, field_types(cls)[f.name], meta))
            continue
        kind = field_types(cls)[f.name]
        for path, sub, sub_kind, sub_meta in leaves(kind):
            if path not in meta["fixed"]:
                sub_meta = {**sub_meta, **meta["limits"].get(path, {})}
                out.append((f"{f.name}.{path}", sub, sub_kind, sub_meta))
    return out


def get_path(config: Config, path: str) -> Any:
    """The value of a field by its dotted path ('model.width')."""
    for part in path.split("."):
        config = getattr(config, part)
    return config


@functools.cache
def field_types(cls) -> dict[str, Any]:
    """The resolved annotation of every field of a Config class."""
    return typing.get_type_hints(cls)


class Config:
    """Base of the frozen experiment configs: validates on construction, round-trips to text."""

    if typing.TYPE_CHECKING:  # every subclass is a @dataclass; this tells the checker so
        __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def __post_init__(self):
        types = field_types(type(self))
        for f in dataclasses.fields(self):
            value = check_field(f.name, dict(f.metadata) or _DEFAULT_META, types[f.name], getattr(self, f.name))
            object.__setattr__(self, f.name, value)
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; subclasses override and raise ValueError naming the fields."""

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes`, keyed by field name or by dotted path into a group ('train.lr')."""
        flat: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {}
        names = {f.name for f in dataclasses.fields(self)}
        for key, value in changes.items():
            head, _, rest = self.resolve(key).partition(".")
            if head not in names or (rest and not isinstance(getattr(self, head), Config)):
                raise ValueError(f"{key}: not a field of {type(self).__name__}; known: {sorted(names)}")
            if rest:
                nested.setdefault(head, {})[rest] = value
            else:
                flat[head] = value
        fields = {f.name: f for f in dataclasses.fields(self)}
        for head, sub in nested.items():
            _check_limits(head, dict(fields[head].metadata), type(getattr(self, head)), sub)
            try:
                flat[head] = getattr(self, head).replace(**sub)
            except ValueError as err:
                raise ValueError(f"{head}.{err}") from None
        return dataclasses.replace(self, **flat)

    VERSION: ClassVar[int] = 2  # 2: fields in model/train/data groups; 1: every field at the top (codes before 2026-12)
    RENAMED: ClassVar[dict[str, str]] = {}  # a version-1 name -> its path today, where it is not the same name

    @classmethod
    def resolve(cls, key: str) -> str:
        """The path of a field named by its path or by its version-1 (flat) name: 'lr' -> 'train.lr'."""
        if key.partition(".")[0] in {f.name for f in dataclasses.fields(cls)}:
            return key
        if key in cls.RENAMED:
            return cls.RENAMED[key]
        found = [
            f"{f.name}.{key}"
            for f in dataclasses.fields(cls)
            if f.metadata.get("group") is not None and key in {g.name for g in dataclasses.fields(f.metadata["group"])}
        ]
        return found[0] if len(found) == 1 else key

    @classmethod
    def migrate(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Fields of an older version moved to today's places: a version-1 (flat) name goes to its `RENAMED` path,
        or into the one group that has a field of that name."""
        data = dict(data)
        version = data.pop("version", 1)
        if version not in (1, cls.VERSION):
            raise ValueError(f"version: config version {version!r} is not 1 or {cls.VERSION}")
        top = {f.name for f in dataclasses.fields(cls)}
        for key in [k for k in data if k not in top and isinstance(k, str)]:
            path = cls.resolve(key)
            if path == key:
                continue  # unknown: from_dict names it
            head, _, rest = path.partition(".")
            target = data.setdefault(head, {}) if rest else data
            if not isinstance(target, dict):
                raise ValueError(f"{head}: both a group of fields and the old field {key!r} are given")
            target[rest or head] = data.pop(key)
        return data

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: object) -> Self:
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__}: expected a JSON object of fields, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        data = cls.migrate(data)
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown fields {sorted(unknown)}; known: {sorted(names)}")
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> Self:
        if len(text) > MAX_CODE_BYTES:
            raise ValueError(f"{cls.__name__}: config JSON longer than {MAX_CODE_BYTES} characters")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{cls.__name__}: not valid JSON ({err.msg})") from None
        except RecursionError:
            raise ValueError(f"{cls.__name__}: JSON nested too deeply for a config") from None
        return cls.from_dict(data)

    def to_code(self) -> str:
        """A short shareable string (like TensorFlow Playground's URL) holding only non-default fields."""
        raw = zlib.compress(json.dumps({**self._changed(), "version": self.VERSION}, sort_keys=True).encode(), 9)
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _changed(self) -> dict[str, Any]:
        """The fields that differ from their defaults; within a group, only its changed fields."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                out[f.name] = value if not isinstance(value, Config) else _diff(value, f.default)
        return out

    @classmethod
    def from_code(cls, code: str) -> Self:
        """The config of a share code; refused if it is not one or inflates past `MAX_CODE_BYTES`."""
        refusal = f"{cls.__name__}: not a config code (paste the text from 'Copy config')"
        if not isinstance(code, str) or len(code) > MAX_CODE_BYTES:
            raise ValueError(refusal)
        try:
            raw = base64.urlsafe_b64decode(code.strip() + "=" * (-len(code.strip()) % 4))
            inflater = zlib.decompressobj()
            text = inflater.decompress(raw, MAX_CODE_BYTES)
            too_long = bool(inflater.unconsumed_tail)
            data = None if too_long else json.loads(text)
        except (ValueError, zlib.error, RecursionError):
            raise ValueError(refusal) from None
        if too_long:
            raise ValueError(f"{cls.__name__}: the code inflates past {MAX_CODE_BYTES} bytes; not a config code")
        return cls.from_dict(data)


def _diff(value: Config, default: Any) -> dict[str, Any]:
    """A group's fields that differ from the experiment's default group."""
    mine, theirs = value.to_dict(), default.to_dict()
    return {k: v for k, v in mine.items() if theirs.get(k) != v}


MAX_CODE_BYTES = 65_536  # share codes and their inflated JSON: configs are a few hundred bytes

_DEFAULT_META = dict(lo=None, hi=None, lo_open=False, choices=None, log=False, check=None, doc="", step=None, soft=None)
