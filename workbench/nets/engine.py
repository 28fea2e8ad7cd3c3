"""The one training engine: compiled chunks of optimizer steps for any Flax NNX model and optax optimizer.

One step function (`Program.step`) is the only place in the tree where parameters are updated. It runs inside
`chunk`, a `fori_loop` of steps whose length is traced (one compilation for every chunk length), and the chunk
runs either as it is (`train`: one model, one seed, one learning rate, a Python generator of Records between
chunks) or vmapped over leading axes (`runs`: seeds x any injected hyper-parameter, e.g. learning rates):

    for record in train(model, data, TrainConfig(lr=0.1), stop=event):
        print(record.step, record.metrics["train_loss"])

    program = Program(graphdef, model_config, optimizer="adam", loss="xent")
    params, losses, seen = runs(program, steps, params0, {"lr": lrs}, x, y, stop=event)

Losses: "mse" is 0.5 * mean_i ||f(x_i) - y_i||^2 (one-hot targets for classes), so gradient flow on it is
df/dt = -lr/N * Theta (f - y), the convention of `workbench.theory.kernels` predictions; "xent" is the mean softmax
cross-entropy. Minibatches are drawn with replacement, step t's from `fold_in(key, t)`, so the numbers do not depend
on how steps are grouped into chunks. A non-finite loss ends a run with status "diverged". Compiled chunks are
cached by their `Program` (graph, model config, optimizer kind, loss, batch size, trained roles, observer), so a
slider that changes lr, weight decay, seed, steps or record_every never recompiles.

Observers are functions `observe(graphdef, params, params0, x)` of the parameters, the initial parameters and the
training inputs, returning a pytree of arrays (per-layer sizes, feature movement, ...). `runs` evaluates them
inside the compiled chunk after every step (every step is a record there); `train` evaluates them in the compiled
evaluation at each record, beside the train and test losses.

Chunks are sized by time, not by `record_every` (`_Pace`): a chunk's length is a traced argument, the first chunk is
one step, and each later one is as many steps as `CHUNK_SECONDS` of compute at the speed measured on the chunk
before (never past the next record). The stop event, checked after every chunk, ends a run within about one chunk.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NotRequired, Protocol, TypedDict, TypeVar, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from workbench.core import checks
from workbench.core import parametrizations as P
from workbench.core.checks import check_training
from workbench.core.config import Config, spec
from workbench.core.declare import Array, Choice, Given, Instance, Int, declare
from workbench.core.experiment import Record, Status, Stopped
from workbench.core.fields import LR, OPTIMIZER, SEED, STEPS
from workbench.core.memory import require
from workbench.data import Dataset, playground
from workbench.nets.models import MLP, TRAINING_COPIES, MLPConfig, ModelConfig, build_mlp
from workbench.nets.optim import make_optimizer

__all__ = [
    "CHUNK_SECONDS",
    "LOSSES",
    "ConfiguredModule",
    "Objective",
    "Observer",
    "Program",
    "TrainConfig",
    "TrainStep",
    "model_loss",
    "optimizer_for",
    "runs",
    "stacked_params",
    "targets",
    "train",
]

LOSSES = ("mse", "xent")
CHUNK_SECONDS = 0.15  # compute per chunk: Stop ends a run within about one chunk (two with the one queued ahead)
GROWTH = 8  # a chunk is at most this many times longer than the one before it
COMPILED = 16  # compiled programs kept per kind: each holds 5-20 MB of machine code (notebook 02 on a 2 GB Binder)

Observer = Callable[[nnx.GraphDef, nnx.State, nnx.State, jax.Array], Any]
Objective = Callable[[nnx.GraphDef, nnx.State, jax.Array, jax.Array], jax.Array]
Params = Any  # a model's Param state (an nnx.State) or any pytree of arrays
OptState = Any  # an optax state: a pytree whose structure depends on the optimizer
Index = int | np.ndarray  # one run, or a block of runs
_FUNCTION = cast(type, Callable)  # `Instance(_FUNCTION)`: any callable (a class, a function, a bound method)


@dataclass(frozen=True)
class TrainConfig(Config):
    """Optimizer and schedule of a run."""

    optimizer: str = OPTIMIZER("sgd", doc="optax optimizer")
    lr: float = LR(0.1, doc="base learning rate at the base width")
    momentum: float = spec(0.9, lo=0.0, hi=0.999, doc="momentum (optimizer 'momentum')")
    weight_decay: float = spec(0.0, lo=0.0, hi=100.0, soft=(0.0, 5.0), doc="L2 (sgd/adam) or decoupled (adamw) decay")
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


def _example_model() -> MLP:
    """A small classifier of 3 inputs and 3 classes (the attack suite's base calls)."""
    return build_mlp(MLPConfig(in_dim=3, out_dim=3, width=8, depth=1))


def _example_data() -> Dataset:
    return playground("gauss", n=8)


def _targets(data: Dataset, y: np.ndarray, loss: str) -> jax.Array:
    """`targets` without its checks (the engine's own calls, after `check_training`)."""
    if data.n_classes and loss == "mse":
        return jax.nn.one_hot(y, data.n_classes)
    if not data.n_classes and loss == "xent":
        raise ValueError("loss: 'xent' needs a classification data set; use 'mse' for regression")
    return jnp.asarray(y)


@declare(
    data=Instance(Dataset, example=_example_data),
    y=Given(
        why="integer labels (n,) of a classification data set or targets (n, k) of a regression one: the body "
        "checks it against `data`",
        example=lambda: _example_data().y_train,
    ),
    loss=Choice(LOSSES),
)
def targets(data: Dataset, y: np.ndarray, loss: str) -> jax.Array:
    """Labels for xent; one-hot (classification) or raw (regression) targets for mse, of `data`'s labels or
    targets `y` (e.g. `data.y_train`)."""
    if data.n_classes:
        y = np.asarray(checks.array("y", y, ndim=1, integer_valued=True))
        checks.labels("y", y, y.shape[0], data.n_classes)
    else:
        y = np.asarray(checks.array("y", y, ndim=2))
        if y.shape[1] != data.out_dim:
            raise ValueError(f"y: the data set has {data.out_dim} target columns, got shape {y.shape}")
    return _targets(data, y, loss)


def _loss_value(out: jax.Array, y: jax.Array, loss: str) -> jax.Array:
    """Mean loss of outputs `out` against targets `y` (see the module docstring)."""
    if loss == "mse":
        return 0.5 * jnp.mean(jnp.sum((out - y) ** 2, axis=-1))
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out, y))


