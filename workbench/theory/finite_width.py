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

Estimating the kurtosis from sampled networks: the raw estimator m4 / m2^2 - 3 of the outputs is heavy-tailed (at
L / n = 0.25 its error is of the size of the kurtosis itself even at 20,000 networks). Conditional on the last hidden
layer x_L the output is Gaussian, f | x_L ~ N(0, Q) with Q = C_W / n |x_L|^2 + C_b (the readout's weights and bias
are independent of x_L), so E[f^2] = E[Q], E[f^4] = 3 E[Q^2] and the excess kurtosis is 3 E[Q^2] / E[Q]^2 - 3
(`conditional_kurtosis` of `sample_networks(...).variances`): the same quantity, estimated with a far smaller error
from the same networks, since the readout's Gaussian noise is integrated out exactly.
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

from workbench.core import parametrizations as P
from workbench.core.activations import get_activation
from workbench.core.declare import Activation, Array, Instance, Int, Real, declare
from workbench.core.memory import require
from workbench.nets.models import MLP, MLPConfig
from workbench.theory.criticality import gaussian_moments

__all__ = [
    "NetworkSample",
    "Vertex",
    "conditional_kurtosis",
    "excess_kurtosis",
    "excess_kurtosis_theory",
    "network_config",
    "random_outputs",
    "relu_exact_kurtosis",
    "sample_networks",
    "vertex_recursion",
]

MAX_DEPTH = 1000  # layers of the vertex recursion (a few ms each)
K_RANGE = (1e-30, 1e30)  # the kernel the recursion may reach: the activation is evaluated in float32
MAX_NETWORKS = 10**7


class Vertex(NamedTuple):
    """Per layer l = 1..depth+1: kernel K^(l), four-point vertex V^(l) (order 1/n coefficient) and chi_par."""

    K: np.ndarray
    V: np.ndarray
    chi_par: np.ndarray


def _moments(activation: str, K: float) -> tuple[float, float, float]:
    """(<sigma^2>_K, <sigma^4>_K, <z^2 sigma^2>_K) by Gauss-Legendre quadrature (`criticality.gaussian_moments`)."""
    act = get_activation(activation)
    s2, s4 = gaussian_moments(lambda x: act(x) ** 2, 0.0, K)
    z2s2 = gaussian_moments(lambda x: x * act(x), 0.0, K)[1]
    return float(s2), float(s4), float(z2s2)


ACT = Activation()
DEPTH = Int(0, MAX_DEPTH)
C_W = Real(0.0, 100.0, lo_open=True)  # MLPConfig's weight_std is at most 10
C_B = Real(0.0, 100.0)
Q0 = Real(0.0, 1e6, lo_open=True)


@declare(activation=ACT, depth=DEPTH, C_W=C_W, C_b=C_B, q0=Q0)
def vertex_recursion(activation: str, depth: int, C_W: float, C_b: float = 0.0, q0: float = 1.0) -> Vertex:
    """K^(l), V^(l), chi_par(K^(l)) for l = 1..depth+1 (RYH ch. 4-5; module docstring); q0 = x.x / d of the
    input. ValueError naming `depth` when K^(l) leaves K_RANGE (an activation growing or vanishing too fast)."""
    K, V, chis = [C_b + C_W * q0], [0.0], []
    for _ in range(depth + 1):
        if not K_RANGE[0] <= K[-1] <= K_RANGE[1]:
            raise ValueError(
                f"depth: the kernel K^({len(K)}) = {K[-1]:.3g} leaves [{K_RANGE[0]:g}, {K_RANGE[1]:g}] at this depth "
                f"(C_W = {C_W:g}, C_b = {C_b:g}, {activation}); use fewer layers or a critical C_W"
            )
        s2, s4, z2s2 = _moments(activation, K[-1])
        chi = C_W / (2 * K[-1] ** 2) * (z2s2 - K[-1] * s2)
        chis.append(chi)
        if len(K) <= depth:
            K.append(C_b + C_W * s2)
            V.append(C_W**2 * (s4 - s2**2) + chi**2 * V[-1])
    if not (np.all(np.isfinite(V)) and np.all(np.isfinite(chis))):
        raise ValueError(f"depth: the four-point vertex overflows within {depth} layers (C_W = {C_W:g}, {activation})")
    return Vertex(np.array(K), np.array(V), np.array(chis))


