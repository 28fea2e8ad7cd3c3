"""Two small networks of the grokking literature, as Flax NNX modules the training engine accepts.

- `PairMLP`: one hidden layer on one-hot token pairs (a, b) (Gromov 2023; Liu et al. 2022), with the
  first layer computed as a gather: h = phi(E_a[a] + E_b[b] + b_1), logits = h @ W_out + b_out, which is
  [onehot(a), onehot(b)] @ [E_a; E_b] without the one-hot matrices.
- `XORNet`: the two-layer ReLU network of Xu et al. (2024), f(x) = sum_j a_j relu(<w_j, x>) with the
  second layer fixed at a_j = +-1/sqrt(m); it returns the logits (0, f), so softmax cross-entropy on
  them is the logistic loss log(1 + exp(-y f)) with y = +-1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import nnx

from workbench.core.activations import get_activation
from workbench.core.config import spec
from workbench.core.fields import ACTIVATION, WIDTH
from workbench.nets.models import ModelConfig

__all__ = ["PairMLP", "PairMLPConfig", "XORNet", "XORNetConfig"]


@dataclass(frozen=True)
class PairMLPConfig(ModelConfig):
    """Sizes of a one-hidden-layer MLP on token pairs."""

    p: int = spec(59, lo=2, hi=1000, doc="vocabulary size (the modulus)")
    width: int = WIDTH(256, doc="hidden width")
    activation: str = ACTIVATION("relu", doc="nonlinearity")
    init_scale: float = spec(1.0, lo=0.0, hi=100.0, doc="multiplies the SP init of every weight")


class PairMLP(nnx.Module):
    """h = phi(E_a[a] + E_b[b] + b_1), logits = h W_out + b_out; init std init_scale/sqrt(fan_in)."""

    def __init__(self, config: PairMLPConfig, *, rngs: nnx.Rngs):
        c = config
        self.config = c
        self.phi = get_activation(c.activation)
        std_in, std_out = c.init_scale / math.sqrt(2), c.init_scale / math.sqrt(c.width)
        self.embed = nnx.Param(std_in * jax.random.normal(rngs.params(), (2, c.p, c.width)))  # E_a, E_b
        self.bias = nnx.Param(jnp.zeros((c.width,)))
        self.unembed = nnx.Param(std_out * jax.random.normal(rngs.params(), (c.width, c.p)))
        self.out_bias = nnx.Param(jnp.zeros((c.p,)))

    def __call__(self, pairs: jax.Array) -> jax.Array:
        e = self.embed[...]
        h = self.phi(e[0][pairs[:, 0]] + e[1][pairs[:, 1]] + self.bias[...])
        return h @ self.unembed[...] + self.out_bias[...]

    def embeddings(self) -> jax.Array:
        """First-layer weights as token embeddings, (2 * p, width): rows of E_a then of E_b."""
        return self.embed[...].reshape(-1, self.config.width)


@dataclass(frozen=True)
class XORNetConfig(ModelConfig):
    """Sizes of the Xu et al. (2024) two-layer network."""

    in_dim: int = spec(1000, lo=2, hi=100_000, log=True, doc="input dimension d")
    width: int = WIDTH(64, doc="hidden width m (even)")
    init_std: float = spec(1e-4, lo=0.0, hi=10.0, log=False, doc="std of the first-layer weights")


class XORNet(nnx.Module):
    """f(x) = sum_j a_j relu(<w_j, x>), a_j = +1/sqrt(m) for half the neurons and -1/sqrt(m) for the rest."""

    def __init__(self, config: XORNetConfig, *, rngs: nnx.Rngs):
        c = config
        self.config = c
        self.w = nnx.Param(c.init_std * jax.random.normal(rngs.params(), (c.in_dim, c.width)))

    def readout(self) -> jax.Array:
        """The fixed second layer a (a constant, not a parameter)."""
        m = self.config.width
        return jnp.where(jnp.arange(m) < m // 2, 1.0, -1.0) / math.sqrt(m)

    def __call__(self, x: jax.Array) -> jax.Array:
        f = jax.nn.relu(x @ self.w[...]) @ self.readout()
        return jnp.stack([jnp.zeros_like(f), f], axis=-1)
