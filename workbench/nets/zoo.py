"""Three factories `make(width, rngs, **options) -> nnx.Module` written as a user would, in plain Flax NNX (their
own SP init, no knowledge of the abc table), for `workbench.nets.own`: a small CNN on the 8x8 digits, a pre-LN
transformer on modular arithmetic (the grokking task) and a residual MLP with one-layer blocks. The residual ones
take `depth` and `branch`, the multiplier of every residual branch (1/sqrt(L) for depth-muP, TP VI; 1/L for
CompleteP, arXiv 2505.01618). The transformer's attention logits are q.k / d_head (times sqrt 16), the 1/d that
microsoft/mup asks its users to write by hand, at every parametrization: equal to SP's 1/sqrt(d_head) only at the
base head size 16, so its "sp" differs from a textbook SP transformer in the attention alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import jax
import jax.numpy as jnp
from flax import nnx

from workbench.core.declare import Given, Instance, Int, Real, declare
from workbench.core.memory import require
from workbench.nets.models import TRAINING_COPIES

__all__ = ["cnn", "resmlp", "transformer"]

_WIDTH = Int(1, 65_536, example=8)
_RNGS = Instance(nnx.Rngs, example=lambda: nnx.Rngs(0))
_HEADS = 4  # the transformer's heads: fixed, so the head size grows with the width
_BASE_HEAD = 16  # head size at which its 1/d logits equal SP's 1/sqrt(d)
_BRANCH = Real(0, 256)  # (L / L0)^-alpha: above 1 for depths below the base depth (L / L0 >= 1/256)
M = TypeVar("M", bound=nnx.Module)


def _built(what: str, make: Callable[[nnx.Rngs], M], rngs: nnx.Rngs) -> M:
    """make(rngs), refused before allocating when training its parameters (counted from shapes) would not fit."""
    shapes = nnx.state(nnx.eval_shape(lambda: make(nnx.Rngs(0))), nnx.Param)
    n = sum(math.prod(p.shape) for p in jax.tree.leaves(shapes))
    require(4 * TRAINING_COPIES * n, "width", f"{what} ({n:,} parameters)", "use a smaller width or depth")
    return make(rngs)


class CNN(nnx.Module):
    """Two 3x3 SAME convolutions with ReLU, global average pooling, a dense readout (NHWC images)."""

    def __init__(self, width: int, side: int, classes: int, rngs: nnx.Rngs):
        self.side = side
        self.conv1 = nnx.Conv(1, width, (3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(width, width, (3, 3), rngs=rngs)
        self.readout = nnx.Linear(width, classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = x.reshape(x.shape[0], self.side, self.side, 1)
        h = jax.nn.relu(self.conv2(jax.nn.relu(self.conv1(h))))
        return self.readout(h.mean(axis=(1, 2)))


@declare(
    width=_WIDTH,
    rngs=_RNGS,
    in_dim=Given(why="a square number of pixels: checked in the body", example=64),
    out_dim=Int(1, 1000),
)
def cnn(width: int, rngs: nnx.Rngs, in_dim: int = 64, out_dim: int = 10) -> CNN:
    """A small CNN on square one-channel images flattened to `in_dim` pixels (the digits: 64)."""
    side = math.isqrt(in_dim) if isinstance(in_dim, int) and in_dim > 0 else 0
    if side * side != in_dim or not side:
        raise ValueError(f"in_dim: must be a square number of pixels, got {in_dim}")
    return _built(f"the CNN at width {width}", lambda r: CNN(width, side, out_dim, r), rngs)


class ResMLP(nnx.Module):
    """h_0 = W_in x; h_{l+1} = h_l + branch * W_l relu(h_l); f = W_out relu(h_L) (one-layer blocks, as in
    Bordelon et al. ICLR 2024 and TP VI's depth-muP experiments)."""

    def __init__(self, width: int, in_dim: int, out_dim: int, depth: int, branch: float, rngs: nnx.Rngs):
        self.branch = branch
        self.embed = nnx.Linear(in_dim, width, rngs=rngs)
        self.blocks = nnx.List([nnx.Linear(width, width, use_bias=False, rngs=rngs) for _ in range(depth)])
        self.readout = nnx.Linear(width, out_dim, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.embed(x)
        for block in self.blocks:
            h = h + self.branch * block(jax.nn.relu(h))
        return self.readout(jax.nn.relu(h))


@declare(width=_WIDTH, rngs=_RNGS, in_dim=Int(1, 65_536), out_dim=Int(1, 1000), depth=Int(1, 256), branch=_BRANCH)
def resmlp(
    width: int, rngs: nnx.Rngs, in_dim: int = 2, out_dim: int = 1, depth: int = 4, branch: float = 1.0
) -> ResMLP:
    """A residual MLP of `depth` one-layer blocks."""
    return _built(
        f"the ResMLP at width {width}, depth {depth}", lambda r: ResMLP(width, in_dim, out_dim, depth, branch, r), rngs
    )


class Block(nnx.Module):
    """Pre-LN block: x + branch * attn(LN x), then x + branch * MLP(LN x); logits q.k * 4/d_head (muP's 1/d, equal to
    1/sqrt(d_head) at d_head = 16; TP V Sec. 4)."""

    def __init__(self, width: int, branch: float, rngs: nnx.Rngs):
        self.branch = branch
        self.ln1, self.ln2 = nnx.LayerNorm(width, rngs=rngs), nnx.LayerNorm(width, rngs=rngs)
        self.q, self.k, self.v, self.o = (nnx.Linear(width, width, rngs=rngs) for _ in range(4))
        self.up, self.down = nnx.Linear(width, 4 * width, rngs=rngs), nnx.Linear(4 * width, width, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        n, t, width = x.shape
        h = self.ln1(x)
        q, k, v = (f(h).reshape(n, t, _HEADS, width // _HEADS) for f in (self.q, self.k, self.v))
        d_head = width // _HEADS
        logits = jnp.einsum("nqhe,nkhe->nhqk", q, k) * math.sqrt(_BASE_HEAD) / d_head
        causal = jnp.tril(jnp.ones((t, t), bool))
        pattern = jax.nn.softmax(jnp.where(causal, logits, -1e30), axis=-1)
        x = x + self.branch * self.o(jnp.einsum("nhqk,nkhe->nqhe", pattern, v).reshape(n, t, width))
        return x + self.branch * self.down(jax.nn.relu(self.up(self.ln2(x))))


class Transformer(nnx.Module):
    """Tokens (a, b, '=') embedded with positions, `depth` pre-LN blocks, a final LN and an unembedding read at '='."""

    def __init__(self, width: int, p: int, depth: int, branch: float, rngs: nnx.Rngs):
        self.p = p
        self.embed = nnx.Embed(p + 1, width, embedding_init=nnx.initializers.normal(1.0), rngs=rngs)
        self.position = nnx.Param(jax.random.normal(rngs.params(), (3, width)))
        self.blocks = nnx.List([Block(width, branch, rngs) for _ in range(depth)])
        self.ln = nnx.LayerNorm(width, rngs=rngs)
        self.unembed = nnx.Linear(width, p, rngs=rngs)

    def __call__(self, pairs: jax.Array) -> jax.Array:
        tokens = jnp.concatenate([pairs, jnp.full((pairs.shape[0], 1), self.p, pairs.dtype)], axis=1)
        x = self.embed(tokens) + self.position[...]
        for block in self.blocks:
            x = block(x)
        return self.unembed(self.ln(x[:, -1]))


@declare(
    width=Given(why="a multiple of the 4 heads: checked in the body", example=8),
    rngs=_RNGS,
    out_dim=Int(2, 1000),
    depth=Int(1, 256),
    branch=_BRANCH,
)
def transformer(width: int, rngs: nnx.Rngs, out_dim: int = 31, depth: int = 2, branch: float = 1.0) -> Transformer:
    """A pre-LN transformer for a op b mod p with p = `out_dim` (the grokking task; `workbench.data.modular`)."""
    if not isinstance(width, int) or not _HEADS <= width <= _WIDTH.hi or width % _HEADS:  # type: ignore[operator]
        raise ValueError(f"width: must be a multiple of {_HEADS} (the heads) in [4, {_WIDTH.hi}], got {width!r}")
    return _built(
        f"the transformer at width {width}, depth {depth}",
        lambda r: Transformer(width, out_dim, depth, branch, r),
        rngs,
    )
