"""Sweeps over any Config fields on a Dask cluster, each point streamed into the run database as it ends.

    from workbench.runs import sweep
    from workbench.experiments import teacher_fit
    for record in sweep.run(teacher_fit, teacher_fit.Config(steps=30),
                            grid={"width": [64, 256], "lr": [2**-10, 2**-7]}, seeds=[0, 1]):
        print(progress_text(record), record.metrics.get("fields"), record.metrics.get("result"))

The grid is the product (or, with `zip=True`, the zip) of its value lists, times `seeds` (the Config's `seed`
field); every point's Config is built, so validated, before any task starts. Each point is one task,
`experiment.run(config)` to its end on a worker: by default an in-process `LocalCluster` of worker processes
(one per CPU that `workbench.core.runtime` finds, one XLA/BLAS thread each), or any `distributed.Client`, cluster
(dask-jobqueue, dask-kubernetes) or scheduler address. The client writes each result into the run database
(`RunDB.save_point`: at most one finished run per config hash), so a point already finished is skipped and a
crashed or stopped sweep resumes where it stopped; a task whose worker dies is rerun by the scheduler and
still written once. Progress is the experiment contract's: a "point" Record per point ("job i of n"), then a
"summary"; the stop event cancels the pending tasks.

Under faults: nothing is written before the client is connected (an address that never answers is a
ConnectionError within `CONNECT_TIMEOUT`, see `workbench.runs.cluster`); a "status" Record says the points were
submitted before the first one ends; a write that finds the database locked by another process is tried again
with backoff, never given up (no finished result is lost); a point that raised is saved as an "error" run of its
sweep, replaced when it is rerun; the ETA (`eta`) reads the median of the latest points' durations and the
cluster's workers. A grid that would silently run other points than asked is refused (`grid_configs`).
"""

from __future__ import annotations

import builtins
import importlib
import importlib.util
import itertools
import math
import numbers
import os
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, TypeVar

from workbench.core.config import Config, get_path, leaves
from workbench.core.declare import Flag, Given, declare
from workbench.core.experiment import RUN_STOP, Record
from workbench.runs.cluster import CONNECT_TIMEOUT as CONNECT_TIMEOUT  # re-exported: sweep.CONNECT_TIMEOUT, ...
from workbench.runs.cluster import ONE_THREAD as ONE_THREAD
from workbench.runs.cluster import ClusterLike, client_of, slots
from workbench.runs.cluster import connect as connect
from workbench.runs.cluster import local_client as local_client
from workbench.runs.cluster import pin_workers as pin_workers
from workbench.runs.rundb import RunDB, RunDBLocked, config_hash, decode, encode

__all__ = ["MAX_POINTS", "METRICS", "run"]

if TYPE_CHECKING:
    from distributed import Client, Future

T = TypeVar("T")

MAX_POINTS = 10_000  # points of one sweep (each a database row and a task)
RECENT = 8  # the ETA reads the median duration of this many most recent points


class SweepPoint(TypedDict):
    """One point of a sweep: its grid values, the scalar metrics of its last record, where it ran."""

    run_id: int
    fields: dict  # grid field -> value (and "seed")
    result: dict  # scalar metrics of the run's last record with metrics
    outcome: str  # the run's status: finished, diverged, stopped, error
    skipped: bool  # already in the database: not run again
    failed: int  # points that raised so far
    eta: float  # seconds left, estimated from the points run so far (NaN before the first)
    dashboard: str  # the Dask dashboard's address ("" when none)
    error: NotRequired[str]


class SweepSummary(TypedDict):
    sweep_id: int
    ran: int  # points computed by this call
    skipped: int  # points found finished in the database
    failed: int
    dashboard: str


METRICS = {"point": SweepPoint, "summary": SweepSummary}