def _model_loss(graphdef: nnx.GraphDef, params: nnx.State, x: jax.Array, y: jax.Array, loss: str) -> jax.Array:
    """`model_loss` without its checks: the loss inside the compiled step."""
    return _loss_value(nnx.merge(graphdef, params)(x), y, loss)


@declare(
    graphdef=Instance(nnx.GraphDef, example=lambda: nnx.split(_example_model(), nnx.Param)[0]),
    params=Instance(nnx.State, example=lambda: nnx.split(_example_model(), nnx.Param)[1]),
    x=Array("n d"),
    y=Given(
        why="targets (n, k), or integer labels (n,) in [0, outputs) (one-hot under mse, as `targets` makes them); "
        "the body checks it against x and the loss",
        example=lambda: np.arange(6) % 3,
    ),
    loss=Choice(LOSSES),
)
def model_loss(graphdef: nnx.GraphDef, params: nnx.State, x: jax.Array, y: jax.Array, loss: str) -> jax.Array:
    """Loss of the model (`graphdef`, `params`) on inputs x (n, d) and targets y: (n, k) targets, or (n,)
    integer labels (one-hot under mse). Traceable (jax.grad of it is the training step's gradient)."""
    labels = np.ndim(y) == 1
    given = checks.array("y", y, ndim=(1, 2), integer_valued=labels)
    target = jnp.asarray(given)
    if target.shape[0] != x.shape[0]:
        raise ValueError(f"y: needs one target per input ({x.shape[0]}), got shape {tuple(target.shape)}")
    if loss == "xent" and not labels:
        raise ValueError(f"y: the loss 'xent' takes integer labels (n,), got shape {tuple(target.shape)}")
    out = nnx.merge(graphdef, params)(x)
    classes = out.shape[-1]
    if not labels and target.shape[1] != classes:
        raise ValueError(f"y: the model has {classes} outputs but y has shape {tuple(target.shape)}")
    if labels and not checks.is_traced(given):  # numpy: a jnp reduction inside a trace would be traced too
        low, high = int(np.min(np.asarray(given))), int(np.max(np.asarray(given)))
        if low < 0 or high >= classes:
            raise ValueError(f"y: labels must be in [0, {classes - 1}] (the model's outputs), got [{low}, {high}]")
    if labels and loss == "mse":
        target = jax.nn.one_hot(target, classes)
    return _loss_value(out, target, loss)


