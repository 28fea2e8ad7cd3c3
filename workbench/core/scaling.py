"""Scaling laws: L(n) = a n^-alpha + c fitted to a metric against data or model size, with bootstrap confidence
intervals, and the three regions of a learning curve (Hestness et al. 2017, "Deep Learning Scaling is Predictable,
Empirically", arXiv 1712.00409, sec. 2 and Fig. 1: small data, power law, irreducible error) located from the fit.

The fit is least squares in log space (residuals log L_i - log(a n_i^-alpha + c): relative errors, each decade
weighs the same), started from a profile over alpha (for a fixed alpha the model is linear in a and c) and refined
by Levenberg-Marquardt with c >= 0; every bootstrap resample is fitted by the same vectorised code at once. The
intervals are percentile intervals of a residual bootstrap (log residuals, scaled by sqrt(N / (N - 3)) for the
three fitted parameters, resampled onto the fitted curve).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numpy.typing import ArrayLike

from workbench.core import checks
from workbench.core.analysis import sem
from workbench.core.declare import Array, Int, Real, declare
from workbench.core.memory import require

__all__ = ["ScalingFit", "fit_scaling"]

PARAMS = ("a", "alpha", "c")
ALPHAS = np.linspace(0.0, 4.0, 201)[1:]  # the profile's grid of exponents (0.02 .. 4)
ALPHA_RANGE = (2e-4, 10.0)  # the exponents a fit may reach (a flat or a degenerate resample stops at an end)
LM_STEPS = 60  # Levenberg-Marquardt iterations at most (each a batched 3 x 3 solve)
STEP_TOL = 1e-9  # a row whose step is below this (relative) has settled
MIN_SIZES = 4  # distinct sizes a fit of three parameters needs (one more than the parameters)


@dataclasses.dataclass(frozen=True)
class ScalingFit:
    """A fitted L(n) = a n^-alpha + c: the estimates, their `level` intervals, the regions and the data by size."""

    a: float
    alpha: float
    c: float
    intervals: dict[str, tuple[float, float]]  # "a", "alpha", "c" -> (lo, hi)
    level: float
    n_small: float  # below it the small-data region: the fitted curve is above the best-guess error (0: no guess)
    n_irreducible: float  # above it the irreducible-error region: a n^-alpha < c (inf when c = 0)
    guess: float  # the best-guess error (NaN where none was given: the small-data region is not located)
    rms: float  # root mean square of the log residuals
    sizes: np.ndarray  # (S,) distinct n
    mean: np.ndarray  # (S,) mean metric at each size
    sem: np.ndarray  # (S,) its standard error over the repeats (0 for a single repeat)
    draws: np.ndarray  # (B, 3) bootstrap estimates of (a, alpha, c)

    def predict(self, n: ArrayLike) -> np.ndarray:
        """a n^-alpha + c at sizes `n` > 0."""
        n = checks.reals("n", n, 0.0, lo_open=True)
        return _model(np.asarray(self.a), np.asarray(self.alpha), np.asarray(self.c), np.asarray(n, float))

    def band(self, n: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """The `level` pointwise interval of the fitted curve at `n` (percentiles over the bootstrap fits)."""
        n = checks.reals("n", n, 0.0, lo_open=True)
        a, alpha, c = (self.draws[:, i, None] for i in range(3))
        with np.errstate(over="ignore", invalid="ignore"):
            return _percentiles(_model(a, alpha, c, np.asarray(n, float)[None]), self.level)

    def to_dict(self) -> dict:
        """The fit as plain numbers (what the run database stores with a sweep), without the bootstrap draws."""
        out: dict = {
            name: float(getattr(self, name)) for name in (*PARAMS, "level", "n_small", "n_irreducible", "guess")
        }
        out.update(rms=float(self.rms), resamples=len(self.draws), points=int(self.sizes.size))
        out["intervals"] = {k: [float(lo), float(hi)] for k, (lo, hi) in self.intervals.items()}
        out.update(sizes=self.sizes.tolist(), mean=self.mean.tolist(), sem=self.sem.tolist())
        return out


def _model(a: np.ndarray, alpha: np.ndarray, c: np.ndarray, n: np.ndarray) -> np.ndarray:
    return a * n**-alpha + c


def _percentiles(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The `level` percentile interval over the bootstrap draws (axis 0), each end taken at a draw (no interpolation
    between draws, which an overflowed draw would turn into NaN)."""
    tail = 50.0 * (1.0 - level)
    return np.percentile(draws, tail, axis=0, method="lower"), np.percentile(
        draws, 100.0 - tail, axis=0, method="higher"
    )


