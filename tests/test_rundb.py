"""The run database keeps every run whole: round trips (non-finite floats, a string "nan", arrays), no silent
truncation, tolerant import of old JSON-lines files, clear errors for locked / read-only / newer-schema files,
a full disk rolls back, two processes writing at once corrupt nothing."""

import importlib.util
import json
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from workbench.core.experiment import Record
from workbench.nets.engine import TrainConfig
from workbench.runs import rundb
from workbench.runs.rundb import RunDB, RunDBError, config_hash

EXP = "workbench.experiments.teacher_fit"


def records(n=3, big=0):
    out = [
        Record(i * 10, 20, "steps", {"loss": 1.0 / (i + 1), "norms": np.arange(3.0) + i}, "running", "step", 0.1 * i)
        for i in range(n)
    ]
    out[-1].status = "finished"
    out[0].metrics.update(batch_loss=float("nan"), note="nan", curve=np.array([1.0, np.inf, -np.inf]))
    if big:
        out[-1].metrics["big"] = np.random.default_rng(0).normal(size=big)
    return out


def test_round_trip_keeps_nan_floats_string_nan_and_arrays(tmp_path):
    db = RunDB(tmp_path / "runs.sqlite")
    cfg = TrainConfig(lr=0.05, steps=20, seed=3)
    run_id = db.save_run(EXP, cfg, records(), label="first")
    info, loaded = db.load(run_id)
    assert TrainConfig.from_dict(info["config"]) == cfg
    assert info["seed"] == 3 and info["status"] == "finished" and info["label"] == "first"
    assert info["config_hash"] == config_hash(EXP, cfg.to_dict())
    assert info["host"] and info["jax_version"] not in (None, "")
    first = loaded[0].metrics
    assert np.isnan(first["batch_loss"]) and isinstance(first["batch_loss"], float)
    assert first["note"] == "nan" and isinstance(first["note"], str)  # a string stays a string
    assert first["curve"][0] == 1.0 and first["curve"][1] == np.inf and first["curve"][2] == -np.inf
    np.testing.assert_array_equal(loaded[2].metrics["norms"], [2.0, 3.0, 4.0])
    assert [(r.done, r.status) for r in loaded] == [(0, "running"), (10, "running"), (20, "finished")]


def test_exported_run_imports_back_unchanged(tmp_path):
    db = RunDB(tmp_path / "a.sqlite")
    run_id = db.save_run(EXP, TrainConfig(seed=1), records())
    path = tmp_path / "run.json"
    path.write_text(json.dumps(db.export_run(run_id), allow_nan=False))
    other = RunDB(tmp_path / "b.sqlite")
    new_id, skipped = other.import_run(path)
    (info, back), (_, orig) = other.load(new_id), db.load(run_id)
    assert skipped == 0 and info["experiment"] == EXP and info["config"]["seed"] == 1
    assert back[0].metrics["note"] == "nan" and np.isnan(back[0].metrics["batch_loss"])
    assert [r.metrics["loss"] for r in back] == [r.metrics["loss"] for r in orig]


def test_json_lines_file_with_truncated_and_nul_lines_imports_the_rest(tmp_path):
    """A RunStore file (the old JSON-lines store) with a NUL line and a truncated last line."""
    lines = [json.dumps({"config": "TrainConfig", "fields": TrainConfig(seed=2).to_dict()})]
    for i in range(4):
        rec = {"done": i, "total": 4, "unit": "steps", "kind": "step", "status": "running", "elapsed": 0.0}
        lines.append(json.dumps({**rec, "metrics": {"loss": 0.5 * i, "gap": "nan" if i == 1 else 0.1}}))
    lines.insert(3, "\x00\x00\x00\x00")
    text = "\n".join(lines) + '\n{"done": 4, "total": 4, "unit": "st'  # killed mid-write
    (tmp_path / "old.jsonl").write_text(text)
    db = RunDB(tmp_path / "runs.sqlite")
    run_id, skipped = db.import_run(tmp_path / "old.jsonl", experiment=EXP)
    info, loaded = db.load(run_id)
    assert skipped == 2 and [r.done for r in loaded] == [0, 1, 2, 3]
    assert info["config"]["seed"] == 2 and np.isnan(loaded[1].metrics["gap"])  # the old store's "nan" meant NaN


