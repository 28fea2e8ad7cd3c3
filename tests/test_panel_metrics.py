"""Every metric a panel reads from its records is declared in its experiment's METRICS (the typed contract of
workbench/core/experiment.py): a renamed metric fails here, not as a KeyError in a running panel."""

import ast
import pathlib
import typing

import pytest

from widgets.panels import PANELS

SUBSCRIPTED = {"m", "metrics", "summary", "point", "last"}  # names panels give a record's metrics


def declared(experiment) -> set[str]:
    """Every metric name of every record kind the experiment declares."""
    return {name for td in experiment.METRICS.values() for name in typing.get_type_hints(td)}


def read_keys(path: pathlib.Path) -> set[str]:
    """String keys a panel module reads from metrics: m["x"], metrics.get("x"), self.history("x")."""
    keys = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            target = node.value
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
            if name in SUBSCRIPTED:
                keys.add(node.slice.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            arg, owner = node.args[0], node.func.value
            owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
            reads = node.func.attr == "history" or (node.func.attr == "get" and owner_name in SUBSCRIPTED)
            if reads and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                keys.add(arg.value)
    return keys


MODULES = sorted({pathlib.Path(typing.cast(str, __import__(p.__module__, fromlist=["x"]).__file__)) for p in PANELS})


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_panels_read_only_declared_metrics(path):
    experiments = [p.experiment for p in PANELS if p.__module__.endswith("." + path.stem)]
    known = set().union(*(declared(e) for e in experiments))
    unknown = sorted(read_keys(path) - known)
    assert unknown == [], f"{path.name} reads metrics its experiments do not declare: {unknown}"
    assert read_keys(path), f"{path.name}: no metric reads found (the scan is broken)"
