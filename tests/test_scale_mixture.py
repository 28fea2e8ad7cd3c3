"""Student-t processes from wide networks (Lee, Yun, Yang & Lee 2022) against the issue's reproduction numbers, scipy
and numpy Monte Carlo, finite random networks and a gradient-descent-trained ensemble of real Flax networks.

Kernel convention that reproduces the issue's numbers: inputs on the circle of radius sqrt(d) = sqrt(2) (x.x / d = 1),
`mlp_kernels(depth=1, weight_std=1, bias_std=0)` (readout weight_std 1, as the paper's K). The full-size ensemble
(500 members, width 512) is in benchmarks/bench_bayesian_wide.py; here 200 members of width 256."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from workbench.experiments import bayesian_wide as bw
from workbench.theory import scale_mixture as sm
from workbench.theory.kernels import mlp_kernels

Kern = tuple[np.ndarray, np.ndarray, np.ndarray]  # train x train, test x train, test x test
ANGLES = np.array([-1.2, -0.4, 0.3, 1.1])
Y = np.sin(3 * ANGLES)


def mvt_logpdf(y, loc, shape, df) -> float:
    """scipy's multivariate t log density (its stubs type shape and df too narrowly)."""
    return float(stats.multivariate_t(loc, shape, df=df).logpdf(y))  # pyright: ignore[reportArgumentType]


def circle(t):
    return (math.sqrt(2) * np.stack([np.cos(t), np.sin(t)], 1)).astype(np.float32)


@pytest.fixture(scope="module")
def kernel() -> Kern:
    """NNGP of one ReLU hidden layer on the four training angles and the test angle 0.7 (last row)."""
    k = np.asarray(mlp_kernels(circle(np.append(ANGLES, 0.7)), depth=1).nngp, float)
    return k[:4, :4], k[4:, :4], k[4:, 4:]


def test_reproduction_numbers(kernel: Kern):
    post = sm.t_posterior(*kernel, Y, 2.0, 2.0, 1e-6)
    assert post.mean[0] == pytest.approx(0.71099, abs=2e-5)
    assert post.gp.cov[0, 0] == pytest.approx(0.004833, rel=2e-4)
    assert post.gp.q == pytest.approx(107.33, rel=1e-4)
    assert post.df == 8.0
    assert post.scale_matrix[0, 0] == pytest.approx(0.067261, rel=1e-4)
    assert (post.alpha_post, post.beta_post) == pytest.approx((4.0, 2.0 + post.gp.q / 2))


def test_prior_variance_of_random_networks_within_3_se():
    """One hidden ReLU layer of width 512 with readout scale sigma^2 ~ InvGamma(3, 2) (alpha > 2: finite fourth
    moment, so the standard error exists): Var f(x) = beta / (alpha - 1) K(x, x), numpy networks vs mlp_kernels."""
    alpha, beta, n, S = 3.0, 2.0, 512, 20_000
    rng = np.random.default_rng(0)
    x = circle(np.array([0.7]))[0]
    h = rng.standard_normal((S, n, 2)) @ x / math.sqrt(2)
    sigma = np.sqrt(beta / rng.gamma(alpha, 1.0, S))
    f = sigma * np.sum(rng.standard_normal((S, n)) * np.maximum(h, 0), 1) / math.sqrt(n)
    k = float(mlp_kernels(x[None], depth=1).nngp[0, 0])
    target = sm.prior_variance(np.array([k]), alpha, beta)[0]
    assert target == pytest.approx(0.5, rel=1e-6)
    assert abs(np.mean(f**2) - target) < 3 * np.std(f**2) / math.sqrt(S)
    assert np.isinf(sm.prior_variance(np.array([k]), 1.0, 2.0)[0])


def test_closed_form_predictive_equals_monte_carlo_mixture(kernel: Kern):
    """sigma^2 | y ~ InvGamma(alpha + n/2, beta + q/2) drawn by scipy, f = mu* + sigma sqrt(Sigma*) z: its quantiles
    match t_{2 alpha + n}(mu*, s^2) to 5e-3."""
    post = sm.t_posterior(*kernel, Y, 2.0, 2.0, 1e-6)
    rng = np.random.default_rng(1)
    s2 = np.asarray(stats.invgamma.rvs(post.alpha_post, scale=post.beta_post, size=1_000_000, random_state=rng))
    f = post.mean[0] + np.sqrt(s2 * post.gp.cov[0, 0]) * rng.standard_normal(s2.size)
    p = np.array([0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975])
    closed = stats.t.ppf(p, post.df, post.mean[0], math.sqrt(post.scale_matrix[0, 0]))
    assert np.max(np.abs(np.quantile(f, p) - closed)) < 5e-3
    lo, hi = sm.t_band(post, 0.95)
    assert (lo[0], hi[0]) == pytest.approx((closed[0], closed[-1]), abs=1e-9)


