"""Scaling laws of a sweep in the run database: one metric of each of its runs (its last record holding it) against
one config field (data size `n_train`, `model.width`, ...), fitted as L(n) = a n^-alpha + c with bootstrap intervals
(`workbench.core.scaling`, Hestness et al. 2017, arXiv 1712.00409) and stored with the sweep (`RunDB.save_fit`).

    points = sweep_points(db, sweep_id, "test_loss", "n_train")   # refused with the names the sweep does hold
    fit, points = fit_sweep(db, sweep_id, "test_loss", "n_train")  # fitted and stored
"""

from __future__ import annotations

import atexit
import functools
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from workbench.core.declare import Flag, Given, Instance, Int, Real, declare
from workbench.core.experiment import Record
from workbench.core.scaling import ScalingFit, fit_scaling
from workbench.runs.rundb import RunDB, _flat

__all__ = ["SweepPoints", "fit_sweep", "held", "summary", "sweep_points"]

SEED_FIELDS = ("seed",)  # fields that repeat a point rather than move it along the axis


class SweepPoints(NamedTuple):
    """A sweep's runs as points of a scaling law: the field `axis` of each run against its `metric`."""

    sweep_id: int
    experiment: str
    metric: str
    axis: str  # the config field's dotted path
    n: np.ndarray  # (P,) the field's value of each run
    y: np.ndarray  # (P,) the metric of its last record holding it
    run_ids: tuple[int, ...]


def _open(db: object) -> RunDB:
    """A RunDB from itself or its path (None: $WORKBENCH_DB or the user's data folder)."""
    if isinstance(db, RunDB):
        return db
    if db is None or isinstance(db, (str, os.PathLike)):
        return RunDB(db, readonly=True)
    raise ValueError(f"db: must be a RunDB or the path of a run database, got {type(db).__name__}")


def _sweep(db: RunDB, sweep_id: object) -> dict:
    """The sweep row of `sweep_id` (None: the newest sweep)."""
    sweeps = db.sweeps()
    if not sweeps:
        raise ValueError(f"sweep_id: {db.path} holds no sweep (run one: python -m workbench sweep SPEC.toml)")
    if sweep_id is None:
        return sweeps[0]
    if isinstance(sweep_id, bool) or not isinstance(sweep_id, (int, np.integer)):
        raise ValueError(f"sweep_id: must be a sweep's number, got {sweep_id!r:.60}")
    found = [s for s in sweeps if s["id"] == sweep_id]
    if not found:
        ids = ", ".join(str(s["id"]) for s in sweeps[:20])
        raise ValueError(f"sweep_id: no sweep {sweep_id} in {db.path}; its sweeps: {ids}")
    return found[0]


def _axis(sweep: dict, fields: list[dict], axis: object) -> str:
    """The dotted path of `axis` (a path or a unique last name: 'width' -> 'model.width'); None: the one field the
    sweep's grid varies."""
    names = sorted(set().union(*fields))
    if axis is None:
        grid = [k for k in sweep["grid"] if k not in SEED_FIELDS]
        if len(grid) != 1:
            raise ValueError(f"axis: the sweep's grid varies {grid or 'no field'}; name the field to fit against")
        axis = grid[0]
    if not isinstance(axis, str):
        raise ValueError(f"axis: must be a config field's name, got {axis!r:.60}")
    found = [axis] if axis in names else [k for k in names if k.rsplit(".", 1)[-1] == axis]
    if len(found) != 1:
        numeric = [k for k in names if all(_number(f.get(k)) for f in fields)]
        why = "is ambiguous" if found else "is no field of the sweep's runs"
        raise ValueError(f"axis: {axis!r} {why}; numeric fields: {', '.join(numeric)}")
    return found[0]


def _finished(db: RunDB, sweep: dict) -> tuple[list[dict], list[dict]]:
    """The finished runs of a sweep, oldest first, and their configs' scalar fields by dotted path (a diverged run's
    last metric is not the converged value a scaling law describes: left out)."""
    infos = [i for i in db.runs(sweep_id=sweep["id"]) if i["status"] == "finished"][::-1]
    if not infos:
        raise ValueError(f"sweep_id: sweep {sweep['id']} has no finished run yet (diverged runs are left out)")
    return infos, [_flat(i["config"]) for i in infos]


