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

Linear algebra runs in float64 numpy: with eps = 1e-6 the Gram matrix is too ill-conditioned for float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, special, stats

from workbench.theory.kernels import Kernels, mlp_kernels
from workbench.theory.kernels.predict import gradient_descent


def check_invgamma(alpha: float, beta: float) -> None:
    """ValueError unless alpha, beta > 0 (finite): the parameters of InvGamma(alpha, beta)."""
    for name, v in (("alpha", alpha), ("beta", beta)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name}: must be a finite number > 0, got {v!r}")


def prior_variance(k_diag: ArrayLike, alpha: float, beta: float) -> np.ndarray:
    """Var f(x) = E[sigma^2] K(x, x) = beta / (alpha - 1) K(x, x) (infinite for alpha <= 1; paper Sec. 3)."""
    check_invgamma(alpha, beta)
    k = np.asarray(k_diag, float)
    return np.full_like(k, np.inf) if alpha <= 1 else beta / (alpha - 1) * k


def sample_invgamma(rng: np.random.Generator, alpha: float, beta: float, size: int | tuple[int, ...]) -> np.ndarray:
    """Draws of sigma^2 ~ InvGamma(alpha, beta) (density beta^alpha / Gamma(alpha) s^-alpha-1 e^-beta/s)."""
    check_invgamma(alpha, beta)
    return beta / rng.gamma(alpha, 1.0, size)


def sample_prior(k: ArrayLike, alpha: float, beta: float, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_samples, N) draws of f(X) = sigma L z with sigma^2 ~ InvGamma(alpha, beta), K = L L^T: the Student-t
    process prior MVT_{2 alpha}(0, (beta / alpha) K) written as its scale mixture (paper Sec. 3)."""
    lam, vec = np.linalg.eigh(np.asarray(k, float))
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


def gp_posterior(k_train: ArrayLike, k_test_train: ArrayLike, k_test: ArrayLike, y: ArrayLike, eps: float) -> GP:
    """mu* = k*^T K~^-1 y, Sigma* = k** - k*^T K~^-1 k*, K~ = K + eps I (Rasmussen & Williams 2006, eq. 2.25-2.26),
    by a float64 Cholesky factor."""
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps: must be a finite number >= 0, got {eps!r}")
    y = np.asarray(y, float)
    kt = np.asarray(k_train, float) + eps * np.eye(len(y))
    chol = np.linalg.cholesky(kt)
    solve = lambda b: np.linalg.solve(chol.T, np.linalg.solve(chol, b))  # noqa: E731
    ks = np.asarray(k_test_train, float)
    alpha_y = solve(y)
    cov = np.asarray(k_test, float) - ks @ solve(ks.T)
    return GP(ks @ alpha_y, cov, float(y @ alpha_y), float(2 * np.sum(np.log(np.diag(chol)))))


class TPosterior(NamedTuple):
    """Student-t process posterior: f(x*) | y ~ t_df(mean, scale) (scale: the (N*, N*) matrix s^2), with the
    scale posterior sigma^2 | y ~ InvGamma(alpha_post, beta_post) and the NNGP posterior `gp` it rescales."""

    mean: np.ndarray
    scale: np.ndarray
    df: float
    alpha_post: float
    beta_post: float
    gp: GP


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
    check_invgamma(alpha, beta)
    gp = gp_posterior(k_train, k_test_train, k_test, y, eps)
    n = np.shape(y)[0]
    a, b = alpha + n / 2, beta + gp.q / 2
    return TPosterior(gp.mean, (b / a) * gp.cov, 2 * a, a, b, gp)


def t_band(post: TPosterior, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Central `level` interval of the marginal t_df(mu*, s^2) at each test point."""
    half = stats.t.ppf(0.5 + level / 2, post.df) * np.sqrt(np.clip(np.diag(post.scale), 0, None))
    return post.mean - half, post.mean + half


