"""Subspace training and d_int90 (Li, Farkhoor, Liu & Yosinski 2018): the projections against explicit matrices
(scipy's Hadamard matrix for fastfood), training through the engine moves only theta_d, nested directions give
the same runs at any compiled size, the bootstrap of d_int90 on curves with a known crossing, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from flax import nnx

from workbench import stax
from workbench.data import digits
from workbench.experiments import intrinsic_dimension as E
from workbench.nets import subspace as S
from workbench.nets.engine import TrainConfig, train
from workbench.nets.models import MLPConfig, build_mlp
from workbench.stax.nnx import network


def mlp(width: int = 8, seed: int = 0):
    return build_mlp(MLPConfig(in_dim=5, out_dim=3, width=width, depth=1, parametrization="sp"), seed)


def matrix(model: S.Subspace) -> np.ndarray:
    """P (D, size) column by column: the offsets of the unit vectors."""
    return np.asarray(jax.jit(jax.vmap(model.offset))(jnp.eye(model.config.size))).T


def test_fastfood_is_the_explicit_hadamard_product():
    model = S.subspace(mlp(), 6, kind="fastfood", seed=3)  # D = 5*8 + 8 + 8*3 + 3 = 75 -> L = 128
    L, D = 128, model.config.n_params
    H = scipy.linalg.hadamard(L)
    B, Pi, G = (np.asarray(v[...]) for v in (model.signs[0], model.perms[0], model.gauss[0]))
    full = H @ np.diag(G) @ np.eye(L)[Pi] @ H @ np.diag(B)  # rows Pi of H B, then G, then H
    expected = full[:D, :6] / np.sqrt(D * np.sum(G**2))
    np.testing.assert_allclose(matrix(model), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", S.KINDS)
@pytest.mark.parametrize("layout", S.LAYOUTS)
def test_columns_have_unit_norm(kind, layout):
    model = S.subspace(mlp(width=32), 40, kind=kind, layout=layout, seed=1)
    norms = np.linalg.norm(matrix(model), axis=0)
    if kind == "fastfood":  # in expectation: the mean over 40 columns within a few percent
        assert abs(norms.mean() - 1) < 0.05
    else:
        np.testing.assert_allclose(norms, 1.0, rtol=1e-5)


def test_sparse_density_per_tensor_as_sklearn():
    """Per tensor ("layer"), a direction's nonzeros in a block of n entries number about sqrt(n) (density
    1/sqrt(n), sklearn's 'auto'); with "global" about sqrt(D) in all."""
    m = mlp(width=64)  # kernels 5x64, 64x3; biases 64, 3
    sizes = [int(np.size(a)) for a in jax.tree.leaves(nnx.state(m, nnx.Param))]
    for layout, expected in (("layer", sum(np.sqrt(sizes))), ("global", np.sqrt(sum(sizes)))):
        p = matrix(S.subspace(m, 200, kind="sparse", layout=layout, seed=0))
        assert abs((p != 0).sum(0).mean() / expected - 1) < 0.1
        values = np.abs(p[p != 0])
        assert values.min() > 0


@pytest.mark.parametrize("kind", S.KINDS)
def test_zero_theta_d_is_the_wrapped_model(kind):
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 5)), jnp.float32)
    m = mlp()
    np.testing.assert_allclose(S.subspace(m, 5, kind=kind)(x), m(x), rtol=1e-6, atol=1e-6)
    cnn = network(
        stax.serial(stax.Conv(3, (2,), padding="SAME"), stax.Relu(), stax.Flatten(), stax.Dense(2)), (-1, 4, 2)
    )
    xc = jnp.asarray(np.random.default_rng(1).normal(size=(3, 4, 2)), jnp.float32)
    np.testing.assert_allclose(S.subspace(cnn, 5, kind=kind)(xc), cnn(xc), rtol=1e-6, atol=1e-6)


def test_masked_size_trains_as_the_smaller_subspace():
    """Only theta_d trains. Dense rows are drawn in order, so d = 4 inside theta_d of 16 is the subspace of d = 4:
    the same run."""
    data = digits()
    base = build_mlp(MLPConfig(in_dim=64, out_dim=10, width=8, depth=1, parametrization="sp"))
    config = TrainConfig(optimizer="adam", lr=0.1, steps=30, loss="xent", record_every=30)
    losses = []
    for size in (4, 16):
        model = S.subspace(base, 4, kind="dense", size=size, seed=2)
        before = jax.tree.map(np.asarray, nnx.state(model))
        records = list(train(model, data, config))
        losses.append(records[-1].metrics["train_loss"])
        assert losses[-1] < records[0].metrics["train_loss"]
        paths = jax.tree_util.tree_flatten_with_path(before)[0]
        after = jax.tree.leaves(jax.tree.map(np.asarray, nnx.state(model)))
        moved = [jax.tree_util.keystr(k) for (k, a), b in zip(paths, after) if np.any(a != b)]
        assert len(moved) == 1 and "theta_d" in moved[0]  # theta_0 and P stay as they were
        assert np.all(np.asarray(model.theta_d[...])[4:] == 0)
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    state = S.with_dim(nnx.state(S.subspace(base, 4, kind="dense", size=16)), 9)
    mask = state["mask"]
    assert isinstance(mask, nnx.Variable) and float(np.sum(mask.get_value())) == 9


def test_d_int90_interpolates_and_bootstraps():
    dims = np.array([10, 100, 1000])
    full = np.full(4, 1.0)
    acc = np.array([[0.5] * 4, [0.8] * 4, [1.0] * 4])  # 0.9 halfway between 100 and 1000 in log d
    estimate, err = E.d_int90(dims, acc, full)
    assert estimate == pytest.approx(np.sqrt(1e5)) and err < 1e-9
    noisy = acc + np.array([0.0, 0.05, 0.0])[:, None] * np.array([1, -1, 1, -1])
    assert E.d_int90(dims, noisy, full)[1] > 0
    assert np.isnan(E.d_int90(dims, acc * 0.5, full)[0])  # never reaches the line


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="d: must be in"):
        S.subspace(mlp(), 0)
    with pytest.raises(ValueError, match=r"d: must be in \[1, 75\]"):
        S.subspace(mlp(), 76)
    with pytest.raises(ValueError, match="kind"):
        S.subspace(mlp(), 4, kind="gaussian")

    class Empty(nnx.Module):
        def __call__(self, x):
            return x

    with pytest.raises(ValueError, match="no trainable parameters"):
        S.subspace(Empty(), 1)
    with pytest.raises(ValueError, match="d: must be in"):
        E.Config(arch="mlp", widths=(8,), d=10**6)
    with pytest.raises(ValueError, match="dims: must increase"):
        E.d_int90(np.array([10, 5]), np.ones((2, 2)), np.ones(2))


def test_experiment_finds_a_crossing():
    config = E.Config(arch="mlp", widths=(16,), d_min=8, d_max=512, points=3, refine=1, seeds=2, steps=150)
    records = list(E.run(config))
    point, summary = records[0].metrics, records[-1].metrics
    assert records[-1].status == "finished" and point["acc"].shape == (len(point["dims"]), 2)
    assert np.all(np.diff(point["dims"]) > 0)
    line = 0.9 * point["full_acc"].mean()
    assert point["acc"].mean(1)[0] < line <= point["acc"].mean(1)[-1]
    assert point["dims"][0] < point["d_int90"] < point["dims"][-1]
    assert summary["d_int90"][0] == point["d_int90"]