@functools.cache
def _example_db() -> RunDB:
    """A run database in a temporary folder holding one sweep of 6 sizes x 2 seeds whose 'loss' follows
    3 n^-0.5 + 0.01 (the attack suite's base calls)."""
    folder = tempfile.mkdtemp(prefix="scaling-example-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    db = RunDB(Path(folder) / "runs.sqlite")
    sizes, seeds = [64, 128, 256, 512, 1024, 2048], [0, 1]
    sweep_id = db.sweep("example", {}, {"n": sizes}, seeds, False)
    for n in sizes:
        for seed in seeds:
            loss = (3.0 * n**-0.5 + 0.01) * (1.0 + 0.03 * math.cos(n + seed))
            db.save_point(
                sweep_id, "example", {"n": n, "seed": seed}, [Record(1, 1, "steps", {"loss": loss}, "finished")]
            )
    return db


def _number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


@declare(
    db=Given(any_value=True, none_ok=True, why="a RunDB or its path: opened and read in the body", example=_example_db),
    sweep_id=Given(none_ok=True, why="a sweep of the database (None: the newest): checked against its sweeps"),
    metric=Given(why="a metric the sweep's runs hold: checked against them", example="loss"),
    axis=Given(none_ok=True, why="a config field of the sweep's runs (None: the grid's one field)"),
)
def sweep_points(
    db: RunDB | str | os.PathLike | None,
    sweep_id: int | None = None,
    metric: str = "test_loss",
    axis: str | None = None,
) -> SweepPoints:
    """The finished runs of a sweep as (axis value, metric) points: the metric of each run's last record
    holding it as a number; a ValueError names what is missing (the sweep, the metric or the field, with what the
    sweep holds), a NaN metric's runs, or a second field that varies (a scaling law has one axis)."""
    db = _open(db)
    sweep = _sweep(db, sweep_id)
    if not isinstance(metric, str):
        raise ValueError(f"metric: must be a metric's name, got {metric!r:.60}")
    infos, fields = _finished(db, sweep)
    path = _axis(sweep, fields, axis)
    moving = sorted(
        k
        for k in set().union(*fields) - {path}
        if k.rsplit(".", 1)[-1] not in SEED_FIELDS and len({repr(f.get(k)) for f in fields}) > 1
    )
    if moving:
        raise ValueError(f"axis: the sweep also varies {', '.join(moving)}; a scaling law is fitted along one field")
    n, y, held, nan = [], [], set(), []
    for info, flat in zip(infos, fields):
        records = db.records(info["id"])
        values = [r.metrics[metric] for r in records if _number(r.metrics.get(metric))]
        held.update(k for r in records for k, v in r.metrics.items() if _number(v))
        if not values:
            raise ValueError(
                f"metric: run {info['id']} of sweep {sweep['id']} holds no {metric!r}; "
                f"it holds {', '.join(sorted(held))}"
            )
        if not _number(flat.get(path)):
            raise ValueError(f"axis: {path} of run {info['id']} is {flat.get(path)!r}, not a number")
        if not math.isfinite(values[-1]):
            nan.append(info["id"])
        n.append(float(flat[path]))
        y.append(float(values[-1]))
    if nan:
        raise ValueError(f"metric: {metric} is NaN or infinite in runs {nan} (diverged?); rerun or leave them out")
    ids = tuple(int(i["id"]) for i in infos)
    return SweepPoints(int(sweep["id"]), sweep["experiment"], metric, path, np.array(n), np.array(y), ids)


@declare(
    db=Given(any_value=True, none_ok=True, why="a RunDB or its path: opened and read in the body", example=_example_db),
    sweep_id=Given(none_ok=True, why="a sweep of the database (None: the newest): checked against its sweeps"),
)
def held(db: RunDB | str | os.PathLike | None, sweep_id: int | None = None) -> tuple[int, list[str], list[str]]:
    """(sweep id, the numeric metrics its finished runs hold, the numeric config fields that vary across them but
    the seed): what a scaling law of the sweep can be fitted to and against."""
    db = _open(db)
    sweep = _sweep(db, sweep_id)
    infos, fields = _finished(db, sweep)
    metrics = {k for i in infos for r in db.records(i["id"]) for k, v in r.metrics.items() if _number(v)}
    axes = [
        k
        for k in sorted(set().union(*fields))
        if k.rsplit(".", 1)[-1] not in SEED_FIELDS
        and all(_number(f.get(k)) for f in fields)
        and len({f.get(k) for f in fields}) > 1
    ]
    return int(sweep["id"]), sorted(metrics), axes


@declare(
    finite=False,  # the fit's n_irreducible is inf where its c is 0
    db=Given(any_value=True, none_ok=True, why="a RunDB or its path: opened and read in the body", example=_example_db),
    sweep_id=Given(none_ok=True, why="a sweep of the database (None: the newest): checked against its sweeps"),
    metric=Given(why="a metric the sweep's runs hold: checked against them", example="loss"),
    axis=Given(none_ok=True, why="a config field of the sweep's runs (None: the grid's one field)"),
    level=Real(0.5, 0.999),
    resamples=Int(20, 100_000),
    seed=Int(0, 2**31 - 1),
    guess=Real(0.0, lo_open=True, none_ok=True),
    store=Flag(),
)
def fit_sweep(
    db: RunDB | str | os.PathLike | None,
    sweep_id: int | None = None,
    metric: str = "test_loss",
    axis: str | None = None,
    level: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
    guess: float | None = None,
    store: bool = True,
) -> tuple[ScalingFit, SweepPoints]:
    """`fit_scaling` of a sweep's `sweep_points`; with `store`, the fit is written with the sweep (replacing an
    earlier fit of the same metric and field)."""
    points = sweep_points(db, sweep_id, metric, axis)
    try:
        fit = fit_scaling(points.n, points.y, level=level, resamples=resamples, seed=seed, guess=guess)
    except ValueError as err:  # named by the sweep's field and metric, not by fit_scaling's n and y
        what, _, why = str(err).partition(": ")
        name = f"axis: {points.axis}" if what == "n" else f"metric: {points.metric}"
        raise ValueError(f"{name} of sweep {points.sweep_id}: {why}") from None
    if store:
        writer = db if isinstance(db, RunDB) and not db.readonly else RunDB(db.path if isinstance(db, RunDB) else db)
        body = dict(fit.to_dict(), runs=list(points.run_ids), experiment=points.experiment, seed=seed)
        writer.save_fit(points.sweep_id, points.metric, points.axis, body)
    return fit, points


@declare(
    finite=False,
    fit=Instance(ScalingFit, example=lambda: fit_sweep(_example_db(), None, "loss", resamples=50, store=False)[0]),
    points=Instance(SweepPoints, example=lambda: sweep_points(_example_db(), None, "loss")),
)
def summary(fit: ScalingFit, points: SweepPoints) -> str:
    """The fit of a sweep as text: the law, each parameter with its interval, Hestness et al.'s regions."""
    sizes = np.unique(points.n)
    percent = f"{100 * fit.level:g}%"
    lines = [
        f"sweep {points.sweep_id} ({points.experiment.rsplit('.', 1)[-1]}): {points.metric} against {points.axis}, "
        f"{len(points.n)} runs at {sizes.size} sizes from {sizes[0]:g} to {sizes[-1]:g}",
        f"{points.metric} = a {points.axis}^-alpha + c  ({percent} intervals, {len(fit.draws)} bootstrap resamples)",
    ]
    for name in ("a", "alpha", "c"):
        lo, hi = fit.intervals[name]
        lines.append(f"  {name:<5} = {getattr(fit, name):<10.4g} [{lo:.4g}, {hi:.4g}]")
    irreducible = (
        f"irreducible error above {fit.n_irreducible:.4g} (a n^-alpha < c)"
        if math.isfinite(fit.n_irreducible)
        else "no irreducible region (c = 0)"
    )
    small = (
        f"small data below {fit.n_small:.4g} (the fit above the best guess {fit.guess:.4g})"
        if math.isfinite(fit.guess)
        else "small data not located (no best-guess error given)"
    )
    lines.append(f"regions: {small}; power law {fit.n_small:.4g} .. {fit.n_irreducible:.4g}; {irreducible}")
    lines.append(f"rms log residual {fit.rms:.3g}")
    return "\n".join(lines)