def gp_band(gp: GP, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Central `level` interval of the NNGP posterior N(mu*, Sigma*) at each test point."""
    half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(np.clip(np.diag(gp.cov), 0, None))
    return gp.mean - half, gp.mean + half


def mvt_log_likelihood(k_train: ArrayLike, y: ArrayLike, alpha: float, beta: float, eps: float) -> float:
    """log MVT_{2 alpha}(y; 0, (beta / alpha) K~) = lgamma(alpha + n/2) - lgamma(alpha) - n/2 log(2 pi beta)
    - 1/2 log det K~ - (alpha + n/2) log(1 + q / (2 beta)): the Student-t process marginal likelihood."""
    check_invgamma(alpha, beta)
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


def best_beta(k_train: ArrayLike, y: ArrayLike, alpha: float, eps: float) -> float:
    """The beta maximising `mvt_log_likelihood` at fixed alpha and K~: d/dbeta = 0 gives beta = alpha q / n."""
    k = np.asarray(k_train, float)
    return alpha * gp_posterior(k, k[:1], k[:1, :1], y, eps).q / np.shape(y)[0]


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
    layers, and the maximum: beta profiled out exactly (`best_beta`), the rest by Nelder-Mead in log space (the
    kernel's stds are traced, so no evaluation recompiles). `start`: initial values (default 1, 0.1, 2, 1e-2).
    (K, eps, beta) -> (c K, c eps, beta / c) leaves the likelihood unchanged: only eps / K is determined."""
    init = {"weight_std": 1.0, "bias_std": 0.1, "alpha": 2.0, "eps": 1e-2, **(start or {})}
    x = np.asarray(x, np.float32)
    y = np.asarray(y, float)

    def fitted(logs: np.ndarray) -> tuple[dict[str, float], float]:
        p: dict[str, float] = dict(zip(FIT_NAMES, np.exp(np.clip(logs, -20, 10)).tolist()))
        k = mlp_kernels(x, depth=depth, activation=activation, weight_std=p["weight_std"], bias_std=p["bias_std"])
        k = np.asarray(k.nngp, float)
        p["beta"] = best_beta(k, y, p["alpha"], p["eps"])
        return p, mvt_log_likelihood(k, y, p["alpha"], p["beta"], p["eps"])

    def loss(logs: np.ndarray) -> float:
        try:
            return -fitted(logs)[1]
        except np.linalg.LinAlgError:
            return np.inf

    x0 = np.log([init[n] for n in FIT_NAMES])
    res = optimize.minimize(loss, x0, method="Nelder-Mead", options=dict(maxiter=maxiter, xatol=1e-4, fatol=1e-6))
    return fitted(res.x)


# ---------------------------------------------------------------- any scale prior: importance sampling

SCALE_PRIORS: dict[str, Callable[[np.random.Generator, float, float, int], np.ndarray]] = {
    "invgamma": lambda rng, a, b, n: sample_invgamma(rng, a, b, n),  # sigma^2 ~ InvGamma(a, b)
    "gamma": lambda rng, a, b, n: rng.gamma(a, 1.0 / b, n),  # sigma^2 ~ Gamma(shape a, rate b)
    "lognormal": lambda rng, a, b, n: np.exp(a + b * rng.standard_normal(n)),  # log sigma^2 ~ N(a, b^2)
    "halfcauchy": lambda rng, a, b, n: (b * np.abs(rng.standard_cauchy(n))) ** 2,  # sigma ~ half-Cauchy(b)
}


class Mixture(NamedTuple):
    """f(x*) | y as the mixture sum_s w_s N(mean, sigma2_s cov_gp): importance weights, draws, effective size."""

    mean: np.ndarray
    cov_gp: np.ndarray
    sigma2: np.ndarray
    weights: np.ndarray
    ess: float


def importance_posterior(
    k_train: ArrayLike, k_test_train: ArrayLike, k_test: ArrayLike, y: ArrayLike, sigma2: ArrayLike, eps: float
) -> Mixture:
    """Posterior of a scale mixture for any prior H, from draws sigma2_s ~ H weighted by N(y; 0, sigma2_s K~)
    (self-normalised importance sampling; Lee et al. 2022, Sec. 3): f(x*) | y = sum_s w_s N(mu*, sigma2_s Sigma*)."""
    gp = gp_posterior(k_train, k_test_train, k_test, y, eps)
    s2 = np.asarray(sigma2, float)
    logw = -0.5 * np.shape(y)[0] * np.log(s2) - 0.5 * gp.q / s2
    w = np.exp(logw - logw.max())
    w /= w.sum()
    return Mixture(gp.mean, gp.cov, s2, w, float(1.0 / np.sum(w**2)))


def mixture_cdf(mix: Mixture, index: int, values: ArrayLike) -> np.ndarray:
    """CDF of the importance-sampled marginal at test point `index`, at `values`."""
    sd = np.sqrt(mix.sigma2 * mix.cov_gp[index, index])
    z = (np.asarray(values, float)[..., None] - mix.mean[index]) / sd
    return np.sum(mix.weights * stats.norm.cdf(z), -1)


def mixture_quantile(mix: Mixture, index: int, p: float) -> float:
    """Quantile p of the importance-sampled marginal at test point `index` (bisection on the CDF)."""
    sd = math.sqrt(float(np.max(mix.sigma2)) * mix.cov_gp[index, index])
    lo, hi = mix.mean[index] - 50 * sd, mix.mean[index] + 50 * sd
    for _ in range(80):  # bisection: the CDF is monotone, 80 halvings reach float64 resolution
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mixture_cdf(mix, index, mid) < p else (lo, mid)
    return 0.5 * (lo + hi)


# ---------------------------------------------------------------- gradient-descent ensembles


class TMarginal(NamedTuple):
    """A Student-t law t_df(loc, scale^2) of one output."""

    df: float
    loc: float
    scale: float

    def cdf(self, v: ArrayLike) -> np.ndarray:
        """CDF at v."""
        return stats.t.cdf(v, self.df, self.loc, self.scale)

    def pdf(self, v: ArrayLike) -> np.ndarray:
        """Density at v."""
        return stats.t.pdf(v, self.df, self.loc, self.scale)


def ensemble_law(
    k_train: Kernels,
    k_test_train: Kernels,
    k_test: Kernels | ArrayLike,
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
    layer only); steps = 0 gives the prior t_{2 alpha}(0, (beta / alpha) K**)."""
    check_invgamma(alpha, beta)
    k_ss = np.asarray(k_test.nngp if isinstance(k_test, Kernels) else k_test, np.float32)
    pred = gradient_descent(k_train, k_test_train, np.asarray(y, np.float32), np.int32(steps), lr, k_test=k_ss)
    assert pred.cov is not None
    mu, var = float(pred.mean[0, 0]), float(pred.cov[0, 0])
    return TMarginal(2 * alpha, mu, math.sqrt(max(var, 0.0) * beta / alpha))
