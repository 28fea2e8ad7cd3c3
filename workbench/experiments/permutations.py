"""Permutations learned exactly by ensembles of wide two-layer ReLU networks (Giapitzakis, Back de Luca &
Fountoulakis 2025, arXiv 2502.16763; code `opallab/permlearn`): the models needed for accuracy >= 1 - delta on
inputs with two ones, against k, from infinite-width members (`workbench.theory.permutations`) or from finite
networks trained by the engine (`engine.runs`, members vmapped), beside the repository's counts.

Finite networks: `MLPConfig(depth=1, bias=False)` on the k basis vectors e_i -> P e_i, full-batch SGD on
0.5 mean ||f - y||^2. "sp" is the repository's network (init std sigma/sqrt(fan_in), no multipliers); "ntk" the
paper's (unit-variance readout behind 1/sqrt(width); base_width = k makes its tangent kernel k x the NTK of
`mlp_kernels(parametrization="ntk")`). The learning rate is k / lambda_max of the network's limiting tangent kernel
(`limit_kernels`: each mode's linearised contraction 1 - lambda/lambda_max), and the steps bring the slowest mode
to `TOL` of its start: training converges, as the infinite-width members assume. Members are trained `BLOCK` at a
time until the ensemble's accuracy reaches 1 - delta or `max_models` (the repository's loop).
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass
from typing import TypedDict

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from workbench.core.config import Config as _Config
from workbench.core.config import spec
from workbench.core.experiment import experiment_run, sweep
from workbench.core.fields import SEED, SEEDS
from workbench.nets.engine import Program, runs, stacked_params
from workbench.nets.models import MLP, MLPConfig
from workbench.theory import permutations as PM
from workbench.theory.kernels import limit_kernels

__all__ = ["Config", "METRICS", "run"]

OWN_RANGES = {  # fields named like a shared field (workbench.core.fields) whose range differs, and why
    "width": "0 selects the infinite-width ensemble",
    "parametrization": "only sp and ntk train in a fixed-kernel limit, which the infinite-width members need",
}
K_GRID = (5, 10, 15, 20, 25, 30, 35, 40)  # the k of the sweep below the config's k
BLOCK = 32  # finite members trained per call of `runs`
TOL = 1e-6  # the slowest mode's residual after training, relative to its start


@dataclass(frozen=True)
class Config(_Config):
    """The task's k, delta and test set; the members: infinite width (width 0) or finite networks."""

    k: int = spec(20, lo=3, hi=PM.MAX_K, doc="largest permutation length k (the sweep: 5, 10, ... below it, and k)")
    delta: float = spec(0.1, lo=1e-3, hi=0.5, log=True, doc="allowed error: accuracy >= 1 - delta")
    width: int = spec(0, lo=0, hi=65_536, doc="hidden width n of the finite networks; 0: infinite width")
    parametrization: str = spec("sp", choices=PM.PARAMETRIZATIONS, doc="sp: the repository's; ntk: the paper's")
    weight_std: float = spec(1.0, lo=0.25, hi=4.0, doc="sigma_w: init std sigma_w / sqrt(fan_in)")
    seeds: int = SEEDS(10, doc="trials: a permutation, a test set and an ensemble each")
    n_tests: int = spec(1000, lo=10, hi=100_000, log=True, doc="test inputs drawn (two ones each)")
    max_models: int = spec(1000, lo=1, hi=20_000, log=True, doc="largest ensemble tried")
    seed: int = SEED(0)

    @property
    def ks(self) -> tuple[int, ...]:
        return tuple(sorted({g for g in K_GRID if g < self.k} | {self.k}))


class Point(TypedDict):
    """One k: every trial's models needed and accuracy curve."""

    k: int
    needed: np.ndarray  # (S,) models needed per trial, NaN where max_models did not reach 1 - delta
    needed_mean: float  # over the trials that reached it (NaN if none)
    needed_sd: float
    accuracy: np.ndarray  # (S, M) accuracy of the first 1..M members, NaN after a trial's end
    repository: float  # the repository's count at this k (NaN where it has none)
    train_loss: float  # largest final training loss of the finite members (0 at infinite width)


class Summary(TypedDict):
    ks: np.ndarray  # (K,)
    needed: np.ndarray  # (K, S)
    needed_mean: np.ndarray  # (K,)
    needed_sd: np.ndarray  # (K,)
    repository: np.ndarray  # (K,)
    rate_k_log_k: np.ndarray  # (K,) c k log k fitted to needed_mean (one input, the paper)
    rate_k2: np.ndarray  # (K,) c k^2 fitted (all inputs at once)


METRICS = {"point": Point, "summary": Summary}


def model_config(config: Config, k: int) -> MLPConfig:
    """The finite member's network for permutations of length k."""
    base = k if config.parametrization == "ntk" else config.width
    return MLPConfig(
        in_dim=k,
        out_dim=k,
        width=config.width,
        depth=1,
        parametrization=config.parametrization,
        base_width=base,
        weight_std=config.weight_std,
        bias=False,
    )


