"""Neural collapse during training (Papyan, Han & Donoho 2020) and its imbalanced, deep-linear form
(Dang et al. 2023): an MLP on a Gaussian mixture or sklearn digits, or a deep linear
unconstrained-features model (UFM), trained by the engine of `workbench.nets.engine`.

Metrics of every record (besides the engine's train/test loss and accuracy), on the training set,
for the last hidden features and the readout (see `workbench.theory.collapse` for the definitions):
`nc1`, `nc2`, `nc3`, `nc4` and the parts of NC2 (`nc2_norm_M`, `nc2_norm_W`, `nc2_angle_M`,
`nc2_angle_W`, `nc2_maxangle_M`, `nc2_maxangle_W`); `nc1_layers`, `nc2_layers` (arrays over the
hidden layers, first to last); `gram_M` (C x C cosines of the centred class means, a simplex ETF has
-1/(C-1) off the diagonal); `proj_M`, `proj_W` (C x 3: centred class means and classifier rows,
each scaled to unit Frobenius norm, in the top-3 principal axes of the class means); `class_sizes`;
`w_norms` (||w_k||) and `h_norms` (||mu_k||, raw class means of the last features). For the UFM also
`gof_w_norms`, `gof_h_norms` (the same two in the general orthogonal frame of `collapse.gof_prediction`)
and `gof_threshold` (the weight decay above which the smallest class collapses).
"""

from __future__ import annotations

import functools
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
from workbench.core.fields import SEED
from workbench.nets.engine import TrainConfig, TrainStep, train
from workbench.nets.models import MLPConfig, build_mlp
from workbench.nets.ufm import UFMConfig, build_ufm, index_dataset
from workbench.theory import collapse

__all__ = ["Config", "METRICS", "run"]

DATASETS = ("gaussian", "digits", "ufm")


@dataclass(frozen=True)
class Config(_Config):
    dataset: str = spec("gaussian", choices=DATASETS, doc="Gaussian mixture, sklearn digits or deep linear UFM")
    class_sizes: tuple[int, ...] = spec(
        (100, 100, 100, 100), lo=1, hi=10_000, doc="training points per class (gaussian, ufm)"
    )
    dim: int = spec(16, lo=2, hi=1024, log=True, doc="input dimension (gaussian) or feature dimension (ufm)")
    separation: float = spec(3.0, lo=0.0, hi=100.0, soft=(0.0, 10.0), doc="norm of the Gaussian class means")
    model: MLPConfig = group(
        MLPConfig(width=128, depth=2, parametrization="sp"),
        fixed=("in_dim", "out_dim", "parametrization", "base_width"),
        doc="network (MLP; the UFM takes its depth)",
    )
    init_std: float = spec(0.3, lo=0.0, hi=10.0, doc="UFM init std")
    train: TrainConfig = group(
        TrainConfig(optimizer="adam", lr=3e-3, weight_decay=1e-3, loss="mse", steps=2000, record_every=100),
        fixed=("batch_size", "seed"),
        doc="training (full batch; weight decay: L2 on every tensor of the UFM)",
    )
    seed: int = SEED(0, doc="seed of data and init")

    def validate(self):
        if self.dataset != "digits" and len(self.class_sizes) < 2:
            raise ValueError(f"class_sizes: need at least 2 classes, got {self.class_sizes!r}")
        if self.dataset == "ufm" and self.dim < len(self.class_sizes):
            raise ValueError(f"dim: the UFM needs dim >= number of classes ({len(self.class_sizes)}), got {self.dim}")


