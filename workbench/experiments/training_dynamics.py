"""Training dynamics: finite MLPs of several widths train side by side next to the infinite-width NTK
prediction at the same step (Jacot et al. 2018; Lee et al. 2019), on a 1-D or 2-D task.

Plain full-batch SGD at learning rate lr on 0.5 mean ||f - y||^2 moves the linearised network by
f_{k+1} = f_k - (lr/N) Theta (f_k - y), so the kernel-regime prediction at step k is
(`workbench.theory.kernels.predict.gradient_descent`)
f_k(x) = f_0(x) + Theta(x, X) Theta^-1 (I - (I - lr Theta / N)^k) (y - f_0(X))  (Lee et al. 2019, Sec. 2.2;
its lr -> 0 limit at t = k lr is the gradient flow of their Eq. 9), from each network's own initial outputs
f_0 (not the ensemble mean f_0 = 0), with Theta the infinite-width NTK of the "ntk" parametrization at
`base_width` (the kernel of training, see `workbench.theory.kernels.empirical`; every parametrization equals it at
the base width). Wider nets approach it under NTK parametrization (lazy training), not under muP or mean field.

How fast depends on the network. With the defaults (sine, one hidden ReLU layer) the RMS gap on the grid after
1000 steps is 0.046, 0.023, 0.010, 0.0038 at widths 64, 256, 1024, 4096 (slope -0.6) and the width-4096 loss
stays within 1% of its prediction (tests/test_training_dynamics_theory.py). ReLU nets with two or more hidden
layers on this 1-D task do not get there at any width offered here (depth 2, seed 0: gap 0.066, 0.110, 0.111,
0.094 at widths 64, 256, 1024, 4096, loss 4-7x its prediction at step 1000; the analytic kernel is right, but the
late loss lives in eigendirections 60-1000x below the top one, which the finite kernel's fluctuations and motion
swamp); smooth activations (tanh, gelu) at depth 2 converge (gap 0.001-0.004 at width 4096, slope about -0.4).

Metrics (arrays over `widths` in the given order; W = number of widths):
- `t`: step * lr; `train_loss[W]`, `test_loss[W]` (and `train_acc[W]`, `test_acc[W]` for 2-D tasks);
- `ntk_train_loss[W]`, `ntk_test_loss[W]`: the same losses of each network's NTK prediction at that step (NaN
  unless the optimizer is "sgd");
- `f_grid[W, G]`: the learned function on the plotting grid (1-D: f(x); 2-D: the margin f_1 - f_0
  on a grid x grid square, row-major), `ntk_f_grid[W, G]`: each network's NTK prediction there;
- `ntk_distance[W]`: RMS over the grid of f_grid - ntk_f_grid;
- `ntk_change[W]`: ||K_t - K_0||_F / ||K_0||_F for the empirical NTK of training (SGD scaling) on
  the first `ntk_points` training inputs (Fort et al. 2020; Chizat et al. 2019);
- `feature_movement[W, depth]`: ||x_l(t) - x_l(0)||_F / ||x_l(0)||_F for each hidden layer's
  features on the training inputs.
The first record also carries `grid` (G, in_dim), `x_train`, `y_train` and `widths` for drawing.
A width that diverges ends the run with status "diverged"; the Stop event ends it after the current chunk (or
before the next width's first record).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import jax
import jax.numpy as jnp
import numpy as np

from workbench import data as D
from workbench.core.config import Config as _Config
from workbench.core.config import group, spec
from workbench.core.experiment import Record, Status, experiment_run
from workbench.core.fields import SEED, WIDTH
from workbench.nets.engine import TrainConfig, train
from workbench.nets.models import MLPConfig, build_mlp
from workbench.theory.kernels import Kernels, empirical_ntk, limit_kernels
from workbench.theory.kernels.predict import gradient_descent

__all__ = ["Config", "METRICS", "run"]

TASKS = ("sine",) + D.PLAYGROUND


@dataclass(frozen=True)
class Config(_Config):
    task: str = spec("sine", choices=TASKS, doc="1-D regression (sine) or a 2-D TF-Playground set")
    n_train: int = spec(24, lo=4, hi=512, doc="training points")
    noise: float = spec(0.0, lo=0.0, hi=1.0, doc="label noise (sine) or input noise (2-D)")
    widths: tuple[int, ...] = WIDTH((64, 1024), doc="widths trained side by side")
    model: MLPConfig = group(
        MLPConfig(depth=1, parametrization="ntk", base_width=64, weight_std=1.5, bias_std=0.1),
        fixed=("width", "in_dim", "out_dim"),
        limits={"weight_std": dict(lo=0.1, hi=4.0), "bias_std": dict(hi=2.0)},
        doc="network (ReLU nets deeper than 1 reach the kernel limit far more slowly)",
    )
    train: TrainConfig = group(
        TrainConfig(optimizer="sgd", lr=0.02, steps=1000, record_every=25),
        fixed=("loss", "batch_size", "seed"),
        limits={"record_every": {"hi": 10_000}},
        doc="training (full batch, MSE; the NTK prediction for sgd only)",
    )
    ntk_points: int = spec(12, lo=2, hi=128, doc="training inputs of the empirical NTK")
    grid: int = spec(48, lo=8, hi=200, doc="plotting grid points (per side for 2-D)")
    seed: int = SEED(0, doc="seed of the data and the weights")


class Step(TypedDict):
    """Metrics of every training record; arrays over `widths` (W) in the given order."""

    t: float  # step * lr
    train_loss: np.ndarray  # (W,)
    test_loss: np.ndarray  # (W,)
    train_acc: NotRequired[np.ndarray]  # (W,) 2-D tasks
    test_acc: NotRequired[np.ndarray]  # (W,) 2-D tasks
    f_grid: np.ndarray  # (W, G) learned function (1-D) or margin (2-D) on the plotting grid
    feature_movement: np.ndarray  # (W, depth)
    ntk_change: np.ndarray  # (W,)
    ntk_train_loss: np.ndarray  # (W,) NaN unless sgd
    ntk_test_loss: np.ndarray  # (W,)
    ntk_f_grid: np.ndarray  # (W, G)
    ntk_distance: np.ndarray  # (W,)
    grid: NotRequired[np.ndarray]  # (G, in_dim) first record only
    x_train: NotRequired[np.ndarray]  # first record only
    y_train: NotRequired[np.ndarray]  # first record only
    widths: NotRequired[np.ndarray]  # first record only


METRICS = {"step": Step}


def dataset(config: Config) -> D.Dataset:
    """The task's data: sine regression on [-1, 1] or a TF-Playground set (half of it for testing)."""
    if config.task == "sine":
        return D.sine(n_train=config.n_train, n_test=128, noise=config.noise, seed=config.seed)
    return D.playground(config.task, n=2 * config.n_train, noise=config.noise, seed=config.seed)