def test_opening_an_existing_file_never_truncates_it(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunDB(path).save_run(EXP, TrainConfig(), records())
    db = RunDB(path)
    db.save_run(EXP, TrainConfig(seed=5), records())
    assert [r["seed"] for r in RunDB(path).runs()] == [5, 0]
    other = tmp_path / "store.jsonl"  # not a database: refused, left byte for byte as it was
    other.write_text('{"config": "TrainConfig", "fields": {}}\n')
    before = other.read_bytes()
    with pytest.raises(RunDBError, match="not a workbench run database"):
        RunDB(other)
    assert other.read_bytes() == before


def test_newer_schema_is_refused_and_nothing_written(tmp_path):
    path = tmp_path / "runs.sqlite"
    db = RunDB(path)
    db.save_run(EXP, TrainConfig(), records())
    db.close()  # the last connection's close checkpoints the WAL (left to garbage collection, it did so later)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(RunDBError, match=r"newer workbench \(schema 99"):
        RunDB(path)
    assert path.read_bytes() == before


def test_locked_database_gives_a_clear_error_and_writes_nothing(tmp_path):
    path = tmp_path / "runs.sqlite"
    db = RunDB(path, timeout=0.2)
    db.save_run(EXP, TrainConfig(), records())
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    start = time.perf_counter()
    with pytest.raises(RunDBError, match="locked by another process"):
        db.save_run(EXP, TrainConfig(seed=9), records())
    assert time.perf_counter() - start < 3
    holder.execute("ROLLBACK")
    holder.close()
    assert len(db.runs()) == 1


def test_read_only_database_gives_a_clear_error(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunDB(path).save_run(EXP, TrainConfig(), records())
    ro = RunDB(path, readonly=True)
    assert len(ro.runs()) == 1
    with pytest.raises(RunDBError, match="read-only; nothing was written"):
        ro.save_run(EXP, TrainConfig(seed=9), records())
    assert len(RunDB(path).runs()) == 1


def test_full_disk_rolls_back_and_keeps_earlier_runs(tmp_path, monkeypatch):
    """SQLite's max_page_count makes the file full a few pages past its size: a real SQLITE_FULL."""
    path = tmp_path / "runs.sqlite"
    db = RunDB(path)
    ids = [db.save_run(EXP, TrainConfig(seed=s), records()) for s in range(3)]
    connect = RunDB._connect

    def capped(self):
        conn = connect(self)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 4}")
        return conn

    monkeypatch.setattr(RunDB, "_connect", capped)
    full = RunDB(path)  # its connection is capped
    with pytest.raises(RunDBError, match="disk is full; this write was rolled back"):
        full.save_run(EXP, TrainConfig(seed=7), records(big=200_000))
    monkeypatch.undo()
    assert [r["id"] for r in db.runs()] == ids[::-1]
    assert all(len(db.records(i)) == 3 for i in ids)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


WRITER = """
import sys
from workbench.core.experiment import Record
from workbench.runs.rundb import RunDB
db = RunDB(sys.argv[1], timeout=30)
for i in range(30):
    recs = [Record(k, 5, "steps", {"loss": float(k), "w": [float(i)] * 50}, "running", "step") for k in range(5)]
    recs[-1].status = "finished"
    db.save_run("writer", {"writer": int(sys.argv[2]), "i": i}, recs)
"""


def test_two_processes_writing_at_once_corrupt_nothing(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunDB(path)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(k)]) for k in range(2)]
    assert [p.wait(120) for p in procs] == [0, 0]
    db = RunDB(path)
    runs = db.runs()
    assert len(runs) == 60
    written = sorted((r["config"]["writer"], r["config"]["i"]) for r in runs)
    assert written == [(k, i) for k in (0, 1) for i in range(30)]
    for r in runs:
        recs = db.records(r["id"])
        assert [x.done for x in recs] == list(range(5))
        assert all(x.metrics["w"][0] == r["config"]["i"] for x in recs)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_save_point_writes_a_finished_config_once(tmp_path):
    db = RunDB(tmp_path / "runs.sqlite")
    sweep = db.sweep(EXP, {"steps": 20}, {"lr": [0.1, 0.2]}, [0], zip=False)
    assert db.sweep(EXP, {"steps": 20}, {"lr": [0.1, 0.2]}, [0], zip=False) == sweep  # a rerun finds it
    first = db.save_point(sweep, EXP, TrainConfig(lr=0.1), records())
    second = db.save_point(sweep, EXP, TrainConfig(lr=0.1), records())
    assert first[1] and second == (first[0], False)
    assert len(db.runs(sweep_id=sweep)) == 1 and db.sweeps()[0]["runs"] == 1
    assert db.finished([config_hash(EXP, TrainConfig(lr=0.1).to_dict()), "x"]) == {
        config_hash(EXP, TrainConfig(lr=0.1).to_dict()): first[0]
    }


