"""Parametrization table (issue 2): every parametrization is SP at the base width, and mf is muP moved
along the abc symmetry (TP IV, Sec. 3), so the two train to the same function under SGD and Adam."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from workbench.core import parametrizations as P
from workbench.data import teacher
from workbench.nets.engine import Program, runs, stacked_params
from workbench.nets.models import MLP, MLPConfig

DATA = teacher(n_train=16, n_test=1, in_dim=5, seed=3)
X, Y = jnp.asarray(DATA.x_train)[None], jnp.asarray(DATA.y_train)[None]


def _outputs(graphdef, params, params0, x):
    return nnx.merge(graphdef, params)(x)


def _train(param, optimizer, width, base_width, steps, lr):
    """Outputs at init and after each of `steps` full-batch steps, shape (steps + 1, 16, 1)."""
    config = MLPConfig(
        in_dim=5, width=width, depth=2, out_dim=1, parametrization=param, base_width=base_width, bias_std=0.5
    )
    graphdef, params = stacked_params(MLP, config, (0,))
    program = Program(graphdef, config, optimizer, observe=_outputs)
    _, _, seen = runs(program, steps, params, {"lr": [lr]}, X, Y)
    return np.asarray(seen[0, 0])


@pytest.mark.parametrize("optimizer,lr", [("sgd", 0.1), ("adam", 0.01)])
def test_all_parametrizations_equal_sp_at_base_width(optimizer, lr):
    runs = {p: _train(p, optimizer, 32, 32, 2, lr) for p in P.NAMES}
    for p in P.NAMES:
        np.testing.assert_array_equal(runs[p][0], runs["sp"][0], err_msg=f"{p} init")
        np.testing.assert_allclose(runs[p][1:], runs["sp"][1:], rtol=1e-5, atol=1e-6, err_msg=f"{p} steps")
    assert not np.allclose(runs["sp"][1], runs["sp"][0])  # the step did move the function


@pytest.mark.parametrize("optimizer,lr", [("sgd", 0.1), ("adam", 0.01)])
def test_mf_is_mup_moved_along_the_abc_symmetry(optimizer, lr):
    mup, mf = _train("mup", optimizer, 128, 32, 3, lr), _train("mf", optimizer, 128, 32, 3, lr)
    np.testing.assert_allclose(mf[0], mup[0], rtol=1e-5, atol=1e-6)
    # exact under SGD; Adam's epsilon is not invariant under the symmetry
    np.testing.assert_allclose(mf, mup, rtol=1e-4, atol=1e-5 if optimizer == "sgd" else 2e-4)
    assert np.abs(mup[-1] - mup[0]).max() > 1e-2


def test_table_reduces_to_sp_at_base_width_and_rejects_unknown_names():
    for p in P.NAMES:
        for role in P.ROLES:
            assert P.multiplier(p, role, 1.0) == 1.0 and P.init_std(p, role, 1.0, 0.3) == 0.3
            assert P.lr_scale(p, role, 1.0, "adam") == P.lr_scale(p, role, 1.0, "sgd") == 1.0
    with pytest.raises(ValueError, match="parametrization: must be one of sp, ntk, mup, mf"):
        P.check_name("muP")
    with pytest.raises(ValueError, match="optimizer"):
        P.lr_scale("mup", "hidden", 2.0, "lbfgs")
