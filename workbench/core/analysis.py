"""Fits that experiments draw conclusions with (log-log slopes against width, ...), shared so that no experiment
imports another."""

from __future__ import annotations

import numpy as np


def loglog_slope(widths, values) -> np.ndarray:
    """Least-squares slope of log(values) against log(widths) along the first axis (NaN if any is not finite)."""
    logw = np.log(np.asarray(widths, float))
    with np.errstate(divide="ignore", invalid="ignore"):
        logv = np.log(np.maximum(np.asarray(values, float), 1e-30))
    flat = logv.reshape(len(logw), -1)
    slopes = np.polyfit(logw, np.where(np.isfinite(flat), flat, 0.0), 1)[0]
    slopes[~np.all(np.isfinite(flat), axis=0)] = np.nan
    return slopes.reshape(logv.shape[1:])
