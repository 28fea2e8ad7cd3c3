"""Empirical NTK (workbench.theory.kernels.empirical, issue 3): structured = Jacobian, training convention, n^-1/2."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from workbench.data import sine
from workbench.nets.engine import TrainConfig, train
from workbench.nets.models import MLPConfig, build_mlp
from workbench.theory.kernels import empirical_ntk, jacobian_ntk, limit_kernels, mc_empirical_ntk, mlp_kernels

X = np.asarray(jax.random.normal(jax.random.key(1), (6, 3)))
X2 = np.asarray(jax.random.normal(jax.random.key(2), (4, 3)))


@pytest.mark.parametrize("parametrization", ["sp", "ntk", "mup", "mf"])
def test_structured_matches_jacobian(parametrization):
    cfg = MLPConfig(
        in_dim=3,
        width=24,
        depth=2,
        out_dim=2,
        parametrization=parametrization,
        base_width=8,
        bias_std=0.3,
        activation="tanh",
    )
    model = build_mlp(cfg, 0)
    for scaling in ("sgd", "nt", "raw"):
        a = empirical_ntk(model, X, X2, scaling=scaling)
        b = empirical_ntk(model, X, X2, method="jacobian", scaling=scaling)
        assert a.shape == (6, 4)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(jnp.abs(b).max()))
    sym = empirical_ntk(model, X)
    np.testing.assert_allclose(sym, sym.T, rtol=1e-6)


def test_one_sgd_step_follows_the_sgd_kernel():
    """df = -(lr/N) Theta (f - y) for one small full-batch SGD step of workbench.nets.engine (mse)."""
    data = sine(n_train=8, n_test=4)
    cfg = MLPConfig(in_dim=1, width=32, depth=2, parametrization="mup", base_width=16, bias_std=0.2)
    model = build_mlp(cfg, 0)
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    f0, theta = model(x), empirical_ntk(model, x)
    lr = 1e-4
    list(train(model, data, TrainConfig(lr=lr, steps=1, record_every=1)))
    np.testing.assert_allclose(model(x) - f0, -lr / 8 * theta @ (f0 - y), rtol=2e-3, atol=1e-8)


def _rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def test_distance_to_the_analytic_ntk_falls_like_n_to_the_minus_half():
    widths, seeds = [64, 256, 1024], range(3)
    kw: dict[str, Any] = dict(in_dim=3, depth=2, parametrization="ntk", base_width=32, weight_std=1.4, bias_std=0.3)
    nt = mlp_kernels(X, depth=2, weight_std=1.4, bias_std=0.3).ntk
    dist = [
        np.mean([_rel(empirical_ntk(build_mlp(MLPConfig(width=n, **kw), s), X, scaling="nt"), nt) for s in seeds])
        for n in widths
    ]
    slope = np.polyfit(np.log(widths), np.log(dist), 1)[0]
    assert -0.7 <= slope <= -0.3, (dist, slope)
    # the training ("sgd") kernel converges to its own limit, mlp_kernels(standard, width=base_width)
    cfg = MLPConfig(width=1024, **kw)
    assert _rel(empirical_ntk(build_mlp(cfg, 0), X), limit_kernels(cfg, X).ntk) < 0.15


def test_monte_carlo_mean_and_limit_errors():
    cfg = MLPConfig(in_dim=3, width=256, depth=1, parametrization="sp", base_width=256, bias_std=0.1)
    mean, std = mc_empirical_ntk(cfg, X, seeds=range(4), scaling="nt")
    assert mean.shape == (6, 6) and float(std.min()) > 0
    assert _rel(mean, mlp_kernels(X, depth=1, bias_std=0.1).ntk) < 0.1
    with pytest.raises(ValueError, match="parametrization"):
        limit_kernels(MLPConfig(in_dim=3, parametrization="mup"), X)
    with pytest.raises(ValueError, match="scaling"):
        empirical_ntk(build_mlp(cfg, 0), X, scaling="adam")
    with pytest.raises(ValueError, match="method"):
        empirical_ntk(build_mlp(cfg, 0), X, method="fast")


class _Quadratic(nnx.Module):
    def __init__(self, rngs):
        self.w = nnx.Param(jax.random.normal(rngs.params(), (3,)))

    def __call__(self, x):
        return (x @ self.w[...]) ** 2


def test_any_nnx_module_through_the_jacobian():
    model = _Quadratic(nnx.Rngs(params=0))
    w = model.w[...]
    jac = 2 * (X @ w)[:, None] * X  # d/dw (x.w)^2
    np.testing.assert_allclose(empirical_ntk(model, X, method="jacobian", scaling="raw"), jac @ jac.T, rtol=1e-5)
    np.testing.assert_allclose(jacobian_ntk(lambda p, x: (x @ p) ** 2, w, X), jac @ jac.T, rtol=1e-5)
    with pytest.raises(ValueError, match="jacobian"):
        empirical_ntk(model, X)


def test_changing_the_stds_does_not_recompile():
    """The role weights are traced: a new weight_std / bias_std reuses the compiled structured NTK."""
    from workbench.theory.kernels.empirical import _structured_jit

    def ntk(w, b):
        cfg = MLPConfig(in_dim=3, width=16, depth=2, weight_std=w, bias_std=b, base_width=16)
        return empirical_ntk(build_mlp(cfg, 0), X, X2, scaling="nt")

    first = ntk(1.0, 0.1)
    size = _structured_jit._cache_size()  # pyright: ignore[reportAttributeAccessIssue]  # jit's private cache count
    second = ntk(2.0, 0.5)
    assert _structured_jit._cache_size() == size  # pyright: ignore[reportAttributeAccessIssue]
    assert not np.allclose(first, second)