@declare(activation=ACT, depth=DEPTH, width=Int(1, 10**9), C_W=C_W, C_b=C_B, q0=Q0)
def excess_kurtosis_theory(
    activation: str, depth: int, width: int, C_W: float, C_b: float = 0.0, q0: float = 1.0
) -> float:
    """Leading-order excess kurtosis of one output, 3 V^(L+1) / (n K^(L+1)^2) (RYH Sec. 4.4, 5.4)."""
    v = vertex_recursion(activation, depth, C_W, C_b, q0)
    return 3.0 * v.V[-1] / (width * v.K[-1] ** 2)


@declare(depth=Int(0, 10**6), width=Int(1, 10**9))
def relu_exact_kurtosis(depth: int, width: int) -> float:
    """Exact excess kurtosis 3 ((1 + 5/n)^L - 1) of a critical ReLU network's output (Hanin & Nica 2019)."""
    log_ratio = depth * math.log1p(5.0 / width)
    if log_ratio > 700:
        raise ValueError(f"depth: (1 + 5/n)^L overflows float64 at depth {depth}, width {width}; use L / n below ~100")
    return 3.0 * math.expm1(log_ratio)


@declare(
    activation=ACT,
    depth=Int(1, 256),
    width=Int(1, 65_536),
    C_W=C_W,
    C_b=C_B,
    in_dim=Int(1, 100_000),
)
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


def _readout(config: MLPConfig) -> tuple[float, float]:
    """(a, b) with Var(f | x_L) = a |x_L|^2 + b: the readout's multiplier^2 x init variance, and its bias variance."""
    c = config
    m = P.width_ratio(c.width, c.base_width)
    std = 0.0 if c.zero_readout else P.init_std(c.parametrization, "output", m, c.weight_std / math.sqrt(c.base_width))
    return (P.multiplier(c.parametrization, "output", m) * std) ** 2, (c.bias_std**2 if c.bias else 0.0)


