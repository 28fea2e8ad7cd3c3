"""The experiment contract: a `Config` class, `run(config, stop) -> Iterator[Record]`, typed metrics.

Every experiment (training, sweep or view) reports through `Record`s that carry their own progress:
`done` of `total` in a `unit` ("steps" of an optimizer, "jobs" of a sweep, "stages" of a view), a
`status` and a `kind` saying what the metrics are:

- "step": metrics of a training run after `done` optimizer steps (`Record.step` is that count);
- "point": the result of one job of a sweep (one width, one parametrization, ...);
- "summary": what a finished run concludes from its points (slopes, optima, ...);
- "stage": one part of a view that is filled in piece by piece (analytic curves, then finite networks);
- "status": no metrics (compiling, stopped before any result).

A front end draws progress from `done / total` and its text from `progress_text`, never a guess.
Every sweep uses `sweep(items, measure, stop)`, which also turns a non-finite metric into "diverged".
"""

from __future__ import annotations

import threading
import time
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

import numpy as np

from workbench.core.declare import Given, Instance, declare

__all__ = ["KINDS", "RUN_STOP", "Experiment", "Kind", "Record", "Status", "Stopped", "Unit", "experiment_run", "stages",
           "sweep"]  # fmt: skip

Status = Literal["compiling", "running", "finished", "stopped", "diverged"]
Kind = Literal["step", "point", "summary", "stage", "status"]
Unit = Literal["steps", "jobs", "stages"]
STATUSES: tuple[Status, ...] = typing.get_args(Status)
KINDS: tuple[Kind, ...] = typing.get_args(Kind)
UNITS: tuple[Unit, ...] = typing.get_args(Unit)

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C")  # an experiment's Config class


@dataclass
class Record:
    """One report of a run: progress (`done` of `total` `unit`s), status, kind and metrics."""

    done: int
    total: int
    unit: Unit = "steps"
    metrics: dict[str, Any] = field(default_factory=dict)
    status: Status = "running"
    kind: Kind = "step"
    elapsed: float = 0.0
    params: Any = field(default=None, repr=False)
    work: float | None = field(default=None, repr=False)  # share of the expected work done, where jobs differ in cost

    @property
    def step(self) -> int:
        """Optimizer steps taken (training records only: a sweep's `done` counts jobs, not steps)."""
        if self.unit != "steps":
            raise AttributeError(f"Record.step: this record counts {self.unit}, not steps; use .done")
        return self.done

    @property
    def fraction(self) -> float:
        """Share of the run done, in [0, 1] (1 for a finished run whatever its total)."""
        if self.status == "finished":
            return 1.0
        if self.work is not None:  # a sweep whose jobs differ in cost (`sweep(costs=...)`)
            return min(1.0, max(0.0, self.work))
        return min(1.0, self.done / self.total) if self.total else 0.0


def progress_text(record: Record) -> str:
    """'step 1200 of 4000' or 'job 3 of 30': the record's own progress in words."""
    return f"{record.unit[:-1]} {record.done} of {record.total}"


class Experiment(Protocol, Generic[C]):
    """What a panel, a test or a sweep needs of an experiment module (or any object): its Config class, its run,
    and METRICS, the TypedDict of each kind of record it yields (names, types, shapes in comments); panels read only
    declared metrics (tests/test_panel_metrics.py)."""

    @property
    def Config(self) -> type[C]: ...  # noqa: N802 (the module attribute's name)

    @property
    def METRICS(self) -> Mapping[str, type]: ...  # noqa: N802

    def run(self, config: C, stop: threading.Event | None = None) -> Iterator[Record]: ...


def schema_errors(record: Record, metrics: Mapping[str, type]) -> list[str]:
    """How a record's metrics disagree with the declared TypedDict of its kind (empty when they agree)."""
    if not record.metrics:
        return []
    if record.kind not in metrics:
        return [f"kind {record.kind!r} has no declared metrics"]
    hints = typing.get_type_hints(metrics[record.kind], include_extras=True)
    names, known = set(record.metrics), set(hints)
    required = {n for n, hint in hints.items() if typing.get_origin(hint) is not typing.NotRequired}
    return [f"missing {n}" for n in sorted(required - names)] + [f"undeclared {n}" for n in sorted(names - known)]


