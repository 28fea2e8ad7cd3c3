"""Sweeps on a real Dask LocalCluster of 2 worker processes on the loopback: every point exactly once in the
run database, a worker killed mid-sweep loses and duplicates nothing, a killed client's sweep resumes with only
the missing points, a bad grid is refused before any task, an unreachable scheduler is a clear error in < 10 s."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import pytest
from distributed import Client, LocalCluster

from workbench.core.config import get_path, leaves
from workbench.experiments import teacher_fit as T
from workbench.runs import sweep
from workbench.runs.rundb import RunDB, config_hash

TINY = T.Config().replace(width=8, depth=1, steps=4, record_every=2, n_train=32)
SLOW = TINY.replace(steps=4000, record_every=2000, n_train=512)  # ~0.1-0.3 s a point: a kill lands mid-sweep
NAME = T.__name__


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0",
                     env=sweep.ONE_THREAD, silence_logs=40) as cluster,
        Client(cluster) as c,
    ):  # fmt: skip
        sweep.pin_workers(c)
        yield c


def lrs(first: float, n: int = 8) -> list[float]:
    return [round(first * 1.25**k, 8) for k in range(n)]


def expected_hashes(base, grid, seeds):
    return sorted(config_hash(NAME, c.to_dict()) for c in sweep.grid_configs(base, grid, seeds))


def sweep_hashes(db: RunDB, sweep_id: int) -> list[str]:
    return sorted(r["config_hash"] for r in db.runs(sweep_id=sweep_id))


def test_16_points_each_exactly_once_and_a_rerun_skips_them(client, tmp_path):
    db = RunDB(tmp_path / "runs.sqlite")
    grid = {"lr": lrs(0.004)}
    records = list(sweep.run(T, TINY, grid=grid, seeds=[0, 1], client=client, db=db))
    points, summary = [r for r in records if r.kind == "point"], records[-1]
    assert [r.done for r in points] == list(range(1, 17)) and all(r.total == 16 and r.unit == "jobs" for r in points)
    assert summary.metrics["ran"] == 16 and summary.metrics["failed"] == 0 and summary.status == "finished"
    assert sweep_hashes(db, summary.metrics["sweep_id"]) == expected_hashes(TINY, grid, [0, 1])
    assert len(db.runs()) == 16 and {r["status"] for r in db.runs()} == {"finished"}
    assert {r["host"] for r in db.runs()} and len({p.metrics["result"]["train_loss"] for p in points}) == 16
    # the numbers the workers sent back are the ones this process computes for the same config
    p = points[5].metrics
    local = list(T.run(TINY.replace(**p["fields"])))[-1].metrics["train_loss"]
    assert p["result"]["train_loss"] == pytest.approx(local, rel=1e-5)
    again = list(sweep.run(T, TINY, grid=grid, seeds=[0, 1], client=client.cluster, db=db))  # a cluster object
    assert again[-1].metrics["ran"] == 0 and again[-1].metrics["skipped"] == 16
    assert all(r.metrics["skipped"] for r in again[:-1]) and len(db.runs()) == 16


def test_a_worker_killed_mid_sweep_loses_and_duplicates_nothing(client, tmp_path):
    db = RunDB(tmp_path / "runs.sqlite")
    grid, killed = {"lr": lrs(0.003)}, []
    last = None
    for record in sweep.run(T, SLOW, grid=grid, seeds=[0, 1], client=client, db=db):
        if record.kind == "point" and not killed:
            busy = [addr for addr, keys in client.processing().items() if keys]
            assert busy, "no task in flight when the first point ended"
            pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        last = record
    assert last is not None and last.metrics["ran"] == 16 and last.metrics["failed"] == 0
    hashes = sweep_hashes(db, last.metrics["sweep_id"])
    assert hashes == expected_hashes(SLOW, grid, [0, 1]) and max(Counter(hashes).values()) == 1
    assert len(db.runs()) == 16
    deadline = time.time() + 60  # the nanny restarts the killed worker
    while len(client.scheduler_info()["workers"]) < 2 and time.time() < deadline:
        time.sleep(0.2)


def test_a_killed_client_resumes_with_only_the_missing_points(client, tmp_path):
    path, spec = tmp_path / "runs.sqlite", tmp_path / "sweep.toml"
    fields = "\n".join(f"{p} = {json.dumps(get_path(SLOW, p))}" for p, *_ in leaves(T.Config) if p != "train.lr")
    spec.write_text(f'experiment = "teacher_fit"\nseeds = [0, 1]\n[base]\n{fields}\n[grid]\nlr = {lrs(0.002)}\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "sweep", str(spec), "--scheduler", client.scheduler.address,
         "--db", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline:
        if path.exists() and 3 <= len(RunDB(path).runs()):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    assert proc.wait(30) == -signal.SIGKILL, f"the client ended before it could be killed: {proc.communicate()[1]}"
    db = RunDB(path)
    before = {r["config_hash"] for r in db.runs()}
    assert 3 <= len(before) < 16
    records = list(sweep.run(T, SLOW, grid={"lr": lrs(0.002)}, seeds=[0, 1], client=client, db=db))
    summary = records[-1].metrics
    assert summary["skipped"] == len(before) and summary["ran"] == 16 - len(before)
    ran = {config_hash(NAME, SLOW.replace(**r.metrics["fields"]).to_dict()) for r in records if r.kind == "point"}
    assert len(ran) == 16
    hashes = [r["config_hash"] for r in db.runs()]
    assert sorted(hashes) == expected_hashes(SLOW, {"lr": lrs(0.002)}, [0, 1])  # 16 runs, none twice


def test_stop_cancels_the_pending_points(client, tmp_path):
    db, stop = RunDB(tmp_path / "runs.sqlite"), threading.Event()
    records = []
    for record in sweep.run(T, SLOW, grid={"lr": lrs(0.001, 16)}, seeds=[0, 1], client=client, db=db, stop=stop):
        records.append(record)
        stop.set()
    assert records[-1].status == "stopped" and records[-1].done < 32
    time.sleep(0.5)
    assert len(db.runs()) < 32 and not any(client.processing().values())


def test_a_bad_grid_is_refused_before_any_task(tmp_path):
    path = tmp_path / "runs.sqlite"
    untouched: Any = object()  # no submit: a task sent to it would fail
    with pytest.raises(ValueError, match=r"grid: lr=-0\.1 refused: train\.lr: must be in \(0\.0, 10000\.0\]"):
        list(sweep.run(T, TINY, grid={"lr": [0.01, -0.1]}, client=untouched, db=path))
    with pytest.raises(ValueError, match="has no field 'widht'"):
        list(sweep.run(T, TINY, grid={"widht": [8]}, client=untouched, db=path))
    with pytest.raises(ValueError, match="parametrization=.sgd. refused: model.parametrization: must be one of"):
        list(sweep.run(T, TINY, grid={"parametrization": ["mup", "sgd"]}, client=untouched, db=path))
    assert not path.exists()  # nothing was written, no client was touched (untouched has no submit)


def test_grid_text_and_ranges():
    grid = sweep.parse_grid("width = 64, 128; lr = 2**-11 .. 2**-4 / 8 log; parametrization = mup, ntk")
    assert grid["width"] == [64, 128] and grid["parametrization"] == ["mup", "ntk"]
    assert grid["lr"] == [2.0**k for k in range(-11, -3)]
    assert sweep.values({"from": 64, "to": 512, "n": 4, "log": True}) == [64, 128, 256, 512]
    assert len(sweep.grid_configs(TINY, {"width": [8, 16], "lr": [0.1, 0.2]}, seeds=[0, 1, 2])) == 12
    assert len(sweep.grid_configs(TINY, {"width": [8, 16], "lr": [0.1, 0.2]}, zip=True)) == 2
    assert sweep.parse_grid("width = 2**6; x = 9**999999, abc") == {"width": [64], "x": ["9**999999", "abc"]}
    with pytest.raises(ValueError, match="grid: 1000000 points; a sweep holds at most 10000"):
        sweep.grid_configs(TINY, sweep.parse_grid("width = 1 .. 1000 / 1000; lr = 0.1 .. 1 / 1000"))


def test_an_unreachable_scheduler_is_a_clear_error_within_10_s(tmp_path):
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match=r"scheduler: could not reach 'tcp://127\.0\.0\.1:9' within"):
        list(sweep.run(T, TINY, grid={"lr": [0.01]}, client="tcp://127.0.0.1:9", db=tmp_path / "runs.sqlite"))
    assert time.perf_counter() - start < 10


def test_a_bad_base_clause_names_the_base_field():
    """The Sweeps tab's fixed fields are parsed like the grid, but a refusal names `base`, the field typed in."""
    from workbench.experiments import grid_sweep

    with pytest.raises(ValueError, match=r"^base: write 'field = values'"):
        grid_sweep.Config(base="relu")


