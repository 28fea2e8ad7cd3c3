"""Runs of the run database side by side: one metric of each chosen run against its progress, for overlaying
past training runs on the same axes (the Compare runs panel). Reads only; nothing is computed again."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TypedDict

import numpy as np

from workbench.core.config import Config as _Config
from workbench.core.config import get_path, leaves, spec
from workbench.core.experiment import experiment_run, stages
from workbench.runs.rundb import RunDB

__all__ = ["Config", "METRICS", "run"]

SWEEPABLE = False  # a view of stored runs


@dataclass(frozen=True)
class Config(_Config):
    """Which runs, which metric."""

    runs: str = spec("", doc="run ids, e.g. '3, 7, 12' (empty: the latest runs)")
    latest: int = spec(4, lo=1, hi=50, doc="runs shown when no ids are given")
    metric: str = spec("train_loss", doc="metric to overlay (a scalar of the runs' step or point records)")

    def validate(self):
        self.ids()

    def ids(self) -> list[int]:
        try:
            ids = [int(t) for t in self.runs.replace(",", " ").split()]
        except ValueError:
            raise ValueError(f"runs: must be run ids separated by commas, got {self.runs!r}") from None
        if any(i < 1 for i in ids) or len(ids) > 50:
            raise ValueError(f"runs: must be 1 to 50 positive run ids, got {self.runs!r}")
        return ids


class Curves(TypedDict):
    run_ids: list  # (L,) the run of each line, in the order asked
    labels: list  # (L,) "run 7: teacher_fit width=256 lr=0.0039 seed=1", plus " width=64" for an array's element
    x: list  # (L,) arrays: the run's progress (steps, jobs or stages) at its records holding the metric
    y: list  # (L,) arrays: the metric at those records (an element of it, for a metric that is an array per record)


METRICS = {"stage": Curves}


def label(info: dict) -> str:
    """'run 7: teacher_fit  width=256 lr=0.0039 seed=1' (fields that differ from the defaults, by short name)."""
    name = info["experiment"].rsplit(".", 1)[-1]
    try:
        from workbench.runs.sweep import experiment_module

        cls = experiment_module(info["experiment"]).Config
        config, default = cls.from_dict(info["config"]), cls()
        fields = {
            path: get_path(config, path)
            for path, *_ in leaves(cls)
            if get_path(default, path) != get_path(config, path)
        }
    except ValueError:
        fields = {k: v for k, v in info["config"].items() if not isinstance(v, dict)}
    changed = [f"{k.rsplit('.', 1)[-1]}={v:.3g}" if isinstance(v, float) else f"{k.rsplit('.', 1)[-1]}={v}"
               for k, v in fields.items() if np.ndim(v) == 0]  # fmt: skip
    return f"run {info['id']}: {name} {' '.join(changed)}"[:100]


def _scalar(value) -> bool:
    """A number that can be plotted (not a bool, a string or an array)."""
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def _vector(value) -> bool:
    """A 1-D array of numbers (one per width, per learning rate, ...): one line per element."""
    return isinstance(value, np.ndarray) and value.ndim == 1 and value.size > 0 and value.dtype.kind in "iuf"


def plottable(records: list) -> list[str]:
    """The metrics of these records that `curves` can draw: numbers, and 1-D arrays of numbers."""
    return sorted({k for r in records for k, v in r.metrics.items() if _scalar(v) or _vector(v)})


def metric_names(run_ids: list[int]) -> list[str]:
    """The metrics that any of these runs of the run database can draw (the Compare runs panel's list)."""
    db = RunDB()
    return sorted({name for run_id in run_ids for name in plottable(db.records(run_id))})


def _element_names(config: dict, records: list, size: int) -> list[str]:
    """What each element of a per-record array stands for: the run's widths where there is one per width."""
    for widths in (config.get("widths"), next((r.metrics["widths"] for r in records if "widths" in r.metrics), None)):
        if widths is not None and np.ndim(widths) == 1 and len(widths) == size:
            return [f"n={int(v)}" for v in widths]
    return [f"[{i}]" for i in range(size)]


def _lines(info: dict, records: list, metric: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, progress, values) of each line one run draws: one for a number, one per element for a 1-D array
    whose length stays the same from record to record."""
    scalars = [r for r in records if _scalar(r.metrics.get(metric))]
    if scalars:
        return [(label(info), np.array([r.done for r in scalars], float),
                 np.array([r.metrics[metric] for r in scalars], float))]  # fmt: skip
    vectors = [r for r in records if _vector(r.metrics.get(metric))]
    if not vectors or len({r.metrics[metric].size for r in vectors}) != 1:
        return []
    x, y = np.array([r.done for r in vectors], float), np.stack([r.metrics[metric] for r in vectors]).astype(float)
    names = _element_names(info["config"], records, y.shape[1])
    return [(f"{label(info)} {name}", x, y[:, i]) for i, name in enumerate(names)]


def curves(config: Config) -> Curves:
    """Each run's (progress, metric) over its records that hold the metric as a number (one line), or as a 1-D
    array of numbers (one line per element, e.g. per width): the runs asked for, else the latest `latest` runs that
    hold the metric (oldest first); a run without it is left out. A ValueError when no run holds it (naming the
    metrics the chosen runs do hold), unless the database has no run at all."""
    db = RunDB()  # $WORKBENCH_DB, else the user's data folder (rundb.default_path)
    asked = config.ids()
    infos = {i["id"]: i for i in db.runs()}  # newest first
    out: Curves = {"run_ids": [], "labels": [], "x": [], "y": []}
    found, offered = [], set()
    for run_id in asked or list(infos):
        if not asked and len(found) == config.latest:
            break
        if run_id not in infos:
            continue
        records = db.records(run_id)
        lines = _lines(infos[run_id], records, config.metric)
        if asked or not lines:
            offered.update(plottable(records))
        if not lines:
            continue
        found.append([(run_id, *line) for line in lines])
    if not asked:
        found.reverse()
    for run_id, text, x, y in (line for lines in found for line in lines):
        out["run_ids"].append(run_id)
        out["labels"].append(text)
        out["x"].append(x)
        out["y"].append(y)
    if not found and (asked or infos):  # an empty database is no error: nothing has run yet
        which = "no chosen run" if asked else "no run of the database"
        held = f"; they hold {', '.join(sorted(offered))}" if offered and asked else ""
        raise ValueError(f"metric: {which} holds {config.metric!r} as numbers{held}")
    return out


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """One stage: the chosen runs' curves, read from the database."""
    return stages([lambda: dict(curves(config))], stop)
