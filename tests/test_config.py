"""Validated frozen configs (issue 2, item 8): bad values name the field and the allowed range."""

import dataclasses
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.core.config import get_path, leaves
from workbench.data import gaussian_mixture, modular
from workbench.nets.engine import TrainConfig
from workbench.nets.models import MLPConfig


@pytest.mark.parametrize(
    "cls, field, value, words",
    [
        (MLPConfig, "width", 0, "width: must be in [1, 65536]"),
        (MLPConfig, "depth", -1, "depth: must be in [1, 256]"),
        (MLPConfig, "width", 2.5, "width: must be an integer"),
        (MLPConfig, "width", True, "width: must be a number"),
        (MLPConfig, "activation", "relu2", "activation: unknown name"),
        (MLPConfig, "parametrization", "mu", "parametrization: must be one of sp, ntk, mup, mf"),
        (TrainConfig, "lr", 0.0, "lr: must be in (0.0, 10000.0]"),
        (TrainConfig, "lr", -1.0, "lr: must be in (0.0"),
        (TrainConfig, "lr", math.nan, "lr: must be a finite number"),
        (TrainConfig, "lr", math.inf, "lr: must be a finite number"),
        (TrainConfig, "optimizer", "lbfgs", "optimizer: must be one of sgd, momentum, adam, adamw"),
        (TrainConfig, "loss", "hinge", "loss: must be one of mse, xent"),
    ],
)
def test_bad_values_name_field_and_range(cls, field, value, words):
    with pytest.raises(ValueError) as err:
        cls(**{field: value})
    assert words in str(err.value)


def test_data_validation_names_field():
    with pytest.raises(ValueError, match=r"train_fraction: must be in \(0.0, 1.0\)"):
        modular(p=7, train_fraction=1.0)
    with pytest.raises(ValueError, match="class_sizes"):
        gaussian_mixture(class_sizes=(10,))
    with pytest.raises(ValueError, match="class_sizes"):
        gaussian_mixture(class_sizes=(10, 0))


def test_configs_are_frozen_and_round_trip():
    c = MLPConfig(width=256, activation="x * sigmoid(x)")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.width = 3  # pyright: ignore[reportAttributeAccessIssue]  # frozen on purpose: must raise
    assert MLPConfig.from_json(c.to_json()) == c
    assert MLPConfig.from_code(c.to_code()) == c
    with pytest.raises(ValueError, match="not a config code"):
        MLPConfig.from_code("!!garbage!!")
    with pytest.raises(ValueError, match="unknown fields"):
        MLPConfig.from_dict({"wdth": 3})


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.integers(-(10**6), 10**6), st.floats(allow_nan=True, allow_infinity=True)))
def test_width_validator_accepts_exactly_its_range(value):
    ok = (not isinstance(value, float) or (math.isfinite(value) and value.is_integer())) and 1 <= value <= 65536
    try:
        assert MLPConfig(width=value).width == int(value) and ok  # pyright: ignore[reportArgumentType]  # floats too
    except ValueError as err:
        assert not ok and str(err).startswith("width:")


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_lr_validator_accepts_exactly_its_range(value):
    ok = math.isfinite(value) and 0 < value <= 1e4
    try:
        assert TrainConfig(lr=value).lr == value and ok
    except ValueError as err:
        assert not ok and str(err).startswith("lr:")


def test_tuple_fields_are_element_typed_and_scalars_reject_tuples():
    from workbench.experiments import coord_check, criticality

    with pytest.raises(ValueError, match=r"widths: must be an integer in \[1, 65536\], got 64.5"):
        coord_check.Config().replace(widths=(64.5, 128))  # pyright: ignore[reportArgumentType]  # wrong type on purpose
    for bad in (64, "64", None):
        with pytest.raises(ValueError, match="widths: must be a non-empty list of ints"):
            coord_check.Config().replace(widths=bad)  # pyright: ignore[reportArgumentType]  # wrong type on purpose
    assert criticality.Config(sigma_w2s=(1, 2)).sigma_w2s == (1.0, 2.0)
    with pytest.raises(ValueError, match="depth: must be a single int"):
        MLPConfig(depth=(1, 2))  # pyright: ignore[reportArgumentType]  # wrong type on purpose
    with pytest.raises(ValueError, match="width: must be a finite number .* 401 digits"):
        MLPConfig(width=10**400)
    with pytest.raises(ValueError, match="activation: must be a name or an expression"):
        MLPConfig(activation=lambda x: x)  # pyright: ignore[reportArgumentType]  # wrong type on purpose


def test_numpy_scalars_are_accepted():
    import numpy as np

    # numpy scalars where the fields declare int, float and bool: accepted, and normalised to those types
    c = MLPConfig(width=np.int64(64), weight_std=np.float32(1.5), bias=np.bool_(False))  # pyright: ignore[reportArgumentType]
    assert (c.width, c.weight_std, c.bias) == (64, 1.5, False) and type(c.width) is int


