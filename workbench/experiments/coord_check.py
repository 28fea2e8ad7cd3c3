"""Coordinate check (Yang et al. 2022, TP V, Fig. 5 and App. D.1): size of activations and of their
change after a few steps, against width, for each parametrization.

Metrics per (width, step): `act_mean_abs[l]` = mean |h_l| of every hidden pre-activation and the
readout, `delta_rms[l]` = RMS of h_l(t) - h_l(0) over a fixed batch, averaged over seeds. The final
record carries `slopes[l]`: least-squares slope of log(delta_rms) against log(width) at the last step.
muP and mf give slope ~0 (features move by Theta(1) at every width), ntk ~-1/2 (lazy), sp > 0
(blows up with width at a fixed learning rate).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from workbench import parametrizations as P
from workbench.config import Config as _Config, spec
from workbench.data import teacher
from workbench.models import MLPConfig, build_mlp
from workbench.optim import OPTIMIZERS
from workbench.training import Record, TrainConfig, train


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


def _hidden(model, x):
    out, hidden = model(x, return_hidden=True)
    return hidden["preacts"] + [out]


def measure(config: Config, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(act_mean_abs, delta_rms), each of shape (steps + 1, depth + 1), for one width and seed."""
    data = teacher(n_train=config.n_samples, n_test=1, in_dim=config.in_dim, seed=1000 + seed)
    model = build_mlp(MLPConfig(in_dim=config.in_dim, width=width, depth=config.depth, out_dim=1,
                                activation=config.activation, parametrization=config.parametrization,
                                base_width=config.base_width), seed=seed)
    x = jnp.asarray(data.x_train)
    h0 = _hidden(model, x)

    def stats(m):
        h = _hidden(m, x)
        return {"act": np.array([float(jnp.mean(jnp.abs(a))) for a in h]),
                "delta": np.array([float(jnp.sqrt(jnp.mean((a - b) ** 2))) for a, b in zip(h, h0)])}

    run = train(model, data, TrainConfig(optimizer=config.optimizer, lr=config.lr, steps=config.steps,
                                         record_every=1, seed=seed), metrics_fn=stats)
    records = [r for r in run if r.status != "compiling"]
    return np.stack([r.metrics["act"] for r in records]), np.stack([r.metrics["delta"] for r in records])


def loglog_slope(widths, values) -> np.ndarray:
    """Least-squares slope of log(values) against log(widths) along the first axis."""
    logw = np.log(np.asarray(widths, float))
    logv = np.log(np.maximum(np.asarray(values, float), 1e-30))
    return np.polyfit(logw, logv.reshape(len(logw), -1), 1)[0].reshape(logv.shape[1:])


def run(config: Config, stop: threading.Event | None = None):
    """Yield one Record per width (metrics averaged over seeds), then one with the slopes."""
    stop = stop or threading.Event()
    deltas = []
    for i, width in enumerate(config.widths):
        if stop.is_set():
            yield Record(i, {}, "stopped")
            return
        per_seed = [measure(config, width, seed) for seed in range(config.seeds)]
        act = np.mean([a for a, _ in per_seed], 0)
        delta = np.mean([d for _, d in per_seed], 0)
        deltas.append(delta[-1])
        yield Record(i, {"width": width, "act_mean_abs": act, "delta_rms": delta}, "running")
    slopes = loglog_slope(config.widths, np.array(deltas))
    yield Record(len(config.widths), {"widths": np.array(config.widths), "slopes": slopes}, "finished")
