"""Infinite-width predictions: NNGP posterior (Lee et al. 2018) and NTK gradient flow (Lee et al. 2019, Eq. 16).

Loss convention of `workbench.training`: L = 0.5 mean_i ||f(x_i) - y_i||^2, so gradient flow is
df/dt = -(1/N) Theta (f - y) in t = step x lr (plain SGD, learning rate lr), and on the training set
f_t = y + exp(-Theta t / N)(f_0 - y). With T(t) = Theta_*x Theta^-1 (I - exp(-Theta t / N)):

    mean_t = T y  (+ f_0(x*) - T f_0(X) for one given initial network)
    cov_t  = K_** - T K_x* - K_*x T^T + T K_xx T^T      (K: NNGP, the law of f_0 over initialisations)

Theta^-1 (I - exp(-Theta t / N)) is taken in Theta's eigenbasis as -expm1(-lambda t / N) / lambda,
which stays finite (-> t / N) for vanishing eigenvalues, so no regulariser is needed at finite t.
`diag_reg` adds diag_reg x mean(diag) to the train-train kernels (neural-tangents' convention).
Cross-entropy is not covered: its gradient flow has no closed form (an ODE would be needed).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from workbench.kernels.analytic import Kernels


class Prediction(NamedTuple):
    """Mean (…, N*, k) and covariance (…, N*, N*) (None when not requested) of the ensemble."""

    mean: jnp.ndarray
    cov: jnp.ndarray | None


def _regularise(k, diag_reg: float):
    if diag_reg < 0:
        raise ValueError(f"diag_reg: must be >= 0, got {diag_reg}")
    return k + diag_reg * jnp.mean(jnp.diagonal(k)) * jnp.eye(k.shape[0], dtype=k.dtype)


def _targets(y):
    y = jnp.asarray(y)
    return y[:, None] if y.ndim == 1 else y


def nngp_posterior(k_train, k_test_train, y_train, *, k_test=None, diag_reg: float = 0.0) -> Prediction:
    """GP posterior mean K_*x (K_xx + reg)^-1 y and covariance K_** - K_*x (K_xx + reg)^-1 K_x*."""
    k_xx = _regularise(jnp.asarray(k_train), diag_reg)
    chol = jnp.linalg.cholesky(k_xx)
    solve = lambda b: jnp.linalg.solve(chol.T, jnp.linalg.solve(chol, b))  # noqa: E731
    mean = k_test_train @ solve(_targets(y_train))
    cov = None if k_test is None else k_test - k_test_train @ solve(k_test_train.T)
    return Prediction(mean, cov)


def gradient_flow(k_train: Kernels, k_test_train: Kernels, y_train, t, *, k_test=None,
                  f0_train=None, f0_test=None, diag_reg: float = 0.0) -> Prediction:
    """Outputs at x* of the infinite-width network trained by MSE gradient flow for time t (scalar or array).

    k_train, k_test_train: Kernels(nngp, ntk) of train x train and test x train; k_test: the test x test
    NNGP (or Kernels) for the covariance; f0_train/f0_test: one network's initial outputs to follow it
    (mean over initialisations otherwise)."""
    theta = _regularise(jnp.asarray(k_train.ntk), diag_reg)
    n = theta.shape[0]
    lam, v = jnp.linalg.eigh(theta)
    t = jnp.asarray(t, theta.dtype)
    lam_t = lam * t[..., None] / n                      # (..., N)
    gain = jnp.where(lam_t > 0, -jnp.expm1(-lam_t) / jnp.where(lam > 0, lam, 1.0), t[..., None] / n)
    # T(t) = Theta_*x V diag(gain) V^T
    transfer = jnp.einsum("sn,nk,...k,mk->...sm", k_test_train.ntk, v, gain, v)
    residual = _targets(y_train) if f0_train is None else _targets(y_train) - _targets(f0_train)
    mean = transfer @ residual
    if f0_test is not None:
        mean = mean + _targets(f0_test)
    cov = None
    if k_test is not None:
        k_ss = k_test.nngp if isinstance(k_test, Kernels) else jnp.asarray(k_test)
        k_sx, k_xx = k_test_train.nngp, jnp.asarray(k_train.nngp)
        cross = transfer @ k_sx.T
        cov = k_ss - cross - jnp.swapaxes(cross, -1, -2) + transfer @ k_xx @ jnp.swapaxes(transfer, -1, -2)
    return Prediction(mean, cov)