class Step(TrainStep):
    """The engine's losses and accuracies plus the collapse metrics (Papyan, Han & Donoho 2020)."""

    nc1: float
    nc2: float
    nc2_norm_M: float
    nc2_angle_M: float
    nc2_maxangle_M: float
    nc2_norm_W: float
    nc2_angle_W: float
    nc2_maxangle_W: float
    nc3: float
    nc4: float
    nc1_layers: np.ndarray  # (hidden layers,)
    nc2_layers: np.ndarray
    gram_M: np.ndarray  # (C, C)
    proj_M: np.ndarray  # (C, 3)
    proj_W: np.ndarray  # (C, 3)
    class_sizes: np.ndarray  # (C,)
    w_norms: np.ndarray  # (C,)
    h_norms: np.ndarray  # (C,)
    gof_w_norms: NotRequired[np.ndarray]  # ufm with weight decay
    gof_h_norms: NotRequired[np.ndarray]
    gof_threshold: NotRequired[float]  # ufm


METRICS = {"step": Step}


def make_data(config: Config) -> D.Dataset:
    if config.dataset == "gaussian":
        return D.gaussian_mixture(config.class_sizes, dim=config.dim, separation=config.separation, seed=config.seed)
    if config.dataset == "digits":
        return D.digits(seed=config.seed)
    return index_dataset(config.class_sizes)


def make_model(config: Config, data: D.Dataset):
    if config.dataset == "ufm":
        return build_ufm(
            UFMConfig(
                n_samples=len(data.y_train),
                dim=config.dim,
                depth=config.model.depth,
                n_classes=data.n_classes,
                init_std=config.init_std,
            ),
            seed=config.seed,
        )
    mlp = config.model.replace(in_dim=data.in_dim, out_dim=data.n_classes, base_width=config.model.width)
    return build_mlp(mlp, seed=config.seed)


def readout(model) -> tuple[np.ndarray, np.ndarray | None]:
    """(classifier rows W (C, d), bias b or None) as the logits W h + b of the last features use them."""
    w, b = model.classifier()
    return np.asarray(w), (None if b is None else np.asarray(b))


def projection(m: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centred class means and classifier rows (each scaled to unit Frobenius norm) in the top-3
    principal axes of the class means."""
    axes = np.linalg.svd(m, full_matrices=False)[2][:3]
    pad = lambda a: np.pad(a, ((0, 0), (0, 3 - a.shape[1])))
    return pad(m @ axes.T / np.linalg.norm(m)), pad(w @ axes.T / max(np.linalg.norm(w), 1e-300))


@functools.lru_cache(maxsize=16)
def hidden_features(graphdef):
    """jit of (state, x) -> the model's list of hidden feature matrices; cached per graph."""
    return jax.jit(lambda state, x: nnx.merge(graphdef, state)(x, return_hidden=True)[1]["features"])


def collapse_metrics(model, data: D.Dataset) -> dict:
    """NC metrics of a trained model on its training set (the metric names of the module docstring)."""
    graphdef, state = nnx.split(model)
    features = [np.asarray(h, np.float64) for h in hidden_features(graphdef)(state, data.x_train)]
    y, c = data.y_train, data.n_classes
    w, b = readout(model)
    h = features[-1]
    out = collapse.nc_metrics(h, y, c, w=w, b=b)
    out.update(collapse.layer_nc(features, y, c))
    means, mu_g, counts = collapse.class_means(h, y, c)
    m = means - mu_g
    unit = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-300)
    out["gram_M"] = unit @ unit.T
    out["proj_M"], out["proj_W"] = projection(m, w)
    out.update(class_sizes=counts, w_norms=np.linalg.norm(w, axis=1), h_norms=np.linalg.norm(means, axis=1))
    return out


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """Train and yield the engine's Records with the collapse metrics added."""
    data = make_data(config)
    model = make_model(config, data)
    extra = {}
    if config.dataset == "ufm":
        wd, depth = config.train.weight_decay, config.model.depth
        if wd > 0:
            pred = collapse.gof_prediction(config.class_sizes, wd, [wd] * depth)
            extra = {"gof_w_norms": pred["w_norms"], "gof_h_norms": pred["feature_norms"][-1]}
        extra["gof_threshold"] = collapse.minority_collapse_threshold(config.class_sizes, depth)
    yield from train(model, data, config.train, stop=stop, metrics_fn=lambda m: {**collapse_metrics(m, data), **extra})
