"""Training engine: jitted chunks of optimizer steps, a Python generator of Records between chunks.

    for record in train(model, data, TrainConfig(lr=0.1), stop=event):
        print(record.step, record.metrics["train_loss"])

Losses: "mse" is 0.5 * mean_i ||f(x_i) - y_i||^2 (one-hot targets for classes), so gradient flow on
it is df/dt = -lr/N * Theta (f - y), the convention of `workbench.kernels` predictions; "xent" is the
mean softmax cross-entropy. Minibatches are drawn with replacement, step t's from `fold_in(key, t)`, so
the numbers do not depend on how steps are grouped into chunks. A non-finite loss ends the run with status
"diverged". Compiled chunks are cached by (graph, optimizer kind, loss, sizes), so a slider that changes lr,
weight decay, seed, steps or record_every never recompiles.

Chunks are sized by time, not by `record_every`: a chunk's length is a traced argument (one compilation for
every length), the first chunk is one step, and each later one is as many steps as `CHUNK_SECONDS` of compute
at the speed measured on the chunk before (never past the next record). Records still come at exactly every
`record_every` steps (several chunks per record when steps are slow), and the stop event, checked after every
chunk, ends a run within about one chunk whatever `record_every` is.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NotRequired, Protocol, TypedDict, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from workbench.checks import check_training
from workbench.config import Config, spec
from workbench.data import Dataset
from workbench.experiment import Record
from workbench.fields import LR, OPTIMIZER, SEED, STEPS
from workbench.models import ModelConfig
from workbench.optim import make_optimizer

LOSSES = ("mse", "xent")
CHUNK_SECONDS = 0.15  # compute per chunk: Stop ends a run within about one chunk (two with the one queued ahead)
GROWTH = 8  # a chunk is at most this many times longer than the one before it


@dataclass(frozen=True)
class TrainConfig(Config):
    """Optimizer and schedule of a run."""

    optimizer: str = OPTIMIZER("sgd", doc="optax optimizer")
    lr: float = LR(0.1, doc="base learning rate at the base width")
    momentum: float = spec(0.9, lo=0.0, hi=0.999, doc="momentum (optimizer 'momentum')")
    weight_decay: float = spec(0.0, lo=0.0, hi=100.0, doc="L2 (sgd/adam) or decoupled (adamw) decay")
    beta2: float = spec(0.999, lo=0.0, hi=0.99999, doc="Adam's second-moment decay (adam/adamw)")
    steps: int = STEPS(1000, doc="number of optimizer steps")
    batch_size: int = spec(0, lo=0, hi=1_000_000, doc="minibatch size; 0 for full batch")
    loss: str = spec("mse", choices=LOSSES, doc="mean squared error or cross-entropy")
    record_every: int = spec(50, lo=1, hi=1_000_000, doc="steps between records")
    seed: int = SEED(0, doc="seed of the minibatch sampler")


class TrainStep(TypedDict):
    """Metrics of the engine's step records; experiments that train extend it with their own."""

    train_loss: float
    test_loss: float
    batch_loss: float  # mean over the steps since the previous record (NaN in the first)
    train_acc: NotRequired[float]  # classification
    test_acc: NotRequired[float]


def targets(data: Dataset, y: np.ndarray, loss: str) -> jax.Array:
    """Labels for xent; one-hot (classification) or raw (regression) targets for mse."""
    if data.n_classes and loss == "mse":
        return jax.nn.one_hot(y, data.n_classes)
    if not data.n_classes and loss == "xent":
        raise ValueError("loss: 'xent' needs a classification data set; use 'mse' for regression")
    return jnp.asarray(y)


def loss_value(out: jax.Array, y: jax.Array, loss: str) -> jax.Array:
    """Mean loss of outputs `out` against targets `y` (see the module docstring)."""
    if loss == "mse":
        return 0.5 * jnp.mean(jnp.sum((out - y) ** 2, axis=-1))
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out, y))


def model_loss(graphdef, params, x, y, loss: str):
    return loss_value(nnx.merge(graphdef, params)(x), y, loss)


