"""Grokking: delayed generalisation on modular arithmetic (Power et al. 2022; Nanda et al. 2023;
Gromov 2023) and on XOR-cluster data with noisy labels (Xu et al. 2024), trained by the engine of
`workbench.nets.engine` with AdamW (modular) or gradient descent (XOR).

Tasks and models: `task="modular"`: pairs (a, b) -> (a op b) mod p with a fraction of all pairs for
training, model "mlp" (`toy_models.PairMLP`, first layer as a gather) or "transformer"
(`transformer.Transformer`); `task="xor"`: `data.xor_cluster` with flipped training labels and the
two-layer ReLU network `toy_models.XORNet` (fixed second layer), trained by full-batch GD.

Metrics of every record (besides the engine's train/test loss and accuracy): `weight_norm` (global
L2 norm of the trainable parameters); `step_memorised` (first recorded step with train_acc >= 0.99)
and `step_generalised` (first recorded step with test_acc >= 0.95), NaN until reached. For the
modular task also `fourier_power` (shares of the embedding's Fourier power at frequencies 0..p//2,
`fourier.fourier_power` of the transformer's W_E, or the mean of those of E_a and E_b) and `fourier_top_share`
(share of the non-constant power in the `top_k` strongest frequencies) and `fourier_neuron_share`
(`fourier.neuron_concentration` of the embedding columns: near 1 when each neuron uses one frequency) and
`fourier_neuron_spectrum` (`fourier.neuron_spectrum`: each neuron's power shares sorted, averaged; its first
entry is `fourier_neuron_share`).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import NotRequired

import jax
import numpy as np
from flax import nnx

from workbench import data as D
from workbench.core.config import Config as _Config
from workbench.core.config import group, spec
from workbench.core.experiment import experiment_run
from workbench.core.fields import ACTIVATION, SEED, WIDTH
from workbench.nets.engine import TrainConfig, TrainStep, train
from workbench.nets.toy_models import PairMLP, PairMLPConfig, XORNet, XORNetConfig
from workbench.nets.transformer import Transformer, TransformerConfig
from workbench.theory.fourier import fourier_power, neuron_spectrum, top_share

__all__ = ["Config", "METRICS", "run"]

TASKS = ("modular", "xor")
MODELS = ("mlp", "transformer")
MEMORISED, GENERALISED = 0.99, 0.95


@dataclass(frozen=True)
class Config(_Config):
    task: str = spec("modular", choices=TASKS, doc="modular arithmetic or XOR clusters with label noise")
    p: int = spec(59, lo=3, hi=500, soft=(5, 150), doc="modulus")
    op: str = spec("+", choices=D.MODULAR_OPS, doc="operation a op b mod p")
    train_fraction: float = spec(0.4, lo=0.01, hi=0.99, doc="share of all pairs used for training")
    model: str = spec("mlp", choices=MODELS, doc="one-hidden-layer MLP on token pairs or 1-layer transformer")
    width: int = WIDTH(256, doc="hidden width (MLP, XOR net) or d_model (transformer)")
    activation: str = ACTIVATION("gelu", doc="MLP nonlinearity")
    init_scale: float = spec(1.0, lo=0.0, hi=100.0, soft=(0.0, 10.0), doc="MLP init scale (x SP std); XOR net init std")
    n_heads: int = spec(4, lo=1, hi=64, doc="transformer heads")
    xor_dim: int = spec(1000, lo=2, hi=100_000, log=True, doc="XOR input dimension d")
    xor_n_train: int = spec(100, lo=2, hi=100_000, log=True, doc="XOR training points")
    label_flip: float = spec(0.1, lo=0.0, hi=0.5, doc="share of flipped XOR training labels")
    train: TrainConfig = group(
        TrainConfig(
            optimizer="adamw", lr=3e-3, weight_decay=1.0, beta2=0.98, loss="xent", steps=4000, record_every=100
        ),
        fixed=("batch_size", "seed"),
        doc="training (full batch; decoupled weight decay for adamw; Nanda et al. use beta2 = 0.98)",
    )
    top_k: int = spec(5, lo=1, hi=500, doc="frequencies counted in fourier_top_share")
    seed: int = SEED(0, doc="seed of data split and init")


class Step(TrainStep):
    """The engine's losses and accuracies plus the grokking metrics (module docstring)."""

    weight_norm: float
    fourier_power: NotRequired[np.ndarray]  # (p//2 + 1,) modular tasks
    fourier_top_share: NotRequired[float]
    fourier_neuron_share: NotRequired[float]
    fourier_neuron_spectrum: NotRequired[np.ndarray]  # (p//2,) modular tasks
    step_memorised: float  # NaN until reached
    step_generalised: float


