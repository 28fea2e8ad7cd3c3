"""Infinite-width predictions: NNGP posterior (Lee et al. 2018) and NTK gradient flow (Lee et al. 2019, Eq. 16).

Loss convention of `workbench.nets.engine`: L = 0.5 mean_i ||f(x_i) - y_i||^2, so gradient flow is
df/dt = -(1/N) Theta (f - y) in t = step x lr (plain SGD, learning rate lr), and on the training set
f_t = y + exp(-Theta t / N)(f_0 - y). With T(t) = Theta_*x Theta^-1 (I - exp(-Theta t / N)):

    mean_t = T y  (+ f_0(x*) - T f_0(X) for one given initial network)
    cov_t  = K_** - T K_x* - K_*x T^T + T K_xx T^T      (K: NNGP, the law of f_0 over initialisations)

Theta^-1 (I - exp(-Theta t / N)) is taken in Theta's eigenbasis as -expm1(-lambda t / N) / lambda,
which stays finite (-> t / N) for vanishing eigenvalues, so no regulariser is needed at finite t.

`gradient_descent` is the same prediction after k full-batch steps of plain SGD at learning rate lr, the
dynamics the finite networks of `workbench.nets.engine` actually follow: the linearised network (Lee et al.
2019, Sec. 2.2) obeys f_{k+1} = f_k - (lr/N) Theta (f_k - y), so T_k = Theta_*x Theta^-1 (I - (I - lr Theta/N)^k)
with gain (1 - (1 - lr lambda/N)^k) / lambda (-> k lr / N for vanishing eigenvalues). It equals gradient flow
at t = k lr up to O(k (lr lambda/N)^2) per mode, which is not small when lr lambda_max / N is near 1, and,
unlike the flow, it oscillates for lr lambda/N in (1, 2) and diverges beyond 2, as the network does.

`diag_reg` adds diag_reg x mean(diag) to the train-train kernels (neural-tangents' convention).
Cross-entropy is not covered: its gradient flow has no closed form (an ODE would be needed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from workbench.core import checks
from workbench.core.declare import Array as ArrayArg
from workbench.core.declare import Given, Instance, Real, Times, declare
from workbench.theory.kernels.analytic import Kernels, mlp_kernels

__all__ = ["Prediction", "gradient_descent", "gradient_flow", "nngp_posterior"]


MAX_ENTRY = 1e30  # |kernel entries|: their products stay finite in float32 solves


class Prediction(NamedTuple):
    """Mean (…, N*, k) and covariance (…, N*, N*) (None when not requested) of the ensemble."""

    mean: jnp.ndarray
    cov: jnp.ndarray | None


def _regularise(k: jax.Array, diag_reg: float) -> jax.Array:
    return k + diag_reg * jnp.mean(jnp.diagonal(k)) * jnp.eye(k.shape[0], dtype=k.dtype)


def _bounded(name: str, k: ArrayLike) -> jax.Array:
    """A declared (finite) kernel matrix whose entries are at most MAX_ENTRY in magnitude."""
    return _matrix(name, k, None, None)


def _targets(y: ArrayLike) -> jax.Array:
    y = jnp.asarray(y)
    return y[:, None] if y.ndim == 1 else y


def _matrix(name: str, k: ArrayLike, rows: int | None, cols: int | None) -> jax.Array:
    """A finite 2-D kernel matrix of the given shape (None: any)."""
    k = checks.array(name, k, max_abs=MAX_ENTRY)
    if (rows is not None and k.shape[0] != rows) or (cols is not None and k.shape[1] != cols):
        raise ValueError(f"{name}: must have shape ({rows or 'any'}, {cols or 'any'}), got {tuple(k.shape)}")
    return jnp.asarray(k)


def _outputs(name: str, y: ArrayLike, rows: int, cols: int | None = None) -> np.ndarray | jax.Array:
    """Targets or initial outputs: (rows,) or (rows, k), finite."""
    y = checks.array(name, y, ndim=(1, 2), max_abs=1e18)
    if y.shape[0] != rows or (cols is not None and (y.shape[1] if y.ndim == 2 else 1) != cols):
        raise ValueError(
            f"{name}: must have {rows} rows" + (f" and {cols} columns" if cols else "") + f", got {y.shape}"
        )
    return y


def _kernels(name: str, k: Kernels, rows: int | None, cols: int | None) -> Kernels:
    """The two matrices of Kernels `k` (an instance, by the declaration), checked as `_matrix`."""
    return Kernels(_matrix(f"{name}.nngp", k.nngp, rows, cols), _matrix(f"{name}.ntk", k.ntk, rows, cols))


# ---------------------------------------------------------------- examples for the attack suite's base calls

_X = np.random.default_rng(0).normal(size=(10, 3))  # 6 training and 4 test points


def _train_kernels() -> Kernels:
    return mlp_kernels(_X[:6], depth=1)


def _test_train_kernels() -> Kernels:
    return mlp_kernels(_X[6:], _X[:6], depth=1)


def _targets_example() -> np.ndarray:
    return np.linspace(-1.0, 1.0, 6)


@declare(
    k_train=ArrayArg("n n", example=lambda: np.asarray(_train_kernels().nngp)),
    k_test_train=ArrayArg("m n", example=lambda: np.asarray(_test_train_kernels().nngp)),
    y_train=Given(why="targets (n,) or (n, k), checked in the body", example=_targets_example),
    k_test=ArrayArg("m m", none_ok=True, example=lambda: np.asarray(mlp_kernels(_X[6:], depth=1).nngp)),
    diag_reg=Real(0.0, 1e6),
)
def nngp_posterior(
    k_train: ArrayLike,
    k_test_train: ArrayLike,
    y_train: ArrayLike,
    *,
    k_test: ArrayLike | None = None,
    diag_reg: float = 0.0,
) -> Prediction:
    """GP posterior mean K_*x (K_xx + reg)^-1 y and covariance K_** - K_*x (K_xx + reg)^-1 K_x*."""
    k_train, k_test_train = _bounded("k_train", k_train), _bounded("k_test_train", k_test_train)
    y_train = _outputs("y_train", y_train, k_train.shape[0])
    k_test = None if k_test is None else _bounded("k_test", k_test)
    k_xx = _regularise(k_train, diag_reg)
    chol = jnp.linalg.cholesky(k_xx)
    if not checks.is_traced(chol) and not bool(jnp.all(jnp.isfinite(chol))):
        raise ValueError("k_train: not positive definite (its Cholesky factorisation failed); add diag_reg > 0")
    solve = lambda b: jnp.linalg.solve(chol.T, jnp.linalg.solve(chol, b))  # noqa: E731
    mean = k_test_train @ solve(_targets(y_train))
    cov = None if k_test is None else k_test - k_test_train @ solve(k_test_train.T)
    return Prediction(mean, cov)


@declare(
    k_train=Instance(Kernels, example=_train_kernels),
    k_test_train=Instance(Kernels, example=_test_train_kernels),
    y_train=Given(why="targets (n,) or (n, k), checked in the body", example=_targets_example),
    t=Times(),
    k_test=Given(why="the test x test NNGP (or Kernels), checked in the body", none_ok=True),
    f0_train=Given(why="initial outputs (n,) or (n, k), checked in the body", none_ok=True),
    f0_test=Given(why="initial outputs (m,) or (m, k), checked in the body", none_ok=True),
    diag_reg=Real(0.0, 1e6),
)
def gradient_flow(
    k_train: Kernels,
    k_test_train: Kernels,
    y_train: ArrayLike,
    t: ArrayLike,
    *,
    k_test: Kernels | ArrayLike | None = None,
    f0_train: ArrayLike | None = None,
    f0_test: ArrayLike | None = None,
    diag_reg: float = 0.0,
) -> Prediction:
    """Outputs at x* of the infinite-width network trained by MSE gradient flow for time t (scalar or array; t = inf
    gives the converged network, the kernel-regression limit).

    k_train, k_test_train: Kernels(nngp, ntk) of train x train and test x train; k_test: the test x test
    NNGP (or Kernels) for the covariance; f0_train/f0_test: one network's initial outputs to follow it
    (mean over initialisations otherwise)."""

    def gain(lam: jax.Array, n: int, dtype: jnp.dtype) -> jax.Array:
        t_ = jnp.asarray(t, dtype)[..., None]
        lam_t = lam * t_ / n  # (..., N)
        return jnp.where(lam_t > 0, -jnp.expm1(-lam_t) / jnp.where(lam > 0, lam, 1.0), t_ / n)

    return _kernel_regime(gain, k_train, k_test_train, y_train, k_test, f0_train, f0_test, diag_reg)


@declare(
    finite=False,  # above lr = 2 n / lambda_max the discrete dynamics diverge: an infinite prediction is the answer
    k_train=Instance(Kernels, example=_train_kernels),
    k_test_train=Instance(Kernels, example=_test_train_kernels),
    y_train=Given(why="targets (n,) or (n, k), checked in the body", example=_targets_example),
    steps=Given(why="a whole number or an integer array of steps (the body checks both)", example=3),
    lr=Real(0.0, 1e4),
    k_test=Given(why="the test x test NNGP (or Kernels), checked in the body", none_ok=True),
    f0_train=Given(why="initial outputs (n,) or (n, k), checked in the body", none_ok=True),
    f0_test=Given(why="initial outputs (m,) or (m, k), checked in the body", none_ok=True),
    diag_reg=Real(0.0, 1e6),
)
def gradient_descent(
    k_train: Kernels,
    k_test_train: Kernels,
    y_train: ArrayLike,
    steps: ArrayLike,
    lr: float,
    *,
    k_test: Kernels | ArrayLike | None = None,
    f0_train: ArrayLike | None = None,
    f0_test: ArrayLike | None = None,
    diag_reg: float = 0.0,
) -> Prediction:
    """Outputs at x* of the infinite-width network after `steps` (int or int array) full-batch steps of plain
    SGD at learning rate `lr` on 0.5 mean ||f - y||^2 (module docstring); arguments as `gradient_flow`."""
    steps = jnp.asarray(checks.array("steps", steps, ndim=(0, 1, 2), integer_valued=True))
    if not checks.is_traced(steps) and bool(jnp.any(steps < 0)):
        raise ValueError("steps: must be integers >= 0")

    def gain(lam: jax.Array, n: int, dtype: jnp.dtype) -> jax.Array:
        k = steps.astype(dtype)[..., None]  # (..., 1)
        lam = jnp.where(lam > 0, lam, 0.0)  # round-off negatives: a flat direction
        a = lr * lam / n  # per-step contraction 1 - a of each mode
        safe = jnp.where(lam > 0, lam, 1.0)
        below = -jnp.expm1(k * jnp.log1p(-jnp.minimum(a, 0.5))) / safe  # a < 1/2: accurate for small a
        flip = (a > 1) & jnp.asarray(steps % 2 == 1)[..., None]  # (1 - a)^k < 0: odd k, a > 1
        above = (1.0 - jnp.where(flip, -1.0, 1.0) * jnp.abs(1.0 - a) ** k) / safe
        return jnp.where(lam > 0, jnp.where(a < 0.5, below, above), k * lr / n)

    return _kernel_regime(gain, k_train, k_test_train, y_train, k_test, f0_train, f0_test, diag_reg)


def _kernel_regime(
    gain_of: Callable[[jax.Array, int, jnp.dtype], jax.Array],
    k_train: Kernels,
    k_test_train: Kernels,
    y_train: ArrayLike,
    k_test: Kernels | ArrayLike | None,
    f0_train: ArrayLike | None,
    f0_test: ArrayLike | None,
    diag_reg: float,
) -> Prediction:
    """Mean and covariance of the module docstring for T = Theta_*x V diag(gain_of(lambda, N, dtype)) V^T."""
    k_train = _kernels("k_train", k_train, None, None)
    n = k_train.ntk.shape[0]
    k_train = _kernels("k_train", k_train, n, n)
    k_test_train = _kernels("k_test_train", k_test_train, None, n)
    m = k_test_train.ntk.shape[0]
    y_train = _outputs("y_train", y_train, n)
    width = y_train.shape[1] if y_train.ndim == 2 else 1
    if f0_train is not None:
        f0_train = _outputs("f0_train", f0_train, n, width)
    if f0_test is not None:
        f0_test = _outputs("f0_test", f0_test, m, width)
    if k_test is not None:
        k_test = _matrix("k_test", k_test.nngp if isinstance(k_test, Kernels) else k_test, m, m)
    theta = _regularise(jnp.asarray(k_train.ntk), diag_reg)
    lam, v = jnp.linalg.eigh(theta)
    if not checks.is_traced(lam) and float(lam[0]) < -1e-4 * max(float(lam[-1]), 1e-30):
        raise ValueError(f"k_train: the NTK is not positive semi-definite (eigenvalue {float(lam[0]):.3g})")
    gain = gain_of(lam, n, theta.dtype)  # (..., N)
    # T = Theta_*x V diag(gain) V^T
    transfer = jnp.einsum("sn,nk,...k,mk->...sm", k_test_train.ntk, v, gain, v)
    residual = _targets(y_train) if f0_train is None else _targets(y_train) - _targets(f0_train)
    mean = transfer @ residual
    if f0_test is not None:
        mean = mean + _targets(f0_test)
    cov = None
    if k_test is not None:
        k_ss = k_test
        k_sx, k_xx = k_test_train.nngp, jnp.asarray(k_train.nngp)
        cross = transfer @ k_sx.T
        cov = k_ss - cross - jnp.swapaxes(cross, -1, -2) + transfer @ k_xx @ jnp.swapaxes(transfer, -1, -2)
    return Prediction(mean, cov)