def optimizer_for(model_config, config: TrainConfig):
    """The per-role optax optimizer of a model under `config` (lr and weight decay injected); the model's
    config says how its tensors scale (`ModelConfig.scaling`, `ModelConfig.param_labels`)."""
    parametrization, width, base_width = model_config.scaling()
    return make_optimizer(
        config.optimizer,
        config.lr,
        parametrization=parametrization,
        width=width,
        base_width=base_width,
        roles=model_config.param_labels,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        b2=config.beta2,
    )


@functools.lru_cache(maxsize=64)
def compiled_chunk(graphdef, model_config: ModelConfig, optimizer: str, momentum: float, loss: str, batch_size: int):
    """jit((params, opt_state, key, start, n, x, y) -> (params, opt_state, summed loss, all finite)): steps
    start .. start + n - 1 in a `fori_loop` (n traced, so every chunk length shares one compilation); cached so
    equal graphs and settings reuse it. The divergence check runs inside, so a chunk costs one sync."""
    tx = optimizer_for(model_config, TrainConfig(optimizer=optimizer, momentum=momentum))
    grad = jax.value_and_grad(functools.partial(model_loss, graphdef, loss=loss), argnums=0)

    @jax.jit
    def chunk(params, opt_state, key, start, n, x, y):
        def step(i, carry):
            params, opt_state, total = carry
            if batch_size:
                idx = jax.random.randint(jax.random.fold_in(key, start + i), (batch_size,), 0, x.shape[0])
                value, g = grad(params, x[idx], y[idx])
            else:
                value, g = grad(params, x, y)
            updates, opt_state = tx.update(g, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, total + value

        params, opt_state, total = jax.lax.fori_loop(0, n, step, (params, opt_state, jnp.zeros((), jnp.float32)))
        finite = jnp.isfinite(total) & jnp.all(jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(params)]))
        return params, opt_state, total, finite

    return chunk


class Pace:
    """Chunk lengths sized by time: one step first, then `CHUNK_SECONDS` of compute at the last measured speed
    (at most `GROWTH` times the previous length)."""

    def __init__(self):
        self.seconds_per_step, self.last = None, 1

    def length(self, room: int) -> int:
        """Steps of the next chunk, at most `room` (the steps left before the next record)."""
        n = 1 if self.seconds_per_step is None else int(CHUNK_SECONDS / max(self.seconds_per_step, 1e-9))
        self.last = max(1, min(room, n, GROWTH * self.last))
        return self.last

    def measured(self, steps: int, seconds: float) -> None:
        self.seconds_per_step = seconds / steps


@functools.lru_cache(maxsize=64)
def compiled_eval(graphdef, loss: str, n_classes: int):
    """jit of (train/test loss, accuracy) for a graph; accuracy only for classification."""

    def evaluate(params, x, y, labels):
        out = nnx.merge(graphdef, params)(x)
        metrics = {"loss": loss_value(out, y, loss)}
        if n_classes:
            metrics["acc"] = jnp.mean(jnp.argmax(out, -1) == labels)
        return metrics

    return jax.jit(evaluate)


_SEEN: set = set()


class ConfiguredModule(Protocol):
    """What `train` needs of a model besides being an NNX module: the hashable `ModelConfig` that says
    how its tensors scale (MLP, Transformer, UFM, the toy models all keep theirs as `self.config`)."""

    @property
    def config(self) -> ModelConfig: ...


ModuleT = TypeVar("ModuleT", bound=ConfiguredModule)


