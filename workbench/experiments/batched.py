"""Many small training runs in one compiled call: vmap over seeds (models and data) and learning rates.

Sweeps (coordinate check, learning-rate transfer, lazy vs rich) train the same architecture from several
initialisations at several learning rates. `compiled_runs` returns one jitted function per
(graph, optimizer, loss, steps, observe), so each width compiles once whatever the number of seeds or
learning rates; the learning rate reaches the optimizer as the injected hyperparameter of
`workbench.optim.make_optimizer`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from workbench.models import MLPConfig, build_mlp
from workbench.training import TrainConfig, model_loss, optimizer_for


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
    """jit(f(params[S], lrs[R], x[S], y[S])) -> (final params[S, R], losses[S, R, steps], observed[S, R, steps+1]).

    `losses[t]` is the full-batch loss before step t+1; `observe(graphdef, params, params0, x)` (a
    module-level function, so it can be cached) is evaluated at init and after every step."""
    tx = optimizer_for(config, TrainConfig(optimizer=optimizer))
    grad = jax.value_and_grad(functools.partial(model_loss, graphdef, loss=loss))
    look = observe or (lambda *_: ())

    def one(params0, lr, x, y):
        def step(carry, _):
            params, state = carry
            value, g = grad(params, x, y)
            updates, state = tx.update(g, state, params)
            params = optax.apply_updates(params, updates)
            return (params, state), (value, look(graphdef, params, params0, x))

        carry = (params0, with_lr(tx.init(params0), lr))
        (params, _), (values, seen) = jax.lax.scan(step, carry, None, length=steps)
        first = look(graphdef, params0, params0, x)
        seen = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, seen)
        return params, values, seen

    over_lrs = jax.vmap(one, in_axes=(None, 0, None, None))
    return jax.jit(jax.vmap(over_lrs, in_axes=(0, None, 0, 0)))
