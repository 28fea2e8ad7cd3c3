"""Declared arguments: a public function states each argument's type and range once, and `@declare` checks
every call against it (a ValueError naming the argument and its range, before anything is computed) and
refuses a non-finite result. The attack suite reads the same declarations (`declarations`) to generate its
attacks on every public function, so a new module is attacked the day it lands.

    @declare(x=Array("n d"), depth=Int(0, 10_000), t=Times(), activation=Activation())
    def nngp(x, depth=1, t=0.0, activation="relu"): ...

Arrays name their axes ("n d"); two arguments that share an axis name must agree in its length.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import types
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from workbench.core import checks

__all__ = ["Activation", "Arg", "Array", "Choice", "Flag", "Given", "Instance", "Int", "Real", "Reals", "Text", "Times",
           "declarations", "declare"]  # fmt: skip

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class Arg:
    """Base of a declaration; `none_ok`: None is allowed (and passed on); `example`: a valid value (or a function
    of no arguments making one) for the attack suite's base call, where the generic one would not fit."""

    none_ok: bool = dataclasses.field(default=False, kw_only=True)
    example: Any = dataclasses.field(default=None, kw_only=True, compare=False, repr=False)

    def check(self, name: str, value: Any, axes: dict[str, tuple[str, int]]) -> Any:
        """`value` checked and normalised, or a ValueError naming `name` (`axes`: lengths seen per axis name)."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Int(Arg):
    """An integer in [lo, hi]."""

    lo: int | None = None
    hi: int | None = None

    def check(self, name, value, axes):
        return checks.integer(name, value, self.lo, self.hi)


@dataclasses.dataclass(frozen=True)
class Real(Arg):
    """A finite real number in [lo, hi] ((lo, hi] with `lo_open`)."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False

    def check(self, name, value, axes) -> Any:
        return checks.real(name, value, self.lo, self.hi, self.lo_open)


@dataclasses.dataclass(frozen=True)
class Reals(Real):
    """A real number or an array of them, every entry finite and in [lo, hi]."""

    def check(self, name, value, axes):
        return checks.reals(name, value, self.lo, self.hi, self.lo_open)


@dataclasses.dataclass(frozen=True)
class Times(Arg):
    """Times of a flow in [0, inf], a number or an array (inf: the flow's end)."""

    def check(self, name, value, axes):
        return checks.times(name, value)


@dataclasses.dataclass(frozen=True)
class Choice(Arg):
    """One of `options`."""

    options: tuple = ()

    def check(self, name, value, axes):
        return checks.choice(name, value, self.options)


@dataclasses.dataclass(frozen=True)
class Flag(Arg):
    """True or False."""

    def check(self, name, value, axes):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name}: must be True or False, got {value!r:.80}")
        return bool(value)


@dataclasses.dataclass(frozen=True)
class Text(Arg):
    """A string of at most `max_len` characters."""

    max_len: int = 10_000

    def check(self, name, value, axes):
        if not isinstance(value, str):
            raise ValueError(f"{name}: must be text, got {type(value).__name__}")
        if len(value) > self.max_len:
            raise ValueError(f"{name}: must be at most {self.max_len} characters, got {len(value)}")
        return value


@dataclasses.dataclass(frozen=True)
class Activation(Arg):
    """An activation of the registry: a name or an expression in x (`workbench.core.activations`)."""

    def check(self, name, value, axes):
        from workbench.core.activations import get_activation

        if not isinstance(value, str):
            raise ValueError(f"{name}: must be a name or an expression in x (text), got {type(value).__name__}")
        get_activation(value)
        return value


@dataclasses.dataclass(frozen=True)
class Array(Arg):
    """A real array whose axes are named by `axes` ("n d"; a digit fixes a length), entries finite and in
    [lo, hi]; `integer`: integer-valued (labels)."""

    axes: str = "n d"
    lo: float | None = None
    hi: float | None = None
    integer: bool = False

    def check(self, name, value, axes):
        names = self.axes.split()
        value = checks.array(name, value, ndim=len(names), integer_valued=self.integer)
        if not checks.is_traced(value) and (self.lo is not None or self.hi is not None):
            checks.reals(name, value if value.size else 0.0, self.lo, self.hi)
        for axis, length in zip(names, value.shape):
            if axis.isdigit() and int(axis) != length:
                raise ValueError(f"{name}: axis '{axis}' must have length {axis}, got shape {tuple(value.shape)}")
            seen = axes.setdefault(axis, (name, length))
            if seen[1] != length:
                raise ValueError(
                    f"{name}: its axis '{axis}' has length {length} but {seen[0]}'s has {seen[1]} "
                    f"(shape {tuple(value.shape)})"
                )
        return value


@dataclasses.dataclass(frozen=True)
class Instance(Arg):
    """An instance of `kind` (a Config, validated on construction; a model; a data set)."""

    kind: type = object

    def check(self, name, value, axes):
        if not isinstance(value, self.kind):
            raise ValueError(f"{name}: must be a {self.kind.__name__}, got {type(value).__name__}")
        return value


@dataclasses.dataclass(frozen=True)
class Given(Arg):
    """Not checked here, with the reason (a model, a callback, a Config validated on construction); `any_value`:
    every value is legitimate here (a field's default, a callback checked where it is called), so the attack suite
    offers it no bad values."""

    why: str = ""
    any_value: bool = False

    def check(self, name, value, axes):
        return value


def _finite(value: Any) -> bool:
    """Every float in a (nested) result is finite; traced values pass."""
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return all(_finite(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, float):
        return math.isfinite(value)
    if checks.is_traced(value) or not hasattr(value, "dtype"):
        return True
    return np.asarray(value).dtype.kind not in "fc" or bool(np.all(np.isfinite(np.asarray(value))))


def declare(*, finite: bool = True, **args: Arg) -> Callable[[F], F]:
    """Check each named argument against its declaration at every call; `finite`: a result holding NaN or
    inf is refused with a ValueError (pass False where inf or NaN is a documented value)."""

    finite = Flag().check("finite", finite, {})  # declare checks its own argument as it checks others'

    def wrap(fn: F) -> F:
        signature = inspect.signature(fn)
        unknown = set(args) - set(signature.parameters)
        if unknown:
            raise TypeError(f"{fn.__qualname__}: declares {sorted(unknown)}, which it does not take")

        @functools.wraps(fn)
        def checked(*a: Any, **kw: Any) -> Any:
            try:
                bound = signature.bind(*a, **kw)
            except TypeError as err:
                raise ValueError(f"{fn.__name__}: {err}") from None
            axes: dict[str, tuple[str, int]] = {}
            for name, value in bound.arguments.items():
                arg = args.get(name)
                if arg is not None and not (value is None and arg.none_ok):
                    bound.arguments[name] = arg.check(name, value, axes)
            result = fn(*bound.args, **bound.kwargs)
            if finite and not _finite(result):
                raise ValueError(
                    f"{fn.__name__}: the result is not finite (NaN or inf) for these arguments; "
                    "they are outside the range where it is defined"
                )
            return result

        checked.__declared__ = dict(args)  # type: ignore[attr-defined]
        checked.__finite__ = finite  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]

    return wrap


declare.__declared__ = {"finite": Flag()}  # type: ignore[attr-defined]  # as `declare` would record it


@declare(finite=False, fn=Instance(types.FunctionType, example=lambda: declarations))
def declarations(fn: Callable) -> dict[str, Arg] | None:
    """The declared arguments of a public function, or None if it declares none."""
    return getattr(fn, "__declared__", None)
