"""Analytic NNGP/NTK (workbench.theory.kernels.analytic, issue 3): neural-tangents references, precision, errors."""

import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.theory.kernels import dual, kernel_eigenvalues, kernel_vs_angle, mlp_kernels

CASES = json.loads((Path(__file__).parent / "data" / "nt_mlp_kernels.json").read_text())["cases"]


def _kwargs(case: dict[str, Any]) -> dict[str, Any]:
    act = case["activation"]
    if act.startswith("leaky_relu:"):  # the reference names leaky_relu(a) 'leaky_relu:a'
        act = f"leaky_relu({act.split(':')[1]})"
    return dict(
        depth=case["depth"],
        activation=act,
        weight_std=case["weight_std"],
        bias_std=case["bias_std"],
        parametrization=case["parametrization"],
        width=case["width"],
    )


def _rel(a, ref):
    return np.abs(np.asarray(a) - ref) / np.abs(ref).max()


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['activation']}-L{c['depth']}-{c['parametrization']}")
def test_matches_neural_tangents_float64(case):
    """x1-x1 and x1-x2 blocks of one symmetric call on [x1; x2] (the cross path is checked against the
    symmetric one in the property tests), to keep to one compilation per case."""
    tol = 1e-9 if case["method"] == "closed form" else 1e-6
    x1, x2 = np.array(case["x1"]), np.array(case["x2"])
    with jax.enable_x64(True):
        k = mlp_kernels(np.concatenate([x1, x2]), **_kwargs(case))
        assert k.nngp.dtype == np.float64
    n = len(x1)
    blocks = {
        f"{name}_{ij}": np.asarray(getattr(k, name))[:n, sl]
        for name in ("nngp", "ntk")
        for ij, sl in (("11", slice(0, n)), ("12", slice(n, None)))
    }
    for key, got in blocks.items():
        err = _rel(got, np.array(case[key]))
        if key.endswith("_11"):
            # neural-tangents' own float64 diagonal takes arccos of 1 - O(eps): its NTK diagonal is off by
            # ~sqrt(eps64) ~ 1e-8; ours is exact (checked against the theta = 0 recursion below).
            np.fill_diagonal(err, err.diagonal() / 10)
        assert err.max() <= tol, (key, err.max())


def _relu_ntk_diag(q, depth, w2, b2):  # noqa: D103
    """Exact ReLU recursion at angle 0: E[relu(u)^2] = q/2, E[relu'(u)^2] = 1/2."""
    nngp = w2 * q + b2
    ntk = nngp
    for _ in range(depth):
        nngp = w2 * nngp / 2 + b2
        ntk = nngp + w2 * ntk / 2
    return nngp, ntk


def test_diagonal_is_exact_at_angle_zero():
    with jax.enable_x64(True):
        x = np.array(CASES[2]["x1"])  # shapes of the depth-5 relu reference case: its compilation is reused
        k = mlp_kernels(x, depth=5, weight_std=1.5, bias_std=0.3)
        nngp, ntk = _relu_ntk_diag(np.sum(x * x, 1) / x.shape[1], 5, 2.25, 0.09)
        np.testing.assert_allclose(np.diag(k.nngp), nngp, rtol=1e-14)
        np.testing.assert_allclose(np.diag(k.ntk), ntk, rtol=1e-14)


# ---------------------------------------------------------------- properties and precision


