"""Settings every test shares: runs go to a run database in a temporary folder, never into the repository; and
the attack suite's counts (tests/attack/), which do not depend on test order or selection.

Each attack test's own verdicts (the share of `attack.oracle.OUTCOMES` its attempts added) go into its report's
`user_properties`, so they reach the main process under pytest-xdist too; the end of the run prints, for whatever
ran, the table of attempts by surface (the test module) and verdict. When every test of the package ran in one
process, the run also fails unless it made more than `FLOOR` attempts with no cryptic, silent, hang or crash verdict
(each attack test also fails on its own bad verdicts, with or without xdist).
"""

import os
import pathlib
from collections import Counter

import pytest


@pytest.fixture(autouse=True, scope="session")
def _session_run_database(tmp_path_factory):
    """$WORKBENCH_DB for the session (servers and kernels started by module fixtures inherit it)."""
    os.environ["WORKBENCH_DB"] = str(tmp_path_factory.mktemp("rundb") / "runs.sqlite")


@pytest.fixture(autouse=True)
def _run_database(tmp_path_factory, monkeypatch):
    """A fresh run database for each test: panels save every run and list their past runs from it."""
    monkeypatch.setenv("WORKBENCH_DB", str(tmp_path_factory.mktemp("rundb") / "runs.sqlite"))


# ---------------------------------------------------------------- the attack suite's counts

FLOOR = 2000  # a whole run of the package makes more attempts than this (about 9800 today)
KEY = "attack verdicts"

_collected: set[str] = set()  # every test of the package's collected modules, selected or not
_modules: set[str] = set()  # the package's modules that were collected
_ran: set[str] = set()  # the tests that reported a call
_tally: dict[str, Counter] = {}  # surface -> verdict -> attempts, over whatever ran
_floor: list[str] = []  # why a whole run of the package fell short, if it did

HERE = pathlib.Path(__file__).parent / "attack"


def surface(path: pathlib.Path | str) -> str:
    """The attacked surface of a test module: test_share_codes.py -> 'share codes'."""
    return pathlib.Path(path).stem.removeprefix("test_").replace("_", " ")


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if (
        report.nodeid.endswith(".py") and "/attack/" in report.nodeid
    ):  # a test module: its tests, whichever are selected
        _modules.add(pathlib.Path(report.nodeid).name)
        _collected.update(node.nodeid for node in report.result if isinstance(node, pytest.Item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Hand this test's own verdicts to its report, whether it passes or fails."""
    if item.path.parent != HERE:
        return (yield)
    from attack import oracle

    before = oracle.OUTCOMES.copy()
    try:
        return (yield)
    finally:
        mine = {v: oracle.OUTCOMES[v] - before[v] for v in oracle.VERDICTS}
        item.user_properties.append((KEY, (surface(item.path), mine)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for key, value in report.user_properties:
        if key == KEY and isinstance(value, (tuple, list)):  # a list after pytest-xdist sends it from a worker
            name, counts = value
            _tally.setdefault(name, Counter()).update(counts)
            _ran.add(report.nodeid)


def pytest_sessionfinish(session: pytest.Session) -> None:
    from attack import oracle

    whole = {p.name for p in HERE.glob("test_*.py")} <= _modules and bool(_collected) and _collected <= _ran
    if not whole:
        return
    total = sum(sum(c.values()) for c in _tally.values())
    bad = {v: sum(c[v] for c in _tally.values()) for v in oracle.BAD}
    if total <= FLOOR or any(bad.values()):
        _floor.append(f"the whole attack suite made {total} attempts (more than {FLOOR} expected), bad verdicts {bad}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
    if not _tally:
        return
    from attack import oracle

    columns = oracle.VERDICTS + ("total",)
    rows = {name: [counts[v] for v in oracle.VERDICTS] for name, counts in sorted(_tally.items())}
    rows["all"] = [sum(row[i] for row in rows.values()) for i in range(len(oracle.VERDICTS))]
    width = max(len(name) for name in rows)
    terminalreporter.write_sep("-", f"attack suite: attempts by surface and verdict ({len(_ran)} tests)")
    terminalreporter.write_line(f"{'surface':<{width}}" + "".join(f"{c:>10}" for c in columns))
    for name, row in rows.items():
        terminalreporter.write_line(f"{name:<{width}}" + "".join(f"{n:>10}" for n in row + [sum(row)]))
    for line in _floor:
        terminalreporter.write_line(line, red=True, bold=True)
