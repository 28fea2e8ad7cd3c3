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

from workbench.core.declare import Array, Int, Real, Reals, Times, declare
from workbench.core.float64 import call
from workbench.core.memory import require

__all__ = [
    "generalization_error",
    "mp_density",
    "mp_edges",
    "mp_quadrature",
    "optimal_ridge",
    "optimal_stopping",
    "ridge_error",
    "simulate",
    "training_error",
]

NODES = 24  # Gauss-Legendre nodes per panel of the Marchenko-Pastur quadrature
PANELS = 28  # panels in u = pi - theta, geometric from U_MIN to pi: they resolve the lower edge l_- (see mp_quadrature)
U_MIN = 1e-12  # the smallest panel edge: eigenvalues l down to about U_MIN^2 above l_- are resolved
T_MAX = 1e20  # finite times the quadrature resolves at a = 1 (E_g grows as sqrt(t) there); beyond, use t = inf

A = Real(1e-3, 100.0)  # load a = P / N
SNR = Real(1e-3, 1e4)  # sigma_w^2 / sigma_eps^2
SIGMA0 = Real(0.0, 10.0)  # initial student weight std


@declare(a=A)
def mp_edges(a: float) -> tuple[float, float]:
    """Edges (1 -+ sqrt(a))^2 of the Marchenko-Pastur law of X^T X (Advani et al. 2020, eq. 10)."""
    return (1.0 - np.sqrt(a)) ** 2, (1.0 + np.sqrt(a)) ** 2


