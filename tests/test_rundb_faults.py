"""The run database under faults (issue 22, item 12), on real SQLite files: JSON encoded before the write lock is
taken, a read-only database in a read-only folder listed without leaving files behind, `runs import` refusing
what it cannot validate and importing a file once, metric names that collide with the tidy table's columns kept,
a sweep's error rows replaced rather than added to."""

import json
import os
import re
import sqlite3

import numpy as np
import pytest

from workbench.core.experiment import Record
from workbench.experiments import teacher_fit as T
from workbench.runs import __main__ as cli
from workbench.runs import rundb
from workbench.runs.rundb import RunDB, RunDBError

EXP = T.__name__


def records(n: int = 3) -> list[Record]:
    out = [Record(i, n - 1, "steps", {"loss": 1.0 / (i + 1), "w": np.arange(3.0) + i}, "running", "step", 0.1 * i)
           for i in range(n)]  # fmt: skip
    out[-1].status = "finished"
    return out


def test_json_is_encoded_before_the_write_lock_is_taken(tmp_path, monkeypatch):
    """save_run encoded its records inside BEGIN IMMEDIATE: a big run held every other writer for seconds."""
    path = tmp_path / "runs.sqlite"
    db = RunDB(path, timeout=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:  # a value that cannot be encoded is refused before the lock is even asked for
        with pytest.raises(ValueError, match="^metrics: set values cannot be stored"):
            db.save_run(EXP, {}, [Record(1, 1, metrics={"m": {1, 2}})])
        with pytest.raises(rundb.RunDBLocked, match="locked by another process"):  # a RunDBError a sweep retries
            db.save_run(EXP, {}, records())
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    inside: list[bool] = []
    encode = rundb.encode

    def watched(value):
        inside.append(db._conn is not None and db._conn.in_transaction)
        return encode(value)

    monkeypatch.setattr(rundb, "encode", watched)
    db.save_run(EXP, {"seed": 1}, records())
    db.save_point(db.sweep(EXP, {}, {"lr": [0.1]}, [], False), EXP, {"seed": 2}, records())
    assert inside and not any(inside)
    assert len(db.runs()) == 2


def test_a_read_only_database_in_a_read_only_folder_is_listed_and_reading_leaves_no_files(tmp_path, capsys):
    """It could not even be listed; in a writable folder, reading a 0444 file left 0444 -wal and -shm files."""
    folder = tmp_path / "shared"
    folder.mkdir()
    path = folder / "runs.sqlite"
    db = RunDB(path)
    db.save_run(EXP, {"seed": 4}, records(), label="kept")
    db.close()
    assert sorted(os.listdir(folder)) == ["runs.sqlite"]  # the last writer's close removed its -wal and -shm
    path.chmod(0o444)
    folder.chmod(0o555)
    try:
        ro = RunDB(path)
        assert ro.readonly and [(r["seed"], r["label"]) for r in ro.runs()] == [(4, "kept")]
        assert len(ro.records(ro.runs()[0]["id"])) == 3
        with pytest.raises(RunDBError, match="read-only; nothing was written"):
            ro.save_run(EXP, {"seed": 5}, records())
        ro.close()
        assert cli.main(["runs", "list", "--db", str(path)]) == 0 and "kept" in capsys.readouterr().out
        assert sorted(os.listdir(folder)) == ["runs.sqlite"]
        folder.chmod(0o755)  # a writable folder, the file still 0444
        for reader in (RunDB(path), RunDB(path, readonly=True)):
            assert reader.readonly and len(reader.runs()) == 1
            reader.close()
        assert sorted(os.listdir(folder)) == ["runs.sqlite"]  # no read-only -wal or -shm left behind
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)
    RunDB(path).save_run(EXP, {"seed": 6}, records())  # writable again: nothing left in the way
    assert [r["seed"] for r in RunDB(path).runs()] == [6, 4]


