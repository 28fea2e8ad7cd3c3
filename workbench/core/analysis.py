"""Fits that experiments draw conclusions with (log-log slopes against width, ...), shared so that no experiment
imports another."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from workbench.core import checks
from workbench.core.declare import Array, Flag, Given, declare

__all__ = ["loglog_slope", "sem"]


@declare(
    widths=Array("w", lo=1.0, example=lambda: np.array([8.0, 16.0, 32.0, 64.0, 128.0, 256.0])),
    values=Given(
        why="an array with one row per width, any shape after it; NaN and inf entries are allowed (their column's "
        "slope is NaN), so the body checks it with finite=False",
        example=lambda: np.outer([8.0, 16.0, 32.0, 64.0, 128.0, 256.0], [1.0, 2.0]) ** 0.5,
    ),
    finite=False,  # NaN marks a column with a non-finite value, or fewer than two different widths
)
def loglog_slope(widths: ArrayLike, values: ArrayLike) -> np.ndarray:
    """Least-squares slope of log(values) against log(widths) along the first axis (NaN if any value of a column is
    not finite, and everywhere with fewer than two different widths)."""
    values = np.asarray(checks.array("values", values, ndim=(1, 2, 3, 4), finite=False), float)
    logw = np.log(np.asarray(widths, float))
    if values.shape[0] != len(logw):
        raise ValueError(f"values: needs one row per width ({len(logw)}), got shape {values.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        logv = np.log(np.maximum(values, 1e-30))
    if np.ptp(logw) == 0:  # a single width: no slope to fit
        return np.full(logv.shape[1:], np.nan)
    flat = logv.reshape(len(logw), -1)
    slopes = np.polyfit(logw, np.where(np.isfinite(flat), flat, 0.0), 1)[0]
    slopes[~np.all(np.isfinite(flat), axis=0)] = np.nan
    return slopes.reshape(logv.shape[1:])


@declare(
    values=Given(
        why="samples along the first axis, any shape after it; a non-finite sample makes its column's error NaN or "
        "inf, so the body checks it with finite=False",
        example=lambda: np.array([[1.0, 2.0], [3.0, 5.0], [2.0, 4.0]]),
    ),
    nan_if_single=Flag(),
    finite=False,  # NaN: a column with a non-finite sample, or a single sample under nan_if_single
)
def sem(values: ArrayLike, nan_if_single: bool = False) -> np.ndarray:
    """Standard error of the mean along the first axis, std(ddof=1) / sqrt(n); with a single sample 0 (no spread
    measured) or NaN (`nan_if_single`)."""
    values = np.asarray(checks.array("values", values, ndim=(1, 2, 3, 4), finite=False), float)
    if len(values) < 2:
        return np.full(values.shape[1:], np.nan if nan_if_single else 0.0)
    return values.std(0, ddof=1) / np.sqrt(len(values))
