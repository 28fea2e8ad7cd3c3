"""Settings every test shares: runs go to a run database in a temporary folder, never into the repository."""

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _run_database(tmp_path_factory):
    """$WORKBENCH_DB for the whole session (panels save every run; sweeps default to it)."""
    os.environ["WORKBENCH_DB"] = str(tmp_path_factory.mktemp("rundb") / "runs.sqlite")
