"""The lab on your own model and data (`workbench.nets.own`, `workbench.data.sources`): coordinate check, learning
rate transfer across width or depth, and lazy vs rich (empirical NTK change, feature movement) for any NNX factory.

- coord_check (TP V, Fig. 5 and App. D.1; mup's `get_coord_data`): after `steps` steps at `train.lr`, the RMS of
  every module's output h and of its change h - h(0) (captured with `nnx.capture`, as mup's forward hooks do)
  against width; `slopes[m]` = log-log slope of the change at the last step. muP: ~0 for every module; SP: > 0.
- lr_transfer (TP V, Fig. 1; with depth, TP VI Fig. 1 and Bordelon et al. ICLR 2024 Fig. 1): the training loss
  after `steps` steps on a grid of learning rates train.lr x 2^k, for every width (or depth, when several are
  given), and the best one; `shift` = its move from the first to the last, in grid steps (factors of 2).
- lazy_rich (Chizat, Oyallon & Bach 2019; TP IV): under `compare` and under `parametrization`, the relative change
  ||K_T - K_0||_F / ||K_0||_F of the empirical NTK on `probe` points and of every module's output, per width.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from workbench.core import parametrizations as P
from workbench.core.analysis import loglog_slope
from workbench.core.config import Config as _Config
from workbench.core.config import group, spec
from workbench.core.experiment import experiment_run, sweep
from workbench.core.fields import BASE_WIDTH, PARAMETRIZATION, SEEDS, WIDTH
from workbench.data import Dataset, sources
from workbench.data.sources import load
from workbench.nets import own
from workbench.nets.engine import Program, TrainConfig, runs, stacked_params
from workbench.theory.kernels.empirical import jacobian_ntk

__all__ = ["Config", "METRICS", "run"]

STUDIES = ("coord_check", "lr_transfer", "lazy_rich")
UNUSED = ("momentum", "weight_decay", "beta2", "batch_size", "loss", "record_every", "seed")
MAX_SIZES = 32  # widths (or depths) one study compares


@dataclass(frozen=True)
class Config(_Config):
    """One study of a factory's model on a data source, over widths (and depths)."""

    study: str = spec("coord_check", choices=STUDIES, doc="what to measure")
    model: str = spec("zoo:resmlp", doc="registered name, 'zoo:cnn|transformer|resmlp' or 'package.module:function'")
    data: str = spec("sklearn:wine", doc="'digits', 'modular:<p>', 'sklearn:<name>', a .npz/.csv path or a name")
    parametrization: str = PARAMETRIZATION("mup", doc="abc-parametrization (multiplier-free form)")
    widths: tuple[int, ...] = WIDTH((32, 64, 128, 256), doc="widths to compare")
    base_width: int = BASE_WIDTH(32)
    depths: tuple[int, ...] = spec((0,), lo=0, hi=256, doc="depths (0: the factory's own); several: depth is swept")
    base_depth: int = spec(
        2, lo=1, hi=256, soft=(1, 16), doc="depth L0 at which every depth scaling is the plain network"
    )
    depth_scaling: str = spec("none", choices=tuple(P.DEPTH_SCALINGS), doc="residual branches x (L/L0)^-alpha")
    train: TrainConfig = group(
        TrainConfig(optimizer="adam", lr=0.003, steps=5),
        fixed=UNUSED,
        limits={"steps": dict(hi=10_000, why="every step's losses and module sizes are traced")},
        doc="training (full batch of n_samples; lr_transfer: the centre of the grid)",
    )
    n_lrs: int = spec(7, lo=2, hi=32, doc="learning rates train.lr x 2^k of lr_transfer, centred")
    compare: str = spec("ntk", choices=P.NAMES, doc="lazy_rich: the parametrization compared with `parametrization`")
    probe: int = spec(32, lo=2, hi=512, doc="points of the empirical NTK (lazy_rich)")
    seeds: int = SEEDS(2, doc="seeds averaged")
    n_samples: int = spec(128, lo=2, hi=100_000, log=True, doc="training points (full batch)")

    def validate(self) -> None:
        own.factory(self.model)  # an unknown model is refused by name
        dataset(self.data)  # an unknown or unreadable source is refused by name (and read once: cached)
        for name in ("widths", "depths"):
            if len(getattr(self, name)) > MAX_SIZES:
                raise ValueError(f"{name}: at most {MAX_SIZES} values, got {len(getattr(self, name))}")
        if len(self.widths) > 1 and len(self.depths) > 1:
            raise ValueError("depths: sweep either widths or depths; give one width or one depth")
        if any(d == 0 for d in self.depths) and (len(self.depths) > 1 or self.depth_scaling != "none"):
            raise ValueError("depths: a depth scaling or a depth sweep needs depths >= 1 (0: the factory's own)")
        if self.study == "coord_check" and len(self.widths) < 2:
            raise ValueError("widths: the coordinate check needs at least 2 widths to fit slopes against")

    @property
    def axis(self) -> str:
        """'depth' when several depths are given, else 'width'."""
        return "depth" if len(self.depths) > 1 else "width"

    @property
    def pair(self) -> tuple[str, str]:
        """The two parametrizations lazy_rich compares: `compare`, then `parametrization`."""
        return self.compare, self.parametrization

    @property
    def log2_lrs(self) -> np.ndarray:
        """The lr_transfer grid: log2(train.lr) + k, centred, in steps of one (factors of 2)."""
        return np.log2(self.train.lr) + np.arange(self.n_lrs) - (self.n_lrs - 1) / 2


