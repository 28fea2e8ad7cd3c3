"""Sweeps under faults (issue 22, item 12), on a real Dask LocalCluster of 2 worker processes on the loopback and
real SQLite files: a scheduler address that never answers, another writer holding the lock, failed points, grids
that would silently run other points, wrong keys of a sweep file, --workers -1, Ctrl-C, a mistyped --db.

This module is also the sweeps' experiment (`Config`, `run`, `METRICS`: an odd x raises, an even one sleeps `pause`
seconds), imported by its name without a dot, as a user's single-file experiment is; the workers import it too.
"""

from __future__ import annotations

import http.server
import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from workbench.core.config import Config as _Config
from workbench.core.config import spec
from workbench.core.experiment import Record
from workbench.experiments import teacher_fit as T
from workbench.runs import __main__ as cli
from workbench.runs import rundb, sweep
from workbench.runs.rundb import RunDB

HERE = Path(__file__).parent
NAME = __name__  # "test_sweep_faults": a module name without a dot


@dataclass(frozen=True)
class Config(_Config):
    """A point of this module's experiment."""

    x: int = spec(0, lo=0, hi=1000, doc="the point; an odd one raises")
    pause: float = spec(0.0, lo=0.0, hi=30.0, doc="seconds an even point takes")
    seed: int = spec(0, lo=0, hi=100, doc="seed")


METRICS = {"step": dict}


def run(config: Config, stop: threading.Event | None = None):
    """Sleep `pause` seconds, then raise for an odd x, else one finished record."""
    time.sleep(config.pause)
    if config.x % 2:
        raise RuntimeError(f"odd point {config.x}")
    yield Record(1, 1, "steps", {"value": float(config.x), "seed": float(config.seed)}, "finished", "step")


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0",
                     silence_logs=40) as cluster,
        Client(cluster) as c,
    ):  # fmt: skip
        yield c


def write_spec(path: Path, body: str) -> Path:
    path.write_text(f'experiment = "{NAME}"\n{body}')
    return path


def finished_within(seconds: float, call) -> tuple[bool, object]:
    """(ended in time, its result or exception): a call that hangs fails the test instead of hanging it."""
    out: list = []

    def target():
        try:
            out.append(call())
        except BaseException as err:  # handed to the test
            out.append(err)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive(), out[0] if out else None


def test_a_scheduler_that_never_answers_is_a_clear_error_within_the_timeout_and_writes_nothing(tmp_path):
    """A listener that accepts and never answers, and an HTTP port (the dashboard's kind): each hung > 120 s in
    distributed's Client.start; the sweep row was written before connecting."""
    silent = socket.create_server(("127.0.0.1", 0))
    accepted: list = []
    threading.Thread(target=lambda: accepted.extend(silent.accept() for _ in range(4)), daemon=True).start()
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        for port in (silent.getsockname()[1], web.server_address[1]):
            path = tmp_path / f"runs-{port}.sqlite"
            start = time.perf_counter()
            ended, err = finished_within(
                sweep.CONNECT_TIMEOUT + 8,
                lambda port=port, path=path: list(
                    sweep.run(NAME, Config(), {"x": [0]}, client=f"tcp://127.0.0.1:{port}", db=path)
                ),
            )
            assert ended, f"port {port}: still connecting after {sweep.CONNECT_TIMEOUT + 8:g} s"
            assert isinstance(err, ConnectionError), err
            assert str(err).startswith(f"scheduler: could not reach 'tcp://127.0.0.1:{port}' within 5 s")
            assert time.perf_counter() - start < sweep.CONNECT_TIMEOUT + 4
            assert not path.exists()  # no sweep row, not even a database, before connecting succeeded
    finally:
        web.shutdown()
        silent.close()


def test_a_writer_holding_the_lock_past_the_timeout_neither_aborts_the_sweep_nor_loses_a_point(client, tmp_path):
    """Another process's transaction held past the database's 5 s timeout while points end: each write waits and
    tries again (it used to abort the sweep with "locked" and lose the points in flight)."""
    path = tmp_path / "runs.sqlite"
    RunDB(path).close()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    hold = rundb.TIMEOUT + 1.5
    released: list[float] = []

    def release():
        holder.execute("COMMIT")
        released.append(time.perf_counter())

    records = []
    for record in sweep.run(NAME, Config(pause=0.2), {"x": [0, 2, 4, 6]}, client=client, db=path):
        if not records:  # the sweep row is written and the points are running: another writer takes the lock
            holder.execute("BEGIN IMMEDIATE")
            threading.Timer(hold, release).start()
        records.append((record, time.perf_counter()))
    summary = records[-1][0].metrics
    assert summary["ran"] == 4 and summary["failed"] == 0, summary
    assert released and records[-1][1] > released[0]  # the points were written after the lock was let go
    runs = RunDB(path).runs()
    assert sorted(r["config"]["x"] for r in runs) == [0, 2, 4, 6] and {r["status"] for r in runs} == {"finished"}
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    holder.close()