def test_dataframe_is_tidy_and_exports_to_csv(tmp_path):
    db = RunDB(tmp_path / "runs.sqlite")
    for lr in (0.1, 0.2):
        db.save_run(EXP, TrainConfig(lr=lr), records())
    frame = db.to_dataframe(experiment=EXP)
    assert len(frame) == 6 and {"run_id", "lr", "seed", "done", "kind", "loss", "metric.loss"} <= set(frame.columns)
    assert "norms" not in frame.columns  # arrays stay in the records, not in the tidy table
    last = frame.loc[frame["done"] == 20, ["lr", "loss", "metric.loss"]]  # the config's loss and the metric's
    assert sorted(last.to_numpy().tolist()) == [[0.1, "mse", 1 / 3], [0.2, "mse", 1 / 3]]
    back = pd.read_csv(db.export(tmp_path / "runs.csv"))
    columns = ["lr", "done", "metric.loss"]
    assert back[columns].values.tolist() == frame[columns].values.tolist()
    if importlib.util.find_spec("pyarrow") is None:
        with pytest.raises(ValueError, match="Parquet export needs pyarrow"):
            db.export(tmp_path / "runs.parquet")
    else:
        assert pd.read_parquet(db.export(tmp_path / "runs.parquet")).shape == frame.shape
    with pytest.raises(ValueError, match="must end in .csv or .parquet"):
        db.export(tmp_path / "runs.xlsx")


def test_a_panels_runs_survive_a_restart():
    """A training panel saves each ended run; a new panel (a restarted kernel) lists it and shows it back."""
    from widgets.panels import LRTransferPanel

    config = LRTransferPanel.experiment.Config().replace(**LRTransferPanel.quick)
    first = LRTransferPanel(config)
    try:
        first.controller.start()
        assert first.wait(300) and first.controller.state == "finished"
        ran = [r.metrics for r in first.records if r.kind == "point"]
    finally:
        first.close()
    second = LRTransferPanel()
    try:
        assert len(second.past_runs) == 1 and second.past.value == 0 and not second.show_button.disabled
        label, saved, _ = second.past_runs[0]
        assert saved == config and "widths=16/32" in label  # a tuple field comes back as a tuple
        second.show_run(0)
        assert second.config == config
        shown = [r.metrics for r in second.records if r.kind == "point"]
        assert [m["width"] for m in shown] == [m["width"] for m in ran]
        np.testing.assert_array_equal(shown[1]["loss"], ran[1]["loss"])
        assert len(np.asarray(second.curves[1].get_xdata())) == config.n_lrs  # drawn again from the database's records
    finally:
        second.close()


def test_compare_runs_overlays_the_latest_runs_holding_the_metric():
    """Compare runs: with no ids, the latest runs that hold the metric (a run without it, e.g. a sweep's summary,
    takes no place and draws no empty line); with ids, only those runs, in the order asked."""
    from workbench.experiments import compare_runs

    db = RunDB()  # the test's own $WORKBENCH_DB (conftest)
    ids = [db.save_run(EXP, TrainConfig(lr=lr), records()) for lr in (0.1, 0.2, 0.3)]
    summary = db.save_run(EXP, TrainConfig(lr=0.4), [Record(1, 1, "jobs", {"best": 1.0}, "finished", "point", 0.0)])
    got = compare_runs.curves(compare_runs.Config(latest=2, metric="loss"))
    assert got["run_ids"] == ids[1:] and summary not in got["run_ids"]
    assert [list(x) for x in got["x"]] == [[0.0, 10.0, 20.0]] * 2
    np.testing.assert_allclose(got["y"][0], [1.0, 0.5, 1 / 3])
    asked = compare_runs.curves(compare_runs.Config(runs=f"{ids[2]}, {summary}, {ids[0]}", metric="loss"))
    assert asked["run_ids"] == [ids[2], ids[0]]
    with pytest.raises(ValueError, match="no run of the database holds 'nothing'"):  # issue 23, item 2: an error
        compare_runs.curves(compare_runs.Config(metric="nothing"))