def _profile(x: np.ndarray, ly: np.ndarray) -> np.ndarray:
    """Starting (log a, alpha, c) of each row of `ly` (B, N): the best alpha of the grid `ALPHAS`, with a and c of
    the linear least squares of L on n^-alpha weighted by 1/L^2 (c clipped at 0)."""
    y = np.exp(ly)[:, None, :]  # (B, 1, N)
    u = np.exp(-ALPHAS[:, None] * x[None, :])[None]  # (1, G, N)
    w = 1.0 / y**2
    s1, su, suu = w.sum(-1), (w * u).sum(-1), (w * u * u).sum(-1)
    sy, suy = (w * y).sum(-1), (w * u * y).sum(-1)
    det = s1 * suu - su**2
    with np.errstate(divide="ignore", invalid="ignore"):
        a = (s1 * suy - su * sy) / det
        c = (suu * sy - su * suy) / det
        negative = c < 0
        a = np.where(negative, suy / suu, a)
        c = np.where(negative, 0.0, c)
        cost = ((np.log(np.maximum(a[..., None] * u + c[..., None], 1e-300)) - ly[:, None, :]) ** 2).sum(-1)
    cost = np.where((a > 0) & np.isfinite(cost), cost, np.inf)
    best = np.argmin(cost, axis=1)
    rows = np.arange(len(ly))
    a0 = np.where(np.isfinite(cost[rows, best]), a[rows, best], np.exp(ly.mean(-1)))
    return np.stack([np.log(a0), ALPHAS[best], c[rows, best]], axis=-1)


