"""Intrinsic dimension of objective landscapes (Li, Farkhoor, Liu & Yosinski 2018, ICLR): train a network only
in a random d-dimensional subspace (`workbench.nets.subspace`) and find d_int90, the smallest d whose accuracy
reaches 90% of the full network's (their Sec. 2), with a bootstrap over seeds for its error bar (their Sec. S5).

On scikit-learn's digits, for an MLP (two hidden layers of `width`) and / or a small CNN (`workbench.stax`
convolutions of `width` and 2 `width` channels), at each width of `widths`:
1. the full network trained directly (Adam, minibatches of `batch_size`) for `seeds` seeds: 90% of its accuracy
   is the line;
2. a geometric grid of d from `d_min` to min(`d_max`, D), then `refine` more points inside the bracket where the
   seed-mean accuracy first crosses the line; every d runs the same compiled step (theta_d padded to a fixed size,
   masked beyond d), all seeds of one d in one `engine.runs` call;
3. d_int90 by log-linear interpolation at the first crossing, and its bootstrap: seeds resampled with replacement
   (the same draw for the full network and every d), `BOOTSTRAP` draws.
Accuracy is the test accuracy, or the training accuracy with shuffled labels (memorisation, their Sec. 3.3). With
`d` > 0 one subspace dimension is trained instead of the search (a sweep over `d` on Dask stores each point).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from workbench import data as D
from workbench import stax
from workbench.core.config import Config as _Config
from workbench.core.config import spec
from workbench.core.declare import Array, Int, declare
from workbench.core.experiment import experiment_run, sweep
from workbench.core.fields import LR, SEED, SEEDS, STEPS, WIDTH
from workbench.nets import subspace as S
from workbench.nets.engine import Program, runs
from workbench.nets.models import MLPConfig, ModelConfig, build_mlp
from workbench.stax.nnx import network

__all__ = ["Config", "METRICS", "d_int90", "run"]

ARCHS = ("mlp", "cnn")
LABELS = ("true", "shuffled")
THRESHOLD = 0.9  # d_int90: 90% of the full network's accuracy (Li et al. 2018 Sec. 2)
BOOTSTRAP = 200  # bootstrap draws of the seeds
ONE_SIZE = 2**24  # entries of P below which dense and sparse use one compiled size for every d
IMAGE = (8, 8, 1)  # the digits' pixels as an image (NHWC)
HE_STD = float(np.sqrt(2.0))  # He init, as the paper code's `he_normal`


@dataclass(frozen=True)
class Config(_Config):
    """An architecture at two widths, a projection, the search range over d and the training of each run."""

    arch: str = spec("mlp", choices=(*ARCHS, "both"), doc="MLP (two hidden layers), small CNN (two convolutions)")
    widths: tuple[int, ...] = WIDTH((16, 32), doc="MLP hidden widths, or the CNN's first-layer channels")
    kind: str = spec("fastfood", choices=S.KINDS, doc="random projection P")
    layout: str = spec("global", choices=S.LAYOUTS, doc="one P for all parameters, or one block per tensor")
    labels: str = spec("true", choices=LABELS, doc="the digits' labels, or shuffled (accuracy on the train set)")
    d: int = spec(0, lo=0, hi=1_000_000, doc="0: search d_int90; else train this one d only")
    d_min: int = spec(4, lo=1, hi=100_000, log=True, soft=(1, 4096), doc="smallest d of the grid")
    d_max: int = spec(512, lo=2, hi=1_000_000, log=True, soft=(2, 65_536), doc="largest d of the grid (at most D)")
    points: int = spec(5, lo=2, hi=40, doc="d values of the geometric grid")
    refine: int = spec(2, lo=0, hi=20, doc="more d values inside the bracket of the crossing")
    seeds: int = SEEDS(3, doc="seeds (init and P) per d; the bootstrap resamples them")
    steps: int = STEPS(300, doc="Adam steps of every run")
    batch_size: int = spec(128, lo=0, hi=1257, doc="minibatch size (the paper's 128); 0: full batch")
    lr: float = LR(0.05, doc="Adam learning rate of theta_d")
    full_lr: float = spec(0.003, lo=1e-5, hi=10.0, log=True, doc="Adam learning rate of the full network")
    seed: int = SEED(0, doc="first seed; also the shuffle of the labels")

    @property
    def archs(self) -> tuple[str, ...]:
        """The architectures run."""
        return ARCHS if self.arch == "both" else (self.arch,)

    def validate(self) -> None:
        if self.d_min >= self.d_max:
            raise ValueError(f"d_max: must be above d_min = {self.d_min}, got {self.d_max}")
        for w in self.widths:
            if w > 1024:
                raise ValueError(f"widths: must be in [1, 1024] on the digits (a CPU search), got {w}")
        for arch in self.archs:
            for w in self.widths:
                if self.d > _n_params(arch, w):
                    raise ValueError(
                        f"d: must be in [0, {_n_params(arch, w)}] (D of the {arch} at width {w}), got {self.d}"
                    )


class Point(TypedDict):
    """One architecture at one width: the d values tried (sorted), accuracies per seed, d_int90."""

    arch: str
    width: int
    n_params: int  # D
    full_acc: np.ndarray  # (S,) accuracy of the full network per seed
    dims: np.ndarray  # (K,) d values
    acc: np.ndarray  # (K, S) accuracy per d and seed
    d_int90: float  # NaN when no d reaches the line (or with a fixed d)
    d_int90_err: float  # bootstrap standard deviation


class Summary(TypedDict):
    """Every job's d_int90 and, per architecture, the largest over the smallest across widths."""

    archs: np.ndarray  # (J,) architecture of each job
    widths: np.ndarray  # (J,)
    n_params: np.ndarray  # (J,) D
    d_int90: np.ndarray  # (J,)
    d_int90_err: np.ndarray  # (J,)
    ratio: np.ndarray  # (A,) per architecture of `archs` in order: max / min d_int90 over widths (1: the same)