def schedule(mc: MLPConfig) -> tuple[float, int]:
    """(lr, steps): lr = N / lambda_max of the limiting tangent kernel on the N = k basis vectors, steps until
    the slowest mode, contracting by 1 - lambda_min/lambda_max a step, is below TOL."""
    lam = np.linalg.eigvalsh(np.asarray(limit_kernels(mc, np.eye(mc.in_dim)).ntk, float))
    return mc.in_dim / lam[-1], math.ceil(math.log(1 / TOL) / -math.log1p(-lam[0] / lam[-1]))


@functools.partial(jax.jit, static_argnums=0)
def _outputs(graphdef: nnx.GraphDef, params: nnx.State, x: jax.Array) -> jax.Array:
    """Every member's outputs (B, T, k) on x (T, k)."""
    return jax.vmap(lambda p: nnx.merge(graphdef, p)(x))(params)


def finite_ensemble(config: Config, k: int, trial: int, stop: threading.Event | None) -> tuple[int, np.ndarray, float]:
    """(models needed (0: not reached), accuracy curve, largest final training loss) of finite networks on a
    random permutation; members trained BLOCK at a time by `runs`."""
    rng = np.random.default_rng([config.seed, trial])
    perm = rng.permutation(k)  # P e_i = e_perm[i]
    mc = model_config(config, k)
    lr, steps = schedule(mc)
    pairs, x_test = PM.two_hot_inputs(k)
    weights = PM.draw_counts(k, config.n_tests, (config.seed + trial) % 2**31)
    targets = np.zeros((len(pairs), k), int)
    targets[np.arange(len(pairs))[:, None], perm[pairs]] = 1
    x = jnp.broadcast_to(jnp.eye(k), (BLOCK, k, k))
    y = jnp.broadcast_to(jnp.eye(k)[perm], (BLOCK, k, k))
    total, curve, loss = np.zeros((len(pairs), k)), [], 0.0
    while len(curve) * BLOCK < config.max_models:
        graphdef, params0 = stacked_params(MLP, mc, rng.integers(0, 2**31 - 1, BLOCK))
        final, losses, _ = runs(Program(graphdef, mc), steps, params0, {"lr": [lr]}, x, y, stop=stop)
        loss = float(np.max([loss, float(jnp.max(losses[:, 0, -1]))]))  # NaN propagates (builtin max drops it)
        out = np.asarray(_outputs(graphdef, jax.tree.map(lambda a: a[:, 0], final), jnp.asarray(x_test)), float)
        out[0] += total
        curve.append(PM.ensemble_accuracy(out, targets, weights))
        total = out.sum(0)
        if PM.models_needed(curve[-1], config.delta):
            break
    accuracy = np.concatenate(curve)[: config.max_models]
    return PM.models_needed(accuracy, config.delta), accuracy, loss


def measure(config: Config, k: int, stop: threading.Event | None = None) -> dict:
    """Every trial's models needed and accuracy curve at k."""
    found = []
    for trial in range(config.seeds):
        if config.width:
            found.append(finite_ensemble(config, k, trial, stop))
        else:
            needed, acc = PM.infinite_ensemble(
                k,
                config.delta,
                parametrization=config.parametrization,
                weight_std=config.weight_std,
                n_tests=config.n_tests,
                max_models=config.max_models,
                seed=(config.seed + trial) % 2**31,
            )
            found.append((needed, acc, 0.0))
    needed = np.array([n if n else np.nan for n, _, _ in found])
    accuracy = np.full((len(found), max(len(a) for _, a, _ in found)), np.nan)
    for row, (_, a, _) in zip(accuracy, found):
        row[: len(a)] = a
    reached = needed[np.isfinite(needed)]
    return {
        "k": k,
        "needed": needed,
        "needed_mean": float(reached.mean()) if reached.size else float("nan"),
        "needed_sd": float(reached.std(ddof=1)) if reached.size > 1 else float("nan"),
        "accuracy": accuracy,
        "repository": float(PM.REPOSITORY.get(k, np.nan)),
        "train_loss": float(np.max([loss for _, _, loss in found])),
    }


def summary(points: list[dict]) -> dict:
    """The points as arrays, and the paper's rates fitted to the mean counts."""
    ks = np.array([p["k"] for p in points], float)
    mean = np.array([p["needed_mean"] for p in points])
    rates = PM.rate_curves(ks, np.nan_to_num(mean)) if np.any(mean > 0) else {}
    return {
        "ks": ks,
        "needed": np.stack([p["needed"] for p in points]),
        "needed_mean": mean,
        "needed_sd": np.array([p["needed_sd"] for p in points]),
        "repository": np.array([p["repository"] for p in points]),
        "rate_k_log_k": rates.get("k log k", np.full(len(ks), np.nan)),
        "rate_k2": rates.get("k^2", np.full(len(ks), np.nan)),
    }


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """One point per k of `config.ks`, then the summary; a non-finite training loss ends it "diverged"."""
    costs = [k**3 * max(config.width, 1) for k in config.ks]
    return sweep(
        config.ks,
        lambda k: measure(config, k, stop),
        stop,
        summary=summary,
        finite_metrics=("train_loss",),
        costs=costs,
    )
