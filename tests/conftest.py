"""Settings every test shares: runs go to a run database in a temporary folder, never into the repository."""

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _session_run_database(tmp_path_factory):
    """$WORKBENCH_DB for the session (servers and kernels started by module fixtures inherit it)."""
    os.environ["WORKBENCH_DB"] = str(tmp_path_factory.mktemp("rundb") / "runs.sqlite")


@pytest.fixture(autouse=True)
def _run_database(tmp_path_factory, monkeypatch):
    """A fresh run database for each test: panels save every run and list their past runs from it."""
    monkeypatch.setenv("WORKBENCH_DB", str(tmp_path_factory.mktemp("rundb") / "runs.sqlite"))
