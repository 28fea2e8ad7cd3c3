"""RunStore: append-only JSON-lines log of a run's records, so nothing is lost if the kernel dies.

store = RunStore("runs/spiral.jsonl", config)
for record in run(config):
    store.append(record)
RunStore.load("runs/spiral.jsonl")  -> (config dict, [Record, ...])
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, overload

import numpy as np

from workbench.experiment import Record


@overload
def plain(value: dict) -> dict: ...
@overload
def plain(value: object) -> Any: ...


def plain(value):
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
def _restore(value: dict) -> dict: ...
@overload
def _restore(value: object) -> Any: ...


def _restore(value):
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    if isinstance(value, list):
        return [_restore(v) for v in value]
    if isinstance(value, dict):
        return {k: _restore(v) for k, v in value.items()}
    return value


def record_dict(record: Record) -> dict:
    """A record as a JSON-ready dict (params dropped)."""
    return plain(
        {
            "done": record.done,
            "total": record.total,
            "unit": record.unit,
            "kind": record.kind,
            "status": record.status,
            "elapsed": record.elapsed,
            "metrics": record.metrics,
        }
    )


class RunStore:
    """A file of one JSON object per line: first the config, then one line per record."""

    def __init__(self, path, config=None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if config is not None:
            self._write({"config": type(config).__name__, "fields": config.to_dict()}, mode="w")

    def _write(self, obj, mode="a"):
        with self.path.open(mode) as f:
            f.write(json.dumps(plain(obj)) + "\n")
            f.flush()

    def append(self, record: Record) -> None:
        self._write(record_dict(record))

    @staticmethod
    def load(path) -> tuple[dict, list[Record]]:
        lines = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        head = lines[0] if lines and "config" in lines[0] else {}
        records = [
            Record(d["done"], d["total"], d["unit"], _restore(d["metrics"]), d["status"], d["kind"], d["elapsed"])
            for d in lines[1 if head else 0 :]
        ]
        return head, records
