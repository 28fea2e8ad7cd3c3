"""Training engine (issue 2, item 7): records, determinism, divergence, stop, compile cache, optimizer scales."""

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from workbench import data as D
from workbench.core import parametrizations as P
from workbench.nets.engine import TrainConfig, optimizer_for, train
from workbench.nets.engine import _compiled_chunk as compiled_chunk
from workbench.nets.models import MLPConfig, build_mlp, param_roles

SPIRAL = D.playground("spiral", n=64, seed=1)
NET = MLPConfig(in_dim=2, out_dim=2, width=32, depth=2, activation="tanh")


def _run(model_cfg=NET, seed=0, data=SPIRAL, **kw):
    cfg = TrainConfig(**{"steps": 40, "record_every": 20, "loss": "xent", "seed": seed, **kw})
    return list(train(build_mlp(model_cfg, seed=seed), data, cfg))


def test_records_and_learning():
    recs = [r for r in _run(optimizer="adam", lr=0.02, steps=200, record_every=50) if r.status != "compiling"]
    assert [r.step for r in recs] == [0, 50, 100, 150, 200]
    assert recs[-1].status == "finished"
    assert set(recs[-1].metrics) >= {"train_loss", "test_loss", "batch_loss", "train_acc", "test_acc"}
    assert recs[-1].metrics["train_loss"] < 0.7 * recs[0].metrics["train_loss"]


def test_same_config_and_seed_give_same_numbers():
    def losses(seed):
        return [r.metrics["train_loss"] for r in _run(batch_size=16, seed=seed) if r.status != "compiling"]

    a, b, c = losses(3), losses(3), losses(4)
    assert a == b and a != c


def test_diverging_lr_ends_with_status_diverged():
    recs = _run(lr=1e4, loss="mse", steps=200)
    assert recs[-1].status == "diverged" and recs[-1].step < 200


def test_stop_event_ends_run_with_status_stopped():
    stop = threading.Event()
    records = []
    for r in train(build_mlp(NET), SPIRAL, TrainConfig(steps=10_000, record_every=10, loss="xent"), stop=stop):
        records.append(r)
        if r.step >= 20:
            stop.set()
    assert records[-1].status == "stopped" and records[-1].step < 10_000


def test_changing_lr_does_not_recompile():
    _run(lr=0.1)
    hits = compiled_chunk.cache_info().hits
    recs = _run(lr=0.05, weight_decay=0.01)
    assert "compiling" not in [r.status for r in recs]
    assert compiled_chunk.cache_info().hits > hits


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="batch_size: must be in"):
        _run(batch_size=10_000)
    with pytest.raises(ValueError, match="xent"):
        _run(data=D.sine(), model_cfg=MLPConfig(in_dim=1), loss="xent")


def test_full_batch_sgd_matches_hand_written_gradient_step():
    model = build_mlp(MLPConfig(in_dim=1, width=16, depth=1, parametrization="mup", base_width=4), seed=0)
    data = D.sine(n_train=8)
    graphdef, params = nnx.split(model, nnx.Param)

    def loss(p):
        return 0.5 * jnp.mean(jnp.sum((nnx.merge(graphdef, p)(jnp.asarray(data.x_train)) - data.y_train) ** 2, -1))

    grads = jax.grad(loss)(params)
    m = 16 / 4
    roles = param_roles(model.config, params)
    expected = jax.tree_util.tree_map(
        lambda p, g, r: p - 0.1 * P.lr_scale("mup", r, m, "sgd") * g, params, grads, roles
    )
    list(train(model, data, TrainConfig(lr=0.1, steps=1, record_every=1)))
    got = nnx.state(model, nnx.Param)
    for e, g in zip(jax.tree_util.tree_leaves(expected), jax.tree_util.tree_leaves(got)):
        np.testing.assert_allclose(g, e, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("opt", ["sgd", "momentum", "adam", "adamw"])
def test_optimizer_applies_per_role_learning_rates(opt):
    cfg = MLPConfig(in_dim=3, width=64, depth=2, base_width=16, parametrization="mup")
    model = build_mlp(cfg)
    params = nnx.state(model, nnx.Param)
    tx = optimizer_for(cfg, TrainConfig(optimizer=opt, lr=1.0, weight_decay=0.0))
    ones = jax.tree_util.tree_map(jnp.ones_like, params)
    updates, _ = tx.update(ones, tx.init(params), params)
    roles = param_roles(cfg, params)
    for u, r in zip(jax.tree_util.tree_leaves(updates), jax.tree_util.tree_leaves(roles)):
        scale = P.lr_scale("mup", r, 4.0, opt)
        np.testing.assert_allclose(np.abs(np.asarray(u)).max(), scale, rtol=1e-3)


@pytest.mark.parametrize(
    "model_cfg, loss, match",
    [
        (
            MLPConfig(in_dim=2, out_dim=1, width=8, depth=1),
            "mse",
            "out_dim: the model has 1 outputs but the data has 2",
        ),
        (MLPConfig(in_dim=3, out_dim=2, width=8, depth=1), "xent", "in_dim: the model takes 3 inputs"),
    ],
)
def test_the_engine_refuses_data_that_does_not_fit_the_model_before_any_step(model_cfg, loss, match):
    """A two-class set on a one-output mse net, or 2 features into a 3-input net, is a clear ValueError at the
    first `next`, not a run that ends "finished" or a dot_general TypeError from inside JAX."""
    run = train(build_mlp(model_cfg, seed=0), SPIRAL, TrainConfig(steps=5, loss=loss))
    with pytest.raises(ValueError, match=match):
        next(run)