def non_finite(metrics: dict, names: Iterable[str]) -> list[str]:
    """The names among `names` whose metric holds a NaN or an infinity."""
    bad = []
    for name in names:
        value = metrics.get(name)
        if value is not None and not np.all(np.isfinite(np.asarray(value, dtype=float))):
            bad.append(name)
    return bad


RUN_STOP = Instance(threading.Event, none_ok=True)  # the `stop` of every experiment's run(config, stop)


@declare(finite=False, config_cls=Instance(type, example=lambda: dict))
def experiment_run(config_cls: type) -> Callable[[F], F]:
    """`@declare` for an experiment's `run(config, stop)`: a `config_cls` instance and a threading.Event or None."""
    return declare(finite=False, config=Instance(config_cls), stop=RUN_STOP)


class Stopped(Exception):
    """Raised by a job that saw the stop event between its own chunks of work (`sweep` ends "stopped")."""


@declare(
    finite=False,
    items=Given(any_value=True, why="any items; measured one by one", example=lambda: [1]),
    measure=Given(any_value=True, why="called per item; its errors are the run's", example=lambda: lambda item: {}),
    stop=RUN_STOP,
    summary=Given(any_value=True, why="called once at the end", none_ok=True),
    finite_metrics=Given(any_value=True, why="metric names; unknown names are not in the metrics"),
    costs=Given(any_value=True, why="checked in the body against the items", none_ok=True),
)
def sweep(
    items: Iterable[Any],
    measure: Callable[[Any], dict],
    stop: threading.Event | None = None,
    *,
    summary: Callable[[list[dict]], dict] | None = None,
    finite_metrics: Iterable[str] = (),
    costs: Iterable[float] | None = None,
) -> Iterator[Record]:
    """Run `measure(item)` for every item, yielding a "point" Record per job ("job i of n"), then a
    "summary" Record (`summary(points)`) with status "finished". The stop event is checked between
    jobs, and a job that checks it inside raises `Stopped` ("stopped" at job k of n); a job whose metrics
    named in `finite_metrics` are not finite ends the sweep "diverged" with those metrics. `costs`: each job's expected
    cost (steps x width is a fine proxy), so the progress bar (`Record.fraction`) is the share of the work done
    while `done` / `total` still count jobs."""
    stop = stop or threading.Event()
    items, finite, start = list(items), tuple(finite_metrics), time.perf_counter()
    n, points = len(items), []
    weights = None
    if costs is not None:
        weights = np.asarray(list(costs), float)
        if weights.shape != (n,) or not np.all(np.isfinite(weights)) or np.any(weights <= 0):
            raise ValueError(f"costs: must be one positive number per item ({n}), got {list(weights)!r:.80}")
        weights = np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])

    def work(i: int) -> float | None:
        return None if weights is None else float(weights[i])

    for i, item in enumerate(items):
        if stop.is_set():
            yield Record(i, n, "jobs", {}, "stopped", "status", time.perf_counter() - start, work=work(i))
            return
        try:
            metrics = measure(item)
        except Stopped:
            yield Record(i, n, "jobs", {}, "stopped", "status", time.perf_counter() - start, work=work(i))
            return
        points.append(metrics)
        status = "diverged" if non_finite(metrics, finite) else "running"
        yield Record(i + 1, n, "jobs", metrics, status, "point", time.perf_counter() - start, work=work(i + 1))
        if status == "diverged":
            return
    yield Record(n, n, "jobs", summary(points) if summary else {}, "finished", "summary", time.perf_counter() - start)


@declare(finite=False, parts=Given(any_value=True, why="called in turn", example=lambda: []), stop=RUN_STOP)
def stages(parts: Iterable[Callable[[], dict]], stop: threading.Event | None = None) -> Iterator[Record]:
    """A view computed in parts: one "stage" Record per part ("stage i of n"), metrics accumulated, the
    last one "finished"; a stop between parts ends it "stopped"."""
    stop = stop or threading.Event()
    parts, metrics, start = list(parts), {}, time.perf_counter()
    for i, part in enumerate(parts):
        if stop.is_set():
            yield Record(i, len(parts), "stages", dict(metrics), "stopped", "status", time.perf_counter() - start)
            return
        metrics.update(part())
        status = "finished" if i == len(parts) - 1 else "running"
        yield Record(i + 1, len(parts), "stages", dict(metrics), status, "stage", time.perf_counter() - start)
