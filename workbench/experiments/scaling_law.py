"""Scaling laws L(n) = a n^-alpha + c with bootstrap intervals and Hestness et al.'s three regions (small data, power
law, irreducible error; arXiv 1712.00409), fitted to a sweep of the run database (a metric against data size or width,
`workbench.runs.scaling`) or to the eigenlearning learning curve of kernel regression, whose exponent is known
(the Scaling panel). Reads only; nothing is trained.

The theory source: noise-free ridgeless kernel regression on the power-law task lam_i = i^-a, v_i^2 = i^-b
(`workbench.theory.learning_curves`, Simon et al. 2023), whose test MSE falls as n^-min(b - 1, 2a) (the modes beyond
n are not learned: sum_{i > n} i^-b ~ n^(1 - b)); its best guess (predicting 0) errs by sum_i v_i^2.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import numpy as np

from workbench.core.config import Config as _Config
from workbench.core.config import spec
from workbench.core.experiment import experiment_run, stages
from workbench.core.fields import SEED
from workbench.core.scaling import PARAMS, ScalingFit, fit_scaling
from workbench.runs.scaling import fit_sweep
from workbench.theory import learning_curves as LC

__all__ = ["Config", "METRICS", "run"]

SWEEPABLE = False  # a view of stored runs (or of the theory)
SOURCES = ("theory", "sweep")
CURVE_POINTS = 80  # sizes of the drawn curve and band
THEORY_POINTS = 12  # sizes of the theory's learning curve
REACH = 30.0  # the drawn sizes reach a region's edge this far beyond the data


@dataclass(frozen=True)
class Config(_Config):
    """What to fit: a sweep of the run database (its metric against a field), or the theory's learning curve."""

    source: str = spec("theory", choices=SOURCES, doc="a sweep of the run database, or the eigenlearning theory")
    sweep: int = spec(0, lo=0, hi=2**31 - 1, doc="sweep id in the run database (0: the newest)")
    metric: str = spec("test_loss", doc="the sweep's metric to fit (its runs' last value)")
    axis: str = spec("", doc="the config field of the sweep, e.g. n_train or width (empty: the grid's one field)")
    guess: float = spec(
        0.0,
        lo=0.0,
        hi=1e12,
        soft=(0.0, 2.0),
        doc="best-guess error bounding the small-data region (0: none; theory: sum v_i^2)",
    )
    a: float = spec(1.5, lo=1.05, hi=4.0, doc="theory: eigenvalue decay lam_i = i^-a")
    b: float = spec(2.0, lo=1.05, hi=4.0, doc="theory: target decay v_i^2 = i^-b")
    modes: int = spec(4000, lo=256, hi=20_000, log=True, doc="theory: modes of the power-law task")
    n_min: int = spec(16, lo=1, hi=2**20, log=True, doc="theory: smallest training set")
    n_max: int = spec(256, lo=4, hi=2**20, log=True, doc="theory: largest training set (well below modes)")
    level: float = spec(0.95, lo=0.5, hi=0.999, doc="confidence level of the intervals")
    resamples: int = spec(1000, lo=20, hi=20_000, log=True, doc="bootstrap resamples")
    seed: int = SEED(0, doc="seed of the bootstrap")

    def validate(self) -> None:
        if self.source == "theory" and not 4 * self.n_min <= self.n_max <= self.modes // 4:
            raise ValueError(
                f"n_max: the theory's sizes need 4 n_min <= n_max <= modes / 4 (so the finite task looks infinite), "
                f"got n_min = {self.n_min}, n_max = {self.n_max}, modes = {self.modes}"
            )


class Fit(TypedDict):
    """The points, the fitted law with its interval band, and the regions (one stage)."""

    n: np.ndarray  # (P,) size of each run (or theory point)
    y: np.ndarray  # (P,) its metric
    sizes: np.ndarray  # (S,) distinct sizes
    mean: np.ndarray  # (S,) mean metric per size
    sem: np.ndarray  # (S,) its standard error over repeats (seeds)
    grid: np.ndarray  # (G,) sizes of the drawn curve
    curve: np.ndarray  # (G,) a n^-alpha + c
    band_lo: np.ndarray  # (G,) pointwise interval of the curve over the bootstrap fits
    band_hi: np.ndarray  # (G,)
    params: np.ndarray  # (3,) a, alpha, c
    intervals: np.ndarray  # (3, 2) their intervals
    level: float
    n_small: float  # small-data region below (inf: every size)
    n_irreducible: float  # irreducible-error region above (inf where c = 0)
    guess: float  # the best-guess error (NaN: none given, no small-data region)
    rms: float  # rms log residual
    axis: str
    metric: str
    source: str  # "sweep 3 (teacher_fit), 18 runs" or "eigenlearning theory"
    expected_alpha: NotRequired[float]  # theory: min(b - 1, 2a)


METRICS = {"stage": Fit}


@functools.lru_cache(maxsize=8)
def _theory_curve(a: float, b: float, modes: int, n_min: int, n_max: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(n, test MSE, sum v_i^2) of ridgeless noise-free kernel regression on the power-law task (eigenlearning)."""
    lam, v2 = LC.power_law_task(a, b, modes)
    n = np.geomspace(n_min, n_max, THEORY_POINTS)
    return n, LC.Task(lam, v2).risk(n, np.inf, 0.0).test, float(v2.sum())


def _view(fit: ScalingFit, n: np.ndarray, y: np.ndarray) -> dict:
    """The drawn metrics of a fit: sizes from half the smallest to twice the largest, widened to show a region's edge
    within a factor of REACH of the data."""
    lo, hi = n.min() / 2, n.max() * 2
    if n.min() / REACH < fit.n_small < lo:
        lo = fit.n_small / 1.5
    if hi < fit.n_irreducible < n.max() * REACH:
        hi = fit.n_irreducible * 1.5
    grid = np.geomspace(lo, hi, CURVE_POINTS)
    lo, hi = fit.band(grid)
    return dict(
        n=n, y=y, sizes=fit.sizes, mean=fit.mean, sem=fit.sem, grid=grid, curve=fit.predict(grid), band_lo=lo,
        band_hi=hi, params=np.array([getattr(fit, k) for k in PARAMS]),
        intervals=np.array([fit.intervals[k] for k in PARAMS]), level=fit.level, n_small=fit.n_small,
        n_irreducible=fit.n_irreducible, guess=fit.guess, rms=fit.rms,
    )  # fmt: skip


def fitted(config: Config) -> dict:
    """The stage: the chosen source's points fitted with their intervals (a ValueError names what is missing)."""
    c = config
    if c.source == "theory":
        n, y, best_guess = _theory_curve(c.a, c.b, c.modes, c.n_min, c.n_max)
        fit = fit_scaling(n, y, level=c.level, resamples=c.resamples, seed=c.seed, guess=c.guess or best_guess)
        label = f"eigenlearning theory, a = {c.a:g}, b = {c.b:g}"
        return dict(_view(fit, n, y), axis="n", metric="test MSE", source=label, expected_alpha=min(c.b - 1, 2 * c.a))
    fit, points = fit_sweep(
        None, c.sweep or None, c.metric, c.axis or None, c.level, c.resamples, c.seed, c.guess or None, store=False
    )
    label = f"sweep {points.sweep_id} ({points.experiment.rsplit('.', 1)[-1]}), {len(points.n)} runs"
    return dict(_view(fit, points.n, points.y), axis=points.axis, metric=points.metric, source=label)


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """One stage: the fit of the chosen source."""
    return stages([lambda: fitted(config)], stop)
