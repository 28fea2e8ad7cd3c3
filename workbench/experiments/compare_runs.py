"""Runs of the run database side by side: one metric of each chosen run against its progress, for overlaying
past training runs on the same axes (the Compare runs panel). Reads only; nothing is computed again."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TypedDict

import numpy as np

from workbench.core.config import Config as _Config
from workbench.core.config import get_path, leaves, spec
from workbench.core.experiment import stages
from workbench.runs.rundb import RunDB

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
    run_ids: list  # (R,) the runs found holding the metric, in the order asked
    labels: list  # (R,) "run 7: teacher_fit width=256 lr=0.0039 seed=1"
    x: list  # (R,) arrays: each run's progress (steps, jobs or stages) at its records holding the metric
    y: list  # (R,) arrays: the metric at those records


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


def curves(config: Config) -> Curves:
    """Each run's (progress, metric) over its records that hold the metric as a number: the runs asked for, else
    the latest `latest` runs that hold the metric (oldest first); a run without it is left out."""
    db = RunDB()  # $WORKBENCH_DB, else the user's data folder (rundb.default_path)
    asked = config.ids()
    infos = {i["id"]: i for i in db.runs()}  # newest first
    out: Curves = {"run_ids": [], "labels": [], "x": [], "y": []}
    for run_id in asked or list(infos):
        if not asked and len(out["run_ids"]) == config.latest:
            break
        if run_id not in infos:
            continue
        recs = [r for r in db.records(run_id) if _scalar(r.metrics.get(config.metric))]
        if recs:
            out["run_ids"].append(run_id)
            out["labels"].append(label(infos[run_id]))
            out["x"].append(np.array([r.done for r in recs], float))
            out["y"].append(np.array([r.metrics[config.metric] for r in recs], float))
    if not asked:
        for key in ("run_ids", "labels", "x", "y"):
            out[key].reverse()
    return out


def run(config: Config, stop: threading.Event | None = None):
    """One stage: the chosen runs' curves, read from the database."""
    return stages([lambda: dict(curves(config))], stop)
