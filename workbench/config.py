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
import json
import math
import zlib
from typing import Any

_MISSING = object()


def spec(default: Any, *, lo=None, hi=None, lo_open: bool = False, choices=None, log: bool = False,
         check: str | None = None, doc: str = "", step=None):
    """A dataclass field with its allowed range (lo..hi, or choices) and a one-line description."""
    meta = dict(lo=lo, hi=hi, lo_open=lo_open, choices=tuple(choices) if choices else None,
                log=log, check=check, doc=doc, step=step)
    return dataclasses.field(default=default, metadata=meta)


def _range_text(meta) -> str:
    lo, hi = meta["lo"], meta["hi"]
    left = "(" if meta["lo_open"] else "["
    return f"{left}{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"


def _check_activation(value):
    from workbench.activations import get_activation  # the registry is the one source of truth

    get_activation(value)
    return value


_CHECKS = {"activation": _check_activation}


def check_field(name: str, meta: dict, kind: type, value: Any) -> Any:
    """Validate one value against its field's declared type and range; return it (normalised)."""
    if meta.get("choices"):
        if value not in meta["choices"]:
            raise ValueError(f"{name}: must be one of {', '.join(map(str, meta['choices']))}, got {value!r}")
        return value
    if meta.get("check"):
        return _CHECKS[meta["check"]](value)
    if isinstance(value, (tuple, list)) and (meta.get("lo") is not None or meta.get("hi") is not None):
        if not value:
            raise ValueError(f"{name}: must be a non-empty list of numbers in {_range_text(meta)}")
        return tuple(check_field(name, meta, type(v) if isinstance(v, float) else int, v) for v in value)
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name}: must be True or False, got {value!r}")
        return value
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name}: must be a number in {_range_text(meta)}, got {value!r}")
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(f"{name}: must be an integer in {_range_text(meta)}, got {value!r}")
            value = int(value)
        if not math.isfinite(value):
            raise ValueError(f"{name}: must be a finite number in {_range_text(meta)}, got {value!r}")
        lo, hi = meta.get("lo"), meta.get("hi")
        too_low = lo is not None and (value <= lo if meta.get("lo_open") else value < lo)
        if too_low or (hi is not None and value > hi):
            raise ValueError(f"{name}: must be in {_range_text(meta)}, got {value!r}")
        return float(value) if kind is float else value
    return value


class Config:
    """Base of the frozen experiment configs: validates on construction, round-trips to text."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            kind = f.type if isinstance(f.type, type) else _TYPES.get(f.type)
            value = check_field(f.name, dict(f.metadata) or _DEFAULT_META, kind, getattr(self, f.name))
            object.__setattr__(self, f.name, value)
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; subclasses override and raise ValueError naming the fields."""

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown fields {sorted(unknown)}; known: {sorted(names)}")
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**data)

    @classmethod
    def from_json(cls, text: str):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{cls.__name__}: not valid JSON ({err.msg})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__}: expected a JSON object")
        return cls.from_dict(data)

    def to_code(self) -> str:
        """A short shareable string (like TensorFlow Playground's URL) holding only non-default fields."""
        changed = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                   if getattr(self, f.name) != f.default}
        raw = zlib.compress(json.dumps(changed, sort_keys=True).encode(), 9)
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def from_code(cls, code: str):
        try:
            raw = base64.urlsafe_b64decode(code.strip() + "=" * (-len(code.strip()) % 4))
            data = json.loads(zlib.decompress(raw))
        except Exception:
            raise ValueError(f"{cls.__name__}: not a config code (paste the text from 'Copy config')") from None
        return cls.from_dict(data)


_TYPES = {"int": int, "float": float, "bool": bool, "str": str}
_DEFAULT_META = dict(lo=None, hi=None, lo_open=False, choices=None, log=False, check=None, doc="", step=None)