def _fit_batch(x: np.ndarray, ly: np.ndarray) -> np.ndarray:
    """(log a, alpha, c) minimising sum_i (log(a e^(-alpha x_i) + c) - ly_i)^2 for each row of `ly` (B, N), x = log n:
    `_profile` then Levenberg-Marquardt (Marquardt's diagonal scaling, c projected onto c >= 0, alpha onto
    ALPHA_RANGE)."""
    p = _profile(x, ly)
    damping = np.full(len(ly), 1e-3)

    def residuals(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        power = np.exp(p[:, :1] - p[:, 1:2] * x)
        m = power + p[:, 2:]
        return np.log(m) - ly, power / m, 1.0 / m

    r, share, inv = residuals(p)
    cost = (r**2).sum(-1)
    for _ in range(LM_STEPS):
        jac = np.stack([share, -x * share, inv], axis=-1)  # (B, N, 3)
        jtj = np.einsum("bni,bnj->bij", jac, jac)
        g = np.einsum("bni,bn->bi", jac, r)
        diag = np.einsum("bii->bi", jtj)
        lhs = jtj + (damping[:, None] * np.maximum(diag, 1e-12))[:, :, None] * np.eye(3)
        held = (p[:, 2] <= 0) & (g[:, 2] > 0)  # c at its bound and pushed below it: a step in (a, alpha) only
        lhs[held, 2, :], lhs[held, :, 2], lhs[held, 2, 2] = 0.0, 0.0, 1.0
        g[held, 2] = 0.0
        step = np.linalg.solve(lhs, -g[..., None])[..., 0]
        if np.all(np.abs(step) <= STEP_TOL * (1.0 + np.abs(p))):  # every row settled (its steps are round-off)
            break
        trial = p + step
        trial[:, 1] = np.clip(trial[:, 1], *ALPHA_RANGE)
        trial[:, 2] = np.maximum(trial[:, 2], 0.0)
        with np.errstate(over="ignore", invalid="ignore"):
            r_new, share_new, inv_new = residuals(trial)
            new = (r_new**2).sum(-1)
        better = np.isfinite(new) & (new < cost)
        p = np.where(better[:, None], trial, p)
        r = np.where(better[:, None], r_new, r)
        share = np.where(better[:, None], share_new, share)
        inv = np.where(better[:, None], inv_new, inv)
        cost = np.where(better, new, cost)
        damping = np.clip(np.where(better, damping / 3.0, damping * 4.0), 1e-12, 1e12)
    return p


def _crossing(ratio: float, alpha: float) -> float:
    """n where a n^-alpha equals a / ratio: ratio^(1/alpha), inf where it overflows (a nearly flat fit)."""
    with np.errstate(over="ignore"):
        return float(np.float64(ratio) ** (1.0 / alpha))


def _example_n() -> np.ndarray:
    return np.array([64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0])


def _example_y() -> np.ndarray:
    n = _example_n()
    return 3.0 * n**-0.5 * (1.0 + 0.02 * np.cos(n)) + 0.01


@declare(
    finite=False,  # n_irreducible is inf where the fitted c is 0 (the power law never flattens)
    n=Array("p", lo=0.0, example=_example_n),
    y=Array("p", lo=0.0, example=_example_y),
    level=Real(0.5, 0.999),
    resamples=Int(20, 100_000),
    seed=Int(0, 2**31 - 1),
    guess=Real(0.0, lo_open=True, none_ok=True),
)
def fit_scaling(
    n: ArrayLike, y: ArrayLike, level: float = 0.95, resamples: int = 1000, seed: int = 0, guess: float | None = None
) -> ScalingFit:
    """Fit L(n) = a n^-alpha + c to the metric `y` at sizes `n` (repeats such as seeds share an n) by least squares
    in log space, with `level` percentile intervals from `resamples` residual-bootstrap refits, and Hestness et al.'s
    regions: small data below n_small, where the fitted curve reaches the best-guess error `guess` (without a guess,
    not located: n_small = 0), irreducible error
    above n_irreducible = (a/c)^(1/alpha), where the power-law term falls below c (arXiv 1712.00409, sec. 2)."""
    n, y = np.asarray(n, float), np.asarray(y, float)
    for name, v in (("n", n), ("y", y)):
        if np.any(v <= 0):
            raise ValueError(f"{name}: every entry must be positive (a size, a loss or an error), got {v.min():g}")
    sizes = np.unique(n)
    if sizes.size < MIN_SIZES:
        raise ValueError(
            f"n: a fit of a, alpha and c needs at least {MIN_SIZES} distinct sizes, got {sizes.size} ({sizes.tolist()})"
        )
    # batched fit: (resamples, profile grid, points) float64 arrays and a few copies
    require(
        8 * 4 * (resamples + 1) * len(n) * (ALPHAS.size + 10), "resamples", f"{resamples} resamples of {len(n)} points"
    )
    scale = math.exp(float(np.mean(np.log(y))))  # the fit is scale-free in y: fitted on y / scale (no overflow)
    x, ly = np.log(n), np.log(y / scale)
    best = _fit_batch(x, ly[None])[0]
    if not np.all(np.isfinite(best)):
        raise ValueError(f"y: no finite fit of a n^-alpha + c to these values (from {y.min():g} to {y.max():g})")
    fitted = np.log(_model(np.exp(best[0]), best[1], best[2], n))
    r = ly - fitted
    r = (r - r.mean()) * math.sqrt(len(n) / (len(n) - len(PARAMS)))
    rng = np.random.default_rng(seed)
    draws = _fit_batch(x, fitted + r[rng.integers(0, len(n), size=(resamples, len(n)))])
    with np.errstate(over="ignore"):  # a degenerate resample's a may overflow: inf widens its interval, as it should
        draws[:, 0] = np.exp(draws[:, 0]) * scale
    draws[:, 2] *= scale
    lo, hi = _percentiles(draws, level)
    a, alpha, c = float(np.exp(best[0]) * scale), float(best[1]), float(best[2] * scale)
    mean = np.array([y[n == s].mean() for s in sizes])
    spread = np.array([float(sem(y[n == s])) for s in sizes])
    return ScalingFit(
        a=a,
        alpha=alpha,
        c=c,
        intervals={k: (float(lo[i]), float(hi[i])) for i, k in enumerate(PARAMS)},
        level=float(level),
        n_small=0.0 if guess is None else _crossing(a / (guess - c), alpha) if guess > c else math.inf,
        n_irreducible=_crossing(a / c, alpha) if c > 0 else math.inf,
        guess=math.nan if guess is None else float(guess),
        rms=float(np.sqrt(np.mean((ly - fitted) ** 2))),
        sizes=sizes,
        mean=mean,
        sem=spread,
        draws=draws,
    )
