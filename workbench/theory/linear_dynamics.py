"""Generalization dynamics of a linear student (Advani, Saxe & Sompolinsky, "High-dimensional dynamics of
generalization error in neural networks", Neural Networks 2020, arXiv 1710.03667).

Inputs x in R^N with x_i ~ N(0, 1/N); teacher y = w_bar . x + eps, w_bar_i ~ N(0, sigma_w^2), eps ~ N(0, sigma_eps^2);
P = a N examples; SNR = sigma_w^2 / sigma_eps^2 (here sigma_w^2 = 1, so sigma_eps^2 = 1/SNR); student w(0)_i ~
N(0, sigma_0^2) trained by gradient flow on (1/2) sum_mu (y_mu - w . x_mu)^2. Each eigenmode l of X^T X (Marchenko-
Pastur, edges (1 -+ sqrt(a))^2, a frozen share (1 - a) at l = 0 when a < 1) learns on its own time scale 1/l.

E_g = ||w - w_bar||^2 / N + sigma_eps^2 (a fresh example, noise included); E_train = ||y - X w||^2 / P.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
from numpy.typing import ArrayLike

from workbench.core import checks
from workbench.core.float64 import call
from workbench.core.memory import require

NODES = 512  # Gauss-Legendre nodes in the angle of the Marchenko-Pastur substitution (smooth integrand)


def mp_edges(a: float) -> tuple[float, float]:
    """Edges (1 -+ sqrt(a))^2 of the Marchenko-Pastur law of X^T X (Advani et al. 2020, eq. 10)."""
    return (1.0 - np.sqrt(a)) ** 2, (1.0 + np.sqrt(a)) ** 2


def mp_density(l: ArrayLike, a: float) -> np.ndarray:
    """rho_MP(l) = sqrt((l_+ - l)(l - l_-)) / (2 pi l) on [l_-, l_+] (Advani et al. 2020, eq. 10); its integral
    is min(1, a), the rest (1 - a when a < 1) is the frozen atom at l = 0."""
    _check(a=a)
    lo, hi = mp_edges(a)
    l = np.asarray(l, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.sqrt(np.clip((hi - l) * (l - lo), 0.0, None)) / (2.0 * np.pi * l)
    return np.where((l > lo) & (l < hi), rho, 0.0)


@functools.cache
def _legendre() -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [-1, 1] (computed once: an eigenproblem of size NODES)."""
    return np.polynomial.legendre.leggauss(NODES)


