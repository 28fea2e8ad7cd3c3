"""Compiled float64 simulations with batched LAPACK calls, run so that they cannot deadlock on the CPU.

jaxlib 0.10's batched LAPACK kernels (LU, eigh, ...) split their batch over XLA's intra-op thread pool and block
until the pieces are done (`ParallelBatchMap` in jaxlib/cpu/lapack_kernels.cc). When as many such kernels run at once
as the pool has threads (two on a 2-core machine), every pool thread waits for work queued behind itself and the
process hangs at 0% CPU. Two rules keep one batched kernel running at a time: `call` runs the workbench's
simulations (its only batched LAPACK callers) one after another, and `map_batches` gives a simulation one batched
solve per step (`lax.map(batch_size=...)` computes its remainder batch beside its loop: two kernels at once).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from workbench.core.declare import Instance, Int, declare

__all__ = ["call", "map_batches"]

_ONE_AT_A_TIME = threading.Lock()
_FUNCTION = cast(type, Callable)  # `Instance(_FUNCTION)`: any callable


@declare(
    fn=Instance(_FUNCTION, example=lambda: lambda: np.ones(3)),
    finite=False,  # the simulation's result passes through: the public function that runs it judges it
)
def call(fn: Callable, *args: Any, **static: Any) -> Any:
    """`fn(*args, **static)` with float64 enabled (numpy float64 arguments stay float64), one call at a time across
    threads, its outputs read back as numpy arrays."""
    with _ONE_AT_A_TIME, jax.enable_x64(True):
        return jax.tree.map(np.asarray, fn(*args, **static))


@declare(
    f=Instance(_FUNCTION, example=lambda: jnp.negative),
    xs=Instance(tuple, example=lambda: (np.arange(6.0),)),
    batch=Int(1, 1_000_000),
)
def map_batches(f: Callable, xs: tuple, batch: int) -> Any:
    """`lax.map(f, xs, batch_size=batch)` with the last batch padded by repeating the last point instead of run
    beside the loop: one vmapped call of `f` per step, the outputs trimmed back to the points given."""
    sizes = {np.shape(x)[0] if np.ndim(x) else 0 for x in xs}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"xs: must be a non-empty tuple of arrays with one shared leading axis, got sizes {sizes}")
    size = xs[0].shape[0]
    pad = -size % batch

    def batched(x: jax.Array) -> jax.Array:
        return jnp.concatenate([x, jnp.repeat(x[-1:], pad, 0)]).reshape((-1, batch) + x.shape[1:])

    out = jax.lax.map(jax.vmap(lambda p: f(*p)), tuple(batched(x) for x in xs))
    return jax.tree.map(lambda y: y.reshape((-1,) + y.shape[2:])[:size], out)