def test_a_garbled_run_row_is_skipped_and_reported_and_the_app_opens(tmp_path, monkeypatch):
    """Issue 22, defect 1: a run row whose config is not JSON made TrainingDynamicsPanel() and Workbench() raise."""
    from widgets.app import Workbench
    from widgets.panels import TrainingDynamicsPanel

    path = tmp_path / "runs.sqlite"
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    db = RunDB(path)
    config = TrainingDynamicsPanel.experiment.Config()
    good = db.save_run("workbench.experiments.training_dynamics", config, [Record(1, 1, status="finished")], label="ok")
    bad = db.save_run("workbench.experiments.training_dynamics", config, [Record(1, 1, status="finished")], label="x")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE runs SET config = 'not json {' WHERE id = ?", (bad,))
    assert [r["id"] for r in db.runs()] == [good] and db.skipped == [f"run {bad}: config unreadable (JSONDecodeError)"]
    panel = TrainingDynamicsPanel()
    try:
        assert [p[2] for p in panel.past_runs] == [good]
        assert "1 unreadable past run(s) skipped" in panel.message.value
    finally:
        panel.close()
    Workbench().close()


def test_one_run_database_whatever_the_working_directory(tmp_path, monkeypatch):
    """Issue 23, item 9: the default database was ./.workbench under the working directory, so `python -m workbench
    runs` from the project root did not see a notebook's runs (notebooks/.workbench). Now it is one file in the user's
    data folder, and the Compare runs tab says where."""
    from widgets.panels import CompareRunsPanel
    from workbench.runs.rundb import default_path

    monkeypatch.delenv("WORKBENCH_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    run = RunDB().save_run("workbench.experiments.teacher_fit", TrainConfig(), [Record(1, 1, status="finished")])
    monkeypatch.chdir(tmp_path)
    assert default_path() == tmp_path / "data" / "wide-deep-workbench" / "runs.sqlite"
    env = {k: v for k, v in __import__("os").environ.items() if k != "WORKBENCH_DB"}
    listed = subprocess.run(
        [sys.executable, "-m", "workbench", "runs", "list"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert listed.returncode == 0 and "teacher_fit" in listed.stdout, listed.stdout + listed.stderr
    panel = CompareRunsPanel()
    try:
        assert str(default_path()) in panel.where.value and run in [v for _, v in panel.choices.options]
    finally:
        panel.close()


def test_run_database_errors_are_clear(tmp_path):
    """Issue 22, defect 5: raw sqlite, decode, recursion, type and attribute errors, and silent acceptance."""
    wrong = tmp_path / "wrong.sqlite"
    with sqlite3.connect(wrong) as conn:  # another program's database at the current schema version, no runs table
        conn.execute("CREATE TABLE other (x)")
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(RunDBError, match="newer workbench"):
        RunDB(wrong)
    clash = tmp_path / "clash.sqlite"
    with sqlite3.connect(clash) as conn:  # a file whose tables clash with the schema it is migrated to
        conn.execute("CREATE TABLE runs (x)")
    with pytest.raises(RunDBError, match="not a workbench run database"):
        RunDB(clash)
    empty = tmp_path / "empty.sqlite"
    with sqlite3.connect(empty) as conn:  # the current schema version, but no tables
        conn.execute(f"PRAGMA user_version = {rundb.SCHEMA_VERSION}")
    with pytest.raises(RunDBError, match="not a workbench run database"):
        RunDB(empty).runs()
    with pytest.raises(TypeError, match="^path: must be a file path"):
        RunDB(123)  # pyright: ignore[reportArgumentType]
    db = RunDB(tmp_path / "runs.sqlite")
    with pytest.raises(TypeError, match="^config: must be a Config or a dict"):
        db.save_run("x", [1, 2], [Record(1, 1)])  # pyright: ignore[reportArgumentType]
    with pytest.raises(ValueError, match="^limit: "):
        db.runs(limit=-1)
    for value in ({1, 2}, 1 + 2j, np.array([1 + 2j])):
        with pytest.raises(ValueError, match="^metrics: .* cannot be stored"):
            db.save_run("x", {}, [Record(1, 1, metrics={"m": value})])
    assert db.runs() == []  # nothing half-written
    for path in (tmp_path, tmp_path / "missing.json"):
        with pytest.raises(ValueError, match="is not a file"):
            db.import_run(path)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="^path: "):
        db.import_run(deep)
    run = db.save_run("x", {}, [Record(1, 2, metrics={"a": 1.0}), Record(2, 2, metrics={"a": 2.0})])
    with sqlite3.connect(db.path) as conn:
        conn.execute("UPDATE records SET metrics = ? WHERE run_id = ? AND idx = 0", ("[" * 100_000, run))
    assert [r.metrics["a"] for r in db.records(run)] == [2.0]  # the unreadable record is skipped
