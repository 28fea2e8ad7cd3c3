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
"""

from __future__ import annotations

import atexit
import builtins
import dataclasses
import importlib
import itertools
import math
import os
import socket
import threading
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, NotRequired, Protocol, TypedDict, cast, runtime_checkable

from workbench.core.config import Config
from workbench.core.experiment import Record
from workbench.core.runtime import available_cpus
from workbench.runs.rundb import RunDB, config_hash, decode, encode

if TYPE_CHECKING:
    from distributed import Client, Future, Worker

MAX_POINTS = 10_000  # points of one sweep (each a database row and a task)
CONNECT_TIMEOUT = 5.0  # seconds to reach a scheduler address before a clear error (issue 16: within 10 s)
ONE_THREAD = {  # each worker process computes with one thread (with `pin_workers`): the parallelism is the processes
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "XLA_PYTHON_CLIENT_PREALLOCATE": "false",  # several workers may share one GPU
}


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
    """An experiment module from itself, its name in workbench.experiments, or its dotted path."""
    if isinstance(experiment, ModuleType):
        return experiment
    name = experiment if "." in experiment else f"workbench.experiments.{experiment}"
    try:
        module = importlib.import_module(name)
    except ImportError:
        raise ValueError(f"experiment: no experiment module {experiment!r}") from None
    if not all(hasattr(module, a) for a in ("Config", "run")):
        raise ValueError(f"experiment: {name} has no Config and run")
    return module


def grid_configs(
    base_config: Config, grid: Mapping[str, Sequence], seeds: Sequence[int] | None = None, zip: bool = False
) -> list[Config]:
    """Every point's Config (grid values over `base_config`, times the seeds), each validated: a bad field or
    value raises ValueError naming them before anything runs."""
    names = {f.name for f in dataclasses.fields(base_config)}
    for name, values in grid.items():
        if name not in names:
            raise ValueError(f"grid: {type(base_config).__name__} has no field {name!r}; fields: {sorted(names)}")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"grid: {name} must be a non-empty list of values, got {values!r}")
        for value in values:
            try:
                base_config.replace(**{name: value})
            except (ValueError, TypeError) as err:
                raise ValueError(f"grid: {name}={value!r} refused: {err}") from None
    if seeds is not None and "seed" not in names:
        raise ValueError(f"seeds: {type(base_config).__name__} has no seed field; leave seeds out")
    if zip and len({len(v) for v in grid.values()}) > 1:
        lengths = {k: len(v) for k, v in grid.items()}
        raise ValueError(f"grid: zip needs value lists of one length, got {lengths}")
    n = (min(map(len, grid.values()), default=1) if zip else math.prod(map(len, grid.values()))) * len(seeds or [0])
    if n > MAX_POINTS:
        raise ValueError(f"grid: {n} points; a sweep holds at most {MAX_POINTS} (split it, or use fewer values)")
    combos = list(builtins.zip(*grid.values()) if zip else itertools.product(*grid.values()))
    out = []
    for combo in combos:
        for seed in seeds if seeds is not None else [None]:
            changes = dict(builtins.zip(grid, combo), **({} if seed is None else {"seed": seed}))
            try:
                out.append(base_config.replace(**changes))
            except (ValueError, TypeError) as err:
                raise ValueError(f"grid: the point {changes} refused: {err}") from None
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


_LOCAL: dict[str, Any] = {}


def local_client(n_workers: int | None = None, processes: bool = True):
    """The in-process LocalCluster's client (started once, reused by later sweeps, closed at exit): worker
    processes on the loopback, one per available CPU, one thread each."""
    from distributed import Client, LocalCluster

    n_workers = n_workers or available_cpus()
    key = f"{n_workers}-{processes}"
    client = _LOCAL.get(key)
    if client is None or client.status != "running":
        where: dict[str, Any] = dict(host="127.0.0.1", env=ONE_THREAD) if processes else {}  # threads: in-process
        try:
            cluster = LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=processes, dashboard_address="127.0.0.1:0",
                silence_logs=40, **where,
            )  # fmt: skip
        except RuntimeError as err:  # most often a script that starts worker processes at import time
            raise RuntimeError(
                f"local cluster: could not start {n_workers} worker processes ({err}). In a script, start the sweep "
                "under `if __name__ == '__main__':` (worker processes import the main module)"
            ) from None
        client = _LOCAL[key] = Client(cluster)
        if processes:
            pin_workers(client)
        atexit.register(lambda: (client.close(), cluster.close()))
    return client


def pin_workers(client: Client) -> None:
    """Each worker process of a local cluster on one CPU of this process's (round robin by worker name), every
    thread: XLA sizes its CPU thread pool from the affinity, and jax 0.10 ignores `--xla_cpu_multi_thread_eigen`,
    so unpinned workers each computed on every core and competed (a point took twice its time with two workers).
    Registered as a worker plugin, so a worker restarted after a crash is pinned again. Linux only."""
    if not hasattr(os, "sched_setaffinity"):
        return
    from distributed.diagnostics.plugin import WorkerPlugin

    cpus = sorted(os.sched_getaffinity(0))

    class OneCPU(WorkerPlugin):
        name = "workbench-one-cpu"

        def setup(self, worker: Worker) -> None:
            index = worker.name if isinstance(worker.name, int) else zlib.crc32(str(worker.name).encode())
            for thread in os.listdir("/proc/self/task"):
                os.sched_setaffinity(int(thread), {cpus[index % len(cpus)]})

    client.register_plugin(OneCPU())


def connect(address: str, timeout: float = CONNECT_TIMEOUT) -> Client:
    """A client of the scheduler at `address`; a clear ConnectionError when it cannot be reached in time."""
    from distributed import Client

    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as err:
        raise ConnectionError(
            f"scheduler: could not reach {address!r} within {timeout:g} s ({type(err).__name__}); is a Dask "
            "scheduler running there (dask scheduler, or a dask-jobqueue cluster's scheduler_address)?"
        ) from None


@runtime_checkable
class ClusterLike(Protocol):
    """A Dask cluster object (LocalCluster, a dask-jobqueue or dask-gateway cluster): its scheduler's address."""

    @property
    def scheduler_address(self) -> str: ...


