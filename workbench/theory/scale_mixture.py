"""Scale mixtures of NNGPs (Lee, Yun, Yang & Lee, ICLR 2022, arXiv 2107.01408): Student-t processes from wide nets.

A prior sigma^2 ~ H on the variance of the last layer, f(x) = (sigma / sqrt(n)) sum_j v_j phi(h_j(x)), makes the
infinite-width prior the scale mixture of GP(0, sigma^2 K) (K: the NNGP with readout weight_std 1; paper Sec. 3).
With H = InvGamma(alpha, beta) it is a Student-t process, f(X) ~ MVT_{2 alpha}(0, (beta / alpha) K(X, X)), of
prior variance beta / (alpha - 1) K(x, x). Regression with the noise in the kernel (K~ = K + eps I, n points,
q = y^T K~^-1 y) has the closed-form posterior

    sigma^2 | y ~ InvGamma(alpha + n/2, beta + q/2),
    f(x*) | y   ~ t_{2 alpha + n}(mu*, (2 beta + q) / (2 alpha + n) Sigma*),

mu* = k*^T K~^-1 y, Sigma* = k** - k*^T K~^-1 k* (the NNGP posterior): the error bars grow with the residual
energy q. Any other scale prior goes through self-normalised importance sampling of sigma^2 (weights
N(y; 0, sigma^2 K~)). A gradient-descent ensemble whose members draw their own readout scale converges, at
infinite width, to t_{2 alpha}(mu_NTK, (beta / alpha) Sigma_NTK) (all layers trained) or the same with the NNGP
mean and covariance (readout only), where mu, Sigma are the Gaussian ensemble's at sigma = 1
(`workbench.theory.kernels.gradient_descent`).

Linear algebra runs in float64 numpy: with eps = 1e-6 the Gram matrix is too ill-conditioned for float32. A Gram
matrix K~ that is not positive definite, or singular to working precision (condition number above 1 / RCOND, e.g.
duplicate inputs with eps = 0), is refused with the reason rather than solved into meaningless numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, special, stats

from workbench.core.declare import Activation, Array, Given, Instance, Int, Real, Reals, declare
from workbench.core.memory import require
from workbench.theory.kernels import Kernels, mlp_kernels
from workbench.theory.kernels.analytic import MAX_DEPTH, MAX_INPUT
from workbench.theory.kernels.predict import gradient_descent

__all__ = [
    "FIT_NAMES",
    "GP",
    "Mixture",
    "SCALE_PRIORS",
    "TMarginal",
    "TPosterior",
    "ensemble_law",
    "fit_hyperparameters",
    "gp_band",
    "gp_posterior",
    "importance_posterior",
    "mixture_cdf",
    "mixture_quantile",
    "mvt_log_likelihood",
    "prior_variance",
    "sample_invgamma",
    "sample_prior",
    "t_band",
    "t_posterior",
]

RCOND = 1e-12  # K~ with smallest / largest eigenvalue below this is singular to working precision (float64)
SYMMETRY = 1e-5  # a Gram matrix may differ from its transpose by this much relative to its largest entry

# ---------------------------------------------------------------- examples for the declarations (attack suite)


def _example_kernel() -> np.ndarray:
    """A positive definite kernel on 10 points, exp(-|x - x'|) (rows 0-5: training, 6-9: test points)."""
    x = np.linspace(-2.0, 2.0, 10)
    return np.exp(-np.abs(x[:, None] - x[None, :]))


def _example_y() -> np.ndarray:
    return np.sin(3 * np.linspace(-2.0, 2.0, 10)[:6])


def _example_posterior() -> TPosterior:
    k = _example_kernel()
    return t_posterior(k[:6, :6], k[6:, :6], k[6:, 6:], _example_y(), 2.0, 2.0, 0.01)


def _example_mixture() -> Mixture:
    k = _example_kernel()
    draws = sample_invgamma(np.random.default_rng(0), 2.0, 2.0, 100)
    return importance_posterior(k[:6, :6], k[6:, :6], k[6:, 6:], _example_y(), draws, 0.01)


def _example_kernels(rows: slice, cols: slice) -> Kernels:
    k = jnp.asarray(_example_kernel())
    return Kernels(k[rows, cols], 2.0 * k[rows, cols])


# ---------------------------------------------------------------- declared kinds shared by the functions

ALPHA = Real(0.0, 1e10, lo_open=True)  # InvGamma(alpha, beta): alpha, beta > 0; gammaln(alpha) stays accurate
BETA = Real(0.0, 1e10, lo_open=True)
EPS = Real(0.0)  # noise variance added to the Gram matrix
K_TRAIN = Array("n n", example=lambda: _example_kernel()[:6, :6])
K_TEST_TRAIN = Array("m n", example=lambda: _example_kernel()[6:, :6])
K_TEST = Array("m m", example=lambda: _example_kernel()[6:, 6:])
Y = Array("n", example=_example_y)
LEVEL = Real(0.0, 1.0, lo_open=True)  # a probability in (0, 1); 1 is refused in the body
RNG = Instance(np.random.Generator, example=lambda: np.random.default_rng(0))
MAX_DRAWS = 10**8


def _symmetric(name: str, k: np.ndarray) -> np.ndarray:
    """`k` as float64, refused unless symmetric up to round-off (SYMMETRY relative), symmetrized."""
    k = np.asarray(k, np.float64)
    gap, size = float(np.max(np.abs(k - k.T))), float(np.max(np.abs(k)))
    if gap > SYMMETRY * size:
        raise ValueError(
            f"{name}: a Gram matrix must be symmetric, got |K - K^T| up to {gap:.3g} (entries up to {size:.3g})"
        )
    return 0.5 * (k + k.T)


def _solver(k_train: np.ndarray, eps: float) -> tuple[np.ndarray, float]:
    """The Cholesky factor of K~ = K + eps I and log det K~; ValueError naming k_train when K~ is not positive
    definite or singular to working precision (the reason and the remedy in the message)."""
    kt = _symmetric("k_train", k_train) + eps * np.eye(len(k_train))
    lam = np.linalg.eigvalsh(kt)
    lo, hi = float(lam[0]), float(lam[-1])
    if hi <= 0 or lo < -RCOND * hi:
        raise ValueError(
            f"k_train: K + eps I must be positive definite, got eigenvalues from {lo:.3g} to {hi:.3g}: not a kernel "
            "matrix, or a singular one (duplicate inputs) whose round-off went negative; for the latter use eps > "
            f"{-lo:.2g}"
        )
    if lo <= RCOND * hi:
        raise ValueError(
            f"k_train: K + eps I is singular to working precision (smallest eigenvalue {lo:.3g}, largest {hi:.3g}, "
            f"ratio below {RCOND:g}; eps = {eps:g}): duplicate inputs or a low-rank kernel; use eps > 0, e.g. "
            f"{1e-6 * hi / len(kt):.2g}"
        )
    chol = np.linalg.cholesky(kt)
    return chol, float(2 * np.sum(np.log(np.diag(chol))))


@declare(k_diag=Array("n", lo=0.0), alpha=ALPHA, beta=BETA, finite=False)
def prior_variance(k_diag: ArrayLike, alpha: float, beta: float) -> np.ndarray:
    """Var f(x) = E[sigma^2] K(x, x) = beta / (alpha - 1) K(x, x) (infinite for alpha <= 1; paper Sec. 3)."""
    k = np.asarray(k_diag, float)
    return np.full_like(k, np.inf) if alpha <= 1 else beta / (alpha - 1) * k


@declare(rng=RNG, alpha=ALPHA, beta=BETA, size=Int(1, MAX_DRAWS))
def sample_invgamma(rng: np.random.Generator, alpha: float, beta: float, size: int) -> np.ndarray:
    """`size` draws of sigma^2 ~ InvGamma(alpha, beta) (density beta^alpha / Gamma(alpha) s^-alpha-1 e^-beta/s)."""
    require(16.0 * size, "size", f"{size:,} draws")
    draws = beta / rng.gamma(alpha, 1.0, size)
    if not np.all(np.isfinite(draws)):
        raise ValueError(
            f"alpha: InvGamma({alpha:g}, {beta:g}) draws overflow float64 (its gamma draws underflow to 0 for small "
            "alpha); use a larger alpha"
        )
    return draws


@declare(
    k=Array("n n", example=lambda: _example_kernel()), alpha=ALPHA, beta=BETA, n_samples=Int(1, MAX_DRAWS), rng=RNG
)
def sample_prior(k: ArrayLike, alpha: float, beta: float, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_samples, N) draws of f(X) = sigma L z with sigma^2 ~ InvGamma(alpha, beta), K = L L^T: the Student-t
    process prior MVT_{2 alpha}(0, (beta / alpha) K) written as its scale mixture (paper Sec. 3)."""
    k = _symmetric("k", np.asarray(k))
    require(3 * 8.0 * n_samples * len(k), "n_samples", f"{n_samples:,} samples of {len(k)} points")
    lam, vec = np.linalg.eigh(k)
    if lam[0] < -1e-6 * max(lam[-1], 0.0) * len(k) or lam[-1] < 0:
        raise ValueError(f"k: a kernel matrix must be positive semidefinite, got an eigenvalue {lam[0]:.3g}")
    root = vec * np.sqrt(np.clip(lam, 0, None))  # K = root root^T; round-off negatives clipped (float32 kernels)
    sigma = np.sqrt(sample_invgamma(rng, alpha, beta, n_samples))
    return sigma[:, None] * (rng.standard_normal((n_samples, len(lam))) @ root.T)


class GP(NamedTuple):
    """NNGP posterior with noise eps in the kernel: mean mu* (N*,), covariance Sigma* (N*, N*), q = y^T K~^-1 y
    and log det K~ (what the scale posterior and the marginal likelihoods need)."""

    mean: np.ndarray
    cov: np.ndarray
    q: float
    logdet: float


@declare(k_train=K_TRAIN, k_test_train=K_TEST_TRAIN, k_test=K_TEST, y=Y, eps=EPS)
def gp_posterior(k_train: ArrayLike, k_test_train: ArrayLike, k_test: ArrayLike, y: ArrayLike, eps: float) -> GP:
    """mu* = k*^T K~^-1 y, Sigma* = k** - k*^T K~^-1 k*, K~ = K + eps I (Rasmussen & Williams 2006, eq. 2.25-2.26),
    by a float64 Cholesky factor; K~ must be positive definite and not singular to working precision."""
    y = np.asarray(y, float)
    chol, logdet = _solver(np.asarray(k_train), eps)
    solve = lambda b: np.linalg.solve(chol.T, np.linalg.solve(chol, b))  # noqa: E731
    ks = np.asarray(k_test_train, float)
    alpha_y = solve(y)
    cov = _symmetric("k_test", np.asarray(k_test)) - ks @ solve(ks.T)
    return GP(ks @ alpha_y, cov, float(y @ alpha_y), logdet)


class TPosterior(NamedTuple):
    """Student-t process posterior: f(x*) | y ~ t_df(mean, scale_matrix), `scale_matrix` the (N*, N*) matrix
    s^2 Sigma* (its diagonal holds squared scales; a marginal's standard scale is the square root), with the scale
    posterior sigma^2 | y ~ InvGamma(alpha_post, beta_post) and the NNGP posterior `gp` it rescales."""

    mean: np.ndarray
    scale_matrix: np.ndarray
    df: float
    alpha_post: float
    beta_post: float
    gp: GP


@declare(k_train=K_TRAIN, k_test_train=K_TEST_TRAIN, k_test=K_TEST, y=Y, alpha=ALPHA, beta=BETA, eps=EPS)
def t_posterior(
    k_train: ArrayLike,
    k_test_train: ArrayLike,
    k_test: ArrayLike,
    y: ArrayLike,
    alpha: float,
    beta: float,
    eps: float,
) -> TPosterior:
    """f(x*) | y ~ t_{2 alpha + n}(mu*, (2 beta + q) / (2 alpha + n) Sigma*), sigma^2 | y ~ InvGamma(alpha + n/2,
    beta + q/2) (Lee et al. 2022, Sec. 3, regression with an inverse-gamma scale prior)."""
    gp = gp_posterior(k_train, k_test_train, k_test, y, eps)
    n = np.shape(y)[0]
    a, b = alpha + n / 2, beta + gp.q / 2
    return TPosterior(gp.mean, (b / a) * gp.cov, 2 * a, a, b, gp)


def _level(name: str, level: float) -> None:
    if level >= 1:
        raise ValueError(f"{name}: must be a probability in (0, 1), got {level!r}")


@declare(post=Instance(TPosterior, example=lambda: _example_posterior()), level=LEVEL)
def t_band(post: TPosterior, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Central `level` interval of the marginal t_df(mu*, s^2) at each test point."""
    _level("level", level)
    half = stats.t.ppf(0.5 + level / 2, post.df) * np.sqrt(np.clip(np.diag(post.scale_matrix), 0, None))
    return post.mean - half, post.mean + half


@declare(gp=Instance(GP, example=lambda: _example_posterior().gp), level=LEVEL)
def gp_band(gp: GP, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Central `level` interval of the NNGP posterior N(mu*, Sigma*) at each test point."""
    _level("level", level)
    half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(np.clip(np.diag(gp.cov), 0, None))
    return gp.mean - half, gp.mean + half


@declare(k_train=K_TRAIN, y=Y, alpha=ALPHA, beta=BETA, eps=EPS)
def mvt_log_likelihood(k_train: ArrayLike, y: ArrayLike, alpha: float, beta: float, eps: float) -> float:
    """log MVT_{2 alpha}(y; 0, (beta / alpha) K~) = lgamma(alpha + n/2) - lgamma(alpha) - n/2 log(2 pi beta)
    - 1/2 log det K~ - (alpha + n/2) log(1 + q / (2 beta)): the Student-t process marginal likelihood."""
    n = np.shape(y)[0]
    k = np.asarray(k_train, float)
    gp = gp_posterior(k, k[:1], k[:1, :1], y, eps)
    return float(
        special.gammaln(alpha + n / 2)
        - special.gammaln(alpha)
        - n / 2 * math.log(2 * math.pi * beta)
        - gp.logdet / 2
        - (alpha + n / 2) * math.log1p(gp.q / (2 * beta))
    )


FIT_NAMES = ("weight_std", "bias_std", "alpha", "eps")


def _best_beta(k_train: np.ndarray, y: np.ndarray, alpha: float, eps: float) -> float:
    """The beta maximising `mvt_log_likelihood` at fixed alpha and K~: d/dbeta = 0 gives beta = alpha q / n."""
    return alpha * gp_posterior(k_train, k_train[:1], k_train[:1, :1], y, eps).q / len(y)


def _start(start: Any) -> dict[str, float]:
    """The initial values of `fit_hyperparameters`: FIT_NAMES' defaults updated by `start` (each finite > 0)."""
    init = {"weight_std": 1.0, "bias_std": 0.1, "alpha": 2.0, "eps": 1e-2}
    if start is None:
        return init
    if not isinstance(start, dict) or set(start) - set(FIT_NAMES):
        raise ValueError(
            f"start: must be a dict of initial values with keys among {', '.join(FIT_NAMES)}, got {start!r:.80}"
        )
    for name, value in start.items():
        ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
        if not (ok and math.isfinite(value) and value > 0):
            raise ValueError(f"start: {name} must be a finite number > 0, got {value!r:.40}")
    return {**init, **{name: float(v) for name, v in start.items()}}


@declare(
    x=Array("n d", lo=-MAX_INPUT, hi=MAX_INPUT),
    y=Array("n"),
    depth=Int(0, MAX_DEPTH),
    activation=Activation(),
    start=Given(why="a dict of initial values for FIT_NAMES, checked in the body", none_ok=True),
    maxiter=Int(1, 100_000, example=4),
)
def fit_hyperparameters(
    x: ArrayLike,
    y: ArrayLike,
    *,
    depth: int,
    activation: str = "relu",
    start: dict[str, float] | None = None,
    maxiter: int = 400,
) -> tuple[dict[str, float], float]:
    """(weight_std, bias_std, alpha, beta, eps) maximising `mvt_log_likelihood` of the NNGP of `depth` hidden
    layers, and the maximum: beta profiled out exactly (beta = alpha q / n), the rest by Nelder-Mead in log space
    (the kernel's stds are traced, so no evaluation recompiles). `start`: initial values (default 1, 0.1, 2, 1e-2).
    (K, eps, beta) -> (c K, c eps, beta / c) leaves the likelihood unchanged: only eps / K is determined."""
    init = _start(start)
    x = np.asarray(x, np.float32)
    y = np.asarray(y, float)

    def fitted(logs: np.ndarray) -> tuple[dict[str, float], float]:
        p: dict[str, float] = dict(zip(FIT_NAMES, np.exp(np.clip(logs, -20, 10)).tolist()))
        k = mlp_kernels(x, depth=depth, activation=activation, weight_std=p["weight_std"], bias_std=p["bias_std"])
        k = np.asarray(k.nngp, float)
        p["beta"] = _best_beta(k, y, p["alpha"], p["eps"])
        return p, mvt_log_likelihood(k, y, p["alpha"], p["beta"], p["eps"])

    def loss(logs: np.ndarray) -> float:
        try:
            return -fitted(logs)[1]
        except ValueError:  # K~ singular or not positive definite, a kernel overflowing: not a candidate
            return np.inf

    x0 = np.log([init[n] for n in FIT_NAMES])
    res = optimize.minimize(loss, x0, method="Nelder-Mead", options=dict(maxiter=maxiter, xatol=1e-4, fatol=1e-6))
    if not np.isfinite(res.fun):
        raise ValueError(
            "y: no hyper-parameters near the start give a positive definite K + eps I for these inputs and targets "
            "(all-zero targets, or duplicate inputs); check x and y or pass another `start`"
        )
    return fitted(res.x)


# ---------------------------------------------------------------- any scale prior: importance sampling

_SIZE = Int(1, MAX_DRAWS)


@declare(rng=RNG, a=ALPHA, b=BETA, size=_SIZE)
def _invgamma_prior(rng: np.random.Generator, a: float, b: float, size: int) -> np.ndarray:
    """sigma^2 ~ InvGamma(a, b)."""
    return sample_invgamma(rng, a, b, size)


@declare(rng=RNG, a=Real(0.0, 1e10, lo_open=True), b=Real(0.0, 1e10, lo_open=True), size=_SIZE)
def _gamma_prior(rng: np.random.Generator, a: float, b: float, size: int) -> np.ndarray:
    """sigma^2 ~ Gamma(shape a, rate b)."""
    require(16.0 * size, "size", f"{size:,} draws")
    draws = rng.gamma(a, 1.0 / b, size)
    if np.any(draws <= 0):
        raise ValueError(f"a: Gamma({a:g}, {b:g}) draws underflow to 0 for so small a shape; use a larger a")
    return draws


@declare(rng=RNG, a=Real(-100.0, 100.0), b=Real(0.0, 20.0), size=_SIZE)
def _lognormal_prior(rng: np.random.Generator, a: float, b: float, size: int) -> np.ndarray:
    """log sigma^2 ~ N(a, b^2) (|a| <= 100, b <= 20: the draws stay inside float64)."""
    require(16.0 * size, "size", f"{size:,} draws")
    return np.exp(a + b * rng.standard_normal(size))


@declare(rng=RNG, a=Real(), b=Real(0.0, 1e10, lo_open=True), size=_SIZE)
def _halfcauchy_prior(rng: np.random.Generator, a: float, b: float, size: int) -> np.ndarray:
    """sigma ~ half-Cauchy(scale b) (a is unused); draws of sigma^2 below 1e-300 or above 1e300 are clipped there."""
    require(16.0 * size, "size", f"{size:,} draws")
    return np.clip((b * np.abs(rng.standard_cauchy(size))) ** 2, 1e-300, 1e300)


SCALE_PRIORS: dict[str, Callable[[np.random.Generator, float, float, int], np.ndarray]] = {
    "invgamma": _invgamma_prior,  # sigma^2 ~ InvGamma(a, b)
    "gamma": _gamma_prior,  # sigma^2 ~ Gamma(shape a, rate b)
    "lognormal": _lognormal_prior,  # log sigma^2 ~ N(a, b^2)
    "halfcauchy": _halfcauchy_prior,  # sigma ~ half-Cauchy(b)
}


class Mixture(NamedTuple):
    """f(x*) | y as the mixture sum_s w_s N(mean, sigma2_s cov_gp): importance weights, draws, effective size."""

    mean: np.ndarray
    cov_gp: np.ndarray
    sigma2: np.ndarray
    weights: np.ndarray
    ess: float


@declare(
    k_train=K_TRAIN,
    k_test_train=K_TEST_TRAIN,
    k_test=K_TEST,
    y=Y,
    sigma2=Array("s", lo=0.0, example=lambda: sample_invgamma(np.random.default_rng(0), 2.0, 2.0, 100)),
    eps=EPS,
)
def importance_posterior(
    k_train: ArrayLike, k_test_train: ArrayLike, k_test: ArrayLike, y: ArrayLike, sigma2: ArrayLike, eps: float
) -> Mixture:
    """Posterior of a scale mixture for any prior H, from draws sigma2_s ~ H (each > 0) weighted by
    N(y; 0, sigma2_s K~) (self-normalised importance sampling; Lee et al. 2022, Sec. 3): f(x*) | y = sum_s w_s
    N(mu*, sigma2_s Sigma*)."""
    s2 = np.asarray(sigma2, float)
    if np.any(s2 <= 0):
        raise ValueError(f"sigma2: draws of a variance must be > 0, got {float(s2.min()):.3g}")
    gp = gp_posterior(k_train, k_test_train, k_test, y, eps)
    with np.errstate(over="ignore", divide="ignore"):
        logw = -0.5 * np.shape(y)[0] * np.log(s2) - 0.5 * gp.q / s2
    if not np.isfinite(logw.max()):
        raise ValueError(
            f"sigma2: every draw gives the data zero likelihood in float64 (q = {gp.q:.3g}, draws up to "
            f"{float(s2.max()):.3g}): draw larger variances"
        )
    w = np.exp(logw - logw.max())
    w /= w.sum()
    return Mixture(gp.mean, gp.cov, s2, w, float(1.0 / np.sum(w**2)))


def _marginal_sd(mix: Mixture, index: int) -> float:
    """sqrt(Sigma*_ii) of test point `index`; ValueError naming `index` outside the test points or where the
    NNGP posterior variance vanishes (a point mass, no CDF to invert)."""
    if index >= len(mix.mean):
        raise ValueError(f"index: must be a test point in [0, {len(mix.mean) - 1}], got {index}")
    var = float(mix.cov_gp[index, index])
    if not var > 0:
        raise ValueError(f"index: the posterior variance at test point {index} is {var:.3g}, not > 0 (a point mass)")
    return math.sqrt(var)


MIX = Instance(Mixture, example=lambda: _example_mixture())


@declare(mix=MIX, index=Int(0), values=Reals())
def mixture_cdf(mix: Mixture, index: int, values: ArrayLike) -> np.ndarray:
    """CDF of the importance-sampled marginal at test point `index`, at `values`."""
    sd = np.sqrt(mix.sigma2) * _marginal_sd(mix, index)
    z = (np.asarray(values, float)[..., None] - mix.mean[index]) / sd
    return np.sum(mix.weights * stats.norm.cdf(z), -1)


@declare(mix=MIX, index=Int(0), p=LEVEL)
def mixture_quantile(mix: Mixture, index: int, p: float) -> float:
    """Quantile p in (0, 1) of the importance-sampled marginal at test point `index` (bisection on the CDF)."""
    _level("p", p)
    sd = math.sqrt(float(np.max(mix.sigma2))) * _marginal_sd(mix, index)
    lo, hi = mix.mean[index] - 50 * sd, mix.mean[index] + 50 * sd
    for _ in range(80):  # bisection: the CDF is monotone, 80 halvings reach float64 resolution
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mixture_cdf(mix, index, mid) < p else (lo, mid)
    return 0.5 * (lo + hi)


# ---------------------------------------------------------------- gradient-descent ensembles


class TMarginal(NamedTuple):
    """A Student-t law t_df(loc, scale^2) of one output: `scale` is a standard scale (scipy's), not a variance (the
    squared scales of a whole posterior are `TPosterior.scale_matrix`)."""

    df: float
    loc: float
    scale: float

    def cdf(self, v: ArrayLike) -> np.ndarray:
        """CDF at v."""
        return stats.t.cdf(v, self.df, self.loc, self.scale)

    def pdf(self, v: ArrayLike) -> np.ndarray:
        """Density at v."""
        return stats.t.pdf(v, self.df, self.loc, self.scale)


@declare(
    k_train=Instance(Kernels, example=lambda: _example_kernels(slice(0, 6), slice(0, 6))),
    k_test_train=Instance(Kernels, example=lambda: _example_kernels(slice(6, 7), slice(0, 6))),
    k_test=Array("1 1", lo=0.0, example=lambda: _example_kernel()[6:7, 6:7]),
    y=Y,
    alpha=ALPHA,
    beta=BETA,
    steps=Int(0, 2**31 - 1),
    lr=Real(0.0, 1e4),
)
def ensemble_law(
    k_train: Kernels,
    k_test_train: Kernels,
    k_test: ArrayLike,
    y: ArrayLike,
    alpha: float,
    beta: float,
    steps: int,
    lr: float,
) -> TMarginal:
    """Law of f(x*) (one test point) over an ensemble whose members draw sigma^2 ~ InvGamma(alpha, beta), after
    `steps` full-batch GD steps at `lr` (Lee et al. 2022, Sec. 3, gradient descent): t_{2 alpha}(mu, (beta / alpha)
    Sigma), with (mu, Sigma) the Gaussian ensemble's at sigma = 1 (`workbench.theory.kernels.predict.gradient_descent`).
    The tangent kernel `ntk` decides what is trained: the NTK (all layers) or the readout features' kernel (last
    layer only); steps = 0 gives the prior t_{2 alpha}(0, (beta / alpha) K**). `k_test`: the (1, 1) NNGP K** of x*."""
    n = np.shape(k_train.nngp)[0]
    if np.shape(y)[0] != n:
        raise ValueError(f"y: needs one target per training point of k_train ({n}), got {np.shape(y)[0]}")
    if np.shape(k_test_train.nngp)[0] != 1:
        raise ValueError(f"k_test_train: must hold one test point (1 row), got shape {np.shape(k_test_train.nngp)}")
    k_ss = np.asarray(k_test, np.float32)
    pred = gradient_descent(k_train, k_test_train, np.asarray(y, np.float32), np.int32(steps), lr, k_test=k_ss)
    assert pred.cov is not None
    mu, var = float(pred.mean[0, 0]), float(pred.cov[0, 0])
    if not (math.isfinite(mu) and math.isfinite(var)):
        top = float(np.linalg.eigvalsh(np.asarray(k_train.ntk, float))[-1])
        raise ValueError(
            f"lr: gradient descent diverges at lr = {lr:g}: lr lambda_max / n = {lr * top / n:.3g} exceeds 2 "
            f"(lambda_max = {top:.3g} of the tangent kernel, n = {n})"
        )
    return TMarginal(2 * alpha, mu, math.sqrt(max(var, 0.0) * beta / alpha))
