"""Your own model and data (issue 25): roles inferred from shapes, the abc table applied without touching the forward
pass, the lab's studies on the zoo's examples, data sources checked before training."""

from __future__ import annotations

import typing
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from workbench.data import sources
from workbench.experiments import model_lab as M
from workbench.nets import own
from workbench.nets.engine import TrainConfig, optimizer_for


def configured(model, **settings):
    """The OwnConfig of a factory with its roles inferred."""
    return own.configure(own.OwnConfig(model=model, **settings))


ROLES = {  # hand-written: Flax layout (..., fan_in, fan_out); growing fan_out only = input, both = hidden, ...
    "zoo:cnn": {
        "conv1/kernel": "input",
        "conv1/bias": "bias",
        "conv2/kernel": "hidden",
        "conv2/bias": "bias",
        "readout/kernel": "output",
        "readout/bias": "output_bias",
    },
    "zoo:resmlp": {
        "embed/kernel": "input",
        "embed/bias": "bias",
        "blocks/*/kernel": "hidden/branch",
        "readout/kernel": "output",
        "readout/bias": "output_bias",
    },
    "zoo:transformer": {
        "embed/embedding": "input",
        "position": "input",
        **{f"blocks/*/{m}/kernel": "hidden/branch" for m in ("q", "k", "v", "o", "up", "down")},
        **{f"blocks/*/{m}/bias": "bias/branch" for m in ("q", "k", "v", "o", "up", "down")},
        **{f"blocks/*/ln{i}/{p}": "bias/branch" for i in (1, 2) for p in ("scale", "bias")},
        "ln/scale": "bias",
        "ln/bias": "bias",
        "unembed/kernel": "output",
        "unembed/bias": "output_bias",
    },
}


@pytest.mark.parametrize("name", sorted(ROLES))
def test_roles_of_the_zoo_match_the_hand_written_table(name):
    depth = 0 if name == "zoo:cnn" else 2
    config = configured(name, width=32, base_width=16, depth=depth, inputs=64, outputs=10)
    assert dict(entry.split("=") for entry in config.roles.split(";")) == ROLES[name]


def _factory(kind) -> Any:
    def make(width, rngs):
        if kind == "fails" and width > 16:
            raise RuntimeError("boom")
        if kind == "dict":
            return {"w": jnp.ones(width)}
        layers = {"a": nnx.Linear(3, width, rngs=rngs), "b": nnx.Linear(width, 2, rngs=rngs)}
        if kind == "extra" and width > 16:
            layers["c"] = nnx.Linear(2, 2, rngs=rngs)
        if kind == "fixed":
            layers = {"a": nnx.Linear(3, 8, rngs=rngs)}
        if kind == "square":
            layers = {"a": nnx.Linear(3, width * width, rngs=rngs)}
        if kind == "empty":
            layers = {}
        return nnx.Dict(layers)

    return make


