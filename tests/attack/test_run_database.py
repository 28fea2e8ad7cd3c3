"""Attacks on the run database: damaged exports to import, and a file that is not a database to open."""

from __future__ import annotations

import json

import pytest

from workbench.runs.rundb import RunDB, RunDBError

from .oracle import assert_no_problems, judge

pytestmark = pytest.mark.timeout(600)


def test_run_database_refuses_and_survives_bad_files(tmp_path):
    """Importing a damaged export keeps what is readable or refuses naming the path; opening a file that is not a
    database refuses and leaves it as it was."""
    problems: list = []
    db = RunDB(tmp_path / "runs.sqlite")
    good = tmp_path / "good.json"
    record = {"done": 1, "total": 2, "unit": "steps", "kind": "step", "status": "running", "elapsed": 0.1}
    good.write_text(json.dumps({"config": {"seed": 0}, "records": [{**record, "metrics": {"loss": 0.5}}]}))
    head = '{"config": "TrainConfig", "fields": {"seed": 0}}\n' + json.dumps({**record, "metrics": {"loss": 1}}) + "\n"
    cases = {
        "truncated": head + '{"done": 1, "total": 2, "unit": "steps", "metr',
        "nul": head + "\x00\x00\n",
        "not json": "hello\n",
        "list line": "[1, 2]\n",
        "no records": json.dumps({"config": {}, "records": [{"done": "x"}]}),
    }
    judge("RunDB.import_run(good)", "path", lambda: db.import_run(good), True, problems=problems)
    for name, content in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.jsonl"
        path.write_text(content)
        judge(f"RunDB.import_run({name})", "path", lambda path=path: db.import_run(path), None, problems=problems)
    other = tmp_path / "notes.txt"
    other.write_text("not a database\n" * 100)
    with pytest.raises(RunDBError, match="not a workbench run database.*left unchanged"):  # an operational error
        RunDB(other)
    assert other.read_text() == "not a database\n" * 100
    assert_no_problems(problems)