@declare(
    model_config=Instance(ModelConfig, example=lambda: MLPConfig()),
    config=Instance(TrainConfig),
    trained=Instance(tuple, none_ok=True),
)
def optimizer_for(
    model_config: ModelConfig, config: TrainConfig, trained: tuple[str, ...] | None = None
) -> optax.GradientTransformation:
    """The per-role optax optimizer of a model under `config` (lr, weight decay and beta2 injected); the model's
    config says how its tensors scale (`ModelConfig.scaling`, `ModelConfig.param_labels`). With `trained`, only
    tensors of those roles train (the others get zero updates)."""
    _check_trained(trained)
    return _optimizer_for(model_config, config, trained)


def _check_trained(trained: Any) -> None:
    if trained is not None and not (
        isinstance(trained, tuple) and all(isinstance(r, str) and r in P.ROLES for r in trained)
    ):
        raise ValueError(f"trained: must be None or a tuple of roles among {', '.join(P.ROLES)}, got {trained!r:.80}")


def _optimizer_for(
    model_config: ModelConfig, config: TrainConfig, trained: tuple[str, ...] | None = None
) -> optax.GradientTransformation:
    """`optimizer_for` without its checks."""
    parametrization, width, base_width = model_config.scaling()
    tx = make_optimizer(
        config.optimizer,
        config.lr,
        parametrization=parametrization,
        width=width,
        base_width=base_width,
        roles=model_config.param_labels,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        b2=config.beta2,
        **model_config.optimizer_options(config.optimizer),
    )
    if trained is None:
        return tx
    frozen = lambda params: jax.tree.map(
        lambda label: label.split("/")[0] not in trained, model_config.param_labels(params)
    )
    return optax.chain(tx, optax.masked(optax.set_to_zero(), frozen))


def _split_trained(params: Params) -> tuple[Params, Params]:
    """(the nnx.Param entries of a model's state, its other variables): only the first are differentiated and
    updated; the others (fixed buffers, e.g. the projection of `workbench.nets.subspace`) ride along unchanged."""
    if isinstance(params, nnx.State):
        trained, fixed = nnx.split_state(params, nnx.Param, ...)
        return trained, fixed
    return params, None


def _merged(trained: Params, fixed: Params) -> Params:
    return trained if fixed is None else nnx.merge_state(trained, fixed)


