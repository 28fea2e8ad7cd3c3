"""Kernel utilities for the panels: kernel against angle, spectra, Monte-Carlo empirical NTKs."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from workbench.core import checks
from workbench.nets.models import MLPConfig, build_mlp
from workbench.theory.kernels.analytic import Kernels, mlp_kernels
from workbench.theory.kernels.empirical import empirical_ntk


def kernel_vs_angle(angles: ArrayLike, *, dim: int = 2, q0: float = 1.0, **network: Any) -> Kernels:
    """Kernels between x(0) and x(theta) for two inputs at angle theta with input kernel x.x/d = q0.

    `network`: the keyword arguments of `mlp_kernels` (depth, activation, stds, ...). Shapes (len(angles),)."""
    dim = checks.integer("dim", dim, 2, 100_000)  # two directions
    q0 = checks.real("q0", q0, 0.0, 1e6, lo_open=True)
    theta = jnp.atleast_1d(jnp.asarray(checks.reals("angles", angles, -10.0, 10.0), jnp.float32))
    r = math.sqrt(q0 * dim)
    x2 = jnp.zeros((theta.shape[0], dim), theta.dtype).at[:, 0].set(r * jnp.cos(theta)).at[:, 1].set(r * jnp.sin(theta))
    x1 = jnp.zeros((1, dim), theta.dtype).at[0, 0].set(r)
    k = mlp_kernels(x1, x2, **network)
    return Kernels(k.nngp[0], k.ntk[0])


def kernel_eigenvalues(k: ArrayLike) -> np.ndarray:
    """Eigenvalues of a symmetric kernel matrix, largest first (float64 on the host)."""
    k = np.asarray(checks.array("k", k), np.float64)
    if k.shape[0] != k.shape[1]:
        raise ValueError(f"k: must be a square matrix, got shape {k.shape}")
    return np.linalg.eigvalsh(0.5 * (k + k.T))[::-1]


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
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds: need at least one seed")
    ks = jnp.stack([empirical_ntk(build_mlp(config, s), x1, x2, scaling=scaling, method=method) for s in seeds])
    return ks.mean(0), ks.std(0)