class Point(TypedDict):
    """One width (or depth) of the study; seed means."""

    width: int
    depth: int
    rms: NotRequired[np.ndarray]  # (steps + 1, M) coord_check: RMS of each module's output
    delta: NotRequired[np.ndarray]  # (steps + 1, M) coord_check: RMS of its change
    log2_lrs: NotRequired[np.ndarray]  # (R,) lr_transfer
    loss: NotRequired[np.ndarray]  # (R,) lr_transfer: loss at the last step (before its update), NaN: diverged
    optimum_log2_lr: NotRequired[float]  # lr_transfer
    ntk_change: NotRequired[np.ndarray]  # (2,) lazy_rich: under `compare`, then `parametrization`
    movement: NotRequired[np.ndarray]  # (P, M) lazy_rich: relative change of each module's output


class Summary(TypedDict):
    axis: str  # "width" or "depth"
    sizes: np.ndarray  # (W,) the widths or depths
    modules: str  # the captured modules, ','-separated (coord_check, lazy_rich)
    slopes: NotRequired[np.ndarray]  # (M,) coord_check: log-log slope of delta at the last step
    optima: NotRequired[np.ndarray]  # (W,) lr_transfer: log2 of the best learning rate
    shift: NotRequired[float]  # lr_transfer: last optimum minus first, in grid steps


METRICS = {"point": Point, "summary": Summary}


def dataset(source: str) -> Dataset:
    """The data a config names: files and bundled sets read once (a study reads them at every width); registered
    arrays afresh, so registering a name again takes effect."""
    return load(source) if sources.registered(source) else _read(source)


@functools.cache
def _read(source: str) -> Dataset:
    return load(source)


def batch(config: Config) -> tuple[np.ndarray, np.ndarray, str]:
    """The first n_samples training points and the loss their targets need."""
    d = dataset(config.data)
    n = min(config.n_samples, len(d.x_train))
    return d.x_train[:n], d.y_train[:n], "xent" if d.n_classes else "mse"


def model_config(config: Config, width: int, depth: int, parametrization: str | None = None) -> own.OwnConfig:
    """The factory's model at one width and depth, roles inferred, checked on one batch of the data."""
    d = dataset(config.data)
    c = own.configure(
        own.OwnConfig(
            model=config.model,
            parametrization=parametrization or config.parametrization,
            width=width,
            base_width=config.base_width,
            depth=depth,
            base_depth=config.base_depth,
            depth_scaling=config.depth_scaling,
            inputs=d.in_dim,
            outputs=d.out_dim,
        )
    )
    _check_forward(c, own.factory(c.model), d.x_train[:2], d.out_dim)
    return c


def _check_forward(config: own.OwnConfig, make_model: own.Factory, x: np.ndarray, out_dim: int) -> None:
    """Refuse a model whose forward pass fails on the data or gives the wrong number of outputs, before training
    (once per config, factory and kind of input)."""
    _checked_forward(config, make_model, x.shape, x.dtype.str, out_dim)


@functools.cache
def _checked_forward(config: own.OwnConfig, make_model: own.Factory, shape: tuple, dtype: str, out_dim: int) -> None:
    x = np.zeros(shape, dtype)
    try:
        out = jax.eval_shape(lambda: own.Own(config, rngs=nnx.Rngs(params=0))(jnp.asarray(x)))
    except Exception as e:  # the user's model on the user's data: any failure is reported
        raise ValueError(f"model: fails on the data's inputs of shape {x.shape} ({type(e).__name__}: {e})") from None
    if getattr(out, "shape", None) != (2, out_dim):
        raise ValueError(
            f"model: gives outputs of shape {getattr(out, 'shape', type(out).__name__)} for 2 inputs; "
            f"the data needs (2, {out_dim})"
        )


def _captured(graphdef: nnx.GraphDef, params: nnx.State, x: jax.Array) -> list[tuple[str, jax.Array]]:
    """Every submodule's output on x (nnx.capture of each module's methods), by path."""
    _, inter = nnx.capture(nnx.merge(graphdef, params), nnx.Intermediate, method_outputs=nnx.Intermediate)(x)
    found = []
    for keys, a in jax.tree_util.tree_leaves_with_path(nnx.to_pure_dict(inter)):
        path = "/".join(str(getattr(k, "key", "")) for k in keys if getattr(k, "key", "__call__") != "__call__")
        if path and jnp.issubdtype(a.dtype, jnp.floating) and a.ndim:
            found.append((path.removeprefix("net/") if path != "net" else "output", a))
    return found


