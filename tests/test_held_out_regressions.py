# pyright: reportArgumentType=false, reportCallIssue=false, reportAttributeAccessIssue=false
"""Regressions found by the held-out battery on the third wave's modules (`python -m benchmarks.held_out_battery`):
each input was answered by a raw jax / numpy error, a NaN, a silently wrong result or a hang, and is now refused by
a ValueError naming the argument (or answered right)."""

from __future__ import annotations

import math
import sqlite3

import jax
import numpy as np
import pytest
from flax import nnx

from workbench import stax
from workbench.core.experiment import Record
from workbench.core.scaling import fit_scaling
from workbench.data import sources
from workbench.nets import own, subspace, zoo
from workbench.nets.models import MLPConfig, build_mlp
from workbench.runs.__main__ import main as cli
from workbench.runs.rundb import RunDB
from workbench.theory import dkm, permutations

X = np.random.default_rng(0).normal(size=(3, 4))
NET = stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(1))


def _params(net=NET, width=4):
    return net.init_fn(jax.random.PRNGKey(0), (-1, width))[1]


@pytest.mark.parametrize(
    "fn, match",
    [
        (lambda: NET.init_fn(0, (-1, 4)), "rng: must be a jax.random key"),
        (lambda: NET.init_fn("seed", (-1, 4)), "rng: must be a jax.random key"),
        (lambda: NET.apply_fn(None, X), "params: not this description's parameters"),
        (lambda: NET.apply_fn(_params(stax.serial(stax.Dense(3), stax.Relu(), stax.Dense(2))), X), "params: tensor 0"),
        (lambda: NET.apply_fn(_params(), np.ones((2, 6))), r"params: tensor 0 has shape \(4, 8\)"),
        (lambda: NET.apply_fn(jax.tree.map(lambda a: a * np.nan, _params()), X), "params: tensor 0 holds NaN"),
        (lambda: stax.activation_of(lambda a, b: a), "fn: fails on an array x"),
        (lambda: stax.activation_of(lambda x: x * np.nan), "fn: gives NaN or inf"),
        (lambda: stax.activation_of(lambda x: x.sum()), "fn: must map an array x to real values of x's shape"),
        (lambda: stax.activation_of(lambda x: 1 / 0), "fn: fails on an array x"),
    ],
)
def test_stax_refuses(fn, match):
    with pytest.raises(ValueError, match=match):
        fn()


def test_stax_apply_fn_still_matches_its_params():
    np.testing.assert_allclose(NET.apply_fn(_params(), X), NET.apply_fn(_params(), X))
    assert NET.apply_fn(_params(), X).shape == (3, 1)


def test_own_and_zoo_refuse_before_allocating():
    with pytest.raises(ValueError, match="options: must be a dict"):
        own.infer_roles(own.factory("zoo:resmlp"), 8, [1, 2])
    config = own.configure(own.OwnConfig(width=65536, base_width=8, inputs=4, outputs=2, depth=64))
    with pytest.raises(ValueError, match="width: .* parameters.* needs about"):
        own.Own(config, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"width: must be a multiple of 4 \(the heads\) in \[4, 65536\]"):
        zoo.transformer(2**20, nnx.Rngs(0))
    with pytest.raises(ValueError, match="width: the ResMLP at width 65536, depth 256"):
        zoo.resmlp(65536, nnx.Rngs(0), depth=256)


def _write(tmp_path, name, text=None, **arrays):
    path = tmp_path / name
    if text is None:
        np.savez(path, **arrays)
    else:
        path.write_text(text)
    return str(path)