def plotting_grid(config: Config, data: D.Dataset) -> np.ndarray:
    """Points where the learned function is drawn: a line over [-1, 1] or a square over the data."""
    if data.in_dim == 1:
        return np.linspace(-1.0, 1.0, config.grid, dtype=np.float32)[:, None]
    lim = 1.1 * float(np.abs(np.concatenate([data.x_train, data.x_test])).max())
    u = np.linspace(-lim, lim, config.grid, dtype=np.float32)
    return np.stack(np.meshgrid(u, u), -1).reshape(-1, 2)


def model_config(config: Config, data: D.Dataset, width: int) -> MLPConfig:
    return config.model.replace(in_dim=data.in_dim, width=width, out_dim=data.out_dim)


def readout(out) -> np.ndarray:
    """What is drawn: f for one output, the margin f_1 - f_0 for two classes."""
    out = np.asarray(out)
    return out[:, 0] if out.shape[1] == 1 else out[:, 1] - out[:, 0]


def _mse(f, y) -> float:
    return float(0.5 * np.mean(np.sum((f - y) ** 2, axis=-1)))


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """Yield a Record every `record_every` steps with the metrics of the module docstring."""
    stop = stop or threading.Event()
    yield Record(
        0, config.train.steps, "steps", {}, "compiling", "status"
    )  # kernels, empirical NTKs and the training chunks trace first
    data = dataset(config)
    grid = plotting_grid(config, data)
    n_tr, n_te = len(data.x_train), len(data.x_test)
    x_all = jnp.asarray(np.concatenate([data.x_train, data.x_test, grid]))  # train | test | grid
    x_ntk = x_all[: config.ntk_points]
    y_tr, y_te = (
        np.asarray(jax.nn.one_hot(y, data.n_classes) if data.n_classes else y) for y in (data.y_train, data.y_test)
    )
    kernels = None
    if config.train.optimizer == "sgd":  # the kernel of training of the "ntk" parametrization as n -> infinity
        limit = model_config(config, data, config.model.base_width).replace(parametrization="ntk")
        kernels = (limit_kernels(limit, x_all[:n_tr]), limit_kernels(limit, x_all, x_all[:n_tr]))
    initial = []  # per width: f_0 on x_all

    def observer(model):
        k0 = empirical_ntk(model, x_ntk)
        out0, hidden0 = model(x_all, return_hidden=True)
        initial.append(np.asarray(out0, np.float64))
        feats0 = [np.asarray(f[:n_tr]) for f in hidden0["features"]]

        def metrics(model):
            out, hidden = model(x_all, return_hidden=True)
            moved = [
                float(np.linalg.norm(np.asarray(f[:n_tr]) - f0) / max(np.linalg.norm(f0), 1e-30))
                for f, f0 in zip(hidden["features"], feats0)
            ]
            finite = bool(np.all(np.isfinite(np.asarray(out))))  # a diverged network has no tangent kernel
            k = empirical_ntk(model, x_ntk) if finite else None
            return {
                "f_grid": readout(out[n_tr + n_te :]),
                "feature_movement": np.array(moved),
                "ntk_change": float(jnp.linalg.norm(k - k0) / jnp.linalg.norm(k0)) if k is not None else float("nan"),
            }

        return metrics

    train_config = config.train
    streams = []
    for width in config.widths:
        model = build_mlp(model_config(config, data, width), seed=config.seed)
        streams.append(train(model, data, train_config, stop=stop, metrics_fn=observer(model)))

    first = True
    while True:
        records = []
        for stream in streams:
            if first and stop.is_set():  # a width's first record compiles its empirical NTK: seconds each
                yield Record(0, config.train.steps, "steps", {}, "stopped", "status")
                return
            record = None
            for record in stream:
                if record.status != "compiling":
                    break
                yield Record(record.done, config.train.steps, "steps", {}, "compiling", "status", record.elapsed)
            records.append(record)
        if any(r is None for r in records):
            return
        step = min(r.step for r in records)
        metrics = {"t": step * config.train.lr}
        for name in records[0].metrics:
            if name != "batch_loss":
                metrics[name] = np.stack([np.asarray(r.metrics[name]) for r in records])
        metrics.update(_ntk_metrics(kernels, step, config.train.lr, initial, y_tr, y_te, metrics["f_grid"]))
        if first:
            metrics.update(
                grid=grid,
                x_train=np.asarray(data.x_train),
                y_train=np.asarray(data.y_train),
                widths=np.array(config.widths),
            )
            first = False
        statuses = {r.status for r in records}
        status: Status = "finished" if statuses == {"finished"} else "running"
        status = "stopped" if "stopped" in statuses else status
        status = "diverged" if "diverged" in statuses else status
        yield Record(step, config.train.steps, "steps", metrics, status, "step", max(r.elapsed for r in records))
        if status != "running":
            return


