"""The JSON form of a run's records, as a panel's JSON export writes them (`plain`, `record_dict`) and reads them
back (`restore`). Runs are kept in the run database (`workbench.runs.rundb`), which tags non-finite floats instead.

An array of numbers is written as `{"$array": [flat values], "dtype": "float32", "shape": [2, 48]}` and read back as
that numpy array: its shape and dtype come back (an empty (0, 3) array too). Float arrays are written at float32, each
value as the shortest decimal that reads back as the same float32: a figure needs no more, and the file is a third
of float64's. An export written before arrays were tagged holds nested lists: `as_declared` makes numpy arrays of
those its experiment's METRICS declare as `np.ndarray`."""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from typing import Any, overload

import numpy as np

from workbench.core.experiment import Record

__all__: list[str] = []  # the JSON form of records, read and written by rundb and runfile


@overload
def plain(value: dict) -> dict: ...
@overload
def plain(value: object) -> Any: ...


ARRAY_KINDS = "biuf"  # dtypes an array may be stored and read back as: bool, signed and unsigned int, float


def plain(value: object) -> Any:
    """JSON-ready copy of a metric: arrays of numbers to tagged arrays (`array_dict`), non-finite floats to
    strings."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):
        a = np.asarray(value)
        return array_dict(a) if a.ndim and a.dtype.kind in ARRAY_KINDS else plain(a.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


@overload
def restore(value: dict) -> dict: ...
@overload
def restore(value: object) -> Any: ...


def restore(value: object) -> Any:
    """Inverse of `plain` for metrics: the strings "nan", "inf", "-inf" back to floats, tagged arrays back to numpy
    arrays (a ValueError says what is wrong with one)."""
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    if isinstance(value, list):
        return [restore(v) for v in value]
    if isinstance(value, dict):
        if "$array" in value:
            return array_from(value)
        return {k: restore(v) for k, v in value.items()}
    return value


def array_dict(a: np.ndarray) -> dict:
    """A numeric array as JSON: its values flat, its dtype (floats as float32) and its shape."""
    if a.dtype.kind == "f":
        a = a.astype(np.float32)
        data = [plain(float(str(v))) for v in a.ravel()]  # the shortest decimal that reads back as this float32
    else:
        data = a.ravel().tolist()
    return {"$array": data, "dtype": a.dtype.name, "shape": list(a.shape)}


def array_from(d: dict) -> np.ndarray:
    """The numpy array of `array_dict`'s JSON; a ValueError unless it is one (known numeric dtype, values that fill
    the shape)."""
    data, dtype, shape = d.get("$array"), d.get("dtype"), d.get("shape")
    if set(d) != {"$array", "dtype", "shape"} or not isinstance(data, list) or not isinstance(shape, list):
        raise ValueError('run: an array must be {"$array": [values], "dtype": ..., "shape": [...]}')
    try:
        kind = np.dtype(dtype).kind if isinstance(dtype, str) else ""
    except TypeError:
        kind = ""
    if kind not in tuple(ARRAY_KINDS) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ValueError(f"run: an array's dtype must be a numeric dtype and its shape sizes, got {dtype!r:.40}, "
                         f"{shape!r:.60}")  # fmt: skip
    if math.prod(shape) != len(data) or not all(isinstance(v, (int, float, str)) for v in data):
        raise ValueError(f"run: an array of shape {tuple(shape)} must hold {math.prod(shape)} numbers")
    try:
        return np.array([restore(v) for v in data], dtype=dtype).reshape(shape)
    except (ValueError, TypeError, OverflowError) as err:
        raise ValueError(f"run: an array's values are not {dtype} numbers ({err})") from None


def as_declared(record: Record, metrics: Mapping[str, type]) -> Record:
    """The record with each metric that its kind's TypedDict declares `np.ndarray` as a numpy array (an export
    written before arrays were tagged holds nested lists); a value that is no array of numbers is left as it is."""
    declared = metrics.get(record.kind)
    if declared is None or not record.metrics:
        return record
    hints = typing.get_type_hints(declared)
    out = dict(record.metrics)
    for name, value in record.metrics.items():
        if isinstance(value, list) and hints.get(name) is np.ndarray:
            try:
                a = np.asarray(value)
            except ValueError:  # ragged: drawing it says so
                continue
            if a.dtype.kind in ARRAY_KINDS:
                out[name] = a
    return dataclasses.replace(record, metrics=out)


def record_fields(record: Record) -> dict:
    """A record's fields as a dict, metrics as they are (params dropped)."""
    return dict(done=record.done, total=record.total, unit=record.unit, kind=record.kind, status=record.status,
                elapsed=record.elapsed, metrics=record.metrics)  # fmt: skip


def record_dict(record: Record) -> dict:
    """A record as a JSON-ready dict (params dropped)."""
    return plain(record_fields(record))