def experiment_module(experiment: ModuleType | str) -> ModuleType:
    """An experiment module from itself, its name in workbench.experiments, or an importable module's name (a
    dotted path, or a single-file module such as `myexp` on the path)."""
    if isinstance(experiment, ModuleType):
        return experiment
    if not isinstance(experiment, str) or not all(p.isidentifier() for p in experiment.split(".")):
        raise ValueError(f"experiment: must be the name of an experiment module (text), got {experiment!r:.80}")
    name = experiment
    if "." not in name and importlib.util.find_spec(f"workbench.experiments.{name}") is not None:
        name = f"workbench.experiments.{name}"
    try:
        module = importlib.import_module(name)
    except ImportError as err:
        missing = (
            isinstance(err, ModuleNotFoundError) and err.name is not None and f"{name}.".startswith(f"{err.name}.")
        )
        why = "not in workbench.experiments, not importable" if missing else f"importing it failed: {err}"
        raise ValueError(f"experiment: no experiment module {experiment!r} ({why})") from None
    if not all(hasattr(module, a) for a in ("Config", "run")):
        raise ValueError(f"experiment: {name} has no Config and run")
    return module


def check_seeds(seeds: object) -> list[int] | None:
    """`seeds` as a list of distinct integers (None: the Config's own seed)."""
    if seeds is None:
        return None
    if isinstance(seeds, (str, bytes, Mapping)) or not isinstance(seeds, Sequence):
        raise ValueError(f"seeds: must be a list of integers, got {seeds!r:.80}")
    if not seeds:
        raise ValueError("seeds: give at least one seed, or leave seeds out (each point runs the Config's seed)")
    out: list[int] = []
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ValueError(f"seeds: must be a list of integers, got {seed!r:.80} in it")
        out.append(int(seed))
    if len(set(out)) < len(out):
        raise ValueError(f"seeds: {next(s for i, s in enumerate(out) if s in out[:i])} is there twice; each runs once")
    return out


def _key(value: object) -> object:
    """A hashable stand-in for a field's value (a list or a group by its repr)."""
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def grid_configs(
    base_config: Config, grid: Mapping[str, Sequence], seeds: Sequence[int] | None = None, zip: bool = False
) -> list[Config]:
    """Every point's Config (grid values over `base_config`, times the seeds), each validated: a bad key, field
    or value raises ValueError naming it before anything runs. Never silently other points than asked: a value
    twice in a list (`width = [64, 64]`), two points with one config, `seed` both in the grid and in `seeds` (give
    the seeds in one place), an empty grid or empty seeds are refused."""
    if not isinstance(zip, bool):
        raise ValueError(f"zip: must be true or false, got {zip!r:.80}")
    if not isinstance(grid, Mapping) or not all(isinstance(k, str) for k in grid):
        raise ValueError(f"grid: must be a table of field = values, got {grid!r:.80}")
    if not grid:
        raise ValueError("grid: give at least one field and its values (seeds alone: seed = [0, 1, ...])")
    seeds = check_seeds(seeds)
    names = {path for path, *_ in leaves(type(base_config))}
    for name, values in grid.items():
        if base_config.resolve(name) not in names:
            raise ValueError(f"grid: {type(base_config).__name__} has no field {name!r}; fields: {sorted(names)}")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"grid: {name} must be a non-empty list of values, got {values!r:.80}")
        seen: dict = {}
        for value in values:
            try:
                checked = get_path(base_config.replace(**{name: value}), base_config.resolve(name))
            except (ValueError, TypeError) as err:
                raise ValueError(f"grid: {name}={value!r} refused: {err}") from None
            if not zip and _key(checked) in seen:
                raise ValueError(f"grid: {name} has the value {seen[_key(checked)]!r} twice; each point runs once")
            seen[_key(checked)] = value
    if seeds is not None and "seed" not in names:
        raise ValueError(f"seeds: {type(base_config).__name__} has no seed field; leave seeds out")
    if seeds is not None and any(base_config.resolve(k) == base_config.resolve("seed") for k in grid):
        raise ValueError("grid: seed is swept both in the grid and by seeds; give the seeds in one place")
    if zip and len({len(v) for v in grid.values()}) > 1:
        lengths = {k: len(v) for k, v in grid.items()}
        raise ValueError(f"grid: zip needs value lists of one length, got {lengths}")
    n = (min(map(len, grid.values())) if zip else math.prod(map(len, grid.values()))) * len(seeds or [0])
    if n > MAX_POINTS:
        raise ValueError(f"grid: {n} points; a sweep holds at most {MAX_POINTS} (split it, or use fewer values)")
    combos = list(builtins.zip(*grid.values()) if zip else itertools.product(*grid.values()))
    out, first = [], {}
    for combo in combos:
        for seed in seeds if seeds is not None else [None]:
            changes = dict(builtins.zip(grid, combo), **({} if seed is None else {"seed": seed}))
            try:
                config = base_config.replace(**changes)
            except (ValueError, TypeError) as err:
                raise ValueError(f"grid: the point {changes} refused: {err}") from None
            same = first.setdefault(config.to_json(), changes)
            if same is not changes:
                raise ValueError(f"grid: the points {same} and {changes} are one config; each point runs once")
            out.append(config)
    return out


