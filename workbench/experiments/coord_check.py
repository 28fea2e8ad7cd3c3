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

import jax.numpy as jnp
import numpy as np
from flax import nnx

from workbench import parametrizations as P
from workbench.config import Config as _Config, spec
from workbench.data import teacher
from workbench.experiments.batched import compiled_runs, stacked_params
from workbench.models import MLPConfig
from workbench.optim import OPTIMIZERS
from workbench.training import Record


@dataclass(frozen=True)
class Config(_Config):
    widths: tuple = spec((64, 128, 256, 512, 1024), lo=1, hi=16_384, doc="widths to compare")
    base_width: int = spec(64, lo=1, hi=16_384, log=True, doc="base width n0")
    depth: int = spec(3, lo=1, hi=16, doc="hidden layers")
    activation: str = spec("relu", check="activation", doc="nonlinearity")
    parametrization: str = spec("mup", choices=P.NAMES, doc="abc-parametrization")
    optimizer: str = spec("sgd", choices=OPTIMIZERS, doc="optimizer")
    lr: float = spec(0.2, lo=0.0, lo_open=True, hi=100.0, log=True, doc="base learning rate")
    steps: int = spec(6, lo=1, hi=100, doc="steps after init")
    seeds: int = spec(2, lo=1, hi=16, doc="seeds averaged")
    n_samples: int = spec(32, lo=1, hi=4096, doc="batch size (full batch)")
    in_dim: int = spec(16, lo=1, hi=4096, doc="input dimension")


def layer_sizes(graphdef, params, params0, x):
    """(mean |h_l|, RMS of h_l - h_l(0)) for the hidden pre-activations and the readout."""
    def hidden(p):
        out, h = nnx.merge(graphdef, p)(x, return_hidden=True)
        return h["preacts"] + [out]

    now, start = hidden(params), hidden(params0)
    return (jnp.stack([jnp.mean(jnp.abs(a)) for a in now]),
            jnp.stack([jnp.sqrt(jnp.mean((a - b) ** 2)) for a, b in zip(now, start)]))


def model_config(config: Config, width: int) -> MLPConfig:
    return MLPConfig(in_dim=config.in_dim, width=width, depth=config.depth, out_dim=1,
                     activation=config.activation, parametrization=config.parametrization,
                     base_width=config.base_width)


def measure_seeds(config: Config, width: int, seeds) -> dict:
    """act (seeds, steps+1, depth+1), delta (same) and loss (seeds, steps) for one width."""
    data = [teacher(n_train=config.n_samples, n_test=1, in_dim=config.in_dim, seed=1000 + s) for s in seeds]
    x = jnp.stack([jnp.asarray(d.x_train) for d in data])
    y = jnp.stack([jnp.asarray(d.y_train) for d in data])
    mc = model_config(config, width)
    graphdef, params = stacked_params(mc, seeds)
    fn = compiled_runs(graphdef, mc, config.optimizer, "mse", config.steps, layer_sizes)
    _, losses, (act, delta) = fn(params, jnp.array([config.lr]), x, y)
    return {"act": np.asarray(act[:, 0]), "delta": np.asarray(delta[:, 0]), "loss": np.asarray(losses[:, 0])}


def measure(config: Config, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(act_mean_abs, delta_rms), each of shape (steps + 1, depth + 1), for one width and seed."""
    m = measure_seeds(config, width, (seed,))
    return m["act"][0], m["delta"][0]


def loglog_slope(widths, values) -> np.ndarray:
    """Least-squares slope of log(values) against log(widths) along the first axis (NaN if any is not finite)."""
    logw = np.log(np.asarray(widths, float))
    with np.errstate(divide="ignore", invalid="ignore"):
        logv = np.log(np.maximum(np.asarray(values, float), 1e-30))
    flat = logv.reshape(len(logw), -1)
    slopes = np.polyfit(logw, np.where(np.isfinite(flat), flat, 0.0), 1)[0]
    slopes[~np.all(np.isfinite(flat), axis=0)] = np.nan
    return slopes.reshape(logv.shape[1:])


def run(config: Config, stop: threading.Event | None = None):
    """Yield one Record per width (seed means and stds), then one with the slopes."""
    stop = stop or threading.Event()
    acts, deltas = [], []
    for i, width in enumerate(config.widths):
        if stop.is_set():
            yield Record(i, {}, "stopped")
            return
        m = measure_seeds(config, width, tuple(range(config.seeds)))
        acts.append(m["act"].mean(0))
        deltas.append(m["delta"].mean(0))
        yield Record(i, {"width": width, "act_mean_abs": acts[-1], "delta_rms": deltas[-1],
                         "act_mean_abs_std": m["act"].std(0), "delta_rms_std": m["delta"].std(0),
                         "loss": m["loss"].mean(0)}, "running")
    yield Record(len(config.widths), {"widths": np.array(config.widths),
                                      "slopes": loglog_slope(config.widths, np.array(deltas)[:, -1]),
                                      "act_slopes": loglog_slope(config.widths, np.array(acts))}, "finished")
