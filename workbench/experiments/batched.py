"""Many small training runs in one compiled call: vmap over seeds (models and data) and learning rates.

Sweeps (coordinate check, learning-rate transfer, lazy vs rich) train the same architecture from several
initialisations at several learning rates. `compiled_runs` returns one jitted function per
(graph, optimizer, loss, steps, observe), so each width compiles once whatever the number of seeds or
learning rates; the learning rate reaches the optimizer as the injected hyperparameter of
`workbench.optim.make_optimizer`.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from workbench.experiment import Stopped
from workbench.models import MLPConfig, build_mlp
from workbench.training import Pace, TrainConfig, model_loss, optimizer_for


def stacked_params(config: MLPConfig, seeds) -> tuple[nnx.GraphDef, nnx.State]:
    """Graph and Param state of `build_mlp(config, seed)` for each seed, stacked along a leading axis."""
    splits = [nnx.split(build_mlp(config, seed=s), nnx.Param) for s in seeds]
    return splits[0][0], jax.tree.map(lambda *leaves: jnp.stack(leaves), *[p for _, p in splits])


def with_lr(opt_state, lr):
    """Optimizer state whose injected base learning rate is `lr` (may be traced)."""
    hyper = opt_state.hyperparams
    return opt_state._replace(hyperparams={**hyper, "lr": jnp.asarray(lr, hyper["lr"].dtype)})


@functools.lru_cache(maxsize=64)
def compiled_runs(graphdef, config: MLPConfig, optimizer: str, loss: str, steps: int, observe: Callable | None = None):
    """f(params[S], lrs[R], x[S], y[S], stop=None) -> (final params[S, R], losses[S, R, steps],
    observed[S, R, steps+1]).

    `losses[t]` is the full-batch loss before step t+1; `observe(graphdef, params, params0, x)` (a
    module-level function, so it can be cached) is evaluated at init and after every step. The steps run in
    jitted chunks sized by time (`workbench.training.Pace`; the length is traced, so one compilation serves
    every chunk); the stop event, checked between chunks, raises `Stopped`."""
    tx = optimizer_for(config, TrainConfig(optimizer=optimizer))
    grad = jax.value_and_grad(functools.partial(model_loss, graphdef, loss=loss))
    look = observe or (lambda *_: ())

    def init(params0, lr, x):
        first = look(graphdef, params0, params0, x)
        seen = jax.tree.map(lambda a: jnp.zeros((steps + 1,) + a.shape, a.dtype).at[0].set(a), first)
        return params0, with_lr(tx.init(params0), lr), jnp.zeros((steps,), jnp.float32), seen

    def chunk(params, state, values, seen, params0, x, y, start, n):
        def step(i, carry):
            params, state, values, seen = carry
            value, g = grad(params, x, y)
            updates, state = tx.update(g, state, params)
            params = optax.apply_updates(params, updates)
            now = look(graphdef, params, params0, x)
            seen = jax.tree.map(lambda buffer, a: buffer.at[start + i + 1].set(a), seen, now)
            return params, state, values.at[start + i].set(value), seen

        return jax.lax.fori_loop(0, n, step, (params, state, values, seen))

    starts = jax.jit(jax.vmap(jax.vmap(init, in_axes=(None, 0, None)), in_axes=(0, None, 0)))
    over_lrs = jax.vmap(chunk, in_axes=(0, 0, 0, 0, None, None, None, None, None))
    chunks = jax.jit(jax.vmap(over_lrs, in_axes=(0, 0, 0, 0, 0, 0, 0, None, None)), donate_argnums=(2, 3))

    def runs(params0, lrs, x, y, stop: threading.Event | None = None):
        params, state, values, seen = starts(params0, lrs, x)
        pace, done = Pace(), 0
        while done < steps:
            n, start = pace.length(steps - done), time.perf_counter()
            params, state, values, seen = chunks(params, state, values, seen, params0, x, y, done, n)
            jax.block_until_ready(values)
            pace.measured(n, time.perf_counter() - start)
            done += n
            if done < steps and stop is not None and stop.is_set():
                raise Stopped(f"stopped after {done} of {steps} steps")
        return params, values, seen

    return runs