@dataclass(frozen=True)
class Program:
    """What one compiled training step is: hashable, so equal programs share one compilation."""

    graphdef: nnx.GraphDef
    model: ModelConfig
    optimizer: str = "sgd"
    momentum: float = 0.9
    loss: str = "mse"
    batch_size: int = 0  # 0: full batch
    trained: tuple[str, ...] | None = None  # roles that train (None: all)
    observe: Observer | None = None  # a module-level function, so that the program can be cached
    objective: Objective | None = None  # a module-level loss (graphdef, params, x, y) -> scalar replacing `loss`

    def __post_init__(self):
        """Refuse, when the program is made (never in its compiled step), what would not train as asked: the
        optimizer, momentum, loss and batch size against `TrainConfig`'s ranges, roles outside the table."""
        if not isinstance(self.graphdef, nnx.GraphDef):
            raise ValueError(f"graphdef: must be an nnx.GraphDef, got {type(self.graphdef).__name__}")
        if not isinstance(self.model, ModelConfig):
            raise ValueError(f"model: must be a ModelConfig, got {type(self.model).__name__}")
        TrainConfig(optimizer=self.optimizer, momentum=self.momentum, loss=self.loss, batch_size=self.batch_size)
        _check_trained(self.trained)
        if self.observe is not None and not callable(self.observe):
            raise ValueError(f"observe: must be a function or None, got {type(self.observe).__name__}")
        if self.objective is not None and not callable(self.objective):
            raise ValueError(f"objective: must be a function or None, got {type(self.objective).__name__}")

    @functools.cached_property
    def tx(self) -> optax.GradientTransformation:
        return _optimizer_for(self.model, TrainConfig(optimizer=self.optimizer, momentum=self.momentum), self.trained)

    def step(
        self, params: Params, opt_state: OptState, key: jax.Array, t: jax.Array, x: jax.Array, y: jax.Array
    ) -> tuple[Params, OptState, jax.Array]:
        """Optimizer step t: (params, opt_state, loss before the step); the engine's one parameter update. Only
        the nnx.Param entries of a model's state train (`_split_trained`)."""
        if self.batch_size:
            idx = jax.random.randint(jax.random.fold_in(key, t), (self.batch_size,), 0, x.shape[0])
            x, y = x[idx], y[idx]
        trained, fixed = _split_trained(params)
        objective = self.objective or functools.partial(_model_loss, loss=self.loss)
        loss = lambda p: objective(self.graphdef, _merged(p, fixed), x, y)
        value, g = jax.value_and_grad(loss)(trained)
        updates, opt_state = self.tx.update(g, opt_state, trained)
        return _merged(optax.apply_updates(trained, updates), fixed), opt_state, value

    def observed(self, params: Params, params0: Params, x: jax.Array) -> Any:
        """The observer's pytree at `params` (empty without an observer)."""
        return () if self.observe is None else self.observe(self.graphdef, params, params0, x)

    def chunk(
        self,
        params: Params,
        opt_state: OptState,
        log: jax.Array,
        seen: Any,
        params0: Params,
        key: jax.Array,
        x: jax.Array,
        y: jax.Array,
        start: jax.Array | int,
        n: jax.Array | int,
    ) -> tuple[Params, OptState, jax.Array, Any]:
        """Steps start .. start + n - 1. With `seen` None, `log` is the summed loss of the chunk; otherwise `log[t]`
        is the loss before step t + 1 and `seen[t + 1]` the observation after it (buffers filled in place)."""

        def body(i: jax.Array, carry: tuple) -> tuple:
            params, opt_state, log, seen = carry
            t = start + i
            params, opt_state, value = self.step(params, opt_state, key, t, x, y)
            if seen is None:
                return params, opt_state, log + value, seen
            now = self.observed(params, params0, x)
            seen = jax.tree.map(lambda buffer, a: buffer.at[t + 1].set(a), seen, now)
            return params, opt_state, log.at[t].set(value), seen

        return jax.lax.fori_loop(0, n, body, (params, opt_state, log, seen))