def test_sources_refuse_unreadable_files_and_float32_overflow(tmp_path):
    x, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    with pytest.raises(ValueError, match="x: entries must be at most"):
        sources.from_arrays(x * 1e300, y)
    with pytest.raises(ValueError, match="y: entries must be at most"):
        sources.from_arrays(x, np.full(20, 1e300))
    for text in ("a,b,label\nx,y,cat\nz,w,dog\n", "1,2,0\n3,1\n5,6,1\n", "1;2;0\n3;4;1\n"):
        with pytest.raises(ValueError, match="data: .* must be comma-separated numbers"):
            sources.load(_write(tmp_path, "a.csv", text))
    with pytest.raises(ValueError, match="data: cannot read"):
        sources.load(_write(tmp_path, "e.npz", ""))
    with pytest.raises(ValueError, match="data: .* object arrays"):
        sources.load(_write(tmp_path, "o.npz", x=np.array([[1, None]] * 4, dtype=object), y=[0, 1, 0, 1]))
    split = dict(x_train=x, y_train=y, x_test=np.random.default_rng(1).normal(size=(5, 4)), y_test=np.arange(5) % 2)
    with pytest.raises(ValueError, match="x_test: the test split"):
        sources.load(_write(tmp_path, "s.npz", **split))
    split = dict(x_train=x, y_train=x[:, 0], x_test=x[:5], y_test=np.arange(5) % 2)
    with pytest.raises(ValueError, match="x_test: the test split"):
        sources.load(_write(tmp_path, "r.npz", **split))


class _Fixed(nnx.Module):
    def __init__(self, w):
        self.w = nnx.Param(w)

    def __call__(self, x):
        return x @ self.w[...]


def test_subspace_refuses_bad_theta0_and_counts_layer_blocks(monkeypatch):
    for w in (jax.numpy.full((3, 2), jax.numpy.nan), jax.numpy.arange(6).reshape(3, 2)):
        with pytest.raises(ValueError, match="model: its parameters"):
            subspace.subspace(_Fixed(w), 2)
    # layout "layer" pads every tensor's block to 2^ceil(log2 max(block, size)): 2 + 2 depth tensors of 2^17 here,
    # about 6x the global estimate, which passed before and then allocated it all
    model = build_mlp(MLPConfig(in_dim=4, out_dim=2, width=256, depth=2))
    n = sum(int(np.size(a)) for a in jax.tree.leaves(nnx.state(model, nnx.Param)))
    size = n - 1
    glob = subspace.projection_bytes(n, size, "fastfood")
    monkeypatch.setattr("workbench.core.memory._free_memory", lambda: (int(2 * glob), "test"))
    subspace.subspace(model, size, layout="global")
    with pytest.raises(ValueError, match=r"subspace: fastfood P .*\(layer layout"):
        subspace.subspace(model, size, layout="layer")


def test_fit_scaling_is_scale_free_and_guards_n_and_memory():
    n = np.array([64.0, 128, 256, 512, 1024, 2048])
    y = 3 * n**-0.5 + 0.01
    ref = fit_scaling(n, y, resamples=50)
    for scale in (1e-200, 1e-318):  # NaN c and intervals before
        fit = fit_scaling(n, y * scale, resamples=50)
        assert fit.alpha == pytest.approx(ref.alpha, rel=1e-3)  # 1e-318 is subnormal: about 5 digits
        assert fit.c / scale == pytest.approx(ref.c, rel=1e-2) and math.isfinite(fit.intervals["c"][1])
    with pytest.raises(ValueError, match=r"n: must be in \(0.0, inf\], got -1.0"):
        ref.predict(-1.0)
    with pytest.raises(ValueError, match="n: every entry must be in"):
        ref.band(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="resamples: 100000 resamples of 240000 points needs about"):
        fit_scaling(np.tile(n, 40_000), np.tile(y, 40_000), resamples=100_000)


def _db(tmp_path):
    db = RunDB(tmp_path / "runs.sqlite")
    sweep_id = db.sweep("example", {}, {"n": [64, 128, 256, 512]}, [0], False)
    for n in (64, 128, 256, 512):
        db.save_point(sweep_id, "example", {"n": n, "seed": 0}, [Record(1, 1, "steps", {"loss": n**-0.5}, "finished")])
    return db


