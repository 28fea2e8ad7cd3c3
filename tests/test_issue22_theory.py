"""Issue 22, items 6, 7, 11 (the TPosterior/TMarginal scale and Task/simulate_rf v^2 names) and 13: the theory modules
`scale_mixture`, `learning_curves`, `linear_dynamics` and `finite_width` refuse out-of-domain arguments with a
ValueError naming the argument (never a raw numpy error, a NaN or a silently wrong number), their names say what
they hold, and the finite-width kurtosis has an estimator that is useful at L / n = 0.25. Each test failed before
the change."""

import inspect
import math
import time

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate

from workbench.theory import finite_width as fw
from workbench.theory import learning_curves as LC
from workbench.theory import linear_dynamics as LD
from workbench.theory import scale_mixture as sm
from workbench.theory.kernels import Kernels


def linear_kernel(angles) -> np.ndarray:
    """x.x' + 0.2 on the circle, float64: rank 3 at most, singular when two angles repeat."""
    t = np.asarray(angles, float)
    x = np.stack([np.cos(t), np.sin(t)], 1)
    return x @ x.T + 0.2


Kern = tuple[np.ndarray, np.ndarray, np.ndarray]  # train x train, test x train, test x test


@pytest.fixture(scope="module")
def kernel() -> Kern:
    """A regular kernel: four distinct training angles and one test angle (last row)."""
    k = np.exp(-np.abs(np.subtract.outer(*[np.array([-1.2, -0.4, 0.3, 1.1, 0.7])] * 2)))
    return k[:4, :4], k[4:, :4], k[4:, 4:]


Y = np.sin(3 * np.array([-1.2, -0.4, 0.3, 1.1]))


# ---------------------------------------------------------------- item 6: scale_mixture


def test_item6_singular_gram_with_zero_eps_is_refused_with_the_reason():
    """Two equal inputs and eps = 0: K~ is singular (the old code returned q = 4.5e15 and a scale of 1e15)."""
    k = linear_kernel([0.1, 0.1, 0.5])
    y = np.array([1.0, 2.0, 3.0])
    for call in (
        lambda: sm.gp_posterior(k, k[:1], k[:1, :1], y, 0.0),
        lambda: sm.t_posterior(k, k[:1], k[:1, :1], y, 2.0, 2.0, 0.0),
        lambda: sm.mvt_log_likelihood(k, y, 2.0, 2.0, 0.0),
    ):
        with pytest.raises(ValueError, match="k_train: K \\+ eps I is singular.*use eps > 0"):
            call()
    post = sm.t_posterior(k, k[:1], k[:1, :1], y, 2.0, 2.0, 1e-3)  # noise in the kernel: a regular problem
    assert np.isfinite(post.gp.q) and post.gp.q < 1e6


def test_item6_zero_or_indefinite_gram_is_a_clear_error_not_a_linalg_error():
    y = np.ones(2)
    for k, why in ((np.zeros((2, 2)), "positive definite"), (np.array([[1.0, 2.0], [2.0, 1.0]]), "positive definite")):
        with pytest.raises(ValueError, match=f"k_train: .*{why}") as err:
            sm.t_posterior(k, k[:1], k[:1, :1], y, 2.0, 2.0, 0.0)
        assert not isinstance(err.value, np.linalg.LinAlgError)
    with pytest.raises(ValueError, match="k_train: .*symmetric"):
        sm.gp_posterior(np.array([[1.0, 0.5], [0.0, 1.0]]), np.ones((1, 2)), np.ones((1, 1)), y, 0.1)


def test_item6_targets_are_checked_by_name(kernel: Kern):
    with pytest.raises(ValueError, match="y: holds NaN"):
        sm.t_posterior(*kernel, np.array([1.0, np.nan, 0.0, 1.0]), 2.0, 2.0, 1e-6)
    with pytest.raises(ValueError, match="y: its axis 'n' has length 3"):
        sm.t_posterior(*kernel, Y[:3], 2.0, 2.0, 1e-6)
    with pytest.raises(ValueError, match="y: holds NaN"):  # was: blamed beta
        sm.fit_hyperparameters(np.ones((4, 2)), np.array([1.0, np.nan, 0.0, 1.0]), depth=1)


