"""Attacks generated from the declarations (`workbench.core.declare`) of every public function of every module
of `workbench` (found from `__all__`; no hand table): each argument in turn gets values the oracle judges from the
declared kind and range alone, the others keep a valid base call built from the same declarations."""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import workbench
from workbench.core import declare as D

from .oracle import Opaque, assert_no_problems, judge

pytestmark = pytest.mark.timeout(900)

CLI = {"workbench.__main__", "workbench.runs.__main__"}
SIZES = {"d": 3, "m": 4}  # a length per axis name; the rest get 6
RNG = np.random.default_rng(0)


def modules() -> list[str]:
    """Every module of the package but the command-line entry points."""
    found = [m.name for m in pkgutil.walk_packages(workbench.__path__, "workbench.")]
    return sorted(m for m in found if m not in CLI)


def public(module: str) -> list[tuple[str, Callable]]:
    """The functions a module lists in `__all__` and defines itself (classes are attacked as Configs)."""
    mod = importlib.import_module(module)
    out = []
    for name in getattr(mod, "__all__", ()):
        obj = getattr(mod, name)
        target = inspect.unwrap(obj)
        if inspect.isfunction(target) and target.__module__ == module:
            out.append((f"{module}.{name}", obj))
    return out


FUNCTIONS = [f for m in modules() for f in public(m)]


def test_every_module_lists_its_public_names():
    missing = [m for m in modules() if not hasattr(importlib.import_module(m), "__all__")]
    assert not missing, f"modules without __all__: {missing}"