def test_failed_points_belong_to_their_sweep_and_a_rerun_replaces_their_error_rows(client, tmp_path, capsys):
    """`runs sweeps` showed 3 runs for a 5-point sweep with 2 errors, and each rerun added 2 more error rows."""
    db = RunDB(tmp_path / "runs.sqlite")
    for attempt in range(2):
        summary = list(sweep.run(NAME, Config(), {"x": [0, 1, 2, 3, 4]}, client=client, db=db))[-1].metrics
        assert summary["failed"] == 2 and summary["ran"] == (5 if attempt == 0 else 2), summary
        (row,) = db.sweeps()
        assert row["runs"] == 5 and row["errors"] == 2, row
        assert len(db.runs()) == 5 and sum(r["status"] == "error" for r in db.runs()) == 2
        errors = {r["config"]["x"]: r["error"] for r in db.runs(sweep_id=row["id"]) if r["status"] == "error"}
        assert errors == {1: "RuntimeError: odd point 1", 3: "RuntimeError: odd point 3"}
    assert cli.main(["runs", "sweeps", "--db", str(db.path)]) == 0
    assert "5 runs (2 errors)" in capsys.readouterr().out


def test_the_sweep_says_it_started_before_the_first_point_ends(client, tmp_path, capsys):
    """Nothing was printed, not even the dashboard link, until the first point ended: a queued cluster job looked
    like a hang."""
    records = list(sweep.run(NAME, Config(pause=0.3), {"x": [0, 2]}, client=client, db=tmp_path / "a.sqlite"))
    assert [(r.kind, r.status, r.done) for r in records[:1]] == [("status", "running", 0)]
    assert [r.kind for r in records[1:]] == ["point", "point", "summary"]
    spec_ = write_spec(tmp_path / "s.toml", "[base]\npause = 0.3\n[grid]\nx = [0, 2]\n")
    code = cli.main(["sweep", str(spec_), "--scheduler", client.scheduler.address, "--db", str(tmp_path / "b.sqlite")])
    out = capsys.readouterr().out.splitlines()
    assert code == 0, out
    started = next(i for i, line in enumerate(out) if line.startswith("started 2 point(s)"))
    first_point = next(i for i, line in enumerate(out) if "job 1 of 2" in line)
    assert out[1].startswith("dashboard: http") and started < first_point


def test_the_eta_reads_the_recent_points_and_the_workers():
    """At job 48 of 83 the plain average said 'about 12 s left' with 70 s to go: 40 quick points, then 2 s ones."""
    durations = [0.1] * 40 + [2.0] * 8
    plain = sum(durations) / len(durations) * 35
    assert plain == pytest.approx(14.58, abs=0.01)  # what the average said
    assert sweep.eta(durations, remaining=35, slots=1) == pytest.approx(70.0)
    assert sweep.eta(durations, remaining=35, slots=4) == pytest.approx(18.0)  # 9 rounds of 4 workers
    assert sweep.eta(durations, remaining=3, slots=4) == pytest.approx(2.0)  # the last round
    assert sweep.eta([5.0, 1.0, 1.0, 1.0], remaining=10, slots=2) == pytest.approx(5.0)  # one slow point: the median
    assert sweep.eta(durations, remaining=0, slots=4) == 0.0 and math.isnan(sweep.eta([], remaining=5, slots=1))