def test_item6_importance_weights_need_positive_draws(kernel: Kern):
    for bad in (np.array([1.0, 0.0, 2.0]), np.array([1.0, -1.0, 2.0])):
        with pytest.raises(ValueError, match="sigma2"):
            sm.importance_posterior(*kernel, Y, bad, 1e-6)
    mix = sm.importance_posterior(*kernel, Y, np.array([0.5, 1.0, 2.0]), 1e-6)
    assert np.all(np.isfinite(mix.weights)) and mix.weights.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="a: "):  # the priors' parameters are checked too (was numpy's 'shape < 0')
        sm.SCALE_PRIORS["gamma"](np.random.default_rng(0), -1.0, 2.0, 10)


def test_item6_levels_and_probabilities_must_be_in_0_1(kernel: Kern):
    post = sm.t_posterior(*kernel, Y, 2.0, 2.0, 1e-6)
    mix = sm.importance_posterior(*kernel, Y, np.array([0.5, 1.0, 2.0]), 1e-6)
    for level in (1.5, 1.0, 0.0, -0.1):
        with pytest.raises(ValueError, match="level"):
            sm.t_band(post, level)
        with pytest.raises(ValueError, match="level"):
            sm.gp_band(post.gp, level)
    for p in (1.5, 1.0, 0.0):
        with pytest.raises(ValueError, match="p: "):
            sm.mixture_quantile(mix, 0, p)
    with pytest.raises(ValueError, match="index"):
        sm.mixture_quantile(mix, 1, 0.5)  # one test point
    lo, hi = sm.t_band(post, 0.95)
    assert np.all(np.isfinite(lo)) and np.all(hi > lo)


def test_item6_huge_prior_samples_are_refused_before_allocating(kernel: Kern):
    start = time.perf_counter()
    with pytest.raises(ValueError, match="n_samples"):
        sm.sample_prior(kernel[0], 2.0, 2.0, 10**9, np.random.default_rng(0))
    assert time.perf_counter() - start < 1.0
    assert sm.sample_prior(kernel[0], 2.0, 2.0, 3, np.random.default_rng(0)).shape == (3, 4)


# ---------------------------------------------------------------- item 7: learning_curves, linear_dynamics


@pytest.fixture(scope="module")
def task() -> LC.Task:
    return LC.Task(*LC.power_law_task(1.5, 1.5, 200), 0.5)