def values(spec: object) -> list:
    """A grid axis from a list, or a range {from, to, n, log}: n values from..to, evenly spaced or (log = true)
    geometrically; a range of whole numbers gives ints."""
    if isinstance(spec, (list, tuple)):
        return list(spec)
    if not isinstance(spec, dict) or not {"from", "to", "n"} <= set(spec) or set(spec) - {"from", "to", "n", "log"}:
        raise ValueError(f"grid: a field's values are a list or {{from, to, n, log}}, got {spec!r}")
    lo, hi, n = spec["from"], spec["to"], spec["n"]
    if not isinstance(n, int) or not 1 <= n <= 10_000:
        raise ValueError(f"grid: n must be an integer in [1, 10000], got {n!r}")
    import numpy as np

    try:
        out = (np.geomspace if spec.get("log") else np.linspace)(lo, hi, n)
    except (TypeError, ValueError) as err:
        raise ValueError(f"grid: range {spec!r} refused: {err}") from None
    whole = all(isinstance(v, int) for v in (lo, hi))
    return [int(round(v)) for v in out] if whole else [float(f"{v:.12g}") for v in out]  # no 0.000976562499


def parse_grid(text: str) -> dict[str, list]:
    """A grid from text, one field per clause: "width = 64, 128, 256; lr = 2**-11 .. 2**-4 / 8 log" (a list,
    or from .. to / n, with "log" for a geometric range)."""
    grid = {}
    for clause in filter(None, (c.strip() for c in text.replace("\n", ";").split(";"))):
        name, eq, rest = clause.partition("=")
        if not eq or not name.strip().isidentifier():
            raise ValueError(f"grid: write 'field = values', got {clause!r}")
        rest, log = (rest[: rest.rindex("log")], True) if rest.rstrip().endswith("log") else (rest, False)
        if ".." in rest:
            lo, _, tail = rest.partition("..")
            hi, slash, n = tail.partition("/")
            spec = dict(zip(("from", "to", "n"), (_number(lo), _number(hi), _number(n) if slash else 2)), log=log)
            grid[name.strip()] = values(spec)
        else:
            grid[name.strip()] = [_number(v) for v in rest.split(",") if v.strip()]
    return grid


def _number(text: str):
    """An int, a float, a power such as 2**-7 (a float; an int when whole and below 2**53) or a word (a choice
    such as 'ntk')."""
    text = text.strip()
    base, power, exp = text.partition("**")
    try:
        if not power:
            return int(text)
    except ValueError:
        pass
    try:
        value = float(base) ** float(exp) if power else float(text)
    except (ValueError, OverflowError, ZeroDivisionError):
        return text
    if not isinstance(value, float):  # (-8) ** 0.5 is complex
        raise ValueError(f"grid: {text} is not a real number")
    return int(value) if power and value.is_integer() and abs(value) < 2**53 else value


def run_point(module: str, config_json: str) -> dict:
    """The task: run one point to its end on a worker; its records as JSON-ready dicts and where it ran."""
    experiment = experiment_module(module)
    config = experiment.Config.from_json(config_json)
    started = time.time()
    records = [dict(done=r.done, total=r.total, unit=r.unit, kind=r.kind, status=r.status, elapsed=r.elapsed,
                    metrics=encode(r.metrics)) for r in experiment.run(config) if r.status != "compiling"]  # fmt: skip
    return {"records": records, "created": started, "ended": time.time(), "host": socket.gethostname(),
            "pid": os.getpid()}  # fmt: skip


