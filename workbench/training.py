"""Training engine: jitted `lax.scan` chunks of steps, a Python generator of Records between chunks.

    for record in train(model, data, TrainConfig(lr=0.1), stop=event):
        print(record.step, record.metrics["train_loss"])

Losses: "mse" is 0.5 * mean_i ||f(x_i) - y_i||^2 (one-hot targets for classes), so gradient flow on
it is df/dt = -lr/N * Theta (f - y), the convention of `workbench.kernels` predictions; "xent" is the
mean softmax cross-entropy. Minibatches are drawn with replacement. A non-finite loss ends the run
with status "diverged". Compiled chunks are cached by (graph, optimizer kind, loss, sizes), so a
slider that changes lr, weight decay or seed never recompiles.
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

from workbench.config import Config, spec
from workbench.data import Dataset
from workbench.experiment import Record
from workbench.fields import LR, OPTIMIZER, SEED, STEPS
from workbench.models import ModelConfig
from workbench.optim import make_optimizer

LOSSES = ("mse", "xent")


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
    record_every: int = spec(50, lo=1, hi=1_000_000, doc="steps per jitted chunk and per record")
    seed: int = SEED(0, doc="seed of the minibatch sampler")


class TrainStep(TypedDict):
    """Metrics of the engine's step records; experiments that train extend it with their own."""

    train_loss: float
    test_loss: float
    batch_loss: float  # mean over the chunk (NaN in the first record)
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
def compiled_chunk(
    graphdef, model_config: ModelConfig, optimizer: str, momentum: float, loss: str, steps: int, batch_size: int
):
    """jit(scan of `steps` optimizer steps) -> (params, opt_state, mean loss, all finite); cached so equal
    graphs and settings reuse one compilation. The divergence check runs inside, so a chunk costs one sync."""
    tx = optimizer_for(model_config, TrainConfig(optimizer=optimizer, momentum=momentum))
    grad = jax.value_and_grad(functools.partial(model_loss, graphdef, loss=loss), argnums=0)

    def step(carry, key):
        params, opt_state, x, y = carry
        if batch_size:
            idx = jax.random.randint(key, (batch_size,), 0, x.shape[0])
            value, g = grad(params, x[idx], y[idx])
        else:
            value, g = grad(params, x, y)
        updates, opt_state = tx.update(g, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, x, y), value

    @jax.jit
    def chunk(params, opt_state, key, x, y):
        keys = jax.random.split(key, steps)
        (params, opt_state, _, _), values = jax.lax.scan(step, (params, opt_state, x, y), keys)
        mean = jnp.mean(values)
        finite = jnp.isfinite(mean) & jnp.all(jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(params)]))
        return params, opt_state, mean, finite

    return chunk


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
    over the chunk), plus whatever `metrics_fn(model)` returns. The last record has status
    "finished", "stopped" (stop event set) or "diverged" (non-finite loss)."""
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
    # Pipelined: chunk i+1 (and its evaluations) is dispatched before chunk i's results are read, so the
    # host's work on record i overlaps the device's work on chunk i+1. A chunk dispatched after a
    # divergence or a Stop is discarded.
    ahead = None  # (params, step, (mean loss, finite), evaluations) of the chunk dispatched last
    while ahead is not None or (step < config.steps and not stop.is_set()):
        current, ahead = ahead, None
        if step < config.steps and not stop.is_set():
            k = min(config.record_every, config.steps - step)
            cache_key = (
                graphdef,
                config.optimizer,
                config.momentum,
                config.loss,
                k,
                config.batch_size,
                x_tr.shape,
                y_tr.shape,
                str(y_tr.dtype),
            )
            if cache_key not in _SEEN:
                yield Record(step, config.steps, "steps", {}, "compiling", "status", time.perf_counter() - start)
                _SEEN.add(cache_key)
            chunk = compiled_chunk(
                graphdef, model.config, config.optimizer, config.momentum, config.loss, k, config.batch_size
            )
            key, sub = jax.random.split(key)
            params, opt_state, mean, finite = chunk(params, opt_state, sub, x_tr, y_tr)
            step += k
            ahead = (params, step, (mean, finite), evaluated(params))
        if current is None:
            continue
        done_params, done_step, flags, evals = current
        batch_loss, finite = (v.item() for v in jax.device_get(flags))
        if not finite:
            yield record("diverged", done_params, done_step, evals, batch_loss)
            return
        if ahead is None:
            status = "finished" if done_step >= config.steps else "stopped"
            yield record(status, done_params, done_step, evals, batch_loss)
            return
        yield record("running", done_params, done_step, evals, batch_loss)
    yield record("stopped", params, step, evaluated(params))  # stopped before the first chunk
