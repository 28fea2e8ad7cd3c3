"""The one registry of experiments: every module of this package is one (a `Config`, `run(config, stop)` and
`METRICS`), found by listing the package, so a new module is registered by being here. The Sweeps tab offers the
sweepable ones, the config-range test and the attack suite cover all of them, and each panel names one.

A module with `SWEEPABLE = False` (a sweep of runs or a comparison of stored runs) is not offered to sweeps.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from workbench.core.config import leaves
from workbench.core.declare import Choice, Given, Instance, declare

__all__ = ["experiments", "module", "names", "sweepable", "sweepable_fields"]


@declare()
def names() -> tuple[str, ...]:
    """Every experiment's module name, sorted (listed without importing them)."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")))


@declare(experiment=Choice(names()))
def module(experiment: str) -> ModuleType:
    """The experiment module called `experiment`."""
    return importlib.import_module(f"{__name__}.{experiment}")


@declare()
def experiments() -> dict[str, ModuleType]:
    """Every experiment module by name."""
    return {name: module(name) for name in names()}


TYPES = {"int": int, "float": float, "bool": bool, "str": str}  # annotations are strings (postponed evaluation)


@declare(config_cls=Instance(type, example=lambda: module("teacher_fit").Config))
def sweepable_fields(config_cls: type) -> tuple[str, ...]:
    """Fields of a Config that a grid can sweep: scalar numbers, flags, and strings with a closed set of values or
    a checked form (an activation)."""
    out = []
    for path, f, _, meta in leaves(config_cls):
        kind = f.type if isinstance(f.type, type) else TYPES.get(str(f.type))
        if kind in (int, float, bool) or (kind is str and (meta.get("choices") or meta.get("check"))):
            out.append(path)
    return tuple(out)


@declare(exclude=Given(any_value=True, why="names to leave out; unknown names leave nothing out"))
def sweepable(exclude: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Names of the experiments a sweep can run: not marked `SWEEPABLE = False`, with sweepable fields (`exclude`:
    modules still being imported, which ask this about the others)."""
    found = []
    for name in names():
        if name in exclude:
            continue
        m = module(name)
        if getattr(m, "SWEEPABLE", True) and sweepable_fields(m.Config):
            found.append(name)
    return tuple(found)
