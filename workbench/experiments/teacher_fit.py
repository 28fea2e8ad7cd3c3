"""One MLP trained on a teacher regression: the unit of a width x learning-rate x seed sweep, from which
`workbench.runs.sweep` builds the muP transfer picture point by point (Yang et al. 2022, TP V, Fig. 1: training loss
after T steps against the base learning rate, one curve per width; under muP the optimum stays put).

The task is `lr_transfer`'s (targets of a random depth-2 tanh network on 16-dimensional Gaussian inputs,
teacher seed 1234), so a sweep over `width` and `lr` reproduces that experiment's vmapped grid one run at a
time. The step records are the training engine's (`TrainStep`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from workbench.core.config import Config as _Config
from workbench.core.config import spec
from workbench.core.fields import ACTIVATION, BASE_WIDTH, DEPTH, LR, OPTIMIZER, PARAMETRIZATION, SEED, STEPS, WIDTH
from workbench.data import teacher
from workbench.nets.engine import TrainConfig, TrainStep, train
from workbench.nets.models import MLPConfig, build_mlp


@dataclass(frozen=True)
class Config(_Config):
    """One width, one base learning rate, one seed."""

    width: int = WIDTH(64, doc="hidden width n")
    base_width: int = BASE_WIDTH(64, doc="base width n0")
    depth: int = DEPTH(3, doc="hidden layers")
    activation: str = ACTIVATION("relu", doc="nonlinearity")
    parametrization: str = PARAMETRIZATION("mup", doc="abc-parametrization")
    optimizer: str = OPTIMIZER("adam", doc="optimizer")
    lr: float = LR(2.0**-7, doc="base learning rate at the base width")
    steps: int = STEPS(30, doc="training steps T (full batch)")
    record_every: int = spec(10, lo=1, hi=100_000, doc="steps per record")
    n_train: int = spec(1024, lo=1, hi=100_000, log=True, doc="teacher training points")
    zero_readout: bool = spec(True, doc="zero-initialise the readout (TP V, App. D.2)")
    seed: int = SEED(0, doc="seed of the weights")


METRICS = {"step": TrainStep}
IN_DIM = 16


def run(config: Config, stop: threading.Event | None = None):
    """Train the MLP of `config` full batch on the teacher task, a step record every `record_every` steps."""
    data = teacher(n_train=config.n_train, n_test=256, in_dim=IN_DIM, depth=2, seed=1234)
    model = build_mlp(MLPConfig.like(config, in_dim=IN_DIM, out_dim=1), seed=config.seed)
    return train(model, data, TrainConfig.like(config), stop=stop)