def _client(client: Client | ClusterLike | str | None) -> tuple[Client, bool]:
    """(client, whether this call made it and must close it) from None, an address, a cluster or a client."""
    if client is None:
        return local_client(), False
    if isinstance(client, str):
        return connect(client), True
    if isinstance(client, ClusterLike) and not hasattr(client, "submit"):  # a cluster object
        return connect(client.scheduler_address), True
    return cast("Client", client), False  # duck-typed: anything else is used as a client


def _point(config: Config, grid: Mapping[str, Sequence]) -> dict:
    """A point's grid values (and its seed)."""
    keys = list(grid) + (["seed"] if hasattr(config, "seed") and "seed" not in grid else [])
    return {k: getattr(config, k) for k in keys}


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
    yield a "point" Record per point (skipped ones first), then a "summary" Record."""
    module = experiment_module(experiment)
    base: Config = base_config if base_config is not None else module.Config()
    grid = dict(grid or {})
    configs = grid_configs(base, grid, seeds, zip)  # refused here, before any task
    db = db if isinstance(db, RunDB) else RunDB(db)
    stop = stop or threading.Event()
    name = module.__name__
    sweep_id = db.sweep(name, base.to_dict(), grid, list(seeds or []), zip)
    hashes = [config_hash(name, c.to_dict()) for c in configs]
    done_before = db.finished(hashes)
    todo = {h: c for c, h in builtins.zip(configs, hashes) if h not in done_before}
    start, total, failed = time.perf_counter(), len(configs), 0
    client, own = _client(client)
    dashboard = client.dashboard_link or ""

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

    try:
        for i, (h, run_id) in enumerate(sorted(done_before.items(), key=lambda item: item[1])):
            config = configs[hashes.index(h)]
            db.save_point(sweep_id, name, config, [])  # links the finished run to this sweep, writes nothing else
            info, records = db.load(run_id)
            yield point(i + 1, config, run_id, records, info["status"], True, float("nan"))
            if stop.is_set():
                yield Record(i + 1, total, "jobs", {}, "stopped", "status", time.perf_counter() - start)
                return
        short = name.rsplit(".", 1)[-1]
        futures = {
            client.submit(run_point, name, c.to_json(), key=f"{short}-{h[:16]}", pure=False): h for h, c in todo.items()
        }
        pending: set = set(futures)
        done = shown = len(done_before)
        from distributed import wait

        while pending:
            if stop.is_set():
                break
            try:
                finished, pending = wait(list(pending), timeout=0.2, return_when="FIRST_COMPLETED")  # pyright: ignore
            except TimeoutError:  # nothing ended in the last 0.2 s: look at the stop event again
                continue
            points = []
            for future in finished:  # every ended task is written before any is shown
                config = todo[futures[future]]
                if future.status == "finished":
                    out = future.result()
                    records = _records(out)
                    meta = {k: out[k] for k in ("created", "ended", "host")}
                    run_id, _ = db.save_point(sweep_id, name, config, records, **meta)
                    outcome, error = (records[-1].status if records else "stopped"), None
                else:
                    failed += 1
                    records, outcome, error = [], "error", _failure(future)
                    run_id = db.save_run(name, config, [], status="error", error=error)
                done += 1
                eta = (time.perf_counter() - start) / (done - len(done_before)) * (total - done)
                points.append(point(done, config, run_id, records, outcome, False, eta, error))
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
    finally:
        if own:
            client.close()