@pytest.mark.parametrize(
    "kind, message",
    [
        ("fails", "fails at width 32 (RuntimeError: boom)"),
        ("dict", "must return a flax.nnx.Module"),
        ("extra", "only in the second ['c/bias', 'c/kernel']"),
        ("fixed", "no parameter changes shape"),
        ("square", "parameter 'a/bias' grows along axis 0"),
        ("empty", "no trainable parameters"),
    ],
)
def test_factories_no_role_explains_are_refused_by_name(kind, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        own.infer_roles(_factory(kind), 16)


def test_unknown_models_and_depth_without_branch_are_refused():
    with pytest.raises(ValueError, match="model: 'nowhere' is not registered"):
        own.factory("nowhere")
    with pytest.raises(ValueError, match="model: cannot import"):
        own.factory("no_such_package.mod:make")
    with pytest.raises(ValueError, match="depth: the factory 'zoo:cnn' must take 'depth' and 'branch'"):
        configured("zoo:cnn", depth=4)


def _one_sgd_step(config):
    """The per-tensor ratio update / gradient of one SGD step at lr 1 (the optimizer's learning rates)."""
    model = own.Own(config, rngs=nnx.Rngs(params=0))
    params = nnx.state(model, nnx.Param)
    grads = jax.tree.map(jnp.ones_like, params)
    tx = optimizer_for(config, TrainConfig(optimizer="sgd", lr=1.0))
    updates, _ = tx.update(grads, tx.init(params), params)
    flat = {own._path(k): float(-u.reshape(-1)[0]) for k, u in jax.tree_util.tree_leaves_with_path(updates)}
    return {k.removeprefix("net/"): v for k, v in flat.items()}


def test_sgd_learning_rates_follow_tp5_table3_and_depth_mup():
    """muP under SGD (TP V Table 3): input and biases x m, hidden x 1, readout / m; m = 4. Depth-muP (TP VI):
    SGD rates do not change with depth; CompleteP's alpha = 1 makes them x L/L0 (the same derivation)."""
    base = dict(width=64, base_width=16, inputs=4, outputs=2)
    lr = _one_sgd_step(configured("zoo:resmlp", parametrization="mup", depth=2, **base))
    assert lr["embed/kernel"] == pytest.approx(4) and lr["embed/bias"] == pytest.approx(4)
    assert lr["blocks/0/kernel"] == pytest.approx(1) and lr["readout/kernel"] == pytest.approx(0.25)
    assert lr["readout/bias"] == pytest.approx(1)
    sqrt = _one_sgd_step(configured("zoo:resmlp", depth=8, depth_scaling="sqrt", **base))
    complete = _one_sgd_step(configured("zoo:resmlp", depth=8, depth_scaling="complete", **base))
    assert sqrt["blocks/7/kernel"] == pytest.approx(1) and complete["blocks/7/kernel"] == pytest.approx(4)
    assert complete["embed/kernel"] == pytest.approx(4)  # outside the branches: no depth factor
    ntk = _one_sgd_step(configured("zoo:resmlp", parametrization="ntk", depth=2, **base))
    assert ntk["blocks/0/kernel"] == pytest.approx(0.25) and ntk["embed/kernel"] == pytest.approx(1)


def test_mup_rescales_only_the_readout_init():
    """Relative to the factory's own (SP) init, muP divides the readout by sqrt(m) (init std 1/fan_in)."""
    config = configured("zoo:resmlp", width=256, base_width=16, depth=2, inputs=4, outputs=2)
    mine: Any = nnx.state(own.Own(config, rngs=nnx.Rngs(params=0)), nnx.Param)
    theirs: Any = nnx.state(own.factory("zoo:resmlp")(256, nnx.Rngs(params=0), in_dim=4, out_dim=2, depth=2), nnx.Param)
    ratio = lambda path: float(jnp.std(mine["net"][path]["kernel"][...]) / jnp.std(theirs[path]["kernel"][...]))
    assert ratio("readout") == pytest.approx(0.25) and ratio("embed") == pytest.approx(1.0)


SMALL: dict[str, Any] = dict(
    model="zoo:resmlp", data="sklearn:wine", widths=(32, 256), base_width=32, seeds=1, n_samples=32
)


def _summary(config):
    records = list(M.run(config))
    return records[:-1], records[-1].metrics


def test_coordinate_check_is_flat_under_mup_and_grows_under_sp():
    """TP V Fig. 5: after a few Adam steps every module's change is O(1) in width under muP, grows under SP."""
    train = TrainConfig(optimizer="adam", lr=0.01, steps=4)
    _, mup = _summary(M.Config(**SMALL, parametrization="mup", train=train))
    _, sp = _summary(M.Config(**SMALL, parametrization="sp", train=train))
    assert mup["modules"].split(",")[0] == "output" and len(mup["slopes"]) == len(mup["modules"].split(","))
    assert np.max(np.abs(mup["slopes"])) < 0.2
    assert np.max(sp["slopes"]) > 0.4


def test_ntk_moves_less_in_ntk_parametrization_than_in_mup():
    """Lazy vs rich: at the same base learning rate, the NTK's relative change is smaller under NTK than muP
    at width 256 (both are SP at the base width 32)."""
    config = M.Config(**SMALL, study="lazy_rich", train=TrainConfig(optimizer="sgd", lr=0.5, steps=10), probe=16)
    points, summary = _summary(config)
    ntk, mup = points[-1].metrics["ntk_change"]
    assert 0 < ntk < mup
    assert points[0].metrics["ntk_change"][0] == pytest.approx(points[0].metrics["ntk_change"][1], rel=1e-3)
    assert points[-1].metrics["movement"].shape == (2, len(summary["modules"].split(",")))


def test_lr_transfer_over_depth_records_a_loss_per_rate():
    config = M.Config(
        **{**SMALL, "widths": (32,)},
        study="lr_transfer",
        depths=(2, 4),
        depth_scaling="sqrt",
        n_lrs=3,
        train=TrainConfig(optimizer="adam", lr=0.01, steps=3),
    )
    points, summary = _summary(config)
    assert summary["axis"] == "depth" and list(summary["sizes"]) == [2, 4]
    assert points[0].metrics["loss"].shape == (3,) and np.all(np.isfinite(points[0].metrics["loss"]))
    assert summary["shift"] == summary["optima"][1] - summary["optima"][0]


def test_the_lab_refuses_a_model_that_does_not_fit_the_data():
    with pytest.raises(ValueError, match="make_model: fails at width 32 .*in_dim: must be a square number of pixels"):
        list(M.run(M.Config(**{**SMALL, "model": "zoo:cnn"})))  # 13 wine features are no square image
    own.register(
        "five", lambda width, rngs: nnx.Sequential(nnx.Linear(5, width, rngs=rngs), nnx.Linear(width, 3, rngs=rngs))
    )
    with pytest.raises(ValueError, match=r"model: fails on the data's inputs of shape \(2, 13\)"):
        list(M.run(M.Config(**{**SMALL, "model": "five"})))
    with pytest.raises(ValueError, match="depths: sweep either widths or depths"):
        M.Config(depths=(2, 4))


def test_data_sources_are_checked_before_training(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="x: holds NaN"):
        sources.from_arrays(np.where(x > 1, np.nan, x), np.arange(20) % 2)
    with pytest.raises(ValueError, match="x: must be a rectangular array"):
        sources.from_arrays([[1.0, 2.0], [3.0]], [0, 1])
    with pytest.raises(ValueError, match=r"y: labels must be in \[0, 1\]"):
        sources.from_arrays(x, np.arange(20) % 3, n_classes=2)
    with pytest.raises(ValueError, match="x: every input is the same"):
        sources.from_arrays(np.ones((20, 3)), np.arange(20) % 2)
    with pytest.raises(ValueError, match="x: .* needs about .* GiB"):
        sources.from_arrays(np.broadcast_to(np.float32(1), (10**6, 10**6)), np.zeros(10**6, int))
    np.savez(tmp_path / "mine.npz", x=x, y=np.arange(20) % 4)
    np.savetxt(tmp_path / "mine.csv", np.c_[x, np.arange(20) % 2], delimiter=",", header="a,b,c,label")
    assert sources.load(str(tmp_path / "mine.npz")).n_classes == 4
    csv = sources.load(str(tmp_path / "mine.csv"))
    assert csv.n_classes == 2 and csv.in_dim == 3 and len(csv.x_train) + len(csv.x_test) == 20
    np.savetxt(tmp_path / "signs.csv", np.c_[x, 2 * (np.arange(20) % 2) - 1], delimiter=",")  # -1/+1 labels
    signs = sources.load(str(tmp_path / "signs.csv"))
    assert signs.n_classes == 2 and set(np.unique(signs.y_train)) == {0, 1}
    with pytest.raises(ValueError, match="data: scikit-learn's bundled sets are"):
        sources.load("sklearn:mnist")


def test_registered_arrays_and_factories_drive_the_lab():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 5)).astype(np.float32)
    sources.register("mine", x, (x[:, 0] > 0).astype(int))
    own.register(
        "mine", lambda width, rngs: nnx.Sequential(nnx.Linear(5, width, rngs=rngs), nnx.Linear(width, 2, rngs=rngs))
    )
    _, summary = _summary(M.Config(model="mine", data="mine", widths=(16, 64), base_width=16, seeds=1))
    assert summary["modules"].split(",")[0] == "output" and np.all(np.isfinite(summary["slopes"]))
    tx = optax.sgd(1.0)  # the optimizer is one optax transformation: it composes with the user's own
    assert isinstance(optax.chain(tx, optimizer_for(configured("mine"), TrainConfig())), optax.GradientTransformation)