def _awkward_inputs(d, seed=0, near=True):
    """Random rows plus exact duplicates, antipodes, a rescaled copy and (optionally) near-duplicates."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(4, d)).astype(np.float32)
    rows = [x, x[:1], -x[1:2], 1.5 * x[2:3]]
    if near:
        rows += [x[:1] + np.float32(1e-3), -x[3:4] + np.float32(1e-3)]
    x2 = np.concatenate([x[:2], -x[2:3], rng.normal(size=(2, d)).astype(np.float32)])
    return np.concatenate(rows).astype(np.float32), x2


ACTIVATIONS = ["relu", "leaky_relu(0.2)", "sign", "erf", "tanh"]  # each code path: angular (phi >= 0 or not,
# 0-homogeneous), smooth closed form, Hermite quadrature


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_float32_within_1e5_of_float64_everywhere(activation):
    """Relative to the entry's scale sqrt(K_ii K_jj) (entries near 0 are not resolvable from a float32 Gram
    matrix); the diagonal is compared entry by entry. Sign is a non-Lipschitz map at angle 0, so float32
    rounding of near-duplicate inputs is amplified by the exact kernel itself: no near-duplicates for it."""
    x = np.concatenate(_awkward_inputs(32, near=activation != "sign"))
    kw: dict[str, Any] = dict(
        depth=2, activation=activation, weight_std=1.3, bias_std=0.2, block_size=8
    )  # several tiles
    k32 = mlp_kernels(x, **kw)
    with jax.enable_x64(True):
        k64 = mlp_kernels(x.astype(np.float64), **kw)
    for name in ("nngp", "ntk"):
        got, ref = np.asarray(getattr(k32, name), np.float64), np.asarray(getattr(k64, name))
        assert getattr(k32, name).dtype == np.float32
        scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
        err = np.abs(got - ref) / scale
        assert err.max() <= 1e-5, (name, err.max())
        np.testing.assert_allclose(np.diag(got), np.diag(ref), rtol=1e-5)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**16), weight_std=st.floats(0.5, 2.0), bias_std=st.floats(0.0, 1.0))
@pytest.mark.parametrize("activation", ["relu", "leaky_relu(-0.5)", "sign", "x * sigmoid(x)"])
def test_symmetric_psd_and_finite_with_coincident_and_antipodal_inputs(activation, seed, weight_std, bias_std):
    x, x2 = _awkward_inputs(3, seed)
    x = np.concatenate([x, np.zeros((1, 3), np.float32)])  # and a zero input
    kw: dict[str, Any] = dict(depth=1, activation=activation, weight_std=weight_std, bias_std=bias_std)
    k, c = mlp_kernels(x, **kw), mlp_kernels(x, x2, **kw)
    for m in (k.nngp, k.ntk):
        m = np.asarray(m, np.float64)
        assert np.all(np.isfinite(m)) and np.array_equal(m, m.T)
        eig = np.linalg.eigvalsh(m)
        assert eig[0] >= -1e-6 * eig[-1]
    assert np.all(np.isfinite(np.asarray(c.nngp))) and np.all(np.isfinite(np.asarray(c.ntk)))
    # a point and its duplicate give the diagonal entry; the cross kernel agrees with the symmetric one
    np.testing.assert_allclose(k.nngp[0, 4], k.nngp[0, 0], rtol=1e-6)
    np.testing.assert_allclose(c.ntk[:, :2], k.ntk[:, :2], rtol=1e-5, atol=1e-6 * float(np.max(k.ntk)))


def test_tiles_match_one_block():
    x, x2 = _awkward_inputs(3)
    kw: dict[str, Any] = dict(depth=1, activation="relu", weight_std=1.4, bias_std=0.1)
    a, b = mlp_kernels(x, **kw), mlp_kernels(x, **kw, block_size=3)  # 10 rows: 4 tiles, the last padded
    np.testing.assert_allclose(b.ntk, a.ntk, rtol=1e-6)
    np.testing.assert_allclose(b.nngp, a.nngp, rtol=1e-6)
    assert np.array_equal(np.asarray(b.ntk), np.asarray(b.ntk).T)
    c = mlp_kernels(x, x2, **kw, block_size=3)
    np.testing.assert_allclose(c.ntk[:, :2], a.ntk[:, :2], rtol=1e-5)


@pytest.mark.parametrize(
    "activation, expression", [("erf", "erf(x)"), ("gelu", "x * (1 + erf(x / sqrt(2))) / 2"), ("sin", "sin(x)")]
)
def test_closed_forms_match_quadrature(activation, expression):
    q11, q12, q22 = np.array([1.0, 2.0, 0.5, 1.5]), np.array([0.3, -1.2, 0.5, 1.49]), np.array([0.8, 1.5, 0.5, 1.5])
    with jax.enable_x64(True):
        closed = dual.gaussian_expectations(activation, q11, q12, q22)
        quad = dual.gaussian_expectations(expression, q11, q12, q22)
    for a, b in zip(closed, quad):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6 * np.abs(a).max())


def test_kernel_vs_angle_and_eigenvalues():
    theta = np.linspace(0, np.pi, 7)
    k = kernel_vs_angle(theta, depth=2, weight_std=1.4, bias_std=0.0)
    diag = mlp_kernels(np.full((1, 2), 1.0), depth=2, weight_std=1.4, bias_std=0.0)  # x.x/d = 1
    np.testing.assert_allclose(k.ntk[0], diag.ntk[0, 0], rtol=1e-6)
    assert np.all(np.diff(np.asarray(k.nngp)) < 0)  # relu NNGP decreases with the angle
    eig = kernel_eigenvalues(mlp_kernels(_awkward_inputs(4)[0], depth=2).ntk)
    assert np.all(np.diff(eig) <= 0) and eig[-1] >= -1e-6 * eig[0]


def test_errors_are_clear():
    x = np.ones((3, 2))
    with pytest.raises(ValueError, match="depth"):
        mlp_kernels(x, depth=-1)
    with pytest.raises(ValueError, match="parametrization"):
        mlp_kernels(x, depth=1, parametrization="mup")
    with pytest.raises(ValueError, match="width"):
        mlp_kernels(x, depth=1, parametrization="standard")
    with pytest.raises(ValueError, match="x2"):
        mlp_kernels(x, np.ones((2, 3)), depth=1)
    with pytest.raises(ValueError, match="weight_std"):
        mlp_kernels(x, depth=1, weight_std=float("nan"))
    with pytest.raises(ValueError, match="GiB"):
        mlp_kernels(np.zeros((2_000_000, 2), np.float32), depth=1)
