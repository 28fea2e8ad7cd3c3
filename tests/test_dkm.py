"""Deep kernel machines (workbench.theory.dkm, Yang et al. ICML 2023): the nu -> infinity limit is the NNGP (Grams at
distance 1/nu, predictions equal to an independently computed NNGP posterior) after Adam, the KL term against numpy,
plain gradient descent through the engine never lowers the objective, and bad inputs are refused."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from workbench.core import float64
from workbench.core.analysis import loglog_slope
from workbench.experiments import deep_kernel_machine as E
from workbench.nets import engine
from workbench.theory import dkm
from workbench.theory.kernels import mlp_kernels

N, D, LAYERS, NOISE, BIAS = 10, 3, 2, 0.1, 0.3
NUS = (1e2, 1e3, 1e4, 1e6)
RNG = np.random.default_rng(0)
X = RNG.normal(size=(N, D))
Y = np.sin(X[:, :1]) + 0.1 * RNG.normal(size=(N, 1))
X_TEST = RNG.normal(size=(6, D))


def _train(config, z, x, y, nu: float, steps: int, optimizer: str = "adam", lr: float = 0.03):
    """(graphdef, trained params, losses (steps,)) of full-batch training through the engine (float64)."""
    graphdef, params = nnx.split(dkm.build_dkm(config, z, nu), nnx.Param)
    program = engine.Program(graphdef, config, optimizer=optimizer, objective=dkm.loss)
    lift = lambda a: jax.tree.map(lambda v: jnp.asarray(v)[None], a)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "scatter inputs have incompatible types", FutureWarning)
        out, losses, _ = engine.runs(program, steps, lift(params), {"lr": np.array([lr])}, lift(x), lift(y))
    return graphdef, jax.tree.map(lambda v: v[0, 0], out), np.asarray(losses[0, 0])


def _fits():
    """DKMs with every training point an inducing point, at each of NUS: predictions, Grams, losses."""
    config = dkm.DKMConfig(in_dim=D, inducing=N, layers=LAYERS, out_dim=1, noise=NOISE, bias_std=BIAS)

    @jax.jit
    def evaluate(params):
        learned, nngp = dkm.grams(graphdef, params)
        mean = dkm.predict(graphdef, params, X, Y, X_TEST).mean
        return {
            "mean": mean,
            "learned": learned,
            "nngp": nngp,
            "kl": dkm.objective_terms(graphdef, params, X, Y)["kl_layers"],
        }

    out = []
    for nu in NUS:
        graphdef, params, _ = _train(config, X, X, Y, nu, 150)
        out.append({**evaluate(params), "losses": _train(config, X, X, Y, nu, 40, "sgd", 1.0)[2]})
    return out


@pytest.fixture(scope="module")
def fits():
    return float64.call(_fits)


def test_large_nu_predicts_the_nngp_posterior(fits):
    """nu = 1e6, every training point inducing: the NNGP posterior mean of an MLP of L + 1 hidden layers (the
    workbench's analytic NNGP, solved in numpy) to 1e-4."""
    k = np.asarray(mlp_kernels(np.concatenate([X, X_TEST]), depth=LAYERS + 1, bias_std=BIAS).nngp, np.float64)
    posterior = k[N:, :N] @ np.linalg.solve(k[:N, :N] + NOISE * np.eye(N), Y)
    assert np.max(np.abs(fits[-1]["mean"] - posterior)) < 1e-4
    assert np.max(np.abs(fits[0]["mean"] - posterior)) > 1e-3  # nu = 100 has learned a representation


def test_grams_tend_to_the_nngp_as_one_over_nu(fits):
    distance = np.array(
        [np.linalg.norm(f["learned"] - f["nngp"], axis=(1, 2)) / np.linalg.norm(f["nngp"], axis=(1, 2)) for f in fits]
    )
    slope = loglog_slope(np.array(NUS), distance)
    assert np.all(np.abs(slope + 1) < 0.05), slope
    assert np.all(distance[-1] < 1e-5)


def test_kl_term_against_numpy(fits):
    """The first layer's whitened KL equals KL(N(0, G_1) || N(0, K(G_0))) computed from the Grams."""
    for f in fits[:2]:
        g, k = np.asarray(f["learned"][0]), np.asarray(f["nngp"][0])
        _, logdet_k = np.linalg.slogdet(k)
        _, logdet_g = np.linalg.slogdet(g)
        kl = 0.5 * (np.trace(np.linalg.solve(k, g)) - N + logdet_k - logdet_g)
        assert abs(float(f["kl"][0]) - kl) < 1e-6 * max(1.0, kl)


def test_objective_never_decreases(fits):
    """Plain gradient descent on -objective / n (float32 log of the float64 objective) at every nu."""
    for f in fits:
        assert np.all(np.diff(f["losses"]) <= 1e-6 * np.abs(f["losses"][:-1])), np.diff(f["losses"]).max()
    assert fits[0]["losses"][-1] < fits[0]["losses"][0] - 1e-3


def test_categorical_objective_never_decreases():
    """The softmax likelihood (fixed Monte Carlo draws: a deterministic objective) on the two-sines toy."""
    data, index = E._task_data("two_sines", 24, 8, 6, 0)
    config = dkm.DKMConfig(inducing=6, layers=1, out_dim=2, likelihood="categorical", samples=4, bias_std=BIAS)
    x = np.asarray(data.x_train, np.float64)
    y = np.eye(2)[data.y_train]
    _, _, losses = float64.call(_train, config, x[index], x, y, 1.0, 40, "sgd", 1.0)
    assert np.all(np.diff(losses) <= 1e-6 * np.abs(losses[:-1]))
    assert losses[-1] < losses[0] - 1e-3


def test_bad_inputs_are_refused():
    config = dkm.DKMConfig(in_dim=D, inducing=N, layers=1)
    with pytest.raises(ValueError, match="z: must have shape"):
        dkm.build_dkm(config, X[:, :2], 1.0)
    with pytest.raises(ValueError, match="nu"):
        dkm.build_dkm(config, X, -1.0)
    graphdef, params = nnx.split(dkm.build_dkm(config, X, 1.0), nnx.Param)
    with pytest.raises(ValueError, match="x: the DKM takes 3 input columns"):
        dkm.objective_terms(graphdef, params, X[:, :2], Y)
    with pytest.raises(ValueError, match="y: must have shape"):
        dkm.objective_terms(graphdef, params, X, np.ones((N, 2)))
    with pytest.raises(ValueError, match="likelihood"):
        dkm.DKMConfig(likelihood="poisson")
    with pytest.raises(ValueError, match="inducing: must be at most n_train"):
        E.Config(n_train=10, inducing=20)
    with pytest.raises(ValueError, match="nu"):
        E.Config(nu=1e7)