def test_local_workers_each_compute_on_one_cpu_of_their_own(client):
    """pin_workers: every thread of each worker on one CPU (so XLA sizes its pool to one thread), distinct CPUs for
    the two workers where two are available; a point still runs and gives the in-process numbers."""
    import os

    def affinities():
        return sorted({tuple(sorted(os.sched_getaffinity(int(t)))) for t in os.listdir("/proc/self/task")})

    pinned = client.run(affinities)
    assert all(len(a) == 1 and len(a[0]) == 1 for a in pinned.values()), pinned
    if len(os.sched_getaffinity(0)) >= 2:
        assert len({a[0] for a in pinned.values()}) == 2, pinned
    remote = client.submit(sweep.run_point, NAME, TINY.to_json(), pure=False).result()["records"][-1]["metrics"]
    local = [r for r in T.run(TINY) if r.metrics][-1].metrics
    assert abs(remote["train_loss"] - local["train_loss"]) < 1e-5


def test_a_complex_grid_value_is_refused_naming_the_field():
    """Issue 22, defect 3: 'lr = -8**0.5' raised AttributeError (a complex number) from inside the grid parser."""
    from workbench.experiments import grid_sweep

    with pytest.raises(ValueError, match=r"^grid: -8\*\*0.5 is not a real number"):
        grid_sweep.Config(grid="lr = -8**0.5")
    with pytest.raises(ValueError, match=r"^base: -8\*\*0.5 is not a real number"):
        grid_sweep.Config(base="lr = -8**0.5")
