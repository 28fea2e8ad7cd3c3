"""Kernel explorer: the infinite-width NNGP and NTK of an architecture (neural-tangents conventions) and the empirical
NTK of finite networks of the same architecture.

`architecture`: "mlp" (`workbench.theory.kernels.mlp_kernels`, the fast path), or a `workbench.stax` description whose
kernels come from its `kernel_fn` and whose finite networks from `workbench.stax.nnx` (`description`): "cnn" (the
digits as 8x8 images: 2x2 average pool, `depth` x [Conv 3x3 SAME, activation], global average pool, Dense),
"resnet" (Dense stem, `depth` residual blocks x + [activation, Dense] / sqrt(depth), activation, Dense) and
"layernorm" (`depth` x [Dense, LayerNorm, activation], Dense). The angle curves follow two inputs with x.x/d = 1
at angle theta: in the plane for the vector architectures, between two orthogonalized digits for the CNN.

A view in two stages. Stage 1 (analytic, milliseconds once compiled): `angle[A]`, `nngp_angle[A]`,
`ntk_angle[A]` for two inputs with x.x/d = 1 at angle theta (`kernel_vs_angle`); `ntk_map[N, N]`, the NTK
on the data set normalized by its diagonal; `nngp_eigenvalues[N]`, `ntk_eigenvalues[N]`, largest first.
Stage 2 (finite networks, `seeds` > 0): `empirical_angle[E]`, `empirical_ntk_mean[E]`,
`empirical_ntk_std[E]` over seeds (as `mc_empirical_ntk`), one network at a time with the stop event checked
between networks (a wide network takes about a second; 32 of them were one uninterruptible block of minutes).
"""

from __future__ import annotations

import functools
import math
import threading
import time
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import jax.numpy as jnp
import numpy as np
from threadpoolctl import ThreadpoolController

from workbench import data as D
from workbench import stax
from workbench.core.config import Config as _Config
from workbench.core.config import spec
from workbench.core.experiment import Record, Stopped, experiment_run, stages
from workbench.core.fields import ACTIVATION, DEPTH, WIDTH
from workbench.nets.models import MLPConfig, build_mlp
from workbench.stax import nnx as stax_nnx
from workbench.theory.kernels import empirical_ntk, kernel_eigenvalues, kernel_vs_angle, mlp_kernels

__all__ = ["Config", "METRICS", "run"]

DATASETS = ("circle", "spiral", "digits")
ARCHITECTURES = ("mlp", "cnn", "resnet", "layernorm")
STAX_MAX_DEPTH = 16  # layers of a stax architecture (each one a compiled step of its kernel)
CNN_MAX_POINTS = 400  # images of the CNN: its pooled kernel keeps every pixel pair of every pair of images
IMAGE = (8, 8, 1)  # the digits as images
ANGLES = np.linspace(0.0, math.pi, 91)
EMPIRICAL_ANGLES = np.linspace(0.0, math.pi, 13)
BLAS = ThreadpoolController()
SPECTRUM_FLOOR = 1e-8  # eigenvalues / largest below this are float32 round-off


OWN_RANGES = {  # fields named like a shared field (workbench.core.fields) whose range differs, and why
    "parametrization": "neural-tangents' conventions (ntk / standard), not the abc table",
    "seeds": "finite networks beside the kernels, 0 for none",
}


@dataclass(frozen=True)
class Config(_Config):
    """What the kernel explorer shows."""

    architecture: str = spec(
        "mlp", choices=ARCHITECTURES, doc="mlp, cnn (digits as 8x8 images, global average pool), resnet, layernorm"
    )
    activation: str = ACTIVATION("relu")
    depth: int = DEPTH(3)
    weight_std: float = spec(1.4, lo=0.1, hi=4.0, doc="sigma_w")
    bias_std: float = spec(0.1, lo=0.0, hi=2.0, doc="sigma_b")
    parametrization: str = spec("ntk", choices=("ntk", "standard"), doc="neural-tangents convention")
    width: int = WIDTH(256, doc="width of the finite networks (and of 'standard')")
    seeds: int = spec(16, lo=0, hi=32, doc="finite networks averaged for the empirical NTK (0: none)")
    dataset: str = spec("circle", choices=DATASETS, doc="inputs of the spectrum and the kernel map")
    n_points: int = spec(200, lo=8, hi=2000, doc="points of the data set")

    def validate(self) -> None:
        if self.architecture == "mlp":
            return
        if self.depth > STAX_MAX_DEPTH:
            raise ValueError(f"depth: the {self.architecture} architecture takes at most {STAX_MAX_DEPTH} layers here")
        if self.architecture == "cnn" and self.dataset != "digits":
            raise ValueError(f"dataset: the CNN takes images: choose 'digits' (8x8 images), not {self.dataset!r}")
        if self.architecture == "cnn" and self.n_points > CNN_MAX_POINTS:
            raise ValueError(
                f"n_points: the CNN's pooled kernel keeps every pixel pair of every pair of images: at most "
                f"{CNN_MAX_POINTS} images here, got {self.n_points}"
            )


