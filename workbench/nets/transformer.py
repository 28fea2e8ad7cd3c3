"""One-layer transformer for a op b mod p in the style of Nanda et al. (2023), "Progress measures for
grokking via mechanistic interpretability", Sec. 3: input tokens (a, b, '='), learned token and
position embeddings, one causal attention layer and one ReLU MLP block on the residual stream, no
LayerNorm, untied unembedding; the logits are read at the '=' position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import nnx

from workbench.core.config import spec
from workbench.nets.models import ModelConfig

__all__ = ["Transformer", "TransformerConfig"]


@dataclass(frozen=True)
class TransformerConfig(ModelConfig):
    """Sizes of the one-layer transformer (Nanda et al. use p=113, d_model=128, 4 heads, d_mlp=512)."""

    p: int = spec(113, lo=2, hi=1000, doc="modulus: tokens 0..p-1 and '=' (token p)")
    d_model: int = spec(128, lo=4, hi=2048, log=True, doc="residual stream width")
    n_heads: int = spec(4, lo=1, hi=64, doc="attention heads (must divide d_model)")
    d_mlp: int = spec(512, lo=4, hi=8192, log=True, doc="MLP hidden width")

    def validate(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads: must divide d_model={self.d_model}, got {self.n_heads}")


class Transformer(nnx.Module):
    """logits(a, b) = W_U r with r = x_2 + attn(x)_2 + MLP(x_2 + attn(x)_2), x = token + position embeddings."""

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        c = config
        self.config = c
        d_head = c.d_model // c.n_heads

        def normal(shape: tuple[int, ...], fan_in: int) -> nnx.Param:
            return nnx.Param(jax.random.normal(rngs.params(), shape) / math.sqrt(fan_in))

        self.W_E = normal((c.p + 1, c.d_model), c.d_model)
        self.W_pos = normal((3, c.d_model), c.d_model)
        self.W_Q = normal((c.n_heads, c.d_model, d_head), c.d_model)
        self.W_K = normal((c.n_heads, c.d_model, d_head), c.d_model)
        self.W_V = normal((c.n_heads, c.d_model, d_head), c.d_model)
        self.W_O = normal((c.n_heads, d_head, c.d_model), c.d_model)
        self.W_in = normal((c.d_model, c.d_mlp), c.d_model)
        self.b_in = nnx.Param(jnp.zeros((c.d_mlp,)))
        self.W_out = normal((c.d_mlp, c.d_model), c.d_model)
        self.b_out = nnx.Param(jnp.zeros((c.d_model,)))
        self.W_U = normal((c.d_model, c.p), c.d_model)

    def __call__(self, pairs: jax.Array) -> jax.Array:
        c = self.config
        tokens = jnp.concatenate([pairs, jnp.full((pairs.shape[0], 1), c.p, pairs.dtype)], axis=1)
        x = self.W_E[...][tokens] + self.W_pos[...]  # (N, 3, d_model)
        # Only the '=' position is read out, and under the causal mask it attends to all three positions.
        q = jnp.einsum("nd,hde->nhe", x[:, -1], self.W_Q[...])
        k, v = (jnp.einsum("npd,hde->nhpe", x, w[...]) for w in (self.W_K, self.W_V))
        pattern = jax.nn.softmax(jnp.einsum("nhe,nhpe->nhp", q, k) / math.sqrt(q.shape[-1]), -1)
        last = x[:, -1] + jnp.einsum("nhp,nhpe,hed->nd", pattern, v, self.W_O[...])
        last = last + jax.nn.relu(last @ self.W_in[...] + self.b_in[...]) @ self.W_out[...] + self.b_out[...]
        return last @ self.W_U[...]

    def embeddings(self) -> jax.Array:
        """Token embeddings of 0..p-1 (the rows Nanda et al. Fourier-transform), (p, d_model)."""
        return self.W_E[...][: self.config.p]
