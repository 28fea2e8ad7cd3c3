"""Coordinate check (Yang et al. 2022, TP V, Fig. 5 and App. D.1; microsoft/mup `get_coord_data`):
size of every layer's pre-activations, and of their change, against width for steps 0..k.

Metrics per width record (averaged over seeds; `*_std` are the standard deviations over seeds):
`act_mean_abs[t, l]` = mean |h_l| after t steps for every hidden pre-activation h_1..h_L and the
readout (the quantity mup's coord check draws), `delta_rms[t, l]` = RMS of h_l(t) - h_l(0) over the
batch, `loss[t]` the training loss at step t < k. The final record carries `widths`, `slopes[l]` = least-squares
slope of log(delta_rms) against log(width) at the last step, and `act_slopes[t, l]` the same for
act_mean_abs at every step. muP and mf give slope ~0 (features move by Theta(1) at every width), ntk
~-1/2 (lazy), sp > 0 (blows up with width at a fixed learning rate). One compilation per width.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TypedDict

import jax.numpy as jnp
import numpy as np
from flax import nnx

from workbench.core.analysis import loglog_slope
from workbench.core.config import Config as _Config
from workbench.core.config import group, spec
from workbench.core.experiment import experiment_run, sweep
from workbench.core.fields import SEEDS, WIDTH
from workbench.data import teacher
from workbench.nets.engine import Program, TrainConfig, runs, stacked_params
from workbench.nets.models import MLP, MLPConfig

__all__ = ["Config", "METRICS", "run"]

FIXED = ("momentum", "weight_decay", "beta2", "batch_size", "loss", "record_every", "seed")  # train fields not used


@dataclass(frozen=True)
class Config(_Config):
    widths: tuple[int, ...] = WIDTH((64, 128, 256, 512, 1024), doc="widths to compare")
    model: MLPConfig = group(
        MLPConfig(depth=3, base_width=64, in_dim=16), fixed=("width", "out_dim"), doc="network (its width: widths)"
    )
    train: TrainConfig = group(
        TrainConfig(optimizer="sgd", lr=0.2, steps=3),  # 3, as mup's coord check: at 6 sp overflows (n = 512)
        fixed=FIXED,
        limits={"steps": dict(hi=100, why="every step's activations are traced: (seeds, steps + 1, depth + 1)")},
        doc="training (full batch)",
    )
    seeds: int = SEEDS(2, doc="seeds averaged")
    n_samples: int = spec(32, lo=1, hi=4096, doc="batch size (full batch)")


class Point(TypedDict):
    """One width (seed means; `*_std` over seeds); t = 0..steps, l = hidden layers and the readout."""

    width: int
    act_mean_abs: np.ndarray  # (steps + 1, depth + 1)
    delta_rms: np.ndarray  # (steps + 1, depth + 1)
    act_mean_abs_std: np.ndarray  # (steps + 1, depth + 1)
    delta_rms_std: np.ndarray  # (steps + 1, depth + 1)
    loss: np.ndarray  # (steps,)


class Summary(TypedDict):
    widths: np.ndarray  # (W,)
    slopes: np.ndarray  # (depth + 1,) log-log slope of delta_rms at the last step
    act_slopes: np.ndarray  # (steps + 1, depth + 1)


METRICS = {"point": Point, "summary": Summary}


def layer_sizes(graphdef, params, params0, x):
    """(mean |h_l|, RMS of h_l - h_l(0)) for the hidden pre-activations and the readout."""

    def hidden(p):
        out, h = nnx.merge(graphdef, p)(x, return_hidden=True)
        return h["preacts"] + [out]

    now, start = hidden(params), hidden(params0)
    return (
        jnp.stack([jnp.mean(jnp.abs(a)) for a in now]),
        jnp.stack([jnp.sqrt(jnp.mean((a - b) ** 2)) for a, b in zip(now, start)]),
    )


def measure_seeds(config: Config, width: int, seeds, stop: threading.Event | None = None) -> dict:
    """act (seeds, steps+1, depth+1), delta (same) and loss (seeds, steps) for one width (`Stopped` if `stop`
    is set while it trains)."""
    data = [teacher(n_train=config.n_samples, n_test=1, in_dim=config.model.in_dim, seed=1000 + s) for s in seeds]
    x = jnp.stack([jnp.asarray(d.x_train) for d in data])
    y = jnp.stack([jnp.asarray(d.y_train) for d in data])
    mc = config.model.replace(width=width)
    graphdef, params = stacked_params(MLP, mc, seeds)
    program = Program(graphdef, mc, config.train.optimizer, observe=layer_sizes)
    _, losses, (act, delta) = runs(program, config.train.steps, params, {"lr": [config.train.lr]}, x, y, stop=stop)
    return {"act": np.asarray(act[:, 0]), "delta": np.asarray(delta[:, 0]), "loss": np.asarray(losses[:, 0])}


def measure(config: Config, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(act_mean_abs, delta_rms), each of shape (steps + 1, depth + 1), for one width and seed."""
    m = measure_seeds(config, width, (seed,))
    return m["act"][0], m["delta"][0]


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """Yield one point per width (seed means and stds), then a summary with the slopes."""

    def measure(width):
        m = measure_seeds(config, width, tuple(range(config.seeds)), stop)
        return {
            "width": width,
            "act_mean_abs": m["act"].mean(0),
            "delta_rms": m["delta"].mean(0),
            "act_mean_abs_std": m["act"].std(0),
            "delta_rms_std": m["delta"].std(0),
            "loss": m["loss"].mean(0),
        }

    def summary(points):
        acts, deltas = np.array([p["act_mean_abs"] for p in points]), np.array([p["delta_rms"] for p in points])
        return {
            "widths": np.array(config.widths),
            "slopes": loglog_slope(config.widths, deltas[:, -1]),
            "act_slopes": loglog_slope(config.widths, acts),
        }

    return sweep(
        config.widths, measure, stop, summary=summary, finite_metrics=("loss",), costs=config.widths
    )  # cost ~ width