class Stage(TypedDict):
    """Metrics of the view's records: analytic curves, then (with `seeds`) the finite networks."""

    angle: np.ndarray  # (A,) angles theta between two inputs
    nngp_angle: np.ndarray  # (A,)
    ntk_angle: np.ndarray  # (A,)
    ntk_map: np.ndarray  # (N, N) NTK on the data set over sqrt of its diagonal
    nngp_eigenvalues: np.ndarray  # (N,) largest first
    ntk_eigenvalues: np.ndarray  # (N,)
    empirical_angle: NotRequired[np.ndarray]  # (E,)
    empirical_ntk_mean: NotRequired[np.ndarray]  # (E,) over seeds
    empirical_ntk_std: NotRequired[np.ndarray]  # (E,)


METRICS = {"stage": Stage}


def inputs(config: Config) -> np.ndarray:
    """The data set's inputs, ordered along the circle / spiral / by class (so the kernel map has structure)."""
    n = config.n_points
    if config.dataset == "circle":
        a = np.linspace(0, 2 * math.pi, n, endpoint=False)
        return (math.sqrt(2.0) * np.stack([np.cos(a), np.sin(a)], 1)).astype(np.float32)
    if config.dataset == "spiral":
        d = D.playground("spiral", n=max(n, 4), noise=0.0, test_fraction=0.5, seed=0)
        x = np.concatenate([d.x_train, d.x_test])[:n]
        return x[np.argsort(np.arctan2(x[:, 1], x[:, 0]) + 10 * np.hypot(x[:, 0], x[:, 1]))]
    d = D.digits(seed=0)
    x, y = np.concatenate([d.x_train, d.x_test])[:n], np.concatenate([d.y_train, d.y_test])[:n]
    x = x[np.argsort(y, kind="stable")].astype(np.float32)
    return x.reshape((n,) + IMAGE) if config.architecture == "cnn" else x


def description(config: Config) -> stax.Layer:
    """The `workbench.stax` description of a non-MLP architecture (module doc), hidden channels `width`."""
    c = config
    lin = {"W_std": c.weight_std, "b_std": c.bias_std, "parameterization": c.parametrization}
    dense = functools.partial(stax.Dense, **lin)
    act, w, L = stax.Activation(c.activation), c.width, c.depth
    if c.architecture == "cnn":
        conv = [stax.Conv(w, (3, 3), padding="SAME", **lin), act]
        return stax.serial(stax.AvgPool((2, 2), (2, 2)), *conv * L, stax.GlobalAvgPool(), dense(1))
    if c.architecture == "resnet":  # branch multiplier 1/sqrt(L): the kernel stays O(1) as L grows
        branch = stax.serial(act, dense(w), stax.Scale(L**-0.5))
        block = stax.serial(stax.FanOut(2), stax.parallel(branch, stax.Identity()), stax.FanInSum())
        return stax.serial(dense(w), *[block] * L, act, dense(1))
    return stax.serial(*[dense(w), stax.LayerNorm(), act] * L, dense(1))


def angle_path(config: Config, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x(0) with one row, x(theta) for `angles`): x(theta) = r (cos theta u + sin theta v), x.x/d = 1, for
    orthonormal u, v: the plane's axes, or for the CNN two digits (a 0 and a 1) orthogonalized, as images."""
    if config.architecture != "cnn":
        u, v, r = np.eye(2)[0], np.eye(2)[1], math.sqrt(2.0)
    else:
        d = D.digits(seed=0)
        a, b = d.x_train[d.y_train == 0][0], d.x_train[d.y_train == 1][0]
        u = a / np.linalg.norm(a)
        v = b - (b @ u) * u
        v, r = v / np.linalg.norm(v), math.sqrt(a.size)
    path = r * (np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v)
    shape = IMAGE if config.architecture == "cnn" else (2,)
    return path[:1].reshape((1,) + shape).astype(np.float32), path.reshape((-1,) + shape).astype(np.float32)