def test_item7_task_refuses_bad_coefficients_and_sizes(task: LC.Task):
    lam = task.lam
    with pytest.raises(ValueError, match="v2"):  # a negative squared coefficient gave a test MSE of -0.58
        LC.Task(lam, -task.v2, 0.0)
    with pytest.raises(ValueError, match="v2: holds NaN"):
        LC.Task(lam, np.where(np.arange(lam.size) == 3, np.nan, task.v2), 0.0)
    with pytest.raises(ValueError, match="eigenvalues"):
        LC.Task([], [])
    with pytest.raises(ValueError, match="eigenvalues"):
        LC.Task(np.append(lam, 0.0), np.append(task.v2, 1.0))
    with pytest.raises(ValueError, match="noise"):
        LC.Task(lam, task.v2, -1.0)
    with pytest.raises(ValueError, match="modes"):
        LC.power_law_task(1.5, 1.5, 0)
    with pytest.raises(ValueError, match="a: "):
        LC.power_law_task("1", 1.5, 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a: "):
        LC.optimal_fitting_ratio("1", 2.0)  # type: ignore[arg-type]


def test_item7_risk_arguments_are_checked(task: LC.Task):
    with pytest.raises(ValueError, match="n: "):
        task.risk("50", 100, 1e-3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n: "):
        task.risk(np.nan, 100, 1e-3)
    with pytest.raises(ValueError, match="k: "):
        task.risk(50, 0.5, 1e-3)
    with pytest.raises(ValueError, match="ridge: "):
        task.risk(50, 100, np.nan)
    with pytest.raises(ValueError, match="ridge: must be >="):
        task.risk(50, 100, -10.0)
    assert np.isfinite(task.risk(50, np.array([10.0, 100.0, np.inf]), 1e-3).test).all()


def test_item7_simulation_below_the_ridge_bound_is_refused(task: LC.Task):
    """simulate_rf(ridge=-10) returned finite numbers below the theory's bound."""
    floor = float(task.min_ridge(64, 512))
    assert floor < -0.01
    with pytest.raises(ValueError, match=f"ridge: must be >= {floor:.4g}"):
        LC.simulate_rf(task, 64, 512, -10.0, trials=2)


def test_item7_simulation_noise_comes_from_a_checked_task():
    """simulate_rf(..., noise=-1) gave NaN: the noise (and the coefficients) now come from a validated Task."""
    lam, v2 = LC.power_law_task(1.5, 1.5, 64)
    with pytest.raises(ValueError):
        LC.simulate_rf(lam, np.sqrt(v2), -1.0, 16, 32, 1e-3, trials=2)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="noise"):
        LC.Task(lam, v2, -1.0)
    with pytest.raises(ValueError, match="task: must be a Task"):
        LC.simulate_rf(lam, 16, 32, 1e-3, trials=2)  # type: ignore[arg-type]


def test_item7_linear_dynamics_refuses_negative_times_and_ridges():
    for t in (-10.0, np.array([1.0, -1.0]), np.nan):
        with pytest.raises(ValueError, match="t: "):
            LD.generalization_error(t, 2.0, 4.0)
        with pytest.raises(ValueError, match="t: "):
            LD.training_error(t, 2.0, 4.0)
    for ridge in (-1.0, 0.0, np.nan):
        with pytest.raises(ValueError, match="ridge: "):
            LD.ridge_error(ridge, 2.0, 4.0)
    with pytest.raises(ValueError, match="times: "):
        LD.simulate(np.array([1.0, -1.0]), 20, 2.0, 4.0, trials=2)
    with pytest.raises(ValueError, match="snr: "):
        LD.generalization_error(1.0, 2.0, "4")  # type: ignore[arg-type]


@pytest.mark.parametrize("a, t", [(1.0001, math.inf), (0.9999, math.inf), (1.0, 1e10), (1.0001, 1e8)])
def test_item7_generalization_error_is_accurate_near_the_peak(a, t):
    """Near a = 1 the Marchenko-Pastur lower edge l_- -> 0 carries the divergence: the old quadrature was 4% low at
    a = 1.0001, t = inf and 47% low at a = 1, t = 1e10 (silently). Against the closed form (t = inf) or scipy quad
    split at the lower edge."""
    snr = 4.0
    noise = 1 / snr
    if math.isinf(t):
        exact = noise * a / (a - 1) if a > 1 else (1 - a) + noise / (1 - a)
    else:
        lo, hi = LD.mp_edges(a)

        def f(l):
            return LD.mp_density(l, a) * (math.exp(-2 * l * t) + noise / l * (-math.expm1(-l * t)) ** 2)

        cuts = [lo] + [lo + d for d in (1e-14, 1e-12, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2)] + [hi]
        parts = (scipy.integrate.quad(f, p, q, limit=2000, epsabs=0, epsrel=1e-12)[0] for p, q in zip(cuts, cuts[1:]))
        exact = sum(parts) + max(1 - a, 0) + noise
    assert float(LD.generalization_error(t, a, snr)) == pytest.approx(exact, rel=1e-7)


# ---------------------------------------------------------------- item 11: names that say what they hold


def test_item11_posterior_scale_matrix_and_marginal_scale(kernel: Kern):
    """TPosterior held the matrix s^2 Sigma* under the name `scale`, the name TMarginal uses for a standard scale."""
    post = sm.t_posterior(*kernel, Y, 2.0, 2.0, 1e-6)
    assert "scale" not in sm.TPosterior._fields and "scale_matrix" in sm.TPosterior._fields
    np.testing.assert_allclose(post.scale_matrix, post.beta_post / post.alpha_post * post.gp.cov, rtol=1e-12)
    kt, kst, kss = kernel
    kt, kst = jnp.asarray(kt), jnp.asarray(kst)
    law = sm.ensemble_law(Kernels(kt, kt), Kernels(kst, kst), kss, Y, 2.0, 2.0, 0, 1.0)
    assert law.scale == pytest.approx(math.sqrt(kss[0, 0]), rel=1e-6)  # prior: a standard scale, (beta/alpha) K**


def test_item11_simulate_rf_takes_the_task_and_its_squared_coefficients():
    """Task took v^2 and simulate_rf took v: the simulation now takes the Task itself (one source of v2)."""
    params = list(inspect.signature(LC.simulate_rf).parameters)
    assert params[0] == "task" and "v" not in params and "eigenvalues" not in params
    task = LC.Task(*LC.power_law_task(1.5, 1.5, 64), 0.5)
    test, train = LC.simulate_rf(task, 16, np.array([8, 32]), 1e-3, trials=3, seed=0)
    assert test.shape == train.shape == (3, 2) and np.all(np.isfinite(test))


# ---------------------------------------------------------------- item 13: the kurtosis estimator


def test_item13_conditional_kurtosis_is_closer_to_the_exact_value():
    """L / n = 4 / 16 = 0.25, exact excess kurtosis 3 ((1 + 5/16)^4 - 1) = 5.90; 4000 critical ReLU networks per
    seed, six seeds: the conditional estimator 3 E[Q^2] / E[Q]^2 - 3 (Q = Var(f | last hidden layer)) against the
    raw m4 / m2^2 - 3 of the same networks' outputs."""
    exact = fw.relu_exact_kurtosis(4, 16)
    assert exact == pytest.approx(5.9026, abs=1e-4)
    config = fw.network_config("relu", 4, 16, 2.0, 0.0)
    raw, conditional = [], []
    for seed in range(6):
        sample = fw.sample_networks(config, np.ones((1, 2)), 4000, seed)
        np.testing.assert_array_equal(sample.outputs, fw.random_outputs(config, np.ones((1, 2)), 4000, seed))
        raw.append(fw.excess_kurtosis(sample.outputs[:, 0])[0])
        conditional.append(fw.conditional_kurtosis(sample.variances[:, 0])[0])
    raw_error = np.mean(np.abs(np.array(raw) - exact))
    conditional_error = np.mean(np.abs(np.array(conditional) - exact))
    assert conditional_error < 0.5 * raw_error, (raw, conditional)
    big = fw.sample_networks(config, np.ones((1, 2)), 20_000, 3)
    k, se = fw.conditional_kurtosis(big.variances[:, 0])
    assert abs(k - exact) < 3 * se and se < 0.3  # unbiased, and with power
    assert np.mean(big.outputs**2) == pytest.approx(np.mean(big.variances), rel=0.05)  # E[f^2] = E[Q]


def test_item13_the_experiment_reports_the_conditional_estimator():
    from workbench.experiments import bayesian_wide as bw

    m = bw._kurtosis("relu", (4,), (16,), 500, 0)
    sample = fw.sample_networks(fw.network_config("relu", 4, 16, 2.0, 0.0), np.ones((1, 2)), 500, 0)
    k, se = fw.conditional_kurtosis(sample.variances[:, 0])
    assert m["kurt_mc"][0] == pytest.approx(k, rel=1e-12) and m["kurt_se"][0] == pytest.approx(se, rel=1e-12)
