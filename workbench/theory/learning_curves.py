"""Learning curves of kernel and random-feature ridge regression from the kernel's eigenvalues (Simon, Karkada,
Ghosh & Belkin 2023, "More is Better in Modern Machine Learning", arXiv 2311.14646; code dkarkada/more-is-better).

Notation of the paper: population eigenvalues `lam[i]`, target eigencoefficients `v[i]` (`v2 = v**2`), noise
variance `noise`, `n` samples, `k` random features (`k = inf` is kernel ridge regression), ridge `ridge` (delta)
added to the unnormalized Gram matrix K + delta I. The theory is solved through gamma, which parametrizes both
equations: L_i = lam_i / (lam_i + gamma), z = sum L_i, kappa = gamma (1 - z/k), delta = kappa (n - z) (eq. 4).
Negative ridges are valid down to `Task.min_ridge` (kappa > 0 on the branch continuous with delta > 0).

The simulation is the Gaussian-universality model of the paper's synthetic experiment: phi(x) ~ N(0, I_M), features
g(x) = W Lam^(1/2) phi(x) / sqrt(k) with W_ij ~ N(0, 1), target y = v . phi(x) + N(0, noise); its test MSE is
exact over x (||beta - v||^2 + noise); one compiled call vmaps the trials and maps the (n, k) points in batches.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from workbench.core.declare import Array, Flag, Instance, Int, Real, Reals, Times, declare
from workbench.core.float64 import call, map_batches
from workbench.core.memory import require

__all__ = [
    "Risk",
    "Task",
    "empirical_spectrum",
    "fit_power_law",
    "optimal_fitting_ratio",
    "power_law_task",
    "simulate_rf",
    "simulate_rf_data",
    "simulation_bytes",
    "trial_batch",
]

GRID = 400  # log-gamma grid on which z, q and the bias sums are tabulated once per task
NEWTON_STEPS = 10  # safeguarded Newton steps in log gamma inside the grid cell of the root
REFINE_STEPS = 24  # golden-section steps inside the grid cell of a minimum
GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
POINT_BATCH = 8  # (n, k) points a simulation evaluates at once per trial (lax.map batches: bounded memory)
TRIAL_BYTES = 192 * 2**20  # trials a simulation vmaps at once hold at most this (the rest wait in a lax.map)
MAX_MODES = 10**6
SPECTRUM = (1e-200, 1e200)  # eigenvalues the log-gamma grid and its sums handle in float64

# declared kinds of the arguments (the same for the theory and the simulations)
N = Reals(1.0, 1e12)  # samples n (a number or an array)
K = Times()  # features k in [1, inf] (inf: kernel ridge regression): Times' [0, inf], k >= 1 checked in _broadcast
K_SIMULATED = Reals(1.0, 1e7)  # features of a simulation: finite
RIDGE = Reals()  # the ridge delta, negative down to the theory's bound (Task.min_ridge)
TRIALS = Int(1, 4096)
SEED = Int(0, 2**31 - 1)


class Risk(NamedTuple):
    """Predicted test and train MSE (noise included) with the solved kappa, gamma and delta (broadcast shape)."""

    test: np.ndarray
    train: np.ndarray
    kappa: np.ndarray
    gamma: np.ndarray
    ridge: np.ndarray


@declare(a=Real(0.0, 20.0), b=Real(0.0, 20.0), modes=Int(1, MAX_MODES))
def power_law_task(a: float, b: float, modes: int) -> tuple[np.ndarray, np.ndarray]:
    """lam_i = i^-a and v_i^2 = i^-b, i = 1..modes: the paper's power-law task (section 5)."""
    i = np.arange(1, modes + 1, dtype=np.float64)
    return i**-a, i**-b