def network(config: Config) -> dict:
    """Keyword arguments of `mlp_kernels` for this config."""
    return dict(
        depth=config.depth,
        activation=config.activation,
        weight_std=config.weight_std,
        bias_std=config.bias_std,
        parametrization=config.parametrization,
        width=config.width,
    )


def finite_network(config: Config, in_dim: int) -> tuple[MLPConfig, str]:
    """The finite MLP whose empirical NTK converges to the analytic one, and the NTK scaling that does it.

    At base_width = width every parametrization is SP; "nt" scaling gives neural-tangents' "ntk"
    convention and "sgd" its "standard" one (see `workbench.theory.kernels.empirical`)."""
    mlp = MLPConfig(
        in_dim=in_dim,
        width=config.width,
        depth=config.depth,
        out_dim=1,
        activation=config.activation,
        parametrization="sp",
        base_width=config.width,
        weight_std=config.weight_std,
        bias_std=config.bias_std,
    )
    return mlp, "nt" if config.parametrization == "ntk" else "sgd"


def analytic(config: Config) -> dict:
    """The infinite-width curves, map and spectra the panel draws (arrays; exported as CSV/JSON)."""
    x = inputs(config)
    if config.architecture == "mlp":
        curve = kernel_vs_angle(ANGLES, dim=2, **network(config))
        nngp_angle, ntk_angle = np.asarray(curve.nngp), np.asarray(curve.ntk)
        k = mlp_kernels(x, **network(config))
    else:
        kernel_fn = description(config).kernel_fn
        k0 = kernel_fn(*angle_path(config, ANGLES), ("nngp", "ntk"))
        nngp_angle, ntk_angle = np.asarray(k0.nngp[0], np.float64), np.asarray(k0.ntk[0], np.float64)
        k = kernel_fn(x, None, ("nngp", "ntk"))
    ntk = np.asarray(k.ntk, np.float64)
    scale = np.sqrt(np.clip(np.diag(ntk), 1e-30, None))
    with BLAS.limit(limits=1, user_api="blas"):  # 4-10x faster here: OpenBLAS threads contend with XLA's
        spectra = {"nngp_eigenvalues": kernel_eigenvalues(k.nngp), "ntk_eigenvalues": kernel_eigenvalues(ntk)}
    return {
        "angle": ANGLES,
        "nngp_angle": nngp_angle,
        "ntk_angle": ntk_angle,
        "ntk_map": ntk / scale[:, None] / scale[None, :],
        **spectra,
    }


def empirical(config: Config, stop: threading.Event | None = None) -> dict:
    """Mean and std over `seeds` finite networks of the empirical NTK at the angles of `EMPIRICAL_ANGLES` (the
    numbers of `mc_empirical_ntk`), one network at a time: `Stopped` when `stop` is set between two networks."""
    if not config.seeds:
        return {}
    x1, x2 = angle_path(config, EMPIRICAL_ANGLES)
    mlp, scaling = finite_network(config, 2)
    kernels = []
    for seed in range(config.seeds):
        if stop is not None and stop.is_set():
            raise Stopped
        if config.architecture == "mlp":
            kernels.append(empirical_ntk(build_mlp(mlp, seed), x1, x2, scaling=scaling))
        else:  # the description's own parameters (neural-tangents' layout): its NTK is the raw J J^T
            module = stax_nnx.network(description(config), (-1,) + x1.shape[1:], seed=seed)
            kernels.append(stax_nnx.empirical_ntk(module, x1, x2))
    ks = jnp.stack(kernels)
    mean, std = ks.mean(0), ks.std(0)
    return {
        "empirical_angle": EMPIRICAL_ANGLES,
        "empirical_ntk_mean": np.asarray(mean[0]),
        "empirical_ntk_std": np.asarray(std[0]),
    }


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """Stage 1: the analytic kernels; stage 2: the finite networks' empirical NTK (if `seeds`), which stops between
    two networks (then "stopped" at stage 1 of 2, with stage 1's metrics)."""
    stop = stop or threading.Event()
    parts = [lambda: analytic(config)] + ([lambda: empirical(config, stop)] if config.seeds else [])
    start, last = time.perf_counter(), None
    try:
        for record in stages(parts, stop):
            last = record
            yield record
    except Stopped:
        done, metrics = (last.done, dict(last.metrics)) if last is not None else (0, {})
        yield Record(done, len(parts), "stages", metrics, "stopped", "status", time.perf_counter() - start)
