"""Lazy versus rich training against width (Chizat et al. 2019; Yang & Hu 2021, TP IV, Sec. 5 and Fig. 1):
how far features and the tangent kernel move during SGD training, per parametrization, and how close the
finite network stays to the infinite-width NTK prediction (Jacot et al. 2018; Lee et al. 2019).

Every (parametrization, width) trains `seeds` networks by full-batch SGD on a teacher regression (MSE).
Metrics per record: `parametrization`, `width`, `feature_movement` = ||x_L(T) - x_L(0)||_F / ||x_L(0)||_F
of the last hidden features on the training inputs, `feature_curve[t]` (the same after t steps),
`ntk_change` = ||Theta_T - Theta_0||_F / ||Theta_0||_F of the empirical NTK (`workbench.theory.kernels.empirical_ntk`,
SGD scaling), `ntk_gap` = RMS over test inputs of f_T - f_NTK divided by RMS of f_NTK - f_0, where f_NTK is
the infinite-width gradient-flow prediction at t = steps x lr from the same f_0 (`kernels.gradient_flow`;
NaN for mup and mf, which have no fixed-kernel limit), and `train_loss`. Seed means throughout. The final
record carries `widths`, `parametrizations`, arrays (parametrization, width) of the three quantities and
their log-log `*_slope` per parametrization. Theory: for ntk (lazy) feature movement slope -1/2, NTK change
between -1/2 (Lee et al. 2019's bound) and -1 (Dyer & Gur-Ari 2019's O(1/n) rate); 0 for mup and mf (rich).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TypedDict

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from workbench.core import parametrizations as P
from workbench.core.analysis import loglog_slope
from workbench.core.config import Config as _Config
from workbench.core.config import group, spec
from workbench.core.experiment import experiment_run, sweep
from workbench.core.fields import SEEDS, WIDTH
from workbench.data import teacher
from workbench.nets.engine import Program, TrainConfig, runs, stacked_params
from workbench.nets.models import MLP, MLPConfig
from workbench.theory.kernels import empirical_ntk, gradient_flow, limit_kernels

__all__ = ["Config", "METRICS", "run"]

OWN_RANGES = {  # fields named like a shared field (workbench.core.fields) whose range differs, and why
    "parametrization": "one parametrization of the abc table or all four",
}
UNUSED = ("optimizer", "momentum", "weight_decay", "beta2", "batch_size", "loss", "record_every", "seed")


@dataclass(frozen=True)
class Config(_Config):
    """Widths and parametrizations to compare under full-batch SGD."""

    widths: tuple[int, ...] = WIDTH((64, 128, 256, 512, 1024), doc="widths to compare")
    parametrization: str = spec("all", choices=("all",) + P.NAMES, doc="one parametrization or all four")
    model: MLPConfig = group(
        MLPConfig(depth=2, base_width=64, in_dim=8),
        fixed=("width", "out_dim", "parametrization"),
        doc="network (its width: widths)",
    )
    train: TrainConfig = group(
        TrainConfig(lr=0.1, steps=100),
        fixed=UNUSED,
        limits={"steps": dict(hi=10_000, why="every step's feature movement is traced per (parametrization, width)")},
        doc="full-batch SGD",
    )
    seeds: int = SEEDS(2, doc="networks averaged")
    n_train: int = spec(32, lo=2, hi=1024, log=True, doc="training points")

    @property
    def parametrizations(self) -> tuple[str, ...]:
        return P.NAMES if self.parametrization == "all" else (self.parametrization,)


class Point(TypedDict):
    """One (parametrization, width), seed means."""

    parametrization: str
    width: int
    feature_movement: float
    feature_curve: np.ndarray  # (steps + 1,)
    ntk_change: float
    ntk_gap: float  # NaN for mup and mf
    train_loss: float


class Summary(TypedDict):
    widths: np.ndarray  # (W,)
    parametrizations: tuple  # (P,)
    feature_movement: np.ndarray  # (P, W)
    ntk_change: np.ndarray  # (P, W)
    ntk_gap: np.ndarray  # (P, W)
    feature_movement_slope: np.ndarray  # (P,)
    ntk_change_slope: np.ndarray  # (P,)
    ntk_gap_slope: np.ndarray  # (P,)


METRICS = {"point": Point, "summary": Summary}


def data(config: Config):
    return teacher(n_train=config.n_train, n_test=64, in_dim=config.model.in_dim, depth=1, seed=7)


def feature_movement(graphdef, params, params0, x):
    """||x_L - x_L(0)||_F / ||x_L(0)||_F for the last hidden features."""
    last = lambda p: nnx.merge(graphdef, p)(x, return_hidden=True)[1]["features"][-1]
    now, start = last(params), last(params0)
    return jnp.linalg.norm(now - start) / jnp.linalg.norm(start)


def rel_change(a, b) -> float:
    return float(jnp.linalg.norm(b - a) / jnp.linalg.norm(a))


def ntk_gap(mc: MLPConfig, model0, model, d, t) -> float:
    """RMS(f_T - f_NTK) / RMS(f_NTK - f_0) on the test inputs; NaN without a fixed-kernel limit."""
    try:
        k_train, k_test_train = limit_kernels(mc, d.x_train), limit_kernels(mc, d.x_test, d.x_train)
    except ValueError:
        return float("nan")
    f0_train, f0_test = model0(d.x_train), model0(d.x_test)
    pred = gradient_flow(k_train, k_test_train, d.y_train, t, f0_train=f0_train, f0_test=f0_test).mean
    return float(jnp.sqrt(jnp.mean((model(d.x_test) - pred) ** 2) / jnp.mean((pred - f0_test) ** 2)))


def measure(config: Config, parametrization: str, width: int, stop: threading.Event | None = None) -> dict:
    """Seed means of the metrics for one (parametrization, width); `Stopped` if `stop` is set while it trains."""
    d = data(config)
    seeds = tuple(range(config.seeds))
    mc = config.model.replace(width=width, parametrization=parametrization)
    graphdef, params = stacked_params(MLP, mc, seeds)
    x = jnp.broadcast_to(jnp.asarray(d.x_train), (len(seeds),) + d.x_train.shape)
    y = jnp.broadcast_to(jnp.asarray(d.y_train), (len(seeds),) + d.y_train.shape)
    program = Program(graphdef, mc, observe=feature_movement)
    steps, lr = config.train.steps, config.train.lr
    final, losses, curves = runs(program, steps + 1, params, {"lr": [lr]}, x, y, stop=stop)
    ntk, gap = [], []
    for s in seeds:
        model0 = nnx.merge(graphdef, jax.tree.map(lambda a, s=s: a[s], params))
        model = nnx.merge(graphdef, jax.tree.map(lambda a, s=s: a[s, 0], final))
        ntk.append(rel_change(empirical_ntk(model0, d.x_train), empirical_ntk(model, d.x_train)))
        gap.append(ntk_gap(mc, model0, model, d, steps * lr))
    curve = np.asarray(curves[:, 0, :-1]).mean(0)  # after 0..steps steps
    return {
        "parametrization": parametrization,
        "width": width,
        "feature_movement": float(curve[-1]),
        "feature_curve": curve,
        "ntk_change": float(np.mean(ntk)),
        "ntk_gap": float(np.mean(gap)),
        "train_loss": float(np.asarray(losses[:, 0, -1]).mean()),
    }


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """Yield one point per (parametrization, width), then a summary with the arrays and slopes; a
    non-finite training loss ends the run "diverged"."""
    jobs = [(p, width) for p in config.parametrizations for width in config.widths]
    names = ("feature_movement", "ntk_change", "ntk_gap")

    def summary(points):
        shape = (len(config.parametrizations), len(config.widths))
        table = {k: np.array([p[k] for p in points]).reshape(shape) for k in names}
        slopes = {f"{k}_slope": loglog_slope(config.widths, table[k].T) for k in names}
        return {"widths": np.array(config.widths), "parametrizations": config.parametrizations, **table, **slopes}

    finite = ("train_loss", "feature_movement")
    costs = [width for _, width in jobs]  # the same steps for every job: cost ~ width
    return sweep(
        jobs, lambda job: measure(config, *job, stop=stop), stop, summary=summary, finite_metrics=finite, costs=costs
    )