def _point(config: Config, grid: Mapping[str, Sequence]) -> dict:
    """A point's grid values (and its seed)."""
    keys = list(grid) + (["seed"] if hasattr(config, "seed") and "seed" not in grid else [])
    return {k: get_path(config, config.resolve(k)) for k in keys}


def _result(records: Sequence[Record]) -> dict:
    """The scalar metrics of the last record that has metrics."""
    last = next((r for r in reversed(records) if r.metrics), None)
    if last is None:
        return {}
    return {k: v for k, v in last.metrics.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}


def _records(out: dict) -> list[Record]:
    """The Records of a task's JSON-ready result."""
    return [
        Record(d["done"], d["total"], d["unit"], decode(d["metrics"]), d["status"], d["kind"], d["elapsed"])
        for d in out["records"]
    ]


def _failure(future: Future) -> str:
    """What went wrong with a task that did not finish."""
    if future.status == "cancelled":
        return "cancelled (the scheduler or the cluster went away)"
    err = future.exception()
    return f"{type(err).__name__}: {err}"


def eta(durations: Sequence[float], remaining: int, slots: int, recent: int = RECENT) -> float:
    """Seconds left: the median duration of the `recent` latest points times the rounds of `slots` tasks at once
    that the `remaining` points need (NaN before any point ended, 0 when none is left). Not the plain average of
    the time so far, which the first fast points pull down (at job 48 of 83 it said 12 s where 70 s were left)."""
    if remaining <= 0:
        return 0.0
    if not durations:
        return math.nan
    return statistics.median(durations[-recent:]) * math.ceil(remaining / max(1, slots))


