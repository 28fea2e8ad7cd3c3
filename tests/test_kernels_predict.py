"""Infinite-width predictions (workbench.theory.kernels.predict, issue 3): NNGP posterior, NTK gradient flow."""

import jax.numpy as jnp
import numpy as np
import pytest

from workbench.theory.kernels import Kernels, gradient_flow, mlp_kernels, nngp_posterior
from workbench.theory.kernels.predict import gradient_descent

rng = np.random.default_rng(0)
X = rng.normal(size=(7, 3)).astype(np.float32)
Y = rng.normal(size=(5, 2)).astype(np.float32)
K = mlp_kernels(X, depth=2, weight_std=1.4, bias_std=0.2)
TR, TE = slice(0, 5), slice(5, 7)
K_TRAIN = Kernels(K.nngp[TR, TR], K.ntk[TR, TR])
K_TEST_TRAIN = Kernels(K.nngp[TE, TR], K.ntk[TE, TR])


def test_nngp_posterior_interpolates_and_is_certain_at_training_points():
    p = nngp_posterior(K.nngp[TR, TR], K.nngp[TR, TR], Y, k_test=K.nngp[TR, TR])
    np.testing.assert_allclose(p.mean, Y, atol=2e-3)
    assert p.cov is not None  # k_test given: the covariance too
    assert float(jnp.abs(p.cov).max()) < 1e-2 * float(K.nngp[0, 0])
    q = nngp_posterior(K.nngp[TR, TR], K.nngp[TE, TR], Y, k_test=K.nngp[TE, TE], diag_reg=1e-3)
    assert q.cov is not None
    assert q.mean.shape == (2, 2) and q.cov.shape == (2, 2)
    with pytest.raises(ValueError, match="diag_reg"):
        nngp_posterior(K.nngp[TR, TR], K.nngp[TE, TR], Y, diag_reg=-1.0)


def test_gradient_flow_matches_euler_integration_of_the_mse_dynamics():
    """df/dt = -(1/N) Theta (f - y) on the training set, with a given initial network f0."""
    f0 = rng.normal(size=(5, 2)).astype(np.float32)
    theta, t, steps = np.asarray(K_TRAIN.ntk, np.float64), 3.0, 20000
    f = f0.astype(np.float64)
    for _ in range(steps):
        f = f - t / steps / 5 * theta @ (f - Y)
    p = gradient_flow(K_TRAIN, K_TRAIN, Y, t, f0_train=f0, f0_test=f0)
    np.testing.assert_allclose(p.mean, f, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("rate", [0.01, 0.9, 1.5])  # lr lambda_max / N: smooth, fast, oscillating
def test_gradient_descent_is_the_linearised_network_stepped_by_sgd(rate):
    """f <- f - (lr/N) Theta(., X)(f(X) - y) on train and test points alike, from a given initial network."""
    theta = np.asarray(K.ntk, np.float64)
    lr = rate * 5 / np.linalg.eigvalsh(theta[TR, TR]).max()
    f0 = rng.normal(size=(7, 2))
    f, y, want = f0.copy(), Y.astype(np.float64), {}
    for k in range(41):
        want[k] = f.copy()
        f = f - lr / 5 * theta[:, TR] @ (f[TR] - y)
    steps = [0, 1, 2, 3, 8, 40]
    p = gradient_descent(
        K_TRAIN, Kernels(K.nngp[:, TR], K.ntk[:, TR]), Y, jnp.array(steps), lr, f0_train=f0[TR], f0_test=f0
    )
    for i, k in enumerate(steps):
        np.testing.assert_allclose(p.mean[i], want[k], rtol=1e-4, atol=1e-4 * np.abs(want[k]).max())
    with pytest.raises(ValueError, match="steps"):
        gradient_descent(K_TRAIN, K_TEST_TRAIN, Y, 2.5, lr)


def test_gradient_descent_tends_to_gradient_flow_at_small_steps():
    lr = 1e-3 * 5 / float(jnp.linalg.eigvalsh(K_TRAIN.ntk).max())
    step = gradient_descent(K_TRAIN, K_TEST_TRAIN, Y, 4000, lr, k_test=K.nngp[TE, TE])
    flow = gradient_flow(K_TRAIN, K_TEST_TRAIN, Y, 4000 * lr, k_test=K.nngp[TE, TE])
    np.testing.assert_allclose(step.mean, flow.mean, atol=1e-3 * float(jnp.abs(flow.mean).max()))
    assert step.cov is not None and flow.cov is not None
    np.testing.assert_allclose(step.cov, flow.cov, atol=1e-3 * float(jnp.abs(flow.cov).max()))


def test_ensemble_mean_and_covariance_limits():
    k_test = K.nngp[TE, TE]
    p = gradient_flow(K_TRAIN, K_TEST_TRAIN, Y, jnp.array([0.0, 1e7]), k_test=k_test)
    assert p.cov is not None
    assert p.mean.shape == (2, 2, 2) and p.cov.shape == (2, 2, 2)
    np.testing.assert_allclose(p.mean[0], 0.0, atol=1e-7)  # t = 0: the prior
    np.testing.assert_allclose(p.cov[0], k_test, rtol=1e-6)
    regression = K_TEST_TRAIN.ntk @ jnp.linalg.solve(K_TRAIN.ntk, Y)  # t -> inf: kernel regression
    np.testing.assert_allclose(p.mean[1], regression, rtol=1e-3, atol=1e-4)
    assert float(jnp.linalg.eigvalsh(p.cov[1]).min()) > -1e-4 * float(k_test.max())
    train = gradient_flow(K_TRAIN, K_TRAIN, Y, 1e7, k_test=K_TRAIN.nngp)  # training points end on the labels
    np.testing.assert_allclose(train.mean, Y, atol=1e-3)
    assert train.cov is not None
    assert float(jnp.abs(train.cov).max()) < 1e-3 * float(K.nngp[0, 0])


def test_gradient_flow_at_infinite_time_is_kernel_regression():
    """Issue 22, defect 9 (a regression): gradient_flow(t=inf) was refused as not finite; it is the converged network,
    the NTK regression predictor K*(K)^-1 y, computed here independently with numpy."""
    from workbench.theory.kernels import gradient_flow, mlp_kernels

    rng = np.random.default_rng(0)
    x, xs = rng.normal(size=(6, 3)), rng.normal(size=(2, 3))
    y = np.sin(x[:, :1])
    k, kt = mlp_kernels(x, depth=2), mlp_kernels(xs, x, depth=2)
    expected = np.asarray(kt.ntk, float) @ np.linalg.solve(np.asarray(k.ntk, float), y)
    np.testing.assert_allclose(np.asarray(gradient_flow(k, kt, y, np.inf).mean), expected, rtol=1e-4, atol=1e-5)
    assert np.asarray(gradient_flow(k, kt, y, [0.0, np.inf]).mean).shape == (2, 2, 1)
    for bad in (-np.inf, float("nan"), [1.0, float("nan")]):
        with pytest.raises(ValueError, match="^t: "):
            gradient_flow(k, kt, y, bad)
