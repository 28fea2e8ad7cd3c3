"""Learning-rate transfer (Yang et al. 2022, TP V, Fig. 1 and Fig. 3): training loss after T steps
against log2(base learning rate) for several widths. Under muP the optimum stays put as the width
grows; under SP it moves (to smaller learning rates for Adam).

All learning rates of one width train in a single compiled, vmapped call (the optimizer takes lr as
an injected hyperparameter), so each width compiles once. Metrics per width record: `width`,
`log2_lrs[r]`, `loss[r]` (training loss after `steps` steps, seed mean; NaN where a run diverged),
`curves[r, t]` (loss before step t+1, seed mean) and `optimum_log2_lr`. The final record carries
`widths`, `optima[w]` (log2 of the best learning rate per width) and `shift` = (optimum at the widest
minus at the narrowest) in grid steps.

The defaults (T = 30 Adam steps on 1024 teacher points) measure early training, where the loss is far
from zero: after a few hundred steps every width interpolates the data, the loss is ~1e-6 over a wide
band of learning rates and its argmin is noise (widths 64-512 then scatter over 3 grid steps under muP).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TypedDict

import jax.numpy as jnp
import numpy as np

from workbench.core.config import Config as _Config
from workbench.core.config import group, spec
from workbench.core.experiment import experiment_run, sweep
from workbench.core.fields import SEEDS, WIDTH
from workbench.data import digits, teacher
from workbench.nets.engine import Program, TrainConfig, runs, stacked_params
from workbench.nets.models import MLP, MLPConfig

__all__ = ["Config", "METRICS", "run"]

UNUSED = ("lr", "momentum", "weight_decay", "beta2", "batch_size", "loss", "record_every", "seed")


@dataclass(frozen=True)
class Config(_Config):
    """A grid of learning rates 2**log2_lr_min .. 2**log2_lr_max trained at several widths."""

    widths: tuple[int, ...] = WIDTH((64, 128, 256, 512), doc="widths to compare")
    model: MLPConfig = group(
        MLPConfig(depth=3, base_width=64, zero_readout=True),
        fixed=("width", "in_dim", "out_dim"),
        doc="network (its width: widths; its input: the data)",
    )
    train: TrainConfig = group(
        TrainConfig(optimizer="adam", steps=30),
        fixed=UNUSED,
        limits={"steps": dict(hi=100_000, why="every step's loss is traced: (seeds, learning rates, steps) per width")},
        doc="training (full batch; its rates: the grid)",
    )
    log2_lr_min: float = spec(
        -11.0, lo=-30.0, hi=10.0, soft=(-16.0, 2.0), doc="log2 of the smallest base learning rate"
    )
    log2_lr_max: float = spec(-4.0, lo=-30.0, hi=10.0, soft=(-16.0, 2.0), doc="log2 of the largest base learning rate")
    n_lrs: int = spec(8, lo=2, hi=64, doc="learning rates in the grid (vmapped)")
    seeds: int = SEEDS(2, doc="seeds averaged")
    dataset: str = spec("teacher", choices=("teacher", "digits"), doc="digits (cross-entropy) or teacher (MSE)")
    n_samples: int = spec(1024, lo=1, hi=1257, log=True, doc="training points (full batch)")

    def validate(self):
        if self.log2_lr_max <= self.log2_lr_min:
            raise ValueError(f"log2_lr_max: must exceed log2_lr_min={self.log2_lr_min}, got {self.log2_lr_max}")

    @property
    def log2_lrs(self) -> np.ndarray:
        return np.linspace(self.log2_lr_min, self.log2_lr_max, self.n_lrs)


class Point(TypedDict):
    """One width: the loss after T steps for every learning rate of the grid (seed means)."""

    width: int
    log2_lrs: np.ndarray  # (R,)
    loss: np.ndarray  # (R,) NaN where a run diverged
    curves: np.ndarray  # (R, steps) loss before each step
    optimum_log2_lr: float


class Summary(TypedDict):
    widths: np.ndarray  # (W,)
    optima: np.ndarray  # (W,) log2 of the best learning rate
    shift: float  # optimum at the widest minus at the narrowest, in grid steps


METRICS = {"point": Point, "summary": Summary}


def data(config: Config):
    """The first `n_samples` training points of scikit-learn's digits, or a teacher regression (targets
    of a random depth-2 tanh network on 16-dimensional Gaussian inputs)."""
    if config.dataset == "digits":
        d = digits(seed=0)
        return d.x_train[: config.n_samples].astype(np.float32), d.y_train[: config.n_samples], 10, "xent"
    d = teacher(n_train=config.n_samples, n_test=1, in_dim=16, depth=2, seed=1234)
    return d.x_train, d.y_train, 1, "mse"


def model_config(config: Config, width: int) -> MLPConfig:
    x, _, out_dim, _ = data(config)
    return config.model.replace(in_dim=x.shape[1], width=width, out_dim=out_dim)


def loss_curves(config: Config, width: int, stop: threading.Event | None = None) -> np.ndarray:
    """Loss curves (seeds, n_lrs, steps + 1) of every learning rate at one width; the last entry is
    the loss after `steps` steps."""
    x, y, _, loss = data(config)
    seeds = tuple(range(config.seeds))
    x = jnp.broadcast_to(jnp.asarray(x), (len(seeds),) + x.shape)
    y = jnp.broadcast_to(jnp.asarray(y), (len(seeds),) + y.shape)
    mc = model_config(config, width)
    graphdef, params = stacked_params(MLP, mc, seeds)
    program = Program(graphdef, mc, config.train.optimizer, loss=loss)
    _, losses, _ = runs(program, config.train.steps + 1, params, {"lr": 2.0**config.log2_lrs}, x, y, stop=stop)
    return np.asarray(losses)


def optimum(log2_lrs, loss) -> float:
    """log2 of the learning rate with the lowest finite loss (NaN if every run diverged)."""
    loss = np.where(np.isfinite(loss), loss, np.inf)
    return float(log2_lrs[np.argmin(loss)]) if np.isfinite(loss).any() else float("nan")


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """Yield one point per width, then a summary with the optima and their shift in grid steps."""

    def measure(width):
        with np.errstate(invalid="ignore"):
            curves = loss_curves(config, width, stop).mean(0)
        loss = curves[:, -1]
        return {
            "width": width,
            "log2_lrs": config.log2_lrs,
            "loss": loss,
            "curves": curves[:, :-1],
            "optimum_log2_lr": optimum(config.log2_lrs, loss),
        }

    def summary(points):
        optima = [p["optimum_log2_lr"] for p in points]
        grid = config.log2_lrs[1] - config.log2_lrs[0]
        return {"widths": np.array(config.widths), "optima": np.array(optima), "shift": (optima[-1] - optima[0]) / grid}

    return sweep(config.widths, measure, stop, summary=summary, costs=config.widths)  # same steps: cost ~ width