METRICS = {"step": Step}


PRESETS = {
    "MLP on one-hot pairs, a+b mod 59, 40% train (Power et al. 2022 task; Gromov 2023 model)": Config(),
    "Transformer a+b mod 113, 30% train (Nanda et al. 2023, Sec. 3 setup; slow on CPU)": Config().replace(
        p=113, train_fraction=0.3, model="transformer", width=128, lr=1e-3, steps=20_000, record_every=250
    ),
    "XOR clusters, 10% flipped labels (Xu et al. 2024, Sec. 3 setting)": Config().replace(
        task="xor", optimizer="sgd", lr=0.1, weight_decay=0.0, init_scale=1e-6, steps=60, record_every=1
    ),
}


def make_data(config: Config) -> D.Dataset:
    if config.task == "xor":
        return D.xor_cluster(
            n_train=config.xor_n_train, dim=config.xor_dim, label_flip=config.label_flip, seed=config.seed
        )
    return D.modular(config.p, config.op, config.train_fraction, seed=config.seed)


def make_model(config: Config):
    rngs = nnx.Rngs(params=config.seed)
    if config.task == "xor":
        return XORNet(XORNetConfig(in_dim=config.xor_dim, width=config.width, init_std=config.init_scale), rngs=rngs)
    if config.model == "transformer":
        return Transformer(
            TransformerConfig(p=config.p, d_model=config.width, n_heads=config.n_heads, d_mlp=4 * config.width),
            rngs=rngs,
        )
    return PairMLP(
        PairMLPConfig(p=config.p, width=config.width, activation=config.activation, init_scale=config.init_scale),
        rngs=rngs,
    )


def weight_norm(model) -> float:
    """Global L2 norm of the trainable parameters."""
    leaves = jax.tree_util.tree_leaves(nnx.state(model, nnx.Param))
    return float(math.sqrt(sum(float(np.sum(np.square(np.asarray(p, np.float64)))) for p in leaves)))


def spectrum(model, p: int) -> np.ndarray:
    """Fourier power over frequencies 0..p//2 of the token embeddings (both operand tables of a PairMLP)."""
    e = np.asarray(model.embeddings())
    return np.mean([fourier_power(e[i : i + p]) for i in range(0, len(e), p)], axis=0)


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """Train and yield the engine's Records with the grokking metrics added."""
    data, model = make_data(config), make_model(config)
    tc = config.train
    reached = {"step_memorised": math.nan, "step_generalised": math.nan}

    def metrics(m):
        out: dict[str, float | np.ndarray] = {"weight_norm": weight_norm(m)}
        if config.task == "modular":
            out["fourier_power"] = spectrum(m, config.p)
            out["fourier_top_share"] = top_share(out["fourier_power"], config.top_k)
            out["fourier_neuron_spectrum"] = neuron_spectrum(np.asarray(m.embeddings()), config.p)
            out["fourier_neuron_share"] = float(out["fourier_neuron_spectrum"][0])
        return out

    for record in train(model, data, tc, stop=stop, metrics_fn=metrics):
        if record.metrics:
            for name, key, level in (
                ("step_memorised", "train_acc", MEMORISED),
                ("step_generalised", "test_acc", GENERALISED),
            ):
                if math.isnan(reached[name]) and record.metrics[key] >= level:
                    reached[name] = float(record.step)
            record.metrics.update(reached)
        yield record