@functools.lru_cache(maxsize=32)
def _sampler(config: MLPConfig):
    """jit(vmap over keys) of a fresh Flax MLP's first output at x and its conditional variance given the last
    hidden layer (module docstring): init and forward in one compiled call."""
    a, b = _readout(config)

    def one(key: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        out, hidden = MLP(config, rngs=nnx.Rngs(params=key))(x, return_hidden=True)
        last = hidden["features"][-1]
        return out[:, 0], a * jnp.sum(last.astype(jnp.float32) ** 2, -1) + b

    return jax.jit(jax.vmap(one, in_axes=(0, None)))


CHUNK_FLOATS = 2**25  # weights drawn per compiled call (128 MiB of float32)


class NetworkSample(NamedTuple):
    """Per network (rows) and input (columns): the first output f and its variance Q = Var(f | last hidden layer)
    over the readout's initialisation (f | x_L ~ N(0, Q))."""

    outputs: np.ndarray
    variances: np.ndarray


MLP_EXAMPLE = Instance(MLPConfig, example=lambda: network_config("relu", 2, 8, 2.0, 0.0, in_dim=3))


@declare(config=MLP_EXAMPLE, x=Array("n d", lo=-1e15, hi=1e15), n_networks=Int(1, MAX_NETWORKS), seed=Int(0, 2**31 - 1))
def sample_networks(config: MLPConfig, x: ArrayLike, n_networks: int, seed: int = 0) -> NetworkSample:
    """Outputs f and conditional variances Q, each (n_networks, N), at the rows of x of independently initialised
    Flax MLPs of `config` (the networks of `random_outputs` with the same seed)."""
    x = np.asarray(x)
    if x.shape[1] != config.in_dim:
        raise ValueError(f"x: needs config.in_dim = {config.in_dim} columns, got shape {x.shape}")
    per_net = config.in_dim * config.width + (config.depth - 1) * config.width**2 + config.width
    chunk = int(min(n_networks, max(1, CHUNK_FLOATS // per_net)))
    need = 8.0 * per_net * chunk + 2 * 2 * 8.0 * n_networks * len(x)
    require(need, "n_networks", f"{n_networks:,} networks of {per_net:,} weights at {len(x)} inputs")
    keys = jax.random.split(jax.random.key(seed), n_networks)
    xs = jnp.asarray(x, jnp.float32)
    fn = _sampler(config)
    parts = [fn(keys[i : i + chunk], xs) for i in range(0, n_networks, chunk)]
    outputs, variances = (np.concatenate([np.asarray(p[j]) for p in parts]).astype(np.float64) for j in (0, 1))
    if not (np.all(np.isfinite(outputs)) and np.all(np.isfinite(variances))):
        raise ValueError(f"config: the networks' outputs overflow float32 at depth {config.depth}; use fewer layers")
    return NetworkSample(outputs, variances)


@declare(config=MLP_EXAMPLE, x=Array("n d", lo=-1e15, hi=1e15), n_networks=Int(1, MAX_NETWORKS), seed=Int(0, 2**31 - 1))
def random_outputs(config: MLPConfig, x: ArrayLike, n_networks: int, seed: int = 0) -> np.ndarray:
    """(n_networks, N) outputs at the rows of x of independently initialised Flax MLPs of `config`."""
    return sample_networks(config, x, n_networks, seed).outputs


def _enough(name: str, values: np.ndarray) -> None:
    if len(values) < 2:
        raise ValueError(f"{name}: needs at least 2 samples for an estimate and its standard error, got {len(values)}")


@declare(samples=Array("s"))
def excess_kurtosis(samples: ArrayLike) -> tuple[float, float]:
    """(m4 / m2^2 - 3, its standard error by the delta method) of zero-mean samples (moments about 0)."""
    f2 = np.asarray(samples, float) ** 2
    _enough("samples", f2)
    m2, m4 = f2.mean(), (f2**2).mean()
    if not (m2 > 0 and math.isfinite(m4)):
        raise ValueError(
            f"samples: the moments m2 = {m2:.3g}, m4 = {m4:.3g} give no kurtosis (all zero or overflowing)"
        )
    influence = f2**2 / m2**2 - 2 * m4 * f2 / m2**3
    return float(m4 / m2**2 - 3.0), float(influence.std(ddof=1) / math.sqrt(len(f2)))


@declare(variances=Array("s", lo=0.0))
def conditional_kurtosis(variances: ArrayLike) -> tuple[float, float]:
    """(3 E[Q^2] / E[Q]^2 - 3, its standard error by the delta method) from the conditional variances Q of outputs
    that are Gaussian given Q (f | Q ~ N(0, Q)): the excess kurtosis of f with the Gaussian noise integrated out
    (module docstring), an estimator of the same quantity as `excess_kurtosis` with a smaller error."""
    q = np.asarray(variances, float)
    _enough("variances", q)
    m1, m2 = q.mean(), (q**2).mean()
    if not (m1 > 0 and math.isfinite(m2)):
        raise ValueError(f"variances: E[Q] = {m1:.3g}, E[Q^2] = {m2:.3g} give no kurtosis (all zero or overflowing)")
    influence = 3 * q**2 / m1**2 - 6 * m2 * q / m1**3
    return float(3 * m2 / m1**2 - 3.0), float(influence.std(ddof=1) / math.sqrt(len(q)))
