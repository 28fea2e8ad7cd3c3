"""Best-of-n wall time after a warm-up call; imports only jax, so the neural-tangents side venv can use it."""

import time

import jax


def best_time(fn, repeats: int = 3) -> float:
    """Smallest wall time of `repeats` calls of fn() (results blocked on), after one warm-up (compilation)."""
    jax.block_until_ready(fn())
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t)
    return best