def test_runs_fit_creates_nothing_and_fits_skips_a_garbled_row(tmp_path, capsys):
    typo = tmp_path / "typo" / "runs.sqlite"
    assert cli(["runs", "fit", "--db", str(typo)]) == 2
    assert "does not exist" in capsys.readouterr().err and not typo.parent.exists()
    db = _db(tmp_path)
    assert cli(["runs", "fit", "--db", str(db.path), "--metric", "loss", "--resamples", "50"]) == 0
    with sqlite3.connect(db.path) as con:
        con.execute("UPDATE fits SET fit = ?", ('{"a": 1}',))
    assert cli(["runs", "fits", "--db", str(db.path)]) == 0
    assert "skipped the fit of sweep 1 (loss)" in capsys.readouterr().err


def _dkm(config=None, z=None):
    config = config or dkm.DKMConfig(in_dim=2, inducing=4, layers=1)
    z = np.random.default_rng(0).normal(size=(config.inducing, 2)) if z is None else z
    return nnx.split(dkm.build_dkm(config, z, 1.0), nnx.Param)


def test_dkm_refuses_foreign_params_non_one_hot_targets_and_zero_grams():
    x, y = np.random.default_rng(1).normal(size=(6, 2)), np.ones((6, 1))
    graphdef, _ = _dkm()
    _, other = _dkm(dkm.DKMConfig(in_dim=2, inducing=5, layers=1))
    with pytest.raises(ValueError, match=r"params: .* has shape \(1, 5, 5\), the graphdef's DKM needs \(1, 4, 4\)"):
        dkm.loss(graphdef, other, x, y)
    graphdef, params = _dkm()
    with pytest.raises(ValueError, match="params: .* holds NaN"):
        dkm.loss(graphdef, jax.tree.map(lambda a: a * np.nan, params), x, y)
    with pytest.raises(ValueError, match="y: the categorical likelihood takes one-hot rows"):
        dkm.loss(*_dkm(dkm.DKMConfig(in_dim=2, inducing=4, layers=1, out_dim=2, likelihood="categorical")), x,
                 np.random.default_rng(2).normal(size=(6, 2)))  # fmt: skip
    with pytest.raises(ValueError, match="z: every inducing point is 0 and bias_std is 0"):
        _dkm(z=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="z: repeated inducing points"):
        _dkm(dkm.DKMConfig(in_dim=2, inducing=4, layers=1, jitter=0.0), np.ones((4, 2)))
    big = dkm.DKMConfig(in_dim=2, inducing=512, layers=2)
    with pytest.raises(ValueError, match="x_test: 3,000,000 points against 512 inducing points needs about"):
        dkm.predict(*_dkm(big), x, y, np.ones((3_000_000, 2)))


def test_permutations_weights_do_not_overflow():
    outputs = np.random.default_rng(0).normal(size=(4, 3, 3))
    targets = np.eye(3, dtype=int)
    np.testing.assert_allclose(
        permutations.ensemble_accuracy(outputs, targets, np.full(3, 1e308)),
        permutations.ensemble_accuracy(outputs, targets, np.ones(3)),
    )


def test_intrinsic_dimension_and_model_lab_refuse_at_construction():
    from workbench.experiments import intrinsic_dimension, model_lab

    with pytest.raises(ValueError, match="full: the full network's accuracy is 0"):
        intrinsic_dimension.d_int90(np.array([2.0, 4, 8]), np.full((3, 2), 0.5), np.zeros(2))
    with pytest.raises(ValueError, match="data: scikit-learn's bundled sets are"):
        model_lab.Config(data="sklearn:mnist")
    with pytest.raises(ValueError, match="data: no file"):
        model_lab.Config(data="/nonexistent/x.csv")
    with pytest.raises(ValueError, match="widths: at most 32 values"):
        model_lab.Config(widths=tuple(range(1, 41)))  # above its 32, within the 64 of every tuple field