METRICS = {"point": Point, "summary": Summary}


class _Image(nnx.Module):
    """A stax network reading the digits' 64 pixels as an 8 x 8 image (a user-written wrapper)."""

    def __init__(self, net: nnx.Module):
        self.net = net

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.net(x.reshape((x.shape[0],) + IMAGE))


def _cnn(width: int) -> stax.Layer:
    """Two 3x3 convolutions (`width`, 2 `width` channels, the second of stride 2) and a dense readout."""
    conv = lambda c, s: stax.Conv(c, (3, 3), strides=s, padding="SAME", W_std=HE_STD, b_std=0.0)  # noqa: E731
    return stax.serial(conv(width, (1, 1)), stax.Relu(), conv(2 * width, (2, 2)), stax.Relu(), stax.Flatten(),
                       stax.Dense(10, W_std=1.0, b_std=0.0))  # fmt: skip


def _mlp_config(width: int) -> MLPConfig:
    return MLPConfig(in_dim=64, out_dim=10, width=width, depth=2, parametrization="sp", weight_std=HE_STD)


def _model(arch: str, width: int, seed: int) -> nnx.Module:
    """The full network of `arch` at `width`, initialised from `seed`."""
    if arch == "mlp":
        return build_mlp(_mlp_config(width), seed)
    return _Image(network(_cnn(width), (-1, *IMAGE), parametrization="sp", seed=seed))


@functools.lru_cache(maxsize=64)
def _n_params(arch: str, width: int) -> int:
    model = nnx.eval_shape(lambda: _model(arch, width, 0)) if arch == "mlp" else _model(arch, width, 0)
    return sum(int(np.size(a)) for a in jax.tree.leaves(nnx.state(model, nnx.Param)))


@functools.lru_cache(maxsize=4)
def _data(labels: str, seed: int) -> D.Dataset:
    """The digits (the split of seed 0); shuffled labels permute the training labels with `seed`."""
    data = D.digits(seed=0)
    if labels == "true":
        return data
    y = np.random.default_rng(seed).permutation(data.y_train)
    return D.Dataset(data.x_train, y, data.x_test, data.y_test, data.n_classes)