def test_shared_fields_have_one_range_everywhere():
    """Every field of every registered experiment named like a shared field (depth, width, lr, steps, ...) has the
    shared range, or its module says why not in OWN_RANGES (a different concept under the same name) or in the
    `why` of its group's limits."""
    from workbench import experiments as registry
    from workbench.core import fields as F

    shared = {
        "depth": F.DEPTH(1),
        "width": F.WIDTH(1),
        "widths": F.WIDTH(1),
        "base_width": F.BASE_WIDTH(1),
        "lr": F.LR(1.0),
        "seed": F.SEED(0),
        "seeds": F.SEEDS(1),
        "steps": F.STEPS(1),
        "activation": F.ACTIVATION("relu"),
        "parametrization": F.PARAMETRIZATION("sp"),
        "optimizer": F.OPTIMIZER("sgd"),
    }
    keys = ("lo", "hi", "lo_open", "choices", "check")
    drift, stale = [], []
    modules = registry.experiments()
    assert len(modules) >= 17  # every module of workbench/experiments, none listed by hand
    for name, module in modules.items():
        own = getattr(module, "OWN_RANGES", {})
        for path, f, _, meta in leaves(module.Config):
            if f.name not in shared:
                continue
            same = all(meta.get(k) == shared[f.name].metadata.get(k) for k in keys)
            why = path in own or "why" in meta  # a group's narrower limits carry their reason
            if not same and not why:
                drift.append(f"{name}.{path}")
            if same and why:
                stale.append(f"{name}.{path}")
    assert not drift, f"ranges that differ from workbench.core.fields without a reason in OWN_RANGES: {drift}"
    assert not stale, f"OWN_RANGES entries for fields that have the shared range: {stale}"


def test_every_experiment_honours_the_contract():
    """Each registered experiment has a Config whose defaults construct, a run, and METRICS naming its record kinds;
    the Sweeps tab offers exactly the sweepable ones."""
    from workbench import experiments as registry
    from workbench.core.experiment import KINDS
    from workbench.experiments import grid_sweep

    for name, module in registry.experiments().items():
        module.Config()
        assert callable(module.run), name
        assert set(module.METRICS) <= set(KINDS) and module.METRICS, name
    offered = set(grid_sweep.EXPERIMENTS)
    assert offered == {n for n, m in registry.experiments().items() if getattr(m, "SWEEPABLE", True)}
    with pytest.raises(ValueError, match="experiment: must be one of"):
        registry.module("no_such_experiment")


def test_groups_take_the_experiments_defaults_paths_and_short_names():
    """Issue 21: an experiment's Config holds `model:` and `train:` groups; a field is set by its path or its short
    name, errors name the path and range, fixed fields are refused, an experiment's narrower limits hold."""
    from workbench.experiments import coord_check as cc
    from workbench.experiments import training_dynamics as T

    c = T.Config().replace(depth=3, **{"model.activation": "tanh", "train.lr": 0.05})
    assert (c.model.depth, c.model.activation, c.model.parametrization, c.train.lr) == (3, "tanh", "ntk", 0.05)
    m = c.model.replace(in_dim=5, width=32, out_dim=1)
    assert (m.depth, m.activation, m.weight_std, m.in_dim, m.width) == (3, "tanh", 1.5, 5, 32)
    with pytest.raises(ValueError, match=r"^model\.width: this experiment sets it itself"):
        T.Config().replace(**{"model.width": 64})
    with pytest.raises(ValueError, match=r"^model\.weight_std: must be in \[0\.1, 4\.0\], got 5\.0"):
        T.Config().replace(weight_std=5.0)
    with pytest.raises(ValueError, match=r"^train\.steps: must be in \[1, 100\], got 101"):
        cc.Config().replace(steps=101)
    with pytest.raises(ValueError, match=r"^model\.depth: must be in \[1, 256\]"):
        T.Config.from_dict({"model": {"depth": 0}})
    with pytest.raises(ValueError, match="nope: not a field of Config"):
        T.Config().replace(nope=1)
    assert T.Config.from_code(c.to_code()) == c and T.Config.from_json(c.to_json()) == c


def test_share_codes_and_exports_made_by_the_flat_configs_still_load():
    """Issue 21: codes and `to_dict` exports made by main before the groups (tests/data/flat_codes_v1.json, written
    by eb3f8d3) load into the nested configs, each old field landing at its path with its value."""
    from workbench import experiments as registry

    old = json.loads((Path(__file__).parent / "data" / "flat_codes_v1.json").read_text())
    assert len(old) >= 8
    for name, made in old.items():
        cls = registry.module(name).Config
        from_code, from_export = cls.from_code(made["code"]), cls.from_dict(made["flat"])
        assert from_code == from_export, name
        for key, value in made["flat"].items():
            got = get_path(from_code, cls.resolve(key))
            assert got == (tuple(value) if isinstance(value, list) else value), (name, key)
    with pytest.raises(ValueError, match="version: config version 3"):
        registry.module("coord_check").Config.from_dict({"version": 3})


def test_tuple_fields_hold_at_most_max_entries():
    """Issue 22, item 9: a 10,000-entry widths list was accepted (10,000 runs); refused by its length."""
    from workbench.core.config import MAX_ENTRIES
    from workbench.experiments import training_dynamics

    with pytest.raises(ValueError, match=f"widths: must hold at most {MAX_ENTRIES} entries, got 10000"):
        training_dynamics.Config().replace(widths=(64,) * 10_000)