def _broadcast(n: ArrayLike, k: ArrayLike, ridge: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n, k and ridge (declared: n >= 1 finite, k in [0, inf], ridge finite) as float arrays of one broadcast shape,
    k >= 1 (inf: kernel ridge regression)."""
    if np.any(np.asarray(k) < 1):
        raise ValueError(f"k: features must be >= 1 (inf: kernel ridge regression), got {float(np.min(k)):g}")
    try:
        n, k, ridge = np.broadcast_arrays(
            np.asarray(n, np.float64), np.asarray(k, np.float64), np.asarray(ridge, float)
        )
        return n, k, ridge
    except ValueError:
        shapes = ", ".join(str(np.shape(v)) for v in (n, k, ridge))
        raise ValueError(f"n, k, ridge: shapes {shapes} do not broadcast together") from None


class Task:
    """A task's eigensystem (lam_i, v_i^2, noise sigma^2) with z, q and the bias sums tabulated on a log-gamma grid,
    so that a whole curve over n, k and ridge costs a few passes over the modes. `v2` holds the squared target
    coefficients v_i^2 (as `simulate_rf`, which takes the Task itself)."""

    @declare(
        eigenvalues=Array("m", lo=SPECTRUM[0], hi=SPECTRUM[1]),
        v2=Array("m", lo=0.0, hi=SPECTRUM[1]),
        noise=Real(0.0, SPECTRUM[1]),
    )
    def __init__(self, eigenvalues: ArrayLike, v2: ArrayLike, noise: float = 0.0) -> None:
        self.lam = np.asarray(eigenvalues, np.float64)
        self.v2 = np.asarray(v2, np.float64)
        self.noise = float(noise)
        if self.lam.size > MAX_MODES:
            raise ValueError(f"eigenvalues: at most {MAX_MODES:,} modes, got {self.lam.size:,}")
        require(4 * 8.0 * GRID * self.lam.size, "eigenvalues", f"a grid of {GRID} x {self.lam.size:,} modes")
        lam = self.lam
        self.log_gamma = np.linspace(
            np.log(lam.min()) - 8 * np.log(10), np.log(lam.max() * lam.size) + 4 * np.log(10), GRID
        )
        self.table = self._sums(np.exp(self.log_gamma))

    def _sums(self, gamma: ArrayLike) -> tuple[np.ndarray, ...]:
        """z = sum L_i, q = sum L_i^2, A = sum (1 - L_i) v_i^2, B = sum L_i v_i^2 / (lam_i + gamma), L_i =
        lam_i / (lam_i + gamma) (Simon et al. 2023, eqs. 4-5)."""
        shifted = self.lam + np.asarray(gamma, np.float64)[..., None]
        ell = self.lam / shifted
        z, q = ell.sum(-1), np.einsum("...m,...m->...", ell, ell)
        return z, q, self.v2.sum() - ell @ self.v2, (ell / shifted) @ self.v2

    def _z(self, gamma: ArrayLike) -> np.ndarray:
        """z = sum_i lam_i / (lam_i + gamma), the effective number of learned modes (eq. 4)."""
        return (self.lam / (self.lam + np.asarray(gamma, np.float64)[..., None])).sum(-1)

    def _require(self, shape: tuple[int, ...]) -> None:
        """Refuse (naming n) a grid of points whose per-mode arrays would not fit in memory."""
        points = int(np.prod(shape))
        require(4 * 8.0 * points * max(self.lam.size, GRID), "n", f"{points:,} points x {self.lam.size:,} modes")

    @staticmethod
    def _ridge(n: np.ndarray, k: np.ndarray, gamma: np.ndarray | float, z: np.ndarray) -> np.ndarray:
        """delta = kappa (n - z) with kappa = gamma (1 - z/k): the ridge for which gamma solves eq. 4 (+inf where
        kappa <= 0, off the valid branch)."""
        kappa = gamma * (1.0 - z / k)
        return np.where(kappa > 0, kappa * (n - z), np.inf)

    def _grid(self, n: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """delta(gamma) on the grid, (*shape, GRID), and the index of its minimum."""
        table = self._ridge(n[..., None], k[..., None], np.exp(self.log_gamma), self.table[0])
        return table, np.argmin(table, -1)

    def _star(self, n: np.ndarray, k: np.ndarray, j: np.ndarray) -> np.ndarray:
        """log gamma of the most negative valid ridge: golden section around the grid's minimum `j`."""
        lo = self.log_gamma[np.maximum(j - 1, 0)]
        hi = self.log_gamma[np.minimum(j + 1, GRID - 1)]

        def f(u: np.ndarray) -> np.ndarray:
            return self._ridge(n, k, np.exp(u), self._z(np.exp(u)))

        for _ in range(REFINE_STEPS):
            c, d = hi - GOLDEN * (hi - lo), lo + GOLDEN * (hi - lo)
            fc, fd = f(c), f(d)
            left = np.isfinite(fc) & (fc <= fd)
            hi, lo = np.where(left, d, hi), np.where(left, lo, c)
        return 0.5 * (lo + hi)

    @declare(n=N, k=K)
    def min_ridge(self, n: ArrayLike, k: float | np.ndarray = np.inf) -> np.ndarray:
        """The most negative ridge delta for which eq. 4 has a solution with kappa > 0 (Simon et al. 2023, sec. 4);
        0 when k <= n or the task has at most n modes."""
        n, k, _ = _broadcast(n, k, 0.0)
        self._require(n.shape)
        u = self._star(n, k, self._grid(n, k)[1])
        return np.minimum(self._ridge(n, k, np.exp(u), self._z(np.exp(u))), 0.0)

    @declare(n=N, k=K, ridge=RIDGE)
    def solve(self, n: ArrayLike, k: ArrayLike, ridge: ArrayLike) -> np.ndarray:
        """gamma solving n = z + delta/kappa and k = z + k kappa/gamma (Simon et al. 2023, eq. 4) on the physical
        branch (delta increasing in gamma above the most negative ridge); ValueError naming `ridge` below it."""
        n, k, ridge = _broadcast(n, k, ridge)
        self._require(n.shape)
        u = self.log_gamma
        table, j_star = self._grid(n, k)
        above = np.arange(GRID) > j_star[..., None]
        j = np.clip(np.where(above, table < ridge[..., None], True).sum(-1), 1, GRID - 1)  # first point above target
        lo, hi = np.array(u[j - 1]), np.array(u[j])
        near = ridge < np.take_along_axis(table, j_star[..., None], -1)[..., 0]  # below the grid's floor: refine it
        if np.any(near):
            star = self._star(n[near], k[near], j_star[near])
            floor = np.minimum(self._ridge(n[near], k[near], np.exp(star), self._z(np.exp(star))), 0.0)
            bad = ridge[near] < floor - 1e-9 * np.abs(floor)
            if np.any(bad):
                raise ValueError(
                    f"ridge: must be >= {float(np.max(floor[bad])):.4g} here (the theory needs kappa > 0), "
                    f"got {float(ridge[near][bad].min()):.4g}"
                )
            lo[near] = star
        with np.errstate(invalid="ignore", divide="ignore"):
            f_lo, f_hi = (np.take_along_axis(table, i[..., None], -1)[..., 0] for i in (j - 1, j))
            t = np.where(np.isfinite(f_lo) & np.isfinite(f_hi) & ~near, (ridge - f_lo) / (f_hi - f_lo), 0.5)
        x = lo + np.clip(t, 0.0, 1.0) * (hi - lo)
        for _ in range(NEWTON_STEPS):  # safeguarded Newton on delta(e^x) = ridge: bisect when a step leaves [lo, hi]
            gamma = np.exp(x)
            ell = self.lam / (self.lam + gamma[..., None])
            z, q = ell.sum(-1), np.einsum("...m,...m->...", ell, ell)
            f = gamma * (1.0 - z / k) * (n - z) - ridge
            lo, hi = np.where(f < 0, x, lo), np.where(f < 0, hi, x)
            slope = gamma * ((1.0 - z / k) * (n - z) + (z - q) * ((n - z) / k + 1.0 - z / k))
            with np.errstate(invalid="ignore", divide="ignore"):
                step = x - f / slope
            x, last = np.where((step >= lo) & (step <= hi), step, 0.5 * (lo + hi)), x
            if np.all(np.abs(x - last) <= 1e-14 * np.maximum(1.0, np.abs(x))):
                break
        return np.exp(x)

    @declare(n=N, k=K, gamma=Reals(0.0, lo_open=True))
    def at_gamma(self, n: ArrayLike, k: ArrayLike, gamma: ArrayLike) -> Risk:
        """Test and train MSE at a solved gamma: E_0 = 1/(1 - x), x = (q(k - 2z) + z^2)/(n(k - q)),
        bias_i = (1 - L_i) - kappa L_i/(lam_i + gamma) k/(k - q), test = E_0 (sum bias_i v_i^2 + sigma^2),
        train = (delta/(n kappa))^2 test (Simon et al. 2023, eqs. 5-6; k = inf is kernel ridge regression)."""
        n, k, gamma = _broadcast(n, k, gamma)
        self._require(n.shape)
        return self._at_gamma(n, k, gamma)

    def _at_gamma(self, n: np.ndarray, k: np.ndarray, gamma: np.ndarray) -> Risk:
        return self._risk(n, k, gamma, *self._sums(gamma))

    def _risk(
        self,
        n: np.ndarray,
        k: np.ndarray,
        gamma: np.ndarray,
        z: np.ndarray,
        q: np.ndarray,
        a: np.ndarray,
        b: np.ndarray,
    ) -> Risk:
        kappa = gamma * (1.0 - z / k)
        ridge = kappa * (n - z)
        e0 = 1.0 / (1.0 - (q * (1.0 - 2.0 * z / k) + z * z / k) / (n * (1.0 - q / k)))
        test = e0 * (a - kappa / (1.0 - q / k) * b + self.noise)
        return Risk(test, (ridge / (n * kappa)) ** 2 * test, kappa, gamma, ridge)

    @declare(n=N, k=K, ridge=RIDGE)
    def risk(self, n: ArrayLike, k: ArrayLike, ridge: ArrayLike) -> Risk:
        """Predicted test/train MSE of random-feature ridge regression with k features (k = inf: kernel ridge
        regression), broadcast over n, k and ridge (Simon et al. 2023, eqs. 4-6)."""
        n, k, ridge = _broadcast(n, k, ridge)
        return self._at_gamma(n, k, self.solve(n, k, ridge))

    @declare(n=N, k=K, negative=Flag())
    def optimal(self, n: ArrayLike, k: float | np.ndarray = np.inf, *, negative: bool = True) -> Risk:
        """The ridge minimizing the predicted test MSE at each (n, k): grid argmin over gamma on the valid branch,
        refined by golden section (`negative=False` keeps delta >= 0) (Simon et al. 2023, sec. 4)."""
        n, k, _ = _broadcast(n, k, 0.0)
        self._require(n.shape + (GRID,))
        start = self._star(n, k, self._grid(n, k)[1]) if negative else np.log(self.solve(n, k, 0.0))
        u = self.log_gamma
        nn, kk, g = n[..., None], k[..., None], np.exp(u)
        with np.errstate(all="ignore"):
            test = self._risk(nn, kk, g, *self.table).test
        test = np.where((u > start[..., None]) & np.isfinite(test) & (test > 0), test, np.inf)
        j = np.argmin(test, -1)
        lo = np.maximum(u[np.maximum(j - 1, 0)], start)
        hi = u[np.minimum(j + 1, GRID - 1)]

        def f(x: np.ndarray) -> np.ndarray:
            with np.errstate(all="ignore"):
                r = self._at_gamma(n, k, np.exp(x)).test
            return np.where(np.isfinite(r) & (r > 0), r, np.inf)

        for _ in range(REFINE_STEPS):
            c, d = hi - GOLDEN * (hi - lo), lo + GOLDEN * (hi - lo)
            left = f(c) <= f(d)
            hi, lo = np.where(left, d, hi), np.where(left, lo, c)
        return self._at_gamma(n, k, np.exp(0.5 * (lo + hi)))


@declare(a=Real(1.0, lo_open=True, example=2.0), b=Real(1.0, lo_open=True, example=1.5))
def optimal_fitting_ratio(a: float, b: float) -> float:
    """R* = train/test at the optimal ridge of a noise-free power-law task, ((a - b)/(b (a - 1)))^2 for b < a,
    0 (interpolate, optimal ridge <= 0) for b >= a (Simon et al. 2023, sec. 5); exponents a, b > 1."""
    return 0.0 if b >= a else ((a - b) / (b * (a - 1))) ** 2


def _example_kernel() -> np.ndarray:
    """A positive definite kernel on 6 points, exp(-|x - x'|) (the attack suite's base call)."""
    x = np.linspace(-2.0, 2.0, 6)
    return np.exp(-np.abs(x[:, None] - x[None, :]))


@declare(kernel=Array("n n", example=_example_kernel), y=Array("n"))
def empirical_spectrum(kernel: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues lam_i of K/N and target coefficients v_i^2 = (u_i . y)^2 / N on N points: the population
    eigensystem estimated on the whole data set, as in the paper's real-data experiments (sec. 6). K must be
    symmetric (up to 1e-5 of its largest entry); round-off negative eigenvalues are set to 0."""
    kernel, y = np.asarray(kernel, np.float64), np.asarray(y, np.float64)
    gap, size = float(np.max(np.abs(kernel - kernel.T))), float(np.max(np.abs(kernel)))
    if gap > 1e-5 * size:
        raise ValueError(f"kernel: must be symmetric, got |K - K^T| up to {gap:.3g} (entries up to {size:.3g})")
    lam, u = np.linalg.eigh(0.5 * (kernel + kernel.T))
    order = np.argsort(lam)[::-1]
    lam, u = np.clip(lam[order], 0.0, None) / len(y), u[:, order]
    return lam, (u.T @ y) ** 2 / len(y)


def _example_power_law() -> tuple[np.ndarray, np.ndarray]:
    return power_law_task(1.5, 2.0, 64)


@declare(
    eigenvalues=Array("m", lo=0.0, example=lambda: _example_power_law()[0]),
    v2=Array("m", lo=0.0, example=lambda: _example_power_law()[1]),
    lo=Int(1),
    hi=Int(3, none_ok=True),
    bins=Int(2, 10_000),
)
def fit_power_law(
    eigenvalues: ArrayLike, v2: ArrayLike, lo: int = 2, hi: int | None = None, bins: int = 16
) -> tuple[float, float]:
    """Exponents (a, b) of lam_i ~ i^-a and v_i^2 ~ i^-b fitted on ranks lo..hi (default N/4) by least squares in
    log-log over log-spaced bins of ranks (per-bin means of log lam_i, log v_i^2: each scale weighs the same and
    the noisy v_i^2 of real data average out) (Simon et al. 2023, sec. 6)."""
    lam, v2 = np.asarray(eigenvalues, np.float64), np.asarray(v2, np.float64)
    hi = len(lam) // 4 if hi is None else hi
    if not lo < hi <= len(lam):
        raise ValueError(f"hi: the ranks lo..hi = {lo}..{hi} must have lo < hi <= {len(lam)} (the number of modes)")
    rank = np.arange(lo, hi + 1)
    which = np.minimum((np.log(rank / lo) / np.log(hi / lo) * bins).astype(int), bins - 1)
    floor = 1e-300

    def slope(values: np.ndarray) -> float:
        logs = np.log(np.maximum(values[rank - 1], floor))
        used = np.unique(which)
        x = np.array([np.log(rank[which == j]).mean() for j in used])
        y = np.array([logs[which == j].mean() for j in used])
        return -np.polyfit(x, y, 1)[0]

    return float(slope(lam)), float(slope(v2))


def _ridge_fit(
    features: jax.Array, y: jax.Array, n: jax.Array, k: jax.Array, ridge: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Dual coefficients alpha = (G G^T + delta I)^-1 y of RF ridge regression on the first n rows and k columns of
    `features` (the rest masked to zero, so every (n, k) shares one padded shape), with G and the column scale."""
    n_max, k_max = features.shape
    rows = (jnp.arange(n_max) < n).astype(features.dtype)
    cols = (jnp.arange(k_max) < k).astype(features.dtype) / jnp.sqrt(k)
    g = features * rows[:, None] * cols
    alpha = jnp.linalg.solve(g @ g.T + ridge * jnp.eye(n_max, dtype=features.dtype), y * rows)
    return alpha, g, cols


@functools.partial(jax.jit, static_argnames=("n_max", "k_max", "trials", "batch"))
def _rf_grid(
    key: jax.Array,
    lam: jax.Array,
    v: jax.Array,
    noise: jax.Array,
    ns: jax.Array,
    ks: jax.Array,
    ridges: jax.Array,
    n_max: int,
    k_max: int,
    trials: int,
    batch: int,
) -> tuple[jax.Array, jax.Array]:
    """(trials, P) test and train MSE of RF ridge regression at P points (n, k, ridge), nested samples and features
    of one draw per trial; one compiled call, `batch` trials at a time."""
    sqrt_lam = jnp.sqrt(lam)

    def trial(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        k_phi, k_w, k_eps = jax.random.split(key, 3)
        phi = jax.random.normal(k_phi, (n_max, lam.size), lam.dtype)
        w = jax.random.normal(k_w, (k_max, lam.size), lam.dtype) * sqrt_lam
        y = phi @ v + jnp.sqrt(noise) * jax.random.normal(k_eps, (n_max,), lam.dtype)
        features = phi @ w.T

        def point(n: jax.Array, k: jax.Array, ridge: jax.Array) -> tuple[jax.Array, jax.Array]:
            alpha, g, cols = _ridge_fit(features, y, n, k, ridge)
            beta = w.T @ (cols * (g.T @ alpha))
            return jnp.sum((beta - v) ** 2) + noise, ridge**2 * jnp.sum(alpha**2) / n

        return map_batches(point, (ns, ks, ridges), POINT_BATCH)

    return map_batches(trial, (jax.random.split(key, trials),), batch)


@declare(trials=Int(1, 1_000_000), per_trial=Real(0.0))
def trial_batch(trials: int, per_trial: float) -> int:
    """Trials vmapped at once: as many as hold at most `TRIAL_BYTES` (`per_trial` bytes each), at least one."""
    return int(max(1, min(trials, TRIAL_BYTES // max(per_trial, 1.0))))


@declare(trials=Int(0, 1_000_000), n_max=Int(1, 2**40), k_max=Int(1, 2**40), width=Int(0, 2**40))
def simulation_bytes(trials: int, n_max: int, k_max: int, width: int) -> float:
    """Bytes a simulation holds at once: per trial the draws (n_max + k_max) x width (modes, or the data's rows and
    input dimension), the features n_max x k_max and a batch of points' Gram and feature matrices, times 2."""
    per_trial = (n_max + k_max) * width + n_max * k_max + POINT_BATCH * (2 * n_max * k_max + 2 * n_max**2)
    return 2 * 8.0 * trials * per_trial


def _padded(size: float) -> int:
    """`size` rounded up to a power of two: the masked simulations compile once per padded size, not per n or k."""
    return 1 << int(np.ceil(np.log2(max(size, 1.0))))


def _example_task() -> Task:
    return Task(*power_law_task(1.5, 1.5, 16), 0.5)


@declare(
    task=Instance(Task, example=_example_task),
    n=N,
    k=K_SIMULATED,
    ridge=RIDGE,
    trials=TRIALS,
    seed=SEED,
)
def simulate_rf(
    task: Task,
    n: ArrayLike,
    k: ArrayLike,
    ridge: ArrayLike,
    *,
    trials: int = 20,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated test and train MSE, each (trials, *shape) over the broadcast (n, k, ridge), of `task` (its
    eigenvalues, squared target coefficients v2 and noise, exactly what its theory `task.risk` uses): Gaussian
    random features of the Gaussian-universality task (Simon et al. 2023, sec. 6 synthetic experiment), in float64.
    A negative ridge must be at or above the theory's bound `task.min_ridge(n, k)` (ValueError naming it)."""
    n, k, ridge = _broadcast(n, k, ridge)
    low = ridge < 0
    if np.any(low):
        floor = task.min_ridge(n[low], k[low])
        bad = ridge[low] < floor - 1e-9 * np.abs(floor)
        if np.any(bad):
            raise ValueError(
                f"ridge: must be >= {float(np.max(floor[bad])):.4g} here (the theory's bound, kappa > 0), "
                f"got {float(ridge[low][bad].min()):.4g}"
            )
    n_max, k_max, lam = _padded(n.max()), _padded(k.max()), task.lam
    sizes = f"{trials} trials of n = {n_max}, k = {k_max} (padded), {lam.size} modes"
    batch = trial_batch(trials, simulation_bytes(1, n_max, k_max, lam.size))
    require(simulation_bytes(batch, n_max, k_max, lam.size), "trials", sizes, "use smaller n, k or fewer modes")
    points = (n.ravel(), k.ravel(), ridge.ravel())
    out = call(
        _rf_grid,
        jax.random.key(seed),
        lam,
        np.sqrt(task.v2),
        task.noise,
        *points,
        n_max=n_max,
        k_max=k_max,
        trials=trials,
        batch=batch,
    )
    test, train = (o.reshape((trials,) + n.shape) for o in out)
    return test, train


@functools.partial(jax.jit, static_argnames=("n_max", "k_max", "trials", "batch"))
def _rf_data(
    key: jax.Array,
    x: jax.Array,
    y: jax.Array,
    ns: jax.Array,
    ks: jax.Array,
    ridges: jax.Array,
    n_max: int,
    k_max: int,
    trials: int,
    batch: int,
) -> tuple[jax.Array, jax.Array]:
    """(trials, P) test MSE over all points and train MSE of ReLU random-feature ridge regression on a data set,
    `batch` trials at a time."""

    def trial(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        k_idx, k_w = jax.random.split(key)
        train = jax.random.permutation(k_idx, x.shape[0])[:n_max]
        w = jax.random.normal(k_w, (k_max, x.shape[1]), x.dtype)
        features = jax.nn.relu(x @ w.T / jnp.sqrt(x.shape[1]))  # (N, k_max): the depth-1 ReLU NNGP's features

        def point(n: jax.Array, k: jax.Array, ridge: jax.Array) -> tuple[jax.Array, jax.Array]:
            alpha, g, cols = _ridge_fit(features[train], y[train], n, k, ridge)
            pred = (features * cols) @ (g.T @ alpha)
            return jnp.mean((pred - y) ** 2), ridge**2 * jnp.sum(alpha**2) / n

        return map_batches(point, (ns, ks, ridges), POINT_BATCH)

    return map_batches(trial, (jax.random.split(key, trials),), batch)


@declare(
    x=Array("p d", lo=-1e15, hi=1e15),
    y=Array("p", lo=-1e15, hi=1e15),
    n=N,
    k=K_SIMULATED,
    ridge=RIDGE,
    trials=TRIALS,
    seed=SEED,
)
def simulate_rf_data(
    x: np.ndarray, y: ArrayLike, n: ArrayLike, k: ArrayLike, ridge: ArrayLike, *, trials: int = 8, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated test MSE (over all N points, the population whose eigensystem `empirical_spectrum` gives) and train
    MSE, each (trials, *shape): ReLU random features relu(w . x / sqrt(d)), w ~ N(0, I), k of them, on n <= N
    points drawn without replacement (Simon et al. 2023, sec. 6 real-data experiments), in float64."""
    n, k, ridge = _broadcast(n, k, ridge)
    if n.max() > len(x):
        raise ValueError(f"n: at most the {len(x)} points of x, got {n.max():g}")
    n_max, k_max = min(_padded(n.max()), len(x)), _padded(k.max())
    per_trial = simulation_bytes(1, n_max, k_max, 0) + 16.0 * len(x) * (k_max + np.shape(x)[1])
    batch = trial_batch(trials, per_trial)
    require(
        batch * per_trial,
        "trials",
        f"{trials} trials of n = {n_max}, k = {k_max} on {len(x)} points",
        "use smaller n, k",
    )
    points = (n.ravel(), k.ravel(), ridge.ravel())
    out = call(
        _rf_data,
        jax.random.key(seed),
        np.asarray(x, np.float64),
        np.asarray(y, np.float64),
        *points,
        n_max=n_max,
        k_max=k_max,
        trials=trials,
        batch=batch,
    )
    test, train = (o.reshape((trials,) + n.shape) for o in out)
    if not (np.all(np.isfinite(test)) and np.all(np.isfinite(train))):
        raise ValueError(
            f"ridge: G G^T + ridge I is singular in some trial (ridges down to {float(ridge.min()):.3g}); "
            "use a larger ridge"
        )
    return test, train