def module_sizes(graphdef: nnx.GraphDef, params: nnx.State, params0: nnx.State, x: jax.Array):
    """(RMS of h, RMS of h - h(0)) for every module's output h (the observer of coord_check and lazy_rich)."""
    now, start = _captured(graphdef, params, x), _captured(graphdef, params0, x)
    rms = lambda a: jnp.sqrt(jnp.mean(a.astype(jnp.float32) ** 2))
    return jnp.stack([rms(a) for _, a in now]), jnp.stack([rms(a - b) for (_, a), (_, b) in zip(now, start)])


def modules(config: Config) -> list[str]:
    """The module paths whose outputs the observer measures, in its order."""
    mc = model_config(config, config.widths[0], config.depths[0])
    graphdef, params = nnx.split(nnx.eval_shape(lambda: own.Own(mc, rngs=nnx.Rngs(params=0))), nnx.Param)
    x = jnp.asarray(batch(config)[0][:2])
    names: list[str] = []
    jax.eval_shape(lambda p: names.extend(path for path, _ in _captured(graphdef, p, x)), params)
    return names


def trained(
    config: Config, width: int, depth: int, lrs: np.ndarray, parametrization: str | None = None, stop=None
) -> tuple[nnx.GraphDef, nnx.State, nnx.State, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Train every seed at every learning rate through the engine: (graphdef, params0[S], params[S, R], losses[S, R,
    steps], (rms, delta)[S, R, steps + 1, M])."""
    x, y, loss = batch(config)
    seeds = tuple(range(config.seeds))
    xs = jnp.broadcast_to(jnp.asarray(x), (len(seeds),) + x.shape)
    ys = jnp.broadcast_to(jnp.asarray(y), (len(seeds),) + y.shape)
    mc = model_config(config, width, depth, parametrization)
    graphdef, params0 = stacked_params(own.Own, mc, seeds)
    program = Program(graphdef, mc, config.train.optimizer, loss=loss, observe=module_sizes)
    params, losses, observed = runs(program, config.train.steps, params0, {"lr": lrs}, xs, ys, stop=stop)
    rms, delta = (np.asarray(o) for o in observed)
    return graphdef, params0, params, np.asarray(losses), (rms, delta)


def ntk_change(config: Config, graphdef: nnx.GraphDef, params0: nnx.State, params: nnx.State) -> float:
    """||K_T - K_0||_F / ||K_0||_F of the empirical NTK of seed 0 on the first `probe` points."""
    x = jnp.asarray(batch(config)[0][: config.probe])
    fn = lambda p, z: nnx.merge(graphdef, p)(z.astype(x.dtype))  # token ids come back from jacobian_ntk as floats
    first = lambda tree: jax.tree.map(lambda a: a[0], tree)
    k0, kt = (np.asarray(jacobian_ntk(fn, p, x)) for p in (first(params0), first(first(params))))
    return float(np.linalg.norm(kt - k0) / np.linalg.norm(k0))


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """Yield one point per width (or depth), then a summary."""
    sizes = config.depths if config.axis == "depth" else config.widths
    names = modules(config) if config.study != "lr_transfer" else []

    def measure(size):
        width, depth = (config.widths[0], size) if config.axis == "depth" else (size, config.depths[0])
        point = {"width": width, "depth": depth}
        if config.study == "coord_check":
            *_, (rms, delta) = trained(config, width, depth, np.array([config.train.lr]), stop=stop)
            return point | {"rms": rms[:, 0].mean(0), "delta": delta[:, 0].mean(0)}
        if config.study == "lr_transfer":
            with np.errstate(invalid="ignore"):
                loss = trained(config, width, depth, 2.0**config.log2_lrs, stop=stop)[3][:, :, -1].mean(0)
            finite = np.where(np.isfinite(loss), loss, np.inf)
            best = float(config.log2_lrs[np.argmin(finite)]) if np.isfinite(finite).any() else float("nan")
            return point | {"log2_lrs": config.log2_lrs, "loss": loss, "optimum_log2_lr": best}
        changes, movements = [], []
        for name in config.pair:
            graphdef, params0, params, _, (rms, delta) = trained(
                config, width, depth, np.array([config.train.lr]), name, stop
            )
            changes.append(ntk_change(config, graphdef, params0, params))
            movements.append((delta[:, 0, -1] / rms[:, 0, 0]).mean(0))
        return point | {"ntk_change": np.array(changes), "movement": np.array(movements)}

    def summary(points):
        out = {"axis": config.axis, "sizes": np.array(sizes), "modules": ",".join(names)}
        if config.study == "coord_check":
            out["slopes"] = loglog_slope(config.widths, np.array([p["delta"][-1] for p in points]))
        if config.study == "lr_transfer":
            optima = np.array([p["optimum_log2_lr"] for p in points])
            out |= {"optima": optima, "shift": float(optima[-1] - optima[0])}
        return out

    return sweep(sizes, measure, stop, summary=summary, costs=sizes)