def _stacked(models: Sequence[nnx.Module]) -> tuple[nnx.GraphDef, nnx.State]:
    """One graph and every model's state stacked along a leading (seed) axis."""
    graphdef = nnx.split(models[0])[0]
    states = [nnx.split(m)[1] for m in models]
    return graphdef, jax.tree.map(lambda *a: jnp.stack(a), *states)


@functools.lru_cache(maxsize=16)
def _accuracy_fn(graphdef: nnx.GraphDef):
    """jit(vmap over seeds) of the accuracy of a model's state on (x, labels)."""
    acc = lambda params, x, y: jnp.mean(jnp.argmax(nnx.merge(graphdef, params)(x), -1) == y)  # noqa: E731
    return jax.jit(jax.vmap(acc, in_axes=(0, None, None)))


def _train(config: Config, graphdef, model_config: ModelConfig, params, lr: float, stop) -> np.ndarray:
    """Accuracies (S,) of S models trained by the engine (Adam, cross-entropy)."""
    data = _data(config.labels, config.seed)
    s = jax.tree.leaves(params)[0].shape[0]
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    program = Program(graphdef, model_config, "adam", loss="xent", batch_size=config.batch_size)
    final, _, _ = runs(program, config.steps, params, {"lr": [lr]}, jnp.stack([x] * s), jnp.stack([y] * s), stop=stop)
    final = jax.tree.map(lambda a: a[:, 0], final)
    x_eval, y_eval = (x, y) if config.labels == "shuffled" else (data.x_test, data.y_test)
    return np.asarray(_accuracy_fn(graphdef)(final, jnp.asarray(x_eval), jnp.asarray(y_eval)))


def _seeds(config: Config) -> list[int]:
    return [config.seed + i for i in range(config.seeds)]


def _full(config: Config, arch: str, width: int, stop) -> np.ndarray:
    """Step 1: the full network's accuracy per seed (kept: a change of projection does not retrain it)."""
    c = config
    key = (arch, width, c.labels, c.seeds, c.steps, c.batch_size, c.full_lr, c.seed)
    if key not in _FULL:
        models = [_model(arch, width, s) for s in _seeds(c)]
        model_config = _mlp_config(width) if arch == "mlp" else ModelConfig()
        graphdef, params = _stacked(models)
        _FULL[key] = _train(c, graphdef, model_config, params, c.full_lr, stop)
    return _FULL[key]


_FULL: dict[tuple, np.ndarray] = {}


def _size(config: Config, d: int, top: int, n_params: int) -> int:
    """Compiled size of theta_d for d: one size (the largest d) for fastfood, whose cost does not depend on it, and
    where P is small (D x top <= `ONE_SIZE`); else the next power of two (dense and sparse cost ~ size)."""
    if config.kind == "fastfood" or n_params * top <= ONE_SIZE:
        return top
    return min(1 << int(np.ceil(np.log2(d))), top)


def _subspace(config: Config, arch: str, width: int, dims: list[int], top: int, stop) -> np.ndarray:
    """Accuracies (K, S) at each d of `dims`; each compiled size is built once and reused for its d values."""
    out = {}
    n = _n_params(arch, width)
    for size in sorted({_size(config, d, top, n) for d in dims}):
        models = [S.subspace(_model(arch, width, s), size, kind=config.kind, layout=config.layout, seed=s)
                  for s in _seeds(config)]  # fmt: skip
        graphdef, params = _stacked(models)
        for d in (d for d in dims if _size(config, d, top, n) == size):
            out[d] = _train(config, graphdef, models[0].config, S.with_dim(params, d), config.lr, stop)
    return np.stack([out[d] for d in dims])


def _crossing(dims: np.ndarray, acc: np.ndarray, line: float) -> float:
    """First d where the mean accuracy reaches `line`, interpolated in log d from the d before (NaN if none)."""
    above = np.flatnonzero(acc >= line)
    if above.size == 0:
        return float("nan")
    k = int(above[0])
    if k == 0:
        return float(dims[0])
    t = (line - acc[k - 1]) / (acc[k] - acc[k - 1])
    return float(np.exp(np.log(dims[k - 1]) + t * (np.log(dims[k]) - np.log(dims[k - 1]))))


