"""Finite deep networks sampled at initialisation, against the signal-propagation theory of
`workbench.theory.criticality` (Poole et al. 2016, Fig. 3; Schoenholz et al. 2017, Figs. 2 and 5): q, c and
gradient norms through depth."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from workbench.core.activations import get_activation
from workbench.core.analysis import sem
from workbench.core.declare import Instance, Real, declare
from workbench.theory import criticality as C

__all__ = ["CHUNK_BYTES", "Networks", "SampledNetworks", "inputs", "measure", "seed_chunk"]


@runtime_checkable
class Networks(Protocol):
    """What sampling needs: SP networks (activation, sigma_b2, width, depth), how many (seeds), and the two inputs
    (in_dim, q0 = |x|^2 / d, cosine c0). Experiments' configs that hold these fields qualify."""

    @property
    def activation(self) -> str: ...
    @property
    def sigma_b2(self) -> float: ...
    @property
    def width(self) -> int: ...
    @property
    def depth(self) -> int: ...
    @property
    def seeds(self) -> int: ...
    @property
    def in_dim(self) -> int: ...
    @property
    def q0(self) -> float: ...
    @property
    def c0(self) -> float: ...


@dataclass(frozen=True)
class SampledNetworks:
    """A plain `Networks` (already validated by the caller's config)."""

    activation: str
    sigma_b2: float
    width: int
    depth: int
    seeds: int
    in_dim: int = 64
    q0: float = 1.0
    c0: float = 0.5


def _example() -> SampledNetworks:
    """Small networks for the attack suite's base calls."""
    return SampledNetworks("tanh", 0.05, width=16, depth=3, seeds=2, in_dim=4)


_NETWORKS = Instance(Networks, example=_example)  # a config with the fields of `Networks`, validated by its class


@declare(config=_NETWORKS)
def inputs(config: Networks) -> jax.Array:
    """Two inputs with |x|^2 / d = q0 and cosine c0 (fixed, seed-independent)."""
    e1, e2 = np.eye(config.in_dim)[:2]
    x2 = config.c0 * e1 + math.sqrt(max(0.0, 1 - config.c0**2)) * e2
    return jnp.asarray(np.stack([e1, x2]) * math.sqrt(config.q0 * config.in_dim), jnp.float32)


CHUNK_BYTES = 256 * 2**20  # weights sampled at once by `measure`


@functools.lru_cache(maxsize=16)
def _compiled_measure(activation: str, in_dim: int, width: int, depth: int):
    """jit(vmap over seeds) of (q, c, grad2) per layer of SP networks (Poole et al. 2016, eq. 1):
    h_1 = x W_1 + b_1, h_{l+1} = phi(h_l) W_{l+1} + b_{l+1}, f = phi(h_L) v + b, W ~ N(0, sigma_w^2 / fan_in),
    b ~ N(0, sigma_b^2), layer l drawn from fold_in(key(seed), l). The layers are drawn inside a scan, in the
    compiled call: the weights exist once, as the residuals the backward pass reads (a 1024-wide, 50-deep
    network holds 200 MB of them), never as host arrays or copies. grad2_l = ||df(x_1)/dh_l||^2."""
    phi = get_activation(activation)

    def draw(key, l, fan_in, fan_out, sw, sb):
        kw, kb = jax.random.split(jax.random.fold_in(key, l))
        w = jax.random.normal(kw, (fan_in, fan_out)) * (sw / math.sqrt(fan_in))
        return w, sb * jax.random.normal(kb, (fan_out,))

    def one(seed, sw, sb, x):
        key = jax.random.key(seed)

        def network(shift):  # shift (depth, width): added to the pre-activations, so df/dshift_l = df/dh_l
            w, b = draw(key, 0, in_dim, width, sw, sb)
            h = x @ w + b + shift[0]

            def layer(h, inputs):
                l, s = inputs
                w, b = draw(key, l, width, width, sw, sb)
                h = phi(h) @ w + b + s
                return h, h

            last, rest = jax.lax.scan(layer, h, (jnp.arange(1, depth), shift[1:]))
            w, b = draw(key, depth, width, 1, sw, sb)
            return (phi(last[0]) @ w + b)[0], jnp.concatenate([h[None], rest])

        grads, h = jax.grad(network, has_aux=True)(jnp.zeros((depth, width)))  # h: (depth, 2, width)
        q = jnp.mean(h**2, axis=-1)
        c = jnp.sum(h[:, 0] * h[:, 1], -1) / jnp.sqrt(jnp.sum(h[:, 0] ** 2, -1) * jnp.sum(h[:, 1] ** 2, -1))
        return q.mean(-1), c, jnp.sum(grads**2, -1)

    return jax.jit(jax.vmap(one, in_axes=(0, None, None, None)))


@declare(config=_NETWORKS)
def seed_chunk(config: Networks) -> int:
    """Networks sampled per vmapped call: the largest divisor of `seeds` whose float32 weights fit in
    CHUNK_BYTES (a 1024-wide, 50-deep MLP has 200 MB of them; 16 at once would not fit a 2 GB Binder)."""
    per_seed = 4 * config.width * (config.in_dim + (config.depth - 1) * config.width)
    cap = max(1, CHUNK_BYTES // per_seed)
    return max(k for k in range(1, config.seeds + 1) if config.seeds % k == 0 and k <= cap)


@declare(finite=False, config=_NETWORKS, sigma_w2=Real(0.0, C.MAX_VARIANCE))
def measure(config: Networks, sigma_w2: float) -> dict:
    """Seed means and standard errors of q, c, grad2 per layer at one sigma_w2, with the theory. Not finite
    where the theory or the networks are: chi_1 is NaN where q* diverges, sampled values overflow to inf or NaN
    in deep chaotic networks, and the standard errors of a single seed are NaN."""
    k, x = seed_chunk(config), inputs(config)
    fn = _compiled_measure(config.activation, config.in_dim, config.width, config.depth)
    scales = math.sqrt(sigma_w2), math.sqrt(config.sigma_b2)
    parts = [fn(jnp.arange(i, i + k), *scales, x) for i in range(0, config.seeds, k)]
    q, c, grad2 = (np.concatenate([np.asarray(p[j], float) for p in parts]) for j in range(3))
    q_th, c_th, chi = C.depth_profile(
        config.activation, sigma_w2, config.sigma_b2, config.depth, q0=config.q0, c0=config.c0
    )
    chi1 = float(C.chi_1(config.activation, sigma_w2, config.sigma_b2))
    phase = "critical" if abs(chi1 - 1) < 0.02 else ("ordered" if chi1 < 1 else "chaotic")
    return {
        "sigma_w2": sigma_w2,
        "chi_1": chi1,
        "phase": phase,
        "layers": np.arange(1, config.depth + 1),
        "q": q.mean(0),
        "q_sem": sem(q, nan_if_single=True),
        "c": c.mean(0),
        "c_sem": sem(c, nan_if_single=True),
        "grad2": grad2.mean(0),
        "grad2_sem": sem(grad2, nan_if_single=True),
        "q_theory": q_th,
        "c_theory": c_th,
        "grad2_theory": np.cumprod(chi[::-1])[::-1],
    }
