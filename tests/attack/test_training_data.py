"""Attacks on a training run's data against its model (`check_training`): labels, shapes, NaNs and losses
that do not fit are refused before the first step, naming the argument."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from workbench import data
from workbench.core.checks import check_training
from workbench.nets.models import MLPConfig

from .oracle import assert_no_problems, judge

pytestmark = pytest.mark.timeout(600)


def _dataset(**changes) -> data.Dataset:
    base = data.playground("gauss", n=16)
    return dataclasses.replace(base, **changes)


TRAINING = [  # (what, model config, data set, loss, the argument a refusal must name or None when valid)
    ("valid", MLPConfig(out_dim=2), _dataset(), "mse", None),
    ("valid xent", MLPConfig(out_dim=2), _dataset(), "xent", None),
    ("valid regression", MLPConfig(in_dim=1), data.sine(8, 8), "mse", None),
    ("out_dim 1 on 2 classes", MLPConfig(out_dim=1), _dataset(), "mse", "out_dim"),
    ("label = n_classes", MLPConfig(out_dim=2), _dataset(y_train=np.full(8, 2, np.int32)), "mse", "y_train"),
    ("negative label", MLPConfig(out_dim=2), _dataset(y_test=np.full(8, -1, np.int32)), "xent", "y_test"),
    ("float labels", MLPConfig(out_dim=2), _dataset(y_train=np.full(8, np.nan)), "mse", "y_train"),
    ("NaN inputs", MLPConfig(out_dim=2), _dataset(x_train=np.full((8, 2), np.nan, np.float32)), "mse", "x_train"),
    (
        "NaN targets",
        MLPConfig(in_dim=1),
        dataclasses.replace(data.sine(8, 8), y_train=np.full((8, 1), np.nan)),
        "mse",
        "y_train",
    ),
    (
        "empty train",
        MLPConfig(out_dim=2),
        _dataset(x_train=np.zeros((0, 2), np.float32), y_train=np.zeros(0, np.int32)),
        "mse",
        "x_train",
    ),
    ("wrong in_dim", MLPConfig(in_dim=3, out_dim=2), _dataset(), "mse", "in_dim"),
    ("xent on regression", MLPConfig(in_dim=1), data.sine(8, 8), "xent", "loss"),
    ("one label per point", MLPConfig(out_dim=2), _dataset(y_train=np.zeros(3, np.int32)), "mse", "y_train"),
]


@pytest.mark.parametrize("case", TRAINING, ids=lambda c: c[0])
def test_training_data_is_checked_against_the_model_before_the_first_step(case):
    what, model_config, dataset, loss, name = case
    problems: list = []
    judge(what, name or what, lambda: check_training(model_config, dataset, loss), name is None, problems=problems)
    assert_no_problems(problems)


def test_log_activation_is_refused_before_training():
    """log(x) is NaN for x <= 0, which Gaussian pre-activations always reach: refused when the config is built."""
    with pytest.raises(ValueError, match=r"activation: 'log\(x\)' is not finite at x = -20"):
        MLPConfig(activation="log(x)")