def test_importance_sampling_recovers_the_closed_form(kernel: Kern):
    """Prior draws sigma^2 ~ InvGamma(2, 2) weighted by N(y; 0, sigma^2 K~) give the same predictive quantiles."""
    post = sm.t_posterior(*kernel, Y, 2.0, 2.0, 1e-6)
    draws = sm.SCALE_PRIORS["invgamma"](np.random.default_rng(2), 2.0, 2.0, 400_000)
    mix = sm.importance_posterior(*kernel, Y, draws, 1e-6)
    assert mix.ess > 1000
    for p in (0.05, 0.5, 0.95):
        closed = stats.t.ppf(p, post.df, post.mean[0], math.sqrt(post.scale_matrix[0, 0]))
        assert sm.mixture_quantile(mix, 0, p) == pytest.approx(closed, abs=5e-3)


def test_large_alpha_beta_recovers_the_nngp_posterior(kernel: Kern):
    """alpha = beta -> infinity: t-process posterior = NNGP posterior (numpy solve, float64) to 1e-6."""
    kxx, ksx, kss = kernel
    kt = kxx + 1e-6 * np.eye(4)
    mean = ksx @ np.linalg.solve(kt, Y)
    cov = kss - ksx @ np.linalg.solve(kt, ksx.T)
    post = sm.t_posterior(kxx, ksx, kss, Y, 1e9, 1e9, 1e-6)
    assert post.mean == pytest.approx(mean, abs=1e-6)
    assert post.scale_matrix == pytest.approx(cov, abs=1e-6)
    half = stats.norm.ppf(0.975) * np.sqrt(cov[0, 0])
    assert sm.t_band(post)[1] == pytest.approx(mean + half, abs=1e-6)


def test_marginal_likelihood_against_scipy_and_the_fit(kernel: Kern):
    kxx = kernel[0]
    logp = mvt_logpdf(Y, np.zeros(4), (3.0 / 1.5) * (kxx + 0.01 * np.eye(4)), df=3.0)
    assert sm.mvt_log_likelihood(kxx, Y, 1.5, 3.0, 0.01) == pytest.approx(logp, rel=1e-10)
    rng = np.random.default_rng(3)
    x = np.sort(rng.uniform(-1, 1, 24))
    y = np.sin(3 * x) + 0.1 * rng.standard_normal(24)
    best, loglik = sm.fit_hyperparameters(bw.embed(x), y, depth=1, maxiter=300)
    k = np.asarray(mlp_kernels(bw.embed(x), depth=1, weight_std=best["weight_std"], bias_std=best["bias_std"]).nngp)
    cov = best["beta"] / best["alpha"] * (k + best["eps"] * np.eye(24))
    assert loglik == pytest.approx(mvt_logpdf(y, np.zeros(24), cov, df=2 * best["alpha"]), abs=1e-3)
    grid = []  # brute force with scipy: the fit must beat every grid point
    for bias_std, eps, alpha, beta in itertools.product((0.03, 0.3), (1e-4, 1e-2), (0.5, 8.0), (0.1, 10.0)):
        k = np.asarray(mlp_kernels(bw.embed(x), depth=1, bias_std=bias_std).nngp, float)
        grid.append(mvt_logpdf(y, np.zeros(24), beta / alpha * (k + eps * np.eye(24)), df=2 * alpha))
    assert loglik > max(grid)


def test_bad_scale_prior_is_refused():
    with pytest.raises(ValueError, match="alpha"):
        sm.t_posterior(np.eye(2), np.ones((1, 2)), np.ones((1, 1)), np.ones(2), -1.0, 2.0, 1e-6)
    with pytest.raises(ValueError, match="alpha"):
        bw.Config(alpha=0.0)


def test_gradient_descent_ensemble_matches_the_t_law():
    """200 NTK-parametrized ReLU Flax networks of width 256, sigma^2 ~ InvGamma(2, 2) each, all layers trained by
    full-batch GD to convergence in one vmapped call: KS against t_4(mu_NTK, Sigma_NTK) (beta / alpha = 1)."""
    mc = bw.ensemble_config(bw.Config().replace(width=256, depth=1))
    x, xs = circle(ANGLES), circle(np.array([0.7]))
    sigma2 = sm.sample_invgamma(np.random.default_rng(4), 2.0, 2.0, 200)
    outs = bw.train_members(mc, x, Y, xs, sigma2, steps=400, lr=1.0, seed=5)
    laws = bw.member_laws(mc, x, Y, xs, 2.0, 2.0, steps=400, lr=1.0)
    flow = bw.member_laws(mc, x, Y, xs, 2.0, 2.0, steps=10**6, lr=1.0)["all"]
    assert laws["all"].loc == pytest.approx(flow.loc, abs=1e-4)  # 400 steps reach the gradient-flow limit
    assert stats.kstest(outs["all"], laws["all"].cdf).pvalue > 0.01
    assert stats.kstest(outs["none"], laws["none"].cdf).pvalue > 0.01
    far = np.abs(outs["all"] - laws["all"].loc) > 3 * laws["all"].scale  # heavy tails: t_4 puts 4% there, N 0.3%
    assert np.sum(far) >= 3
