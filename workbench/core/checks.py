"""Argument checks at the entry points of `workbench`: numbers, choices and arrays are refused with a
ValueError naming the argument and its allowed range before anything is computed, and a training run's
data is checked against its model and loss before the first step (`check_training`).

Numbers go through the same `workbench.core.config.check_field` as Config fields, so a function argument and a
field read the same: numpy scalars accepted, bools, complex, NaN, inf and 10**400 refused with the range.
"""

from __future__ import annotations

import numbers
from collections.abc import Collection
from typing import Any

import jax
import numpy as np

from workbench.core.config import check_field

__all__: list[str] = []  # the checks behind workbench.core.declare's kinds (which is the API), not an API of their own


def _meta(lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> dict[str, Any]:
    return dict(lo=lo, hi=hi, lo_open=lo_open, choices=None, log=False, check=None, doc="", step=None)


def integer(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """`value` as an int in [lo, hi], or ValueError naming `name` and the range."""
    return check_field(name, _meta(lo, hi), int, value)


def real(name: str, value: Any, lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> float:
    """`value` as a finite float in [lo, hi] ((lo, hi] with `lo_open`), or ValueError naming `name` and the range."""
    return check_field(name, _meta(lo, hi, lo_open), float, value)


def seed(value: Any) -> int:
    """A seed in the range of the configs' `seed` field (`workbench.core.fields.SEED`)."""
    return integer("seed", value, 0, 2**31 - 1)


def choice(name: str, value: Any, choices: Collection[Any]) -> Any:
    """`value` if it is one of `choices`, or ValueError listing them."""
    if not isinstance(value, (str, int, float)) or value not in tuple(choices):
        raise ValueError(f"{name}: must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def is_traced(x: Any) -> bool:
    """True for a jax tracer (inside jit or grad): its values cannot be checked, only its shape."""
    return isinstance(x, jax.core.Tracer)  # pyright: ignore[reportAttributeAccessIssue] (public, not in the stubs)


def array(
    name: str,
    value: Any,
    *,
    ndim: int | tuple[int, ...] = 2,
    min_size: int = 1,
    finite: bool = True,
    integer_valued: bool = False,
    max_abs: float | None = None,
) -> np.ndarray | jax.Array:
    """A real array of `ndim` dimensions, each of length >= `min_size`, all entries finite (and at most `max_abs`
    in magnitude); refused with a ValueError naming `name` otherwise. Returns a numpy array (or the jax
    array/tracer as given)."""
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if value is None or isinstance(value, (str, bytes, dict)):
        raise ValueError(f"{name}: must be a {ndims[0]}-D array of real numbers, got {type(value).__name__}")
    if not isinstance(value, (np.ndarray, jax.Array)):
        try:
            value = np.asarray(value)
        except (ValueError, TypeError):  # ragged nested lists
            raise ValueError(f"{name}: must be a rectangular array of real numbers") from None
    kind = np.dtype(value.dtype).kind
    if kind not in "biuf" or (kind == "b" and not integer_valued):
        raise ValueError(f"{name}: must hold real numbers, got dtype {value.dtype}")
    if integer_valued and kind == "f":
        raise ValueError(f"{name}: must hold integers, got dtype {value.dtype}")
    if value.ndim not in ndims:
        raise ValueError(f"{name}: must be a {' or '.join(map(str, ndims))}-D array, got shape {tuple(value.shape)}")
    if any(n < min_size for n in value.shape):
        raise ValueError(f"{name}: every axis needs at least {min_size} entries, got shape {tuple(value.shape)}")
    if finite and kind == "f" and not is_traced(value) and not bool(np.all(np.isfinite(np.asarray(value)))):
        raise ValueError(f"{name}: holds NaN or infinite entries")
    if max_abs is not None and not is_traced(value) and value.size and float(np.max(np.abs(value))) > max_abs:
        raise ValueError(
            f"{name}: entries must be at most {max_abs:g} in magnitude, got {float(np.max(np.abs(value))):g}"
        )
    return value


def reals(
    name: str, value: Any, lo: float | None = None, hi: float | None = None, lo_open: bool = False
) -> np.ndarray | np.float64 | jax.Array:
    """A real number or array of them (any shape, at least one entry), all finite and in [lo, hi] ((lo, hi]
    with `lo_open`), as float64 numpy; a jax tracer passes with its shape checked only."""
    if isinstance(value, numbers.Number) or isinstance(value, np.generic):
        return np.float64(real(name, value, lo, hi, lo_open))
    value = array(name, value, ndim=(0, 1, 2, 3))
    if is_traced(value):
        return value
    value = np.asarray(value, np.float64)
    too_low = lo is not None and bool(np.any(value <= lo if lo_open else value < lo))
    if too_low or (hi is not None and bool(np.any(value > hi))):
        left = "(" if lo_open else "["
        raise ValueError(
            f"{name}: every entry must be in {left}{lo}, {hi}], got values in [{value.min()}, {value.max()}]"
        )
    return value


def times(name: str, value: Any) -> np.ndarray | np.float64 | jax.Array:
    """Times of a flow in [0, inf] (inf: its end, e.g. gradient flow run to convergence), any shape, as `reals`."""
    if isinstance(value, (numbers.Number, np.generic)) and not isinstance(value, bool):
        return np.float64(np.inf) if value == float("inf") else np.float64(real(name, value, 0.0))
    value = array(name, value, ndim=(0, 1, 2, 3), finite=False)
    if is_traced(value):
        return value
    value = np.asarray(value, np.float64)
    reals(name, np.where(np.isposinf(value), 0.0, value), 0.0)
    return value


def labels(name: str, y: Any, n: int, n_classes: int) -> np.ndarray:
    """Integer class labels in [0, n_classes), one per point (n of them)."""
    y = np.asarray(array(name, y, ndim=1, integer_valued=True))
    if y.shape[0] != n:
        raise ValueError(f"{name}: needs one label per point ({n}), got {y.shape[0]}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(
            f"{name}: labels must be in [0, {n_classes - 1}] (n_classes = {n_classes}), "
            f"got values in [{y.min()}, {y.max()}]"
        )
    return y.astype(np.int64)


def check_training(model_config: Any, data: Any, loss: str) -> None:
    """Refuse a training run whose data does not fit its model or loss, before the first step: an empty split,
    NaN/inf inputs or targets, labels outside [0, n_classes), an input width other than the model's `in_dim`,
    a classifier whose `out_dim` differs from the number of classes (mse targets are one-hot)."""
    n_classes = data.n_classes
    for split in ("train", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        x = array(f"x_{split}", x, ndim=(2, 3)) if np.asarray(x).dtype.kind == "f" else np.asarray(x)
        if x.shape[0] == 0:
            raise ValueError(f"x_{split}: the {split} split is empty; use more points")
        if n_classes:
            labels(f"y_{split}", y, x.shape[0], n_classes)
        else:
            y = array(f"y_{split}", y, ndim=2)
            if y.shape[0] != x.shape[0]:
                raise ValueError(f"y_{split}: needs one target row per point ({x.shape[0]}), got {y.shape[0]}")
    if not n_classes and loss == "xent":
        raise ValueError("loss: 'xent' needs a classification data set; use 'mse' for regression")
    in_dim, out_dim = getattr(model_config, "in_dim", None), getattr(model_config, "out_dim", None)
    x_width = np.shape(data.x_train)[-1]
    if in_dim is not None and np.ndim(data.x_train) == 2 and in_dim != x_width:
        raise ValueError(f"in_dim: the model takes {in_dim} inputs but the data has {x_width} features")
    want = n_classes or np.shape(data.y_train)[-1]
    if out_dim is not None and out_dim != want:
        what = f"{n_classes} classes" if n_classes else f"{want} target columns"
        raise ValueError(f"out_dim: the model has {out_dim} outputs but the data has {what}")
