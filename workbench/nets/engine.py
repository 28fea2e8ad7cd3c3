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

Chunks are sized by time, not by `record_every` (`Pace`): a chunk's length is a traced argument, the first chunk is
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
from typing import Any, NotRequired, Protocol, TypedDict, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from workbench.core.checks import check_training
from workbench.core.checks import seed as check_seed
from workbench.core.config import Config, spec
from workbench.core.experiment import Record, Status, Stopped
from workbench.core.fields import LR, OPTIMIZER, SEED, STEPS
from workbench.core.memory import require
from workbench.data import Dataset
from workbench.nets.models import TRAINING_COPIES, ModelConfig
from workbench.nets.optim import make_optimizer

LOSSES = ("mse", "xent")
CHUNK_SECONDS = 0.15  # compute per chunk: Stop ends a run within about one chunk (two with the one queued ahead)
GROWTH = 8  # a chunk is at most this many times longer than the one before it
COMPILED = 16  # compiled programs kept per kind: each holds 5-20 MB of machine code (notebook 02 on a 2 GB Binder)

Observer = Callable[[nnx.GraphDef, nnx.State, nnx.State, jax.Array], Any]
Params = Any  # a model's Param state (an nnx.State) or any pytree of arrays
OptState = Any  # an optax state: a pytree whose structure depends on the optimizer
Index = int | np.ndarray  # one run, or a block of runs


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


def model_loss(graphdef: nnx.GraphDef, params: nnx.State, x: jax.Array, y: jax.Array, loss: str) -> jax.Array:
    """Loss of the model (`graphdef`, `params`) on (x, y)."""
    return loss_value(nnx.merge(graphdef, params)(x), y, loss)


