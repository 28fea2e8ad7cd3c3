"""Kernel utilities for the panels: kernel against angle, spectra, Monte-Carlo empirical NTKs."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from workbench.core import checks
from workbench.core.declare import Array as ArrayArg
from workbench.core.declare import Choice, Given, Instance, Int, Real, Reals, declare
from workbench.nets.models import MLPConfig, build_mlp
from workbench.theory.kernels.analytic import MAX_DEPTH, MAX_INPUT, Kernels, _example_x2, mlp_kernels
from workbench.theory.kernels.empirical import METHODS, SCALINGS, _example_config, empirical_ntk

__all__ = ["kernel_eigenvalues", "kernel_vs_angle", "mc_empirical_ntk"]

MAX_SEEDS = 1000  # initialisations averaged by `mc_empirical_ntk`


@declare(angles=Reals(-10.0, 10.0), depth=Int(0, MAX_DEPTH), dim=Int(2, 100_000), q0=Real(0.0, 1e6, lo_open=True))
def kernel_vs_angle(angles: ArrayLike, *, depth: int, dim: int = 2, q0: float = 1.0, **network: Any) -> Kernels:
    """Kernels between x(0) and x(theta) for two inputs at angle theta with input kernel x.x/d = q0.

    `depth` and `network`: the keyword arguments of `mlp_kernels` (activation, stds, ...). Shapes (len(angles),)."""
    theta = jnp.atleast_1d(jnp.asarray(angles, jnp.float32))
    r = math.sqrt(q0 * dim)  # two directions: dim >= 2
    x2 = jnp.zeros((theta.shape[0], dim), theta.dtype).at[:, 0].set(r * jnp.cos(theta)).at[:, 1].set(r * jnp.sin(theta))
    x1 = jnp.zeros((1, dim), theta.dtype).at[0, 0].set(r)
    k = mlp_kernels(x1, x2, depth=depth, **network)
    return Kernels(k.nngp[0], k.ntk[0])


@declare(k=ArrayArg("n n"))
def kernel_eigenvalues(k: ArrayLike) -> np.ndarray:
    """Eigenvalues of a symmetric kernel matrix (its symmetric part), largest first (float64 on the host)."""
    k = np.asarray(k, np.float64)
    return np.linalg.eigvalsh(0.5 * (k + k.T))[::-1]


def _seeds(seeds: Any) -> list[int]:
    """A non-empty iterable of at most MAX_SEEDS seeds, each in the range of the configs' `seed` field."""
    if isinstance(seeds, (str, bytes, dict)) or not isinstance(seeds, Iterable):
        raise ValueError(f"seeds: must be a list or range of seeds, got {type(seeds).__name__}")
    out = []
    for s in seeds:
        out.append(checks.integer("seeds", s, 0, 2**31 - 1))
        if len(out) > MAX_SEEDS:
            raise ValueError(f"seeds: at most {MAX_SEEDS} seeds")
    if not out:
        raise ValueError("seeds: need at least one seed")
    return out


@declare(
    config=Instance(MLPConfig, example=_example_config),
    x1=ArrayArg("n1 d", lo=-MAX_INPUT, hi=MAX_INPUT),
    x2=ArrayArg("n2 d", lo=-MAX_INPUT, hi=MAX_INPUT, none_ok=True, example=_example_x2),
    seeds=Given(why="an iterable of seeds, checked in the body", example=range(2)),
    scaling=Choice(SCALINGS),
    method=Choice(METHODS),
)
def mc_empirical_ntk(
    config: MLPConfig,
    x1: ArrayLike,
    x2: ArrayLike | None = None,
    *,
    seeds: Iterable[int] = range(8),
    scaling: str = "sgd",
    method: str = "structured",
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Mean and standard deviation over initialisation seeds of the empirical NTK at `config.width`."""
    ks = jnp.stack([empirical_ntk(build_mlp(config, s), x1, x2, scaling=scaling, method=method) for s in _seeds(seeds)])
    return ks.mean(0), ks.std(0)