def test_every_public_function_declares_every_argument():
    assert len(FUNCTIONS) > 100, "the walk found too few public functions"
    bad = []
    for label, fn in FUNCTIONS:
        declared = D.declarations(fn)
        params = [
            p for p in inspect.signature(fn).parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if declared is None:
            bad.append(f"{label}: not @declare'd")
        elif missing := [p.name for p in params if p.name not in declared]:
            bad.append(f"{label}: undeclared {missing}")
    assert not bad, f"{len(bad)} of {len(FUNCTIONS)} public functions:\n" + "\n".join(bad)


def _clamp(v: float, lo: float | None, hi: float | None) -> float:
    return min(max(v, -math.inf if lo is None else lo), math.inf if hi is None else hi)


def inside_real(arg: D.Real) -> float:
    """A value strictly inside a real argument's range (0.5 where that is)."""
    value = _clamp(0.5, arg.lo, arg.hi)
    if arg.lo_open and arg.lo is not None and value <= arg.lo:
        value = arg.lo + 1.0 if arg.hi is None else 0.5 * (arg.lo + arg.hi)
    return value


def example(arg: D.Arg, param: inspect.Parameter) -> object:
    """A valid value of one argument: its declared example, its default, or one built from its kind."""
    if arg.example is not None:
        return arg.example() if callable(arg.example) else arg.example
    if param.default is not inspect.Parameter.empty:
        return param.default
    if isinstance(arg, D.Int):
        return int(_clamp(2, arg.lo, arg.hi))
    if isinstance(arg, (D.Real, D.Reals)):
        return inside_real(arg)
    if isinstance(arg, D.Times):
        return 1.0
    if isinstance(arg, D.Choice):
        return arg.options[0]
    if isinstance(arg, D.Flag):
        return False
    if isinstance(arg, D.Activation):
        return "relu"
    if isinstance(arg, D.Array):
        shape = tuple(int(a) if a.isdigit() else SIZES.get(a, 6) for a in arg.axes.split())
        if arg.integer:
            return RNG.integers(int(_clamp(0, arg.lo, arg.hi)), int(_clamp(3, arg.lo, arg.hi)) + 1, size=shape)
        return np.clip(RNG.normal(size=shape), arg.lo, arg.hi)
    if isinstance(arg, D.Instance):
        return arg.kind()
    if isinstance(arg, D.Text):
        return "a"
    raise AssertionError(f"{param.name}: declare an example for a {type(arg).__name__}")


def attacks(arg: D.Arg, good: object) -> list[tuple[object, bool | None]]:
    """(value, valid) per attack, judged from the declaration alone."""
    if isinstance(arg, D.Given) and arg.any_value:
        return []
    out: list[tuple[object, bool | None]] = [(None, arg.none_ok), (Opaque(), False)]
    if isinstance(arg, D.Int):
        inside = int(_clamp(2, arg.lo, arg.hi))
        out += [(inside, True), (np.int64(inside), True), (float(inside), True), (inside + 0.5, False)]
        out += [(True, False), ("3", False), (math.nan, False), (math.inf, False), (10**400, False), ((inside,), False)]
        out += [(arg.lo - 1, False)] if arg.lo is not None else []
        out += [(arg.hi + 1, False)] if arg.hi is not None else []
    elif isinstance(arg, (D.Real, D.Reals)):
        given: Any = arg.example() if callable(arg.example) else arg.example
        inside = float(given if given is not None else inside_real(arg))
        out += [(inside, True), (np.float32(inside), True), ("1", False), (complex(1, 1), False)]
        out += [(math.nan, False), (-math.inf, False), (10**400, False)]
        out += [(math.inf, False)] if arg.hi is not None or isinstance(arg, D.Real) else []
        out += [(arg.lo - 1.0, False), (arg.lo, not arg.lo_open)] if arg.lo is not None else []
        out += [(arg.hi * 2 + 1.0, False)] if arg.hi is not None else []
        out += [((inside, inside), isinstance(arg, D.Reals))]
    elif isinstance(arg, D.Times):
        out += [(0.0, True), (math.inf, True), (-1.0, False), (math.nan, False), ("1", False), (complex(1, 1), False)]
    elif isinstance(arg, D.Choice):
        out += [(o, True) for o in arg.options] + [("nope", False), (("x",), False), (3.5, False)]
    elif isinstance(arg, D.Flag):
        out += [(True, True), (False, True), (1, False), ("yes", False)]
    elif isinstance(arg, D.Activation):
        out += [("relu", True), ("tanh", True), ("x * sigmoid(x)", True), ("nope", False), (3, False), ("log(", False)]
    elif isinstance(arg, D.Text):
        out += [("", True), ("b" * arg.max_len, True), ("b" * (arg.max_len + 1), False), (3, False), (b"a", False)]
    elif isinstance(arg, D.Instance):
        out += [({}, False), ("x", False), (3, False)]
    elif isinstance(arg, D.Array):
        base = np.asarray(good)
        nan, inf = base.astype(float), base.astype(float)
        nan.flat[0], inf.flat[-1] = np.nan, np.inf
        out += [(base.tolist(), True), ("x", False), (3.5, False), (base[None], False), (base.astype(complex), False)]
        out += [(np.zeros((0,) + base.shape[1:]), False)]
        if not arg.integer:
            out += [(nan, False), (inf, False), (base.astype(np.float32), True)]
        else:
            out += [(base + 0.5, False)]
        if arg.lo is not None:
            out += [(np.full(base.shape, arg.lo - 1.0, dtype=base.dtype), False)]
        if arg.hi is not None:
            out += [(np.full(base.shape, arg.hi + 1.0, dtype=base.dtype), False)]
    return out


@pytest.mark.parametrize("label, fn", FUNCTIONS, ids=[f[0] for f in FUNCTIONS])
def test_declared_arguments_are_checked(label, fn):
    declared = D.declarations(fn)
    if declared is None:
        pytest.fail(f"{label} declares no arguments (see test_every_public_function_declares_every_argument)")
    params = inspect.signature(fn).parameters
    base = {name: example(arg, params[name]) for name, arg in declared.items()}
    problems: list = []
    finite_ok = not getattr(fn, "__finite__", True)
    assert judge(label, "base call", lambda: fn(**base), True, problems=problems, nonfinite_ok=finite_ok) == (
        "accepted"
    ), f"the base call built from the declarations failed: {problems}"
    for name, arg in declared.items():
        for value, valid in attacks(arg, base[name]):
            call = lambda name=name, value=value: fn(**{**base, name: value})
            judge(label, name, call, valid, problems=problems, nonfinite_ok=finite_ok)
    assert_no_problems(problems)