@functools.lru_cache(maxsize=256)
def mp_quadrature(a: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes l and weights w with sum_j w_j f(l_j) = int rho_MP(l) f(l) dl: l = 1 + a + 2 sqrt(a) cos theta makes
    the square-root edges smooth (also the hard edge l_- = 0 at a = 1)."""
    x, w = _legendre()
    theta = 0.5 * np.pi * (x + 1.0)
    l = 1.0 + a + 2.0 * np.sqrt(a) * np.cos(theta)
    weights = 0.5 * np.pi * w * (4.0 * a * np.sin(theta) ** 2) / (2.0 * np.pi * l)
    return l, weights


def _check(**values: float) -> None:
    bounds = {"a": (1e-3, 100.0), "snr": (1e-3, 1e4), "sigma0": (0.0, 10.0)}
    for name, value in values.items():
        lo, hi = bounds[name]
        if not (lo <= value <= hi) or (name != "sigma0" and value == 0):
            raise ValueError(f"{name}: must be in [{lo}, {hi}], got {value}")


def generalization_error(t: ArrayLike, a: float, snr: float, sigma0: float = 0.0) -> np.ndarray:
    """E_g(t) = int rho_MP [ (sigma_w^2 + sigma_0^2) e^{-2 l t} + (sigma_eps^2 / l)(1 - e^{-l t})^2 ] dl
    + (1 - a)_+ (sigma_w^2 + sigma_0^2) + sigma_eps^2 (Advani et al. 2020, eq. 11); t = inf gives the
    a/(a - 1) and 1/(1 - a) divergences at a = 1 (eq. 13), infinite at a = 1."""
    _check(a=a, snr=snr, sigma0=sigma0)
    l, w = mp_quadrature(float(a))
    t = np.asarray(t, np.float64)
    init, noise = 1.0 + sigma0**2, 1.0 / snr
    decay = np.exp(-np.multiply.outer(t, l))
    integral = (w * (init * decay**2 + noise / l * (1.0 - decay) ** 2)).sum(-1)
    if a == 1.0:
        integral = np.where(np.isinf(t), np.inf, integral)
    return integral + max(1.0 - a, 0.0) * init + noise


def training_error(t: ArrayLike, a: float, snr: float, sigma0: float = 0.0) -> np.ndarray:
    """E_train(t) = (1/a) int rho_MP e^{-2 l t} (sigma_eps^2 + l (sigma_w^2 + sigma_0^2)) dl + (1 - 1/a)_+ sigma_eps^2,
    the mean squared residual per example (Advani et al. 2020, eq. 12, per-example normalization)."""
    _check(a=a, snr=snr, sigma0=sigma0)
    l, w = mp_quadrature(float(a))
    decay2 = np.exp(-2.0 * np.multiply.outer(np.asarray(t, np.float64), l))
    noise = 1.0 / snr
    return (w * decay2 * (noise + l * (1.0 + sigma0**2))).sum(-1) / a + max(1.0 - 1.0 / a, 0.0) * noise


def ridge_error(ridge: ArrayLike, a: float, snr: float) -> np.ndarray:
    """E_g of the ridge solution w = (X^T X + lambda)^-1 X^T y: int rho_MP (sigma_w^2 lambda^2 + sigma_eps^2 l) /
    (l + lambda)^2 dl + (1 - a)_+ sigma_w^2 + sigma_eps^2 (Advani et al. 2020, sec. 5)."""
    _check(a=a, snr=snr)
    l, w = mp_quadrature(float(a))
    lam = np.asarray(ridge, np.float64)[..., None]
    noise = 1.0 / snr
    return (w * (lam**2 + noise * l) / (l + lam) ** 2).sum(-1) + max(1.0 - a, 0.0) + noise


def optimal_ridge(a: float, snr: float) -> float:
    """The ridge lambda minimizing `ridge_error` (numerically; theory: 1/SNR, Advani et al. 2020, sec. 5)."""
    res = scipy.optimize.minimize_scalar(
        lambda u: float(ridge_error(np.exp(u), a, snr)), bounds=(-12.0, 8.0), method="bounded", options=dict(xatol=1e-9)
    )
    return float(np.exp(res.x))


def optimal_stopping(a: float, snr: float, sigma0: float = 0.0) -> tuple[float, float]:
    """(t*, E_g(t*)): the early-stopping time minimizing E_g(t) over t in [1e-3, 1e6] (Advani et al. 2020, sec. 4)."""
    grid = np.geomspace(1e-3, 1e6, 400)
    j = int(np.argmin(generalization_error(grid, a, snr, sigma0)))
    lo, hi = np.log(grid[max(j - 1, 0)]), np.log(grid[min(j + 1, len(grid) - 1)])
    res = scipy.optimize.minimize_scalar(
        lambda u: float(generalization_error(np.exp(u), a, snr, sigma0)), bounds=(lo, hi), method="bounded"
    )
    return float(np.exp(res.x)), float(res.fun)


@functools.partial(jax.jit, static_argnames=("n", "p", "trials"))
def _simulate(
    key: jax.Array, times: jax.Array, noises: jax.Array, sigma0: jax.Array, n: int, p: int, trials: int
) -> tuple[jax.Array, jax.Array]:
    """(trials, S, T) E_g and E_train of the exact gradient-flow solution w(t) of each sampled problem, for S noise
    levels sharing one eigendecomposition per trial."""

    def trial(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        kx, kw, ke, k0 = jax.random.split(key, 4)
        x = jax.random.normal(kx, (p, n), times.dtype) / jnp.sqrt(n)
        w_bar = jax.random.normal(kw, (n,), times.dtype)
        xi = jax.random.normal(ke, (p,), times.dtype)
        w0 = sigma0 * jax.random.normal(k0, (n,), times.dtype)
        l, v = jnp.linalg.eigh(x.T @ x, symmetrize_input=False)
        l = jnp.clip(l, 0.0, None)
        e0, drive = v.T @ (w0 - w_bar), v.T @ (x.T @ xi)
        decay = jnp.exp(-jnp.outer(times, l))
        gain = jnp.where(l > 1e-12, (1.0 - decay) / jnp.where(l > 1e-12, l, 1.0), times[:, None])
        xv = x @ v

        def errors(noise: jax.Array) -> tuple[jax.Array, jax.Array]:
            err = decay * e0 + gain * drive * jnp.sqrt(noise)  # modes of w(t) - w_bar, (T, n)
            residual = jnp.sqrt(noise) * xi[:, None] - xv @ err.T  # (p, T)
            return jnp.sum(err**2, -1) / n + noise, jnp.sum(residual**2, 0) / p

        return jax.vmap(errors)(noises)

    return jax.vmap(trial)(jax.random.split(key, trials))


def simulate(
    times: ArrayLike, n: int, a: float, snr: ArrayLike, sigma0: float = 0.0, *, trials: int = 20, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated E_g(t) and E_train(t), each (trials, *snr.shape, T): the linear student's gradient flow solved
    exactly in the eigenbasis of each sampled X^T X (P = round(a N)), vmapped over trials (and SNRs, which share the
    sample) in one compiled float64 call."""
    snr = np.asarray(snr, np.float64)
    trials, n = checks.integer("trials", trials, 1, 4096), checks.integer("n", n, 2, 20_000)
    for s in snr.ravel():
        _check(a=a, snr=float(s), sigma0=sigma0)
    p = max(1, int(round(a * n)))
    times = np.atleast_1d(np.asarray(times, np.float64))
    need = 2 * 8.0 * trials * (3 * n * n + 2 * p * n + (2 + snr.size) * len(times) * max(n, p))
    require(need, "trials", f"{trials} trials of N = {n}, P = {p}", "use fewer trials or inputs")
    eg, et = call(_simulate, jax.random.key(seed), times, 1.0 / snr.ravel(), float(sigma0), n=n, p=p, trials=trials)
    shape = (trials,) + snr.shape + (len(times),)
    return eg.reshape(shape), et.reshape(shape)