def train(
    model: ModuleT,
    data: Dataset,
    config: TrainConfig,
    *,
    stop: threading.Event | None = None,
    metrics_fn: Callable[[ModuleT], dict] | None = None,
) -> Iterator[Record]:
    """Train `model` (an MLP, or any NNX module with a hashable `config`) in place on `data`, yielding
    a Record every `config.record_every` steps.

    Metrics: train_loss, test_loss (and train_acc, test_acc for classification), batch_loss (mean
    over the steps since the previous record), plus whatever `metrics_fn(model)` returns. The last record has status
    "finished", "stopped" (stop event set) or "diverged" (non-finite loss)."""
    check_training(model.config, data, config.loss)
    stop = stop or threading.Event()
    graphdef, params = nnx.split(model, nnx.Param)
    rest = nnx.state(model, nnx.Not(nnx.Param))
    tx = optimizer_for(model.config, config)
    opt_state = tx.init(params)
    x_tr, x_te = jnp.asarray(data.x_train), jnp.asarray(data.x_test)
    y_tr, y_te = targets(data, data.y_train, config.loss), targets(data, data.y_test, config.loss)
    lab_tr, lab_te = jnp.asarray(data.y_train), jnp.asarray(data.y_test)
    if config.batch_size > x_tr.shape[0]:
        raise ValueError(f"batch_size: must be in [0, {x_tr.shape[0]}] (0 = full batch), got {config.batch_size}")
    evaluate = compiled_eval(graphdef, config.loss, data.n_classes)
    key = jax.random.key(config.seed)
    start, step = time.perf_counter(), 0

    def evaluated(params):
        """Train and test metrics of `params`, dispatched now and read by `record` later."""
        return evaluate(params, x_tr, y_tr, lab_tr), evaluate(params, x_te, y_te, lab_te)

    def record(status, params, step, evals, batch_loss=float("nan")):
        tr, te = jax.device_get(evals)
        metrics = {"train_loss": float(tr["loss"]), "test_loss": float(te["loss"]), "batch_loss": batch_loss}
        if data.n_classes:
            metrics.update(train_acc=float(tr["acc"]), test_acc=float(te["acc"]))
        nnx.update(model, params, rest)
        if metrics_fn is not None:
            metrics.update(metrics_fn(model))
        return Record(step, config.steps, "steps", metrics, status, "step", time.perf_counter() - start, params)

    yield record("running", params, step, evaluated(params))
    cache_key = (graphdef, config.optimizer, config.momentum, config.loss, config.batch_size, x_tr.shape, y_tr.shape)
    if cache_key + (str(y_tr.dtype),) not in _SEEN:
        yield Record(step, config.steps, "steps", {}, "compiling", "status", time.perf_counter() - start)
        _SEEN.add(cache_key + (str(y_tr.dtype),))
    chunk = compiled_chunk(graphdef, model.config, config.optimizer, config.momentum, config.loss, config.batch_size)
    pace = Pace()

    def dispatch(params, opt_state, step):
        """Queue the next chunk (and the evaluations if it ends at a record): (params, opt_state, step, length,
        (summed loss, finite), evaluations or None, dispatch time)."""
        boundary = min(config.steps, (step // config.record_every + 1) * config.record_every)
        n = pace.length(boundary - step)
        params, opt_state, value, finite = chunk(params, opt_state, key, step, n, x_tr, y_tr)
        evals = evaluated(params) if step + n == boundary else None
        return params, opt_state, step + n, n, (value, finite), evals, time.perf_counter()

    # A chunk is read before the next is queued (so Stop waits for one chunk at most), except at a record: there
    # the next chunk is queued first, so the host's work on the record overlaps the device's work on it.
    queued = None if stop.is_set() else dispatch(params, opt_state, step)
    total, counted = 0.0, 0  # summed batch loss since the last record, and its steps
    while queued is not None:
        params, opt_state, step, n, flags, evals, dispatched = queued
        value, finite = (v.item() for v in jax.device_get(flags))
        pace.measured(n, time.perf_counter() - dispatched)
        total, counted, queued = total + value, counted + n, None
        status = "diverged" if not finite else "finished" if step >= config.steps else None
        status = status or ("stopped" if stop.is_set() else "running" if evals is not None else None)
        if status in (None, "running"):
            queued = dispatch(params, opt_state, step)
        if status is not None:
            yield record(status, params, step, evals or evaluated(params), total / counted)
            total, counted = 0.0, 0
    if step == 0:
        yield record("stopped", params, step, evaluated(params))  # stopped before the first chunk
