"""One MLP trained on a teacher regression: the unit of a width x learning-rate x seed sweep, from which
`workbench.runs.sweep` builds the muP transfer picture point by point (Yang et al. 2022, TP V, Fig. 1: training loss
after T steps against the base learning rate, one curve per width; under muP the optimum stays put).

The task is `lr_transfer`'s (targets of a random depth-2 tanh network on 16-dimensional Gaussian inputs,
teacher seed 1234), so a sweep over `width` and `lr` (`model.width` and `train.lr`; the short names resolve)
reproduces that experiment's vmapped grid one run at a time. The step records are the training engine's
(`TrainStep`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from workbench.core.config import Config as _Config
from workbench.core.config import group, spec
from workbench.core.experiment import experiment_run
from workbench.core.fields import SEED
from workbench.data import teacher
from workbench.nets.engine import TrainConfig, TrainStep, train
from workbench.nets.models import MLPConfig, build_mlp

__all__ = ["Config", "METRICS", "run"]


@dataclass(frozen=True)
class Config(_Config):
    """One width, one base learning rate, one seed."""

    model: MLPConfig = group(
        MLPConfig(width=64, base_width=64, depth=3, zero_readout=True, in_dim=16),
        fixed=("in_dim", "out_dim"),
        doc="network",
    )
    train: TrainConfig = group(
        TrainConfig(optimizer="adam", lr=2.0**-7, steps=30, record_every=10),
        fixed=("loss", "batch_size", "seed"),
        doc="training (full batch)",
    )
    n_train: int = spec(1024, lo=1, hi=100_000, log=True, doc="teacher training points")
    seed: int = SEED(0, doc="seed of the weights")


METRICS = {"step": TrainStep}


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """Train the MLP of `config` full batch on the teacher task, a step record every `record_every` steps."""
    data = teacher(n_train=config.n_train, n_test=256, in_dim=config.model.in_dim, depth=2, seed=1234)
    model = build_mlp(config.model, seed=config.seed)
    return train(model, data, config.train, stop=stop)