def _ntk_metrics(kernels: tuple[Kernels, Kernels] | None, step, lr, initial, y_tr, y_te, f_grid) -> dict:
    """ntk_train_loss[W], ntk_test_loss[W], ntk_f_grid[W, G] and ntk_distance[W] (RMS of f - f_ntk on the grid)."""
    if kernels is None:
        nan = np.full(len(initial), np.nan)
        return {
            "ntk_train_loss": nan,
            "ntk_test_loss": nan,
            "ntk_f_grid": np.full(f_grid.shape, np.nan),
            "ntk_distance": nan,
        }
    n_tr, n_te = len(y_tr), len(y_te)
    train_loss, test_loss, f_ntk = [], [], []
    for f0 in initial:  # each network's own f_0: the linearised network of that initialisation
        f = np.asarray(gradient_descent(*kernels, y_tr, step, lr, f0_train=f0[:n_tr], f0_test=f0).mean, np.float64)
        train_loss.append(_mse(f[:n_tr], y_tr))
        test_loss.append(_mse(f[n_tr : n_tr + n_te], y_te))
        f_ntk.append(readout(f[n_tr + n_te :]))
    f_ntk = np.array(f_ntk)
    return {
        "ntk_train_loss": np.array(train_loss),
        "ntk_test_loss": np.array(test_loss),
        "ntk_f_grid": f_ntk,
        "ntk_distance": np.sqrt(np.mean((f_grid - f_ntk) ** 2, axis=1)),
    }