@declare(
    finite=False,  # NaN: no d reaches the line
    dims=Array("k", lo=1, hi=1e9, example=lambda: np.array([10.0, 100.0, 1000.0])),
    acc=Array("k s", lo=0.0, hi=1.0, example=lambda: np.array([[0.3, 0.4], [0.8, 0.9], [0.95, 0.96]])),
    full=Array("s", lo=0.0, hi=1.0, example=lambda: np.array([0.9, 0.95])),
    seed=Int(0, 2**31 - 1),
)
def d_int90(dims: np.ndarray, acc: np.ndarray, full: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """(d_int90, bootstrap std) of accuracies `acc` (K, S) at increasing `dims` (K,) against the full network's
    `full` (S,) (Li et al. 2018 Sec. 2 and S5): seeds resampled jointly, `BOOTSTRAP` draws."""
    if np.any(np.diff(dims) <= 0):
        raise ValueError(f"dims: must increase, got {np.asarray(dims).tolist()!r:.80}")
    if not full.mean() > 0:
        raise ValueError("full: the full network's accuracy is 0, so every d reaches 90% of it; d_int90 is undefined")
    estimate = _crossing(dims, acc.mean(1), THRESHOLD * full.mean())
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(BOOTSTRAP):
        b = rng.integers(0, len(full), len(full))
        draws.append(_crossing(dims, acc[:, b].mean(1), THRESHOLD * full[b].mean()))
    draws = np.asarray(draws)
    finite = draws[np.isfinite(draws)]
    return estimate, float(finite.std(ddof=1)) if finite.size > 1 else float("nan")


def _search(config: Config, arch: str, width: int, stop: threading.Event | None = None) -> dict:
    """Steps 1-3 for one architecture at one width (module docstring): the point's metrics."""
    c, n = config, _n_params(arch, width)
    full = _full(c, arch, width, stop)
    if c.d:
        dims = np.array([c.d])
        acc = _subspace(c, arch, width, [c.d], c.d, stop)
        return dict(
            arch=arch, width=width, n_params=n, full_acc=full, dims=dims, acc=acc, d_int90=np.nan, d_int90_err=np.nan
        )
    top = min(c.d_max, n)
    dims = np.unique(np.geomspace(min(c.d_min, top), top, c.points).round().astype(int))
    acc = _subspace(c, arch, width, list(dims), top, stop)
    above = np.flatnonzero(acc.mean(1) >= THRESHOLD * full.mean())
    if c.refine and above.size and above[0] > 0:
        lo, hi = dims[above[0] - 1], dims[above[0]]
        more = np.setdiff1d(np.geomspace(lo, hi, c.refine + 2)[1:-1].round().astype(int), dims)
        if more.size:
            acc = np.concatenate([acc, _subspace(c, arch, width, list(more), top, stop)])
            dims = np.concatenate([dims, more])
            order = np.argsort(dims)
            dims, acc = dims[order], acc[order]
    estimate, err = d_int90(dims, acc, full, c.seed)
    return dict(
        arch=arch, width=width, n_params=n, full_acc=full, dims=dims, acc=acc, d_int90=estimate, d_int90_err=err
    )


def _summary(points: list[dict]) -> dict:
    archs = np.array([p["arch"] for p in points])
    values = np.array([p["d_int90"] for p in points])
    ratios = []
    for arch in dict.fromkeys(archs):
        finite = values[(archs == arch) & np.isfinite(values)]
        ratios.append(finite.max() / finite.min() if finite.size > 1 else np.nan)
    return {
        "archs": archs,
        "widths": np.array([p["width"] for p in points]),
        "n_params": np.array([p["n_params"] for p in points]),
        "d_int90": values,
        "d_int90_err": np.array([p["d_int90_err"] for p in points]),
        "ratio": np.array(ratios, float),
    }


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """One job per architecture and width (a search, or one d), then the summary."""
    jobs = [(arch, width) for arch in config.archs for width in config.widths]
    measure = lambda job: _search(config, job[0], job[1], stop)  # noqa: E731
    return sweep(jobs, measure, stop, summary=_summary, costs=[_n_params(*job) for job in jobs])