def optimizer_for(
    model_config: ModelConfig, config: TrainConfig, trained: tuple[str, ...] | None = None
) -> optax.GradientTransformation:
    """The per-role optax optimizer of a model under `config` (lr, weight decay and beta2 injected); the model's
    config says how its tensors scale (`ModelConfig.scaling`, `ModelConfig.param_labels`). With `trained`, only
    tensors of those roles train (the others get zero updates)."""
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
    )
    if trained is None:
        return tx
    frozen = lambda params: jax.tree.map(lambda role: role not in trained, model_config.param_labels(params))
    return optax.chain(tx, optax.masked(optax.set_to_zero(), frozen))


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

    @functools.cached_property
    def tx(self) -> optax.GradientTransformation:
        return optimizer_for(self.model, TrainConfig(optimizer=self.optimizer, momentum=self.momentum), self.trained)

    def step(
        self, params: Params, opt_state: OptState, key: jax.Array, t: jax.Array, x: jax.Array, y: jax.Array
    ) -> tuple[Params, OptState, jax.Array]:
        """Optimizer step t: (params, opt_state, loss before the step); the engine's one parameter update."""
        if self.batch_size:
            idx = jax.random.randint(jax.random.fold_in(key, t), (self.batch_size,), 0, x.shape[0])
            x, y = x[idx], y[idx]
        value, g = jax.value_and_grad(model_loss, argnums=1)(self.graphdef, params, x, y, self.loss)
        updates, opt_state = self.tx.update(g, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

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


def all_finite(tree: Any) -> jax.Array:
    """True when every leaf of `tree` is finite."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(tree)]))


@functools.lru_cache(maxsize=COMPILED)
def compiled_chunk(program: Program):
    """jit((params, opt_state, key, start, n, x, y) -> (params, opt_state, summed loss, all finite)): one model's
    chunk (`Program.chunk`), the divergence check inside so that a chunk costs one sync."""

    @jax.jit
    def chunk(
        params: Params, opt_state: OptState, key: jax.Array, start: jax.Array, n: jax.Array, x: jax.Array, y: jax.Array
    ) -> tuple[Params, OptState, jax.Array, jax.Array]:
        params, opt_state, total, _ = program.chunk(
            params, opt_state, jnp.zeros((), jnp.float32), None, params, key, x, y, start, n
        )
        return params, opt_state, total, jnp.isfinite(total) & all_finite(params)

    return chunk


@functools.lru_cache(maxsize=COMPILED)
def compiled_eval(program: Program, n_classes: int):
    """jit of (loss, accuracy for classification, the observer's values) of a model on (x, y)."""

    def evaluate(params: Params, params0: Params, x: jax.Array, y: jax.Array, labels: jax.Array) -> dict[str, Any]:
        out = nnx.merge(program.graphdef, params)(x)
        metrics: dict[str, Any] = {"loss": loss_value(out, y, program.loss)}
        if n_classes:
            metrics["acc"] = jnp.mean(jnp.argmax(out, -1) == labels)
        return metrics

    def evaluate_all(params: Params, params0: Params, *data: jax.Array) -> tuple[dict[str, Any], dict[str, Any], Any]:
        x_tr, y_tr, lab_tr, x_te, y_te, lab_te = data
        train, test = evaluate(params, params0, x_tr, y_tr, lab_tr), evaluate(params, params0, x_te, y_te, lab_te)
        return train, test, program.observed(params, params0, x_tr)

    return jax.jit(evaluate_all)


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
    observe: Observer | None = None,
    metrics_fn: Callable[[ModuleT], dict] | None = None,
) -> Iterator[Record]:
    """Train `model` (an MLP, or any NNX module with a hashable `config`) in place on `data`, yielding
    a Record every `config.record_every` steps.

    Metrics: train_loss, test_loss (and train_acc, test_acc for classification), batch_loss (mean over the steps
    since the previous record), the observer's values (a dict, compiled with the evaluation), plus whatever the
    host-side `metrics_fn(model)` returns. The last record has status "finished", "stopped" (stop event set) or
    "diverged" (non-finite loss)."""
    check_training(model.config, data, config.loss)
    stop = stop or threading.Event()
    graphdef, params = nnx.split(model, nnx.Param)
    params0, rest = params, nnx.state(model, nnx.Not(nnx.Param))
    x_tr, x_te = jnp.asarray(data.x_train), jnp.asarray(data.x_test)
    if config.batch_size > x_tr.shape[0]:
        raise ValueError(f"batch_size: must be in [0, {x_tr.shape[0]}] (0 = full batch), got {config.batch_size}")
    program = Program(graphdef, model.config, config.optimizer, config.momentum, config.loss, config.batch_size)
    program = dataclasses.replace(program, observe=observe) if observe else program
    opt_state = optimizer_for(model.config, config).init(params)
    y_tr, y_te = targets(data, data.y_train, config.loss), targets(data, data.y_test, config.loss)
    lab_tr, lab_te = jnp.asarray(data.y_train), jnp.asarray(data.y_test)
    evaluate = compiled_eval(program, data.n_classes)
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
        nnx.update(model, params, rest)
        if metrics_fn is not None:
            metrics.update(metrics_fn(model))
        return Record(step, config.steps, "steps", metrics, status, "step", time.perf_counter() - start, params)

    yield record("running", params, step, evaluated(params))
    cache_key = (program, x_tr.shape, y_tr.shape, str(y_tr.dtype))
    if cache_key not in _SEEN:
        yield Record(step, config.steps, "steps", {}, "compiling", "status", time.perf_counter() - start)
        _SEEN.add(cache_key)
    chunk = compiled_chunk(dataclasses.replace(program, observe=None))  # observers run at records, not in chunks
    pace = Pace()

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


def with_hyper(opt_state: OptState, hyper: Mapping[str, jax.Array]) -> OptState:
    """Optimizer state whose injected hyper-parameters (lr, weight_decay, b2) take the values in `hyper`."""
    if not hasattr(opt_state, "hyperparams"):  # a chain (frozen roles): the injected state comes first
        return (with_hyper(opt_state[0], hyper), *opt_state[1:])
    current = opt_state.hyperparams
    unknown = sorted(set(hyper) - set(current))
    if unknown:
        raise ValueError(f"hyper: {', '.join(unknown)} not injected; the engine's are {', '.join(sorted(current))}")
    return opt_state._replace(
        hyperparams={**current, **{k: jnp.asarray(v, current[k].dtype) for k, v in hyper.items()}}
    )


@functools.lru_cache(maxsize=COMPILED)
def compiled_runs(program: Program, steps: int, names: tuple[str, ...], batched: bool):
    """(start, chunk), jitted. start(params0[S], hyper values[R], x[S], y[S], seed index, hyper index) -> the state
    of the runs picked (one, or a block along a leading axis when `batched`): (params, opt_state, losses,
    observations, params0, x, y); chunk(state, key, start, n) -> the state after `Program.chunk`."""

    def init(params0: Params, values: tuple, x: jax.Array, y: jax.Array, s: Index, r: Index) -> tuple:
        params0, x, y = (take(t, s) for t in (params0, x, y))
        opt_state = with_hyper(program.tx.init(params0), dict(zip(names, take(values, r), strict=True)))
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


def take(tree: Any, index: Index) -> Any:
    """Every leaf of `tree` indexed along its leading axis."""
    return jax.tree.map(lambda a: a[index], tree)


CPU_BLOCK_BYTES = 2 * 2**20  # runs vmapped together on a CPU: their training state about fills one core's L2


def block_size(params0: nnx.State, runs: int) -> int:
    """How many runs one compiled call vmaps: all of them on an accelerator; on a CPU as many as keep their training
    state (parameters, gradients, optimizer moments: `TRAINING_COPIES`) within `CPU_BLOCK_BYTES`. Measured on 2
    cores: a width-512 MLP under Adam costs 7.5 ms per run-step alone and 9.9 ms vmapped by 8, a width-64 one
    0.25 ms alone and 0.19 ms by 4, since XLA's batched CPU kernels stream the larger state from memory."""
    if jax.default_backend() != "cpu":
        return runs
    per_run = 4 * TRAINING_COPIES * sum(a[0].size for a in jax.tree.leaves(params0))
    return max(1, min(runs, CPU_BLOCK_BYTES // max(per_run, 1)))


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
    and after every step. The S x R runs go through compiled calls in blocks of `block_size` runs (one compilation
    for every block: the last one is padded); the stop event, checked between chunks, raises `Stopped`."""
    names = tuple(sorted(hyper))
    values = tuple(jnp.asarray(hyper[k], jnp.float32) for k in names)
    if len({v.shape for v in values}) > 1 or any(v.ndim != 1 or v.shape[0] == 0 for v in values):
        raise ValueError("hyper: every hyper-parameter needs one non-empty 1-D array, all of the same length")
    n_seeds, n_hyper = jax.tree.leaves(params0)[0].shape[0], values[0].shape[0]
    total = n_seeds * n_hyper
    block = block_size(params0, total)
    start_fn, chunk_fn = compiled_runs(program, steps, names, block > 1)
    key, pace, parts = jax.random.key(seed), Pace(), []
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
def compiled_init(model: Callable[..., nnx.Module], config: Hashable):
    """(graphdef, jit(keys -> Param state stacked along the keys)) of `model(config, rngs=...)`."""
    make = lambda key: nnx.split(model(config, rngs=nnx.Rngs(params=key)), nnx.Param)[1]
    graphdef = nnx.split(nnx.eval_shape(lambda: model(config, rngs=nnx.Rngs(params=0))), nnx.Param)[0]
    return graphdef, jax.jit(jax.vmap(make))


def stacked_params(
    model: Callable[..., nnx.Module], config: Hashable, seeds: Iterable[int]
) -> tuple[nnx.GraphDef, nnx.State]:
    """Graph and Param state of `model(config, rngs=nnx.Rngs(params=seed))` for each seed, stacked along a leading
    axis, in one compiled call (the weights of building each model alone, to float32 rounding). Refused before
    allocating when training them would not fit in memory."""
    seeds = [check_seed(s) for s in seeds]
    graphdef, init = compiled_init(model, config)
    shapes = nnx.split(nnx.eval_shape(lambda: model(config, rngs=nnx.Rngs(params=0))), nnx.Param)[1]
    size = sum(a.size for a in jax.tree.leaves(shapes))
    require(4 * TRAINING_COPIES * size * len(seeds), type(config).__name__, f"{len(seeds)} x {size:,} parameters")
    return graphdef, init(jnp.stack([jax.random.key(s) for s in seeds]))