def _written(write: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`write(*args, **kwargs)`, tried again with backoff (0.1 s doubling to 5 s, after the database's own wait)
    while another process holds the run database's write lock: a sweep never dies of a lock, nor loses a result."""
    wait = 0.1
    while True:
        try:
            return write(*args, **kwargs)
        except RunDBLocked:
            time.sleep(wait)
            wait = min(2 * wait, 5.0)


@declare(
    finite=False,
    experiment=Given(any_value=True, why="a module or its name: experiment_module checks it", example="teacher_fit"),
    base_config=Given(any_value=True, none_ok=True, why="checked against the experiment's Config in the body"),
    grid=Given(any_value=True, none_ok=True, why="grid_configs checks every field and value before any task"),
    seeds=Given(any_value=True, none_ok=True, why="check_seeds checks them before any task"),
    zip=Flag(),
    client=Given(any_value=True, none_ok=True, why="an address, a cluster or a client: cluster.client_of"),
    db=Given(any_value=True, none_ok=True, why="a RunDB or its path, opened when the first point ends"),
    stop=RUN_STOP,
)
def run(
    experiment: ModuleType | str,
    base_config: Config | None = None,
    grid: Mapping[str, Sequence] | None = None,
    seeds: Sequence[int] | None = None,
    zip: bool = False,
    client: Client | ClusterLike | str | None = None,
    db: RunDB | str | os.PathLike | None = None,
    stop: threading.Event | None = None,
) -> Iterator[Record]:
    """Run every point of the grid not yet finished in `db` as a task on `client` (see the module docstring);
    yield a "point" Record per point already finished, a "status" Record once the rest are submitted (the wait for
    the first can be long: a queued batch job), a "point" Record per point as it ends, then a "summary" Record.
    Nothing is written before the client is connected."""
    module = experiment_module(experiment)
    base: Config = base_config if base_config is not None else module.Config()
    if not isinstance(base, Config):
        raise ValueError(f"base_config: must be a {module.__name__}.Config, got {type(base).__name__}")
    configs = grid_configs(base, grid if grid is not None else {}, seeds, zip)  # refused here, before any task
    grid, seeds, stop = dict(grid or {}), check_seeds(seeds), stop or threading.Event()
    client, own = client_of(client)  # before anything is written: an address that never answers writes nothing
    try:
        yield from _run(module, base, configs, grid, seeds, zip, client, db, stop)
    finally:
        if own:
            client.close()


def _run(
    module: ModuleType,
    base: Config,
    configs: list[Config],
    grid: dict,
    seeds: list[int] | None,
    zip: bool,
    client: Client,
    db: RunDB | str | os.PathLike | None,
    stop: threading.Event,
) -> Iterator[Record]:
    """`run` once its client is connected."""
    db = db if isinstance(db, RunDB) else RunDB(db)
    name = module.__name__
    sweep_id = _written(db.sweep, name, base.to_dict(), grid, list(seeds or []), zip)
    hashes = [config_hash(name, c.to_dict()) for c in configs]
    done_before = db.finished(hashes)
    todo = {h: c for c, h in builtins.zip(configs, hashes) if h not in done_before}
    start, total, failed, durations = time.perf_counter(), len(configs), 0, []
    dashboard = getattr(client, "dashboard_link", "") or ""

    def point(
        done: int,
        config: Config,
        run_id: int,
        records: Sequence[Record],
        outcome: str,
        skipped: bool,
        eta: float,
        error: str | None = None,
    ) -> Record:
        metrics = dict(run_id=run_id, fields=_point(config, grid), result=_result(records), outcome=outcome,
                       skipped=skipped, failed=failed, eta=eta, dashboard=dashboard)  # fmt: skip
        if error:
            metrics["error"] = error
        return Record(done, total, "jobs", metrics, "running", "point", time.perf_counter() - start)

    for i, (h, run_id) in enumerate(sorted(done_before.items(), key=lambda item: item[1])):
        config = configs[hashes.index(h)]
        _written(db.save_point, sweep_id, name, config, [])  # links the finished run, writes nothing else
        info, records = db.load(run_id)
        yield point(i + 1, config, run_id, records, info["status"], True, math.nan)
        if stop.is_set():
            yield Record(i + 1, total, "jobs", {}, "stopped", "status", time.perf_counter() - start)
            return
    short = name.rsplit(".", 1)[-1]
    futures = {
        client.submit(run_point, name, c.to_json(), key=f"{short}-{h[:16]}", pure=False): h for h, c in todo.items()
    }
    pending: set = set(futures)
    done = shown = len(done_before)
    if pending:  # started: said before the first point ends
        yield Record(done, total, "jobs", {}, "running", "status", time.perf_counter() - start)
    from distributed import wait

    while pending:
        if stop.is_set():
            break
        try:
            finished, pending = wait(list(pending), timeout=0.2, return_when="FIRST_COMPLETED")  # pyright: ignore
        except TimeoutError:  # nothing ended in the last 0.2 s: look at the stop event again
            continue
        points, at_once = [], slots(client)
        for future in finished:  # every ended task is written before any is shown
            config = todo[futures[future]]
            if future.status == "finished":
                out = future.result()
                records = _records(out)
                meta = {k: out[k] for k in ("created", "ended", "host")}
                run_id, _ = _written(db.save_point, sweep_id, name, config, records, **meta)
                outcome, error = (records[-1].status if records else "stopped"), None
                durations.append(out["ended"] - out["created"])
            else:
                failed += 1
                records, outcome, error = [], "error", _failure(future)
                run_id, _ = _written(db.save_point, sweep_id, name, config, [], status="error", error=error)
            done += 1
            points.append(
                point(done, config, run_id, records, outcome, False, eta(durations, total - done, at_once), error)
            )
        for record in points:
            yield record
            shown = record.done
            if stop.is_set():  # set while the caller held this point: the rest is not shown
                break
    if stop.is_set():
        client.cancel(list(pending))
        yield Record(shown, total, "jobs", {}, "stopped", "status", time.perf_counter() - start)
        return
    summary = dict(sweep_id=sweep_id, ran=len(todo), skipped=len(done_before), failed=failed, dashboard=dashboard)
    yield Record(total, total, "jobs", summary, "finished", "summary", time.perf_counter() - start)