def test_depth_below_the_base_depth_gets_a_branch_multiplier_above_one():
    """(L / L0)^-alpha > 1 for L < L0: depth-muP at depth 1 with base depth 2 multiplies the branch by sqrt(2)."""
    config = M.Config(**{**SMALL, "widths": (16,), "base_width": 16, "study": "lr_transfer"}, depths=(1,))
    c = M.model_config(config.replace(depth_scaling="sqrt", base_depth=2), 16, 1)
    model = own.Own(c, rngs=nnx.Rngs(0))
    assert getattr(model.net, "branch") == pytest.approx(2**0.5)  # noqa: B009 (a user module: untyped)


class _Embedder(nnx.Module):
    """Flax's Embed initialises with std 1/sqrt(width): not the O(1) of an SP input layer."""

    def __init__(self, width: int, rngs: nnx.Rngs, in_dim: int = 5, out_dim: int = 3):
        self.embed, self.out = nnx.Embed(in_dim, width, rngs=rngs), nnx.Linear(width, out_dim, rngs=rngs)

    def __call__(self, tokens):
        return self.out(self.embed(tokens))


def test_the_factorys_own_init_exponent_is_measured_not_assumed():
    """muP's input weights keep an O(1) init std in width (TP V Table 3); a Flax Embed starts at width^-1/2, so the
    rescaling must start from the measured exponent: std at width 1024 equals the base width's, the readout's
    falls as 1/width."""
    name = own.register("embedder", _Embedder)
    std = {}
    for width in (64, 1024):
        net = typing.cast(
            _Embedder,
            own.Own(own.configure(own.OwnConfig(model=name, width=width, base_width=64)), rngs=nnx.Rngs(0)).net,
        )
        std[width] = float(jnp.std(net.embed.embedding[...])), float(jnp.std(net.out.kernel[...]))
    assert std[1024][0] / std[64][0] == pytest.approx(1.0, rel=0.05)
    assert std[1024][1] / std[64][1] == pytest.approx(1 / 16, rel=0.1)
    roles = {r.path: r.init_exponent for r in own.infer_roles(_Embedder, 64)}
    assert roles == {"embed/embedding": 0.5, "out/bias": None, "out/kernel": 0.5}