def _all_finite(tree: Any) -> jax.Array:
    """True when every leaf of `tree` is finite."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(tree)]))


@functools.lru_cache(maxsize=COMPILED)
def _compiled_chunk(program: Program):
    """jit((params, opt_state, key, start, n, x, y) -> (params, opt_state, summed loss, all finite)): one model's
    chunk (`Program.chunk`), the divergence check inside so that a chunk costs one sync."""

    @jax.jit
    def chunk(
        params: Params, opt_state: OptState, key: jax.Array, start: jax.Array, n: jax.Array, x: jax.Array, y: jax.Array
    ) -> tuple[Params, OptState, jax.Array, jax.Array]:
        params, opt_state, total, _ = program.chunk(
            params, opt_state, jnp.zeros((), jnp.float32), None, params, key, x, y, start, n
        )
        return params, opt_state, total, jnp.isfinite(total) & _all_finite(params)

    return chunk


@functools.lru_cache(maxsize=COMPILED)
def _compiled_eval(program: Program, n_classes: int):
    """jit of (loss, accuracy for classification, the observer's values) of a model on (x, y)."""

    def evaluate(params: Params, params0: Params, x: jax.Array, y: jax.Array, labels: jax.Array) -> dict[str, Any]:
        out = nnx.merge(program.graphdef, params)(x)
        metrics: dict[str, Any] = {"loss": _loss_value(out, y, program.loss)}
        if n_classes:
            metrics["acc"] = jnp.mean(jnp.argmax(out, -1) == labels)
        return metrics

    def evaluate_all(params: Params, params0: Params, *data: jax.Array) -> tuple[dict[str, Any], dict[str, Any], Any]:
        x_tr, y_tr, lab_tr, x_te, y_te, lab_te = data
        train, test = evaluate(params, params0, x_tr, y_tr, lab_tr), evaluate(params, params0, x_te, y_te, lab_te)
        return train, test, program.observed(params, params0, x_tr)

    return jax.jit(evaluate_all)


class _Pace:
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


_SEEN: set = set()


class ConfiguredModule(Protocol):
    """What `train` needs of a model besides being an NNX module: the hashable `ModelConfig` that says
    how its tensors scale (MLP, Transformer, UFM, the toy models all keep theirs as `self.config`)."""

    @property
    def config(self) -> ModelConfig: ...


ModuleT = TypeVar("ModuleT", bound=ConfiguredModule)


@declare(
    model=Instance(nnx.Module, example=lambda: build_mlp(MLPConfig(in_dim=2, out_dim=2, width=8, depth=1))),
    data=Instance(Dataset, example=_example_data),
    config=Instance(TrainConfig),
    stop=Instance(threading.Event, none_ok=True),
    observe=Instance(_FUNCTION, none_ok=True),
    metrics_fn=Instance(_FUNCTION, none_ok=True),
)
def train(
    model: ModuleT,
    data: Dataset,
    config: TrainConfig,
    *,
    stop: threading.Event | None = None,
    observe: Observer | None = None,
    metrics_fn: Callable[[ModuleT], dict] | None = None,
) -> Iterator[Record]:
    """Train `model` (an MLP, or any NNX module with a hashable `config`) in place on `data`, yielding
    a Record every `config.record_every` steps.

    Metrics: train_loss, test_loss (and train_acc, test_acc for classification), batch_loss (mean over the steps
    since the previous record), the observer's values (a dict, compiled with the evaluation), plus whatever the
    host-side `metrics_fn(model)` returns. The last record has status "finished", "stopped" (stop event set) or
    "diverged" (non-finite loss). The data is checked against the model and the loss at the first `next`."""
    if not isinstance(getattr(model, "config", None), ModelConfig):
        raise ValueError(f"model: needs its ModelConfig as model.config (as MLP has), got a {type(model).__name__}")
    check_training(model.config, data, config.loss)
    stop = stop or threading.Event()
    graphdef, params = nnx.split(model)  # every variable: the nnx.Param ones train (`Program.step`)
    params0 = params
    x_tr, x_te = jnp.asarray(data.x_train), jnp.asarray(data.x_test)
    if config.batch_size > x_tr.shape[0]:
        raise ValueError(f"batch_size: must be in [0, {x_tr.shape[0]}] (0 = full batch), got {config.batch_size}")
    program = Program(graphdef, model.config, config.optimizer, config.momentum, config.loss, config.batch_size)
    program = dataclasses.replace(program, observe=observe) if observe else program
    opt_state = _optimizer_for(model.config, config).init(_split_trained(params)[0])
    y_tr, y_te = _targets(data, data.y_train, config.loss), _targets(data, data.y_test, config.loss)
    lab_tr, lab_te = jnp.asarray(data.y_train), jnp.asarray(data.y_test)
    evaluate = _compiled_eval(program, data.n_classes)
    key = jax.random.key(config.seed)
    start, step = time.perf_counter(), 0

    def evaluated(params: Params) -> Any:
        """Train and test metrics and the observations of `params`, dispatched now and read by `record` later."""
        return evaluate(params, params0, x_tr, y_tr, lab_tr, x_te, y_te, lab_te)

    def record(status: Status, params: Params, step: int, evals: Any, batch_loss: float = float("nan")) -> Record:
        tr, te, seen = jax.device_get(evals)
        metrics = {"train_loss": float(tr["loss"]), "test_loss": float(te["loss"]), "batch_loss": batch_loss}
        if data.n_classes:
            metrics.update(train_acc=float(tr["acc"]), test_acc=float(te["acc"]))
        metrics.update(seen or {})
        nnx.update(model, params)
        if metrics_fn is not None:
            metrics.update(metrics_fn(model))
        return Record(step, config.steps, "steps", metrics, status, "step", time.perf_counter() - start, params)

    yield record("running", params, step, evaluated(params))
    cache_key = (program, x_tr.shape, y_tr.shape, str(y_tr.dtype))
    if cache_key not in _SEEN:
        yield Record(step, config.steps, "steps", {}, "compiling", "status", time.perf_counter() - start)
        _SEEN.add(cache_key)
    chunk = _compiled_chunk(dataclasses.replace(program, observe=None))  # observers run at records, not in chunks
    pace = _Pace()

    def dispatch(params: Params, opt_state: OptState, step: int) -> tuple:
        """Queue the next chunk (and the evaluations if it ends at a record): (params, opt_state, step, length,
        (summed loss, finite), evaluations or None, dispatch time)."""
        boundary = min(config.steps, (step // config.record_every + 1) * config.record_every)
        n = pace.length(boundary - step)
        params, opt_state, value, finite = chunk(params, opt_state, key, step, n, x_tr, y_tr)
        evals = evaluated(params) if step + n == boundary else None
        return params, opt_state, step + n, n, (value, finite), evals, time.perf_counter()

    # A chunk is read before the next is queued (so Stop waits for one chunk at most), except at a record: there
    # the next chunk is queued before the record's chunk is read, so the device never waits for the host's work on
    # the record; a chunk queued ahead of a run's end (stopped, diverged) is dropped. Chunk times run from the end
    # of the previous chunk (or the dispatch) to the end of this one.
    queued = None if stop.is_set() else dispatch(params, opt_state, step)
    total, counted, ended = 0.0, 0, 0.0  # summed batch loss since the last record, its steps, last chunk's end
    while queued is not None:
        params, opt_state, step, n, flags, evals, dispatched = queued
        at_record = evals is not None and step < config.steps and not stop.is_set()
        queued = dispatch(params, opt_state, step) if at_record else None
        value, finite = (v.item() for v in jax.device_get(flags))
        now = time.perf_counter()
        pace.measured(n, now - max(dispatched, ended))
        total, counted, ended = total + value, counted + n, now
        status = "diverged" if not finite else "finished" if step >= config.steps else None
        status = status or ("stopped" if stop.is_set() else "running" if evals is not None else None)
        if status in (None, "running") and queued is None:
            queued = dispatch(params, opt_state, step)
        if status not in (None, "running"):
            queued = None
        if status is not None:
            yield record(status, params, step, evals or evaluated(params), total / counted)
            total, counted = 0.0, 0
    if step == 0:
        yield record("stopped", params, step, evaluated(params))  # stopped before the first chunk


def _with_hyper(opt_state: OptState, hyper: Mapping[str, jax.Array]) -> OptState:
    """Optimizer state whose injected hyper-parameters (lr, weight_decay, b2) take the values in `hyper`."""
    if not hasattr(opt_state, "hyperparams"):  # a chain (frozen roles): the injected state comes first
        return (_with_hyper(opt_state[0], hyper), *opt_state[1:])
    current = opt_state.hyperparams
    unknown = sorted(set(hyper) - set(current))
    if unknown:
        raise ValueError(f"hyper: {', '.join(unknown)} not injected; the engine's are {', '.join(sorted(current))}")
    return opt_state._replace(
        hyperparams={**current, **{k: jnp.asarray(v, current[k].dtype) for k, v in hyper.items()}}
    )


@functools.lru_cache(maxsize=COMPILED)
def _compiled_runs(program: Program, steps: int, names: tuple[str, ...], batched: bool):
    """(start, chunk), jitted. start(params0[S], hyper values[R], x[S], y[S], seed index, hyper index) -> the state
    of the runs picked (one, or a block along a leading axis when `batched`): (params, opt_state, losses,
    observations, params0, x, y); chunk(state, key, start, n) -> the state after `Program.chunk`."""

    def init(params0: Params, values: tuple, x: jax.Array, y: jax.Array, s: Index, r: Index) -> tuple:
        params0, x, y = (_take(t, s) for t in (params0, x, y))
        opt_state = _with_hyper(
            program.tx.init(_split_trained(params0)[0]), dict(zip(names, _take(values, r), strict=True))
        )
        first = program.observed(params0, params0, x)
        seen = jax.tree.map(lambda a: jnp.zeros((steps + 1,) + a.shape, a.dtype).at[0].set(a), first)
        return params0, opt_state, jnp.zeros((steps,), jnp.float32), seen, params0, x, y

    def chunk(*state: Any) -> tuple:
        params, opt_state, log, seen, params0, x, y, key, start, n = state
        state = program.chunk(params, opt_state, log, seen, params0, key, x, y, start, n)
        return *state, params0, x, y

    if batched:
        init = jax.vmap(init, in_axes=(None, None, None, None, 0, 0))
        chunk = jax.vmap(chunk, in_axes=(0, 0, 0, 0, 0, 0, 0, None, None, None))
    return jax.jit(init), jax.jit(chunk, donate_argnums=(0, 1, 2, 3))


def _take(tree: Any, index: Index) -> Any:
    """Every leaf of `tree` indexed along its leading axis."""
    return jax.tree.map(lambda a: a[index], tree)


CPU_BLOCK_BYTES = 2 * 2**20  # runs vmapped together on a CPU: their training state about fills one core's L2


def _block_size(params0: nnx.State, runs: int) -> int:
    """How many runs one compiled call vmaps: all of them on an accelerator; on a CPU as many as keep their training
    state (parameters, gradients, optimizer moments: `TRAINING_COPIES`) within `CPU_BLOCK_BYTES`. Measured on 2
    cores: a width-512 MLP under Adam costs 7.5 ms per run-step alone and 9.9 ms vmapped by 8, a width-64 one
    0.25 ms alone and 0.19 ms by 4, since XLA's batched CPU kernels stream the larger state from memory."""
    if jax.default_backend() != "cpu":
        return runs
    trained, fixed = _split_trained(params0)  # fixed buffers are read, never copied per step
    per_run = 4 * (TRAINING_COPIES * _size(trained) + _size(fixed))
    return max(1, min(runs, CPU_BLOCK_BYTES // max(per_run, 1)))


def _size(tree: Any) -> int:
    """Entries per run of a stacked state (None: 0)."""
    return sum(a[0].size for a in jax.tree.leaves(tree)) if tree is not None else 0


def _example_program() -> Program:
    model = _example_model()
    return Program(nnx.split(model, nnx.Param)[0], model.config)


@declare(
    program=Instance(Program, example=_example_program),
    steps=Int(1, 10_000_000),  # the range of `workbench.core.fields.STEPS`
    params0=Instance(nnx.State, example=lambda: stacked_params(MLP, _example_model().config, (0, 1))[1]),
    hyper=Given(
        why="a mapping of injected hyper-parameter names (lr, weight_decay, b2) to 1-D arrays of R values; the "
        "body checks it (the names against the optimizer's)",
        example=lambda: {"lr": np.array([0.1, 0.05])},
    ),
    x=Array("seeds n d", example=lambda: np.random.default_rng(0).normal(size=(2, 6, 3)).astype(np.float32)),
    y=Given(
        why="targets (S, n, k) under mse or integer labels (S, n) under xent: the body checks it against x and "
        "the program's loss",
        example=lambda: np.random.default_rng(1).normal(size=(2, 6, 3)).astype(np.float32),
    ),
    seed=Int(0, 2**31 - 1),
    stop=Instance(threading.Event, none_ok=True),
    finite=False,  # a run that diverges records its non-finite losses (an lr sweep past the edge of stability)
)
def runs(
    program: Program,
    steps: int,
    params0: nnx.State,
    hyper: Mapping[str, Any],
    x: jax.Array,
    y: jax.Array,
    *,
    seed: int = 0,
    stop: threading.Event | None = None,
):
    """Train S models (`params0` and x, y with a leading seed axis) at R values of the injected hyper-parameters
    (`hyper`: name -> array of R values, e.g. {"lr": lrs}) for `steps` steps: (final params[S, R], losses[S, R,
    steps], observed[S, R, steps + 1]). `losses[t]` is the loss before step t + 1; the observer is evaluated at init
    and after every step. The S x R runs go through compiled calls in blocks of `_block_size` runs (one compilation
    for every block: the last one is padded); the stop event, checked between chunks, raises `Stopped`."""
    if not isinstance(hyper, Mapping) or not hyper or not all(isinstance(k, str) for k in hyper):
        raise ValueError(f"hyper: must map hyper-parameter names to arrays, e.g. {{'lr': lrs}}, got {hyper!r:.80}")
    names = tuple(sorted(hyper))
    values = tuple(jnp.asarray(checks.array(f"hyper[{k!r}]", hyper[k], ndim=1), jnp.float32) for k in names)
    if len({v.shape for v in values}) > 1:
        raise ValueError("hyper: every hyper-parameter needs one non-empty 1-D array, all of the same length")
    leaves = jax.tree.leaves(params0)
    if not leaves or any(np.ndim(a) == 0 or a.shape[0] != leaves[0].shape[0] for a in leaves):
        raise ValueError("params0: every parameter needs the same leading (seed) axis, as `stacked_params` makes them")
    n_seeds, n_hyper = leaves[0].shape[0], values[0].shape[0]
    labels = program.loss == "xent"
    shape = checks.array("y", y, ndim=2 if labels else 3, integer_valued=labels).shape
    if x.shape[0] != n_seeds or shape[:2] != x.shape[:2]:
        raise ValueError(
            f"y: x {tuple(x.shape)} and y {tuple(shape)} need the leading axes (seeds, points) of {n_seeds} seeds"
        )
    total = n_seeds * n_hyper
    block = _block_size(params0, total)
    start_fn, chunk_fn = _compiled_runs(program, steps, names, block > 1)
    key, pace, parts = jax.random.key(seed), _Pace(), []
    for first in range(0, total, block):
        run = np.minimum(np.arange(first, first + block), total - 1)  # runs in this block, the last repeated
        run = run if block > 1 else run[0]
        state = start_fn(params0, values, x, y, run // n_hyper, run % n_hyper)
        done = 0
        while done < steps:
            n, t0 = pace.length(steps - done), time.perf_counter()
            state = chunk_fn(*state, key, done, n)
            jax.block_until_ready(state[2])
            pace.measured(n, time.perf_counter() - t0)
            done += n
            if (done < steps or first + block < total) and stop is not None and stop.is_set():
                raise Stopped(f"stopped after {done} of {steps} steps")
        params, _, log, seen = state[:4]
        parts.append(jax.tree.map(lambda a: a if block > 1 else a[None], (params, log, seen)))
    flat = jax.tree.map(lambda *a: jnp.concatenate(a)[:total], *parts)
    return jax.tree.map(lambda a: a.reshape((n_seeds, n_hyper) + a.shape[1:]), flat)


@functools.lru_cache(maxsize=COMPILED)
def _compiled_init(model: Callable[..., nnx.Module], config: Hashable):
    """(graphdef, jit(keys -> Param state stacked along the keys)) of `model(config, rngs=...)`."""
    make = lambda key: nnx.split(model(config, rngs=nnx.Rngs(params=key)), nnx.Param)[1]
    graphdef = nnx.split(nnx.eval_shape(lambda: model(config, rngs=nnx.Rngs(params=0))), nnx.Param)[0]
    return graphdef, jax.jit(jax.vmap(make))


@declare(
    model=Instance(_FUNCTION, example=lambda: MLP),
    config=Instance(ModelConfig, example=lambda: MLPConfig(in_dim=3, out_dim=3, width=8, depth=1)),
    seeds=Array("seeds", lo=0, hi=2**31 - 1, integer=True),  # the range of `workbench.core.fields.SEED`
)
def stacked_params(
    model: Callable[..., nnx.Module], config: ModelConfig, seeds: Iterable[int] | np.ndarray
) -> tuple[nnx.GraphDef, nnx.State]:
    """Graph and Param state of `model(config, rngs=nnx.Rngs(params=seed))` for each seed, stacked along a leading
    axis, in one compiled call (the weights of building each model alone, to float32 rounding). Refused before
    allocating when training them would not fit in memory."""
    seeds = [int(s) for s in np.asarray(seeds)]
    graphdef, init = _compiled_init(model, config)
    shapes = nnx.split(nnx.eval_shape(lambda: model(config, rngs=nnx.Rngs(params=0))), nnx.Param)[1]
    size = sum(a.size for a in jax.tree.leaves(shapes))
    require(4 * TRAINING_COPIES * size * len(seeds), type(config).__name__, f"{len(seeds)} x {size:,} parameters")
    return graphdef, init(jnp.stack([jax.random.key(s) for s in seeds]))
