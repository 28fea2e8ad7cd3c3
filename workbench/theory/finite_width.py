"""Finite-width corrections of the prior: the four-point vertex of a deep MLP (Roberts, Yaida & Hanin, "The
Principles of Deep Learning Theory", 2022, ch. 4-5) against the excess kurtosis of random Flax networks.

For one input, equal widths n, W ~ N(0, C_W / n), b ~ N(0, C_b), the preactivations of layer l have the kernel
K^(l) and, at order 1/n, the connected four-point function E[z^4] - 3 E[z^2]^2 = 3 V^(l) / n (the normalised
four-point vertex V / (n K^2), RYH ch. 4). The recursions (RYH ch. 4 give V and the kernel for many inputs
and any widths; here one input and equal widths, as in ch. 5):

    K^(1) = C_b + C_W x.x / d,                      V^(1) = 0
    K^(l+1) = C_b + C_W <sigma^2>_K(l)
    V^(l+1) = C_W^2 [<sigma^4>_K(l) - <sigma^2>_K(l)^2] + chi_par(K^(l))^2 V^(l)

with chi_par(K) = C_W / (2 K^2) <sigma^2 (z^2 - K)>_K = dK^(l+1) / dK^(l), the parallel susceptibility (RYH ch. 5).
The output of `depth` hidden layers is layer depth + 1, so its excess kurtosis is 3 V^(depth+1) / (n K^(depth+1)^2).
At criticality: ReLU (C_W = 2, C_b = 0) has chi_par = 1 and V^(l) = 5 (l - 1) K*^2, a slope of 15 L / n; the K* = 0
class (tanh, C_W = 1) approaches V / (n K^2) = (2/3) l / n (RYH ch. 5), a slope of 2 L / n. For ReLU the
distribution is known exactly: E[f^4] / E[f^2]^2 = 3 (1 + 5 / n)^L (Hanin & Nica 2019), whose 1/n term is the
book's; its higher orders are why the leading-order line bends upwards beyond L / n ~ 0.1.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from numpy.typing import ArrayLike

from workbench.core.activations import ActivationLike, get_activation
from workbench.core.memory import require
from workbench.nets.models import MLP, MLPConfig
from workbench.theory.criticality import gaussian_moments


class Vertex(NamedTuple):
    """Per layer l = 1..depth+1: kernel K^(l), four-point vertex V^(l) (order 1/n coefficient) and chi_par."""

    K: np.ndarray
    V: np.ndarray
    chi_par: np.ndarray


def _moments(activation: ActivationLike, K: float) -> tuple[float, float, float]:
    """(<sigma^2>_K, <sigma^4>_K, <z^2 sigma^2>_K) by Gauss-Legendre quadrature (`criticality.gaussian_moments`)."""
    act = get_activation(activation)
    s2, s4 = gaussian_moments(lambda x: act(x) ** 2, 0.0, K)
    z2s2 = gaussian_moments(lambda x: x * act(x), 0.0, K)[1]
    return float(s2), float(s4), float(z2s2)


def vertex_recursion(activation: ActivationLike, depth: int, C_W: float, C_b: float = 0.0, q0: float = 1.0) -> Vertex:
    """K^(l), V^(l), chi_par(K^(l)) for l = 1..depth+1 (RYH ch. 4-5; module docstring);
    q0 = x.x / d of the input."""
    if not isinstance(depth, int) or depth < 0:
        raise ValueError(f"depth: must be an integer >= 0, got {depth!r}")
    if not (C_W > 0 and C_b >= 0 and q0 > 0):
        raise ValueError(f"C_W, C_b, q0: need C_W > 0, C_b >= 0, q0 > 0, got {C_W}, {C_b}, {q0}")
    K, V, chis = [C_b + C_W * q0], [0.0], []
    for _ in range(depth + 1):
        s2, s4, z2s2 = _moments(activation, K[-1])
        chi = C_W / (2 * K[-1] ** 2) * (z2s2 - K[-1] * s2)
        chis.append(chi)
        if len(K) <= depth:
            K.append(C_b + C_W * s2)
            V.append(C_W**2 * (s4 - s2**2) + chi**2 * V[-1])
    return Vertex(np.array(K), np.array(V), np.array(chis))


def excess_kurtosis_theory(
    activation: ActivationLike, depth: int, width: int, C_W: float, C_b: float = 0.0, q0: float = 1.0
) -> float:
    """Leading-order excess kurtosis of one output, 3 V^(L+1) / (n K^(L+1)^2) (RYH Sec. 4.4, 5.4)."""
    v = vertex_recursion(activation, depth, C_W, C_b, q0)
    return 3.0 * v.V[-1] / (width * v.K[-1] ** 2)


def relu_exact_kurtosis(depth: int, width: int) -> float:
    """Exact excess kurtosis 3 ((1 + 5/n)^L - 1) of a critical ReLU network's output (Hanin & Nica 2019)."""
    return 3.0 * ((1.0 + 5.0 / width) ** depth - 1.0)


def network_config(activation: str, depth: int, width: int, C_W: float, C_b: float, in_dim: int = 2) -> MLPConfig:
    """The workbench MLP with W ~ N(0, C_W / fan_in), b ~ N(0, C_b) (SP at its base width): RYH's initialisation."""
    return MLPConfig(
        in_dim=in_dim,
        width=width,
        depth=depth,
        out_dim=1,
        activation=activation,
        parametrization="sp",
        base_width=width,
        weight_std=math.sqrt(C_W),
        bias_std=math.sqrt(C_b),
        bias=C_b > 0,
    )


@functools.lru_cache(maxsize=32)
def _outputs(config: MLPConfig):
    """jit(vmap over keys) of a fresh Flax MLP's outputs at x: init and forward in one compiled call."""

    def one(key: jax.Array, x: jax.Array) -> jax.Array:
        return MLP(config, rngs=nnx.Rngs(params=key))(x)[:, 0]

    return jax.jit(jax.vmap(one, in_axes=(0, None)))


CHUNK_FLOATS = 2**25  # weights drawn per compiled call (128 MiB of float32)


def random_outputs(config: MLPConfig, x: ArrayLike, n_networks: int, seed: int = 0) -> np.ndarray:
    """(n_networks, N) outputs at the rows of x of independently initialised Flax MLPs of `config`."""
    per_net = config.in_dim * config.width + (config.depth - 1) * config.width**2 + config.width
    require(8.0 * per_net * min(n_networks, max(1, CHUNK_FLOATS // per_net)), "random_outputs", f"{per_net} weights")
    chunk = int(min(n_networks, max(1, CHUNK_FLOATS // per_net)))
    keys = jax.random.split(jax.random.key(seed), n_networks)
    x = jnp.asarray(x, jnp.float32)
    fn = _outputs(config)
    outs = [np.asarray(fn(keys[i : i + chunk], x)) for i in range(0, n_networks, chunk)]
    return np.concatenate(outs).astype(np.float64)


def excess_kurtosis(samples: ArrayLike) -> tuple[float, float]:
    """(m4 / m2^2 - 3, its standard error by the delta method) of zero-mean samples (moments about 0)."""
    f2 = np.asarray(samples, float) ** 2
    m2, m4 = f2.mean(), (f2**2).mean()
    influence = f2**2 / m2**2 - 2 * m4 * f2 / m2**3
    return float(m4 / m2**2 - 3.0), float(influence.std(ddof=1) / math.sqrt(len(f2)))
