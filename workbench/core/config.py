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
) -> Any:  # the field's default to the type checker, as `dataclasses.field` is
    """A dataclass field with its allowed range (lo..hi, or choices) and a one-line description."""
    meta = dict(
        lo=lo,
        hi=hi,
        lo_open=lo_open,
        choices=tuple(choices) if choices else None,
        log=log,
        check=check,
        doc=doc,
        step=step,
    )
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


def check_field(name: str, meta: dict, kind: Any, value: Any) -> Any:
    """Validate one value against its field's declared type (`int`, `float`, `bool`, `str` or
    `tuple[T, ...]`, checked per element) and range; return it normalised."""
    if kind is tuple:
        raise TypeError(f"{name}: declare a tuple field with its element type, e.g. tuple[int, ...]")
    if typing.get_origin(kind) is tuple:
        element = typing.get_args(kind)[0]
        if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)) or not value:
            raise ValueError(
                f"{name}: must be a non-empty list of {element.__name__}s in {_range_text(meta)}, got {value!r}"
            )
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
        return dataclasses.replace(self, **changes)

    @classmethod
    def like(cls, other: Config, **fields: Any) -> Self:
        """This kind of config built from another's fields of the same names (an experiment's width, depth,
        lr, seed, ...), then `fields` (sizes of the data, a width of a sweep, ...)."""
        mine = {f.name for f in dataclasses.fields(cls)}
        shared = {k: v for k, v in dataclasses.asdict(other).items() if k in mine}
        return cls(**{**shared, **fields})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: object) -> Self:
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__}: expected a JSON object of fields, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
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
        changed = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) != f.default
        }
        raw = zlib.compress(json.dumps(changed, sort_keys=True).encode(), 9)
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

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


MAX_CODE_BYTES = 65_536  # share codes and their inflated JSON: configs are a few hundred bytes

_DEFAULT_META = dict(lo=None, hi=None, lo_open=False, choices=None, log=False, check=None, doc="", step=None)