def test_grids_that_would_silently_run_other_points_are_refused(tmp_path, capsys):
    """`seed` in [grid] with seeds ran seed 0 only; width = [64, 64] said "job 1 of 2" and never ended at 2;
    seeds = [] exited 0 having done nothing."""
    base = Config()
    cases = {
        "grid: seed is swept both in the grid and by seeds; give the seeds in one place": ({"seed": [1, 2]}, [0, 1]),
        "grid: x has the value 2 twice; each point runs once": ({"x": [2, 4, 2]}, None),
        "seeds: give at least one seed": ({"x": [0]}, []),
        "seeds: 3 is there twice": ({"x": [0]}, [3, 1, 3]),
        "grid: give at least one field": ({}, [0, 1]),
    }
    for message, (grid, seeds) in cases.items():
        with pytest.raises(ValueError, match=f"^{message}"):
            sweep.grid_configs(base, grid, seeds)
    with pytest.raises(ValueError, match=r"^grid: the points \{'x': 2, 'pause': 0.0\} and \{'x': 2, 'pause': 0\}"):
        sweep.grid_configs(base, {"x": [2, 2], "pause": [0.0, 0]}, zip=True)
    with pytest.raises(ValueError, match="^grid: width has the value 64 twice"):
        sweep.grid_configs(T.Config(), {"width": [64, 64]})
    assert len(sweep.grid_configs(base, {"x": [0, 2], "pause": [0.0, 0.1]}, seeds=[0, 1])) == 8  # still fine
    for body in ("seeds = []\n[grid]\nx = [0]\n", "[grid]\n", "seeds = [0]\n[grid]\nseed = [1]\n"):
        spec_ = write_spec(tmp_path / "s.toml", body)
        assert cli.main(["sweep", str(spec_), "--db", str(tmp_path / "runs.sqlite")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "runs.sqlite").exists()


def test_wrong_keys_of_a_sweep_file_are_one_clear_line_naming_the_key(tmp_path, capsys):
    """experiment = 42, grid = [1, 2], seeds = 3, zip = "yes" raised tracebacks (TypeError, AttributeError)."""
    cases = {
        "experiment = 42\n[grid]\nx = [0]\n": "error: experiment: must be the name of an experiment module",
        f'experiment = "{NAME}"\ngrid = [1, 2]\n': "error: grid: must be a table",
        f'experiment = "{NAME}"\nseeds = 3\n[grid]\nx = [0]\n': "error: seeds: must be a list of integers, got 3",
        f'experiment = "{NAME}"\nzip = "yes"\n[grid]\nx = [0]\n': "error: zip: must be true or false, got 'yes'",
        f'experiment = "{NAME}"\nbase = 7\n[grid]\nx = [0]\n': "error: base: must be a table",
        f'experiment = "{NAME}"\n[grid]\nx = 5\n': "error: grid: x: a field's values are a list",
        'experiment = "no_such_experiment"\n[grid]\nx = [0]\n': "error: experiment: no experiment module",
    }
    for body, message in cases.items():
        (tmp_path / "s.toml").write_text(body)
        assert cli.main(["sweep", str(tmp_path / "s.toml"), "--db", str(tmp_path / "runs.sqlite")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1, (body, err)


def test_workers_minus_one_is_refused_at_once(tmp_path, capsys):
    """--workers -1 waited ten minutes in silence."""
    spec_ = write_spec(tmp_path / "s.toml", "[grid]\nx = [0]\n")
    for bad in ("-1", "0", "two"):
        ended, exit_ = finished_within(5, lambda bad=bad: cli.main(["sweep", str(spec_), "--workers", bad]))
        assert ended and isinstance(exit_, SystemExit) and exit_.code == 2, exit_
        err = capsys.readouterr().err
        assert "argument --workers: must be a whole number of worker processes" in err and bad in err
    ended, err = finished_within(5, lambda: sweep.local_client(-1))
    assert ended and isinstance(err, ValueError), err
    assert str(err).startswith("workers: must be a whole number of worker processes in [1, 1024], got -1")


def test_a_missing_database_is_said_and_nothing_is_created(tmp_path, capsys):
    """`runs list --db typo.sqlite` created an empty database and its folders."""
    typo = tmp_path / "sub" / "typo.sqlite"
    for action in ("list", "sweeps"):
        assert cli.main(["runs", action, "--db", str(typo)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: runs database {typo}: does not exist") and err.count("\n") == 1
    assert not (tmp_path / "sub").exists()


def test_a_single_file_experiment_module_without_a_dot_is_accepted(tmp_path, monkeypatch):
    """A module `myexp` importable from the working directory was refused: a dot was required."""
    (tmp_path / "myexp.py").write_text(f"from {NAME} import Config, METRICS, run\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = sweep.experiment_module("myexp")
    assert module.__name__ == "myexp" and module.Config is Config
    assert cli.spec_arguments({"experiment": "myexp", "grid": {"x": [0, 2]}})["experiment"] is module
    assert sweep.experiment_module("teacher_fit") is T  # a workbench experiment by its short name, as before
    (tmp_path / "broken.py").write_text("import no_such_package_here\n")
    with pytest.raises(ValueError, match=r"^experiment: no experiment module 'broken' \(importing it failed: No m"):
        sweep.experiment_module("broken")


def test_ctrl_c_prints_one_line_not_a_traceback(client, tmp_path):
    """Ctrl-C during a sweep printed 32 lines of traceback."""
    spec_ = write_spec(tmp_path / "s.toml", "[base]\npause = 5.0\n[grid]\nx = [0, 2, 4, 6]\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.runs", "sweep", str(spec_), "--scheduler", client.scheduler.address,
         "--db", str(tmp_path / "runs.sqlite")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a background shell starts it ignored
    )  # fmt: skip
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # connected: the sweep is about to start or running
            lines.append(line)
            if line.startswith("dashboard:"):
                break
        assert lines and lines[-1].startswith("dashboard:"), lines
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        watchdog.cancel()
    assert proc.returncode == 130, (lines, out, err)
    assert err.splitlines() == ["interrupted: the points that ended are in the run database; the same command resumes"]
