"""The JSON form of a run's records, as a panel's JSON export writes them (`plain`, `record_dict`) and reads them
back (`restore`). Runs are kept in the run database (`workbench.runs.rundb`), which tags non-finite floats instead."""

from __future__ import annotations

import math
from typing import Any, overload

import numpy as np

from workbench.core.experiment import Record


@overload
def plain(value: dict) -> dict: ...
@overload
def plain(value: object) -> Any: ...


def plain(value: object) -> Any:
    """JSON-ready copy of a metric: arrays to nested lists, non-finite floats to strings."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):
        return plain(np.asarray(value).tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


@overload
def restore(value: dict) -> dict: ...
@overload
def restore(value: object) -> Any: ...


def restore(value: object) -> Any:
    """Inverse of `plain` for metrics: the strings "nan", "inf", "-inf" back to floats."""
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    if isinstance(value, list):
        return [restore(v) for v in value]
    if isinstance(value, dict):
        return {k: restore(v) for k, v in value.items()}
    return value


def record_fields(record: Record) -> dict:
    """A record's fields as a dict, metrics as they are (params dropped)."""
    return dict(done=record.done, total=record.total, unit=record.unit, kind=record.kind, status=record.status,
                elapsed=record.elapsed, metrics=record.metrics)  # fmt: skip


def record_dict(record: Record) -> dict:
    """A record as a JSON-ready dict (params dropped)."""
    return plain(record_fields(record))
