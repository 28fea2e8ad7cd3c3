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

from workbench.config import Config
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

    def __init__(self, path, config=None, *, overwrite: bool = False):
        """A store at `path`; with `config`, a new file (an existing one is refused unless `overwrite`)."""
        if not isinstance(path, (str, Path)):
            raise TypeError(f"path: must be a file path, got {type(path).__name__}")
        self.path = Path(path)
        if config is not None and not isinstance(config, Config):
            raise TypeError(f"config: must be a workbench Config, got {type(config).__name__}")
        if config is not None and self.path.exists() and not overwrite:
            raise ValueError(f"path: {self.path} exists and holds an earlier run; pass overwrite=True to replace it")
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
        """(config line, records); a line that is not a complete record (a truncated last line, NUL bytes left
        by a crash) is skipped, so one bad line does not lose the rest of the run."""
        try:
            text = Path(path).read_text(errors="replace")
        except OSError as err:
            raise ValueError(f"path: cannot read the run file {path} ({err.strerror})") from None
        lines = [_parse(line) for line in text.splitlines()]
        head = lines[0] if lines and lines[0] is not None and "config" in lines[0] else {}
        records = [
            Record(d["done"], d["total"], d["unit"], _restore(d["metrics"]), d["status"], d["kind"], d["elapsed"])
            for d in lines[1 if head else 0 :]
            if d is not None and RECORD_KEYS <= d.keys()
        ]
        return head, records


RECORD_KEYS = {"done", "total", "unit", "metrics", "status", "kind", "elapsed"}


def _parse(line: str) -> dict | None:
    """One JSON object line, or None for anything else (blank, truncated, NUL bytes, a list)."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
