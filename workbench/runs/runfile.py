"""Exported runs read back: the JSON a panel's "JSON" export writes (`{"config": {...}, "records": [...]}`,
each record as `workbench.runs.store.record_dict` writes it), checked whole before anything uses it.

    fields, records = read_run(open("grokking.json").read())
    config = grokking.Config.from_dict(fields)

A panel loads the same text with its share box (`Panel.load`): the config into the controls and, for a
training panel, the records under past runs, shown.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from workbench.core.experiment import KINDS, STATUSES, UNITS, Record
from workbench.runs.store import restore

__all__ = ["MAX_RUN_BYTES"]  # runs are read through RunDB.import_run and a panel's Load, which call read_run

MAX_RUN_BYTES = 64 * 2**20  # an exported run is records with arrays: a few MB
RECORD_KEYS = {f.name for f in dataclasses.fields(Record)} - {"params", "work"}  # work: live progress only


def read_run(text: str) -> tuple[dict, list[Record]]:
    """(config fields, records) of an exported run; a ValueError names the first thing that is not one."""
    if not isinstance(text, str) or len(text) > MAX_RUN_BYTES:
        raise ValueError(f"run: must be the JSON text of an exported run, at most {MAX_RUN_BYTES} characters")
    try:
        run = json.loads(text)
    except ValueError as err:
        raise ValueError(f"run: not valid JSON ({err})") from None
    except RecursionError:
        raise ValueError("run: JSON nested too deeply for a run") from None
    if not isinstance(run, dict) or not isinstance(run.get("config"), dict) or not isinstance(run.get("records"), list):
        raise ValueError('run: must be a JSON object {"config": {...}, "records": [...]} (a panel\'s JSON export)')
    return run["config"], [parse_record(i, d) for i, d in enumerate(run["records"])]


def parse_record(i: int, d: object, metrics: Callable[[dict], Any] = restore) -> Record:
    """Record `i` of an exported run (its metrics read by `metrics`), or a ValueError saying what is wrong."""
    if not isinstance(d, dict) or not RECORD_KEYS <= d.keys():
        raise ValueError(f"run: record {i} must be an object with {', '.join(sorted(RECORD_KEYS))}")
    for name, kind, what in (
        ("done", int, "an integer"),
        ("total", int, "an integer"),
        ("elapsed", (int, float), "a number"),
        ("metrics", dict, "an object"),
    ):
        if not isinstance(d[name], kind) or isinstance(d[name], bool):
            raise ValueError(f"run: record {i}: {name} must be {what}, got {type(d[name]).__name__}")
    for name, allowed in (("unit", UNITS), ("status", STATUSES), ("kind", KINDS)):
        if d[name] not in allowed:
            raise ValueError(f"run: record {i}: {name} must be one of {', '.join(allowed)}, got {d[name]!r}")
    if not 0 <= d["done"] <= d["total"]:
        raise ValueError(f"run: record {i}: done must be in [0, total={d['total']}], got {d['done']}")
    return Record(d["done"], d["total"], d["unit"], metrics(d["metrics"]), d["status"], d["kind"], d["elapsed"])