@declare(l=Reals(), a=A)
def mp_density(l: ArrayLike, a: float) -> np.ndarray:
    """rho_MP(l) = sqrt((l_+ - l)(l - l_-)) / (2 pi l) on [l_-, l_+] (Advani et al. 2020, eq. 10); its integral
    is min(1, a), the rest (1 - a when a < 1) is the frozen atom at l = 0."""
    lo, hi = mp_edges(a)
    l = np.asarray(l, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.sqrt(np.clip((hi - l) * (l - lo), 0.0, None)) / (2.0 * np.pi * l)
    return np.where((l > lo) & (l < hi), rho, 0.0)


@functools.cache
def _panels() -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes u and weights on [0, pi]: [0, U_MIN] and PANELS - 1 geometric panels."""
    x, w = np.polynomial.legendre.leggauss(NODES)
    edges = np.concatenate([[0.0], np.geomspace(U_MIN, np.pi, PANELS)])
    lo, hi = edges[:-1, None], edges[1:, None]
    return (0.5 * (hi - lo) * x + 0.5 * (hi + lo)).ravel(), (0.5 * (hi - lo) * w).ravel()


@functools.lru_cache(maxsize=256)
def _quadrature(a: float) -> tuple[np.ndarray, np.ndarray]:
    u, wu = _panels()
    r = np.sqrt(a)
    l = (1.0 - r) ** 2 + 4.0 * r * np.sin(0.5 * u) ** 2  # = 1 + a - 2 sqrt(a) cos u, without cancellation at u -> 0
    return l, wu * (4.0 * a * np.sin(u) ** 2) / (2.0 * np.pi * l)


@declare(a=A)
def mp_quadrature(a: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes l and weights w with sum_j w_j f(l_j) = int rho_MP(l) f(l) dl: l = 1 + a - 2 sqrt(a) cos u makes the
    square-root edges smooth (also the hard edge l_- = 0 at a = 1), and panels in u graded geometrically towards the
    lower edge resolve what happens there (near a = 1, l_- -> 0 and 1 / l, or a long time t, peak at small u):
    relative error below 1e-8 for t up to T_MAX and a within 1e-8 of 1."""
    return _quadrature(float(a))


def _times(t: ArrayLike) -> np.ndarray:
    """Times as float64, refused (naming t) where finite beyond T_MAX."""
    t = np.asarray(t, np.float64)
    if np.any(np.isfinite(t) & (t > T_MAX)):
        raise ValueError(f"t: finite times must be at most {T_MAX:g} (what the quadrature resolves); use t = inf")
    return t


@declare(t=Times(), a=A, snr=SNR, sigma0=SIGMA0, finite=False)
def generalization_error(t: ArrayLike, a: float, snr: float, sigma0: float = 0.0) -> np.ndarray:
    """E_g(t) = int rho_MP [ (sigma_w^2 + sigma_0^2) e^{-2 l t} + (sigma_eps^2 / l)(1 - e^{-l t})^2 ] dl
    + (1 - a)_+ (sigma_w^2 + sigma_0^2) + sigma_eps^2 (Advani et al. 2020, eq. 11); t = inf gives the closed forms
    sigma_eps^2 a/(a - 1) above a = 1 and (1 - a)(sigma_w^2 + sigma_0^2) + sigma_eps^2/(1 - a) below (eq. 13),
    infinite at a = 1 (the only infinite value)."""
    t = _times(t)
    l, w = mp_quadrature(float(a))
    init, noise = 1.0 + sigma0**2, 1.0 / snr
    decay = np.exp(-np.multiply.outer(t, l))
    integral = (w * (init * decay**2 + noise / l * (1.0 - decay) ** 2)).sum(-1)
    finite = integral + max(1.0 - a, 0.0) * init + noise
    with np.errstate(divide="ignore"):
        limit = np.inf if a == 1.0 else (noise * a / (a - 1.0) if a > 1 else (1.0 - a) * init + noise / (1.0 - a))
    return np.where(np.isinf(t), limit, finite)[()]


@declare(t=Times(), a=A, snr=SNR, sigma0=SIGMA0)
def training_error(t: ArrayLike, a: float, snr: float, sigma0: float = 0.0) -> np.ndarray:
    """E_train(t) = (1/a) int rho_MP e^{-2 l t} (sigma_eps^2 + l (sigma_w^2 + sigma_0^2)) dl + (1 - 1/a)_+ sigma_eps^2,
    the mean squared residual per example (Advani et al. 2020, eq. 12, per-example normalization)."""
    l, w = mp_quadrature(float(a))
    decay2 = np.exp(-2.0 * np.multiply.outer(_times(t), l))
    noise = 1.0 / snr
    return (w * decay2 * (noise + l * (1.0 + sigma0**2))).sum(-1) / a + max(1.0 - 1.0 / a, 0.0) * noise


@declare(ridge=Reals(1e-12, 1e12), a=A, snr=SNR)
def ridge_error(ridge: ArrayLike, a: float, snr: float) -> np.ndarray:
    """E_g of the ridge solution w = (X^T X + lambda)^-1 X^T y, lambda > 0: int rho_MP (sigma_w^2 lambda^2 +
    sigma_eps^2 l) / (l + lambda)^2 dl + (1 - a)_+ sigma_w^2 + sigma_eps^2 (Advani et al. 2020, sec. 5); lambda -> 0
    is `generalization_error` at t = inf."""
    l, w = mp_quadrature(float(a))
    lam = np.asarray(ridge, np.float64)[..., None]
    noise = 1.0 / snr
    return (w * (lam**2 + noise * l) / (l + lam) ** 2).sum(-1) + max(1.0 - a, 0.0) + noise


@declare(a=A, snr=SNR)
def optimal_ridge(a: float, snr: float) -> float:
    """The ridge lambda minimizing `ridge_error` (numerically; theory: 1/SNR, Advani et al. 2020, sec. 5)."""
    res = scipy.optimize.minimize_scalar(
        lambda u: float(ridge_error(np.exp(u), a, snr)), bounds=(-12.0, 8.0), method="bounded", options=dict(xatol=1e-9)
    )
    return float(np.exp(res.x))


@declare(a=A, snr=SNR, sigma0=SIGMA0)
def optimal_stopping(a: float, snr: float, sigma0: float = 0.0) -> tuple[float, float]:
    """(t*, E_g(t*)): the early-stopping time minimizing E_g(t) over t in [1e-3, 1e6] (Advani et al. 2020, sec. 4)."""
    grid = np.geomspace(1e-3, 1e6, 400)
    j = int(np.argmin(generalization_error(grid, a, snr, sigma0)))
    lo, hi = np.log(grid[max(j - 1, 0)]), np.log(grid[min(j + 1, len(grid) - 1)])
    res = scipy.optimize.minimize_scalar(
        lambda u: float(generalization_error(np.exp(u), a, snr, sigma0)), bounds=(lo, hi), method="bounded"
    )
    return float(np.exp(res.x)), float(res.fun)


NULL = 1e-12  # eigenvalues of X^T X at or below this are its null space (round-off of exact zeros)


@functools.partial(jax.jit, static_argnames=("n", "p", "trials"))
def _simulate(
    key: jax.Array, times: jax.Array, noises: jax.Array, sigma0: jax.Array, n: int, p: int, trials: int
) -> tuple[jax.Array, jax.Array]:
    """(trials, S, T) E_g and E_train of the exact gradient-flow solution w(t) of each sampled problem, for S noise
    levels sharing one eigendecomposition per trial. Null modes of X^T X neither learn nor are driven (their drive
    v^T X^T xi is round-off): they keep their initial error at every t."""

    def trial(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        kx, kw, ke, k0 = jax.random.split(key, 4)
        x = jax.random.normal(kx, (p, n), times.dtype) / jnp.sqrt(n)
        w_bar = jax.random.normal(kw, (n,), times.dtype)
        xi = jax.random.normal(ke, (p,), times.dtype)
        w0 = sigma0 * jax.random.normal(k0, (n,), times.dtype)
        l, v = jnp.linalg.eigh(x.T @ x, symmetrize_input=False)
        live = l > NULL
        l = jnp.where(live, l, 1.0)
        e0, drive = v.T @ (w0 - w_bar), v.T @ (x.T @ xi)
        decay = jnp.where(live, jnp.exp(-jnp.outer(times, l)), 1.0)
        gain = jnp.where(live, (1.0 - decay) / l, 0.0)
        xv = x @ v

        def errors(noise: jax.Array) -> tuple[jax.Array, jax.Array]:
            err = decay * e0 + gain * drive * jnp.sqrt(noise)  # modes of w(t) - w_bar, (T, n)
            residual = jnp.sqrt(noise) * xi[:, None] - xv @ err.T  # (p, T)
            return jnp.sum(err**2, -1) / n + noise, jnp.sum(residual**2, 0) / p

        return jax.vmap(errors)(noises)

    return jax.vmap(trial)(jax.random.split(key, trials))


@declare(
    times=Array("t", lo=0.0),
    n=Int(2, 20_000),
    a=A,
    snr=Reals(1e-3, 1e4),
    sigma0=SIGMA0,
    trials=Int(1, 4096),
    seed=Int(0, 2**31 - 1),
)
def simulate(
    times: ArrayLike, n: int, a: float, snr: ArrayLike, sigma0: float = 0.0, *, trials: int = 20, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated E_g(t) and E_train(t), each (trials, *snr.shape, T) at the (finite) `times`: the linear student's
    gradient flow solved exactly in the eigenbasis of each sampled X^T X (P = round(a N)), vmapped over trials (and
    SNRs, which share the sample) in one compiled float64 call."""
    snr = np.asarray(snr, np.float64)
    p = max(1, int(round(a * n)))
    times = np.asarray(times, np.float64)
    need = 2 * 8.0 * trials * (3 * n * n + 2 * p * n + (2 + snr.size) * len(times) * max(n, p))
    require(need, "trials", f"{trials} trials of N = {n}, P = {p}", "use fewer trials or inputs")
    eg, et = call(_simulate, jax.random.key(seed), times, 1.0 / snr.ravel(), float(sigma0), n=n, p=p, trials=trials)
    shape = (trials,) + snr.shape + (len(times),)
    return eg.reshape(shape), et.reshape(shape)