def test_runs_import_refuses_what_it_cannot_validate_and_imports_a_file_once(tmp_path, capsys):
    """ "ended": "yesterday" imported and every later `runs list` crashed; width -5 or an unknown field was stored
    as a finished run; importing a file twice made two runs with one hash."""
    source = RunDB(tmp_path / "source.sqlite")
    run_id = source.save_run(EXP, T.Config(), records(), label="original")
    body = source.export_run(run_id)
    target = tmp_path / "target.sqlite"
    RunDB(target).close()
    cases = {
        r"ended: must be a time in seconds since 1970-01-01 \(a number\), got 'yesterday'": {"ended": "yesterday"},
        "created: must be a time": {"created": [2024]},
        "status: must be one of": {"status": "great"},
        "label: must be text": {"label": 5},
        r"config: not a valid teacher_fit config \(.*width: must be in": {"config": {**body["config"], "width": -5}},
        r"config: not a valid teacher_fit config \(Config: unknown fields \['widht'\]": {
            "config": {**body["config"], "widht": 64}
        },
    }
    for message, change in cases.items():
        (tmp_path / "run.json").write_text(json.dumps({**body, **change}))
        assert cli.main(["runs", "import", str(tmp_path / "run.json"), "--db", str(target)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"error: path: {tmp_path / 'run.json'} refused: "), err
        assert re.search(message, err), (message, err)
    assert RunDB(target).runs() == []
    (tmp_path / "run.json").write_text(json.dumps(body))
    assert cli.main(["runs", "import", str(tmp_path / "run.json"), "--db", str(target)]) == 0
    assert capsys.readouterr().out.startswith("imported as run 1")
    assert cli.main(["runs", "import", str(tmp_path / "run.json"), "--db", str(target)]) == 0
    assert capsys.readouterr().out.startswith("already in the database as run 1; nothing imported")
    db = RunDB(target)
    assert [r["label"] for r in db.runs()] == ["original"] and db.import_run(tmp_path / "run.json") == (1, 0)
    assert db.already
    (tmp_path / "other.json").write_text(json.dumps({**body, "records": body["records"][:2]}))  # another run
    assert db.import_run(tmp_path / "other.json")[0] == 2 and not db.already
    assert cli.main(["runs", "list", "--db", str(target)]) == 0


def test_metric_names_like_columns_are_kept_under_a_prefix(tmp_path):
    """Metrics named lr, width, status or run_id overwrote those columns of the tidy table silently."""
    db = RunDB(tmp_path / "runs.sqlite")
    metrics = {"lr": 0.5, "width": 3.0, "status": "odd", "run_id": 7.0, "loss": 0.25}
    run_id = db.save_run(EXP, {"lr": 0.1, "width": 64, "kind": "c"}, [Record(1, 1, "steps", metrics, "finished")])
    row = db.to_dataframe().iloc[0]
    assert (row["run_id"], row["metric.run_id"]) == (run_id, 7.0)
    assert (row["lr"], row["metric.lr"]) == (0.1, 0.5) and (row["width"], row["metric.width"]) == (64, 3.0)
    assert (row["status"], row["metric.status"]) == ("finished", "odd")
    assert (row["kind"], row["config.kind"]) == ("step", "c")  # a config field named like a record column
    assert row["loss"] == 0.25 and "metric.loss" not in row  # no clash, no prefix


def test_a_sweeps_error_row_is_replaced_and_counted(tmp_path):
    """Failed points were saved unlinked to their sweep, and each rerun added another error row."""
    db = RunDB(tmp_path / "runs.sqlite")
    sweep_id = db.sweep(EXP, {}, {"lr": [0.1]}, [], False)
    for error in ("RuntimeError: first", "RuntimeError: again"):
        db.save_point(sweep_id, EXP, {"lr": 0.1}, [], status="error", error=error)
        assert [(r["status"], r["error"]) for r in db.runs()] == [("error", error)]
        assert (db.sweeps()[0]["runs"], db.sweeps()[0]["errors"]) == (1, 1)
    db.save_point(sweep_id, EXP, {"lr": 0.1}, records())
    assert [r["status"] for r in db.runs()] == ["finished"]
    assert (db.sweeps()[0]["runs"], db.sweeps()[0]["errors"]) == (1, 0)
