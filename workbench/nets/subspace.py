"""Subspace training (Li, Farkhoor, Liu & Yosinski 2018, "Measuring the Intrinsic Dimension of Objective
Landscapes", ICLR, Sec. 2): theta = theta_0 + P theta_d, where only theta_d (d numbers, starting at 0) trains.

`subspace(model, d, kind=..., layout=...)` wraps any Flax NNX module whose variables are `nnx.Param`s (the
built-in MLP, a `workbench.stax` network, a module written by hand): the wrapper's one Param is theta_d; theta_0
(the model's parameters) and P are `Fixed` variables, which the engine carries without training them. P (D x d):

- "dense": i.i.d. Gaussian;
- "sparse": sklearn's SparseRandomProjection as the paper code draws it per tensor: entries +-1 at density
  1/sqrt(D_block) (D_block: the tensor's size under layout "layer", D under "global"), O(d sqrt(D)) memory;
- "fastfood": H G Pi H B (Le, Sarlos & Smola 2013, as in the paper code): theta_d zero-padded to L = 2^k >= D,
  B random signs, H the Walsh-Hadamard transform, Pi a permutation, G Gaussian; O(D log D) time, O(D) memory.

Every column of P has unit norm over all D parameters (dense and sparse exactly, jointly over the tensors as the
paper code's normalizers do it; fastfood in expectation, the paper code's scale), so a unit step of theta_d is a
unit step of theta. Layout "global": one P for the flattened parameters; "layer": one block per parameter tensor,
all reading the same theta_d (the paper code's RProj layers; for dense the same distribution as "global").

theta_d has `size` >= d entries, those from d on masked: every d up to `size` runs the same compiled step
(`with_dim` changes d in a model's state), and with dense and sparse the first d directions are the same at every
size (row j of P is drawn j-th), so a search over d compiles once per size.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from workbench.core.config import spec
from workbench.core.declare import Choice, Instance, Int, declare
from workbench.core.memory import require
from workbench.nets.models import MLPConfig, ModelConfig, build_mlp

__all__ = ["KINDS", "LAYOUTS", "Fixed", "Subspace", "SubspaceConfig", "projection_bytes", "subspace", "with_dim"]

KINDS = ("dense", "sparse", "fastfood")
LAYOUTS = ("global", "layer")
MAX_PARAMS = 10**9  # parameters D of a wrapped model
_MAX_SEED = 2**31 - 1
HADAMARD_BITS = 5  # H_32 products: log2(L) / 5 fused passes, each 32 multiply-adds per entry


class Fixed(nnx.Variable):
    """A tensor of a model's state that never trains (theta_0, the projection, the mask of theta_d)."""


@dataclass(frozen=True)
class SubspaceConfig(ModelConfig):
    """The subspace of a wrapped model: its d, the compiled size of theta_d, P's kind and layout, D."""

    d: int = spec(1, lo=1, hi=MAX_PARAMS, log=True, doc="intrinsic dimension d: trained directions")
    size: int = spec(1, lo=1, hi=MAX_PARAMS, log=True, doc="entries of theta_d (>= d; those from d on masked)")
    kind: str = spec("fastfood", choices=KINDS, doc="random projection P")
    layout: str = spec("global", choices=LAYOUTS, doc="one P for all parameters, or one block per tensor")
    n_params: int = spec(1, lo=1, hi=MAX_PARAMS, log=True, doc="parameters D of the wrapped model")

    def validate(self) -> None:
        if self.d > self.n_params:
            raise ValueError(f"d: must be in [1, {self.n_params}] (the model's parameters D), got {self.d}")
        if not self.d <= self.size <= max(self.d, self.n_params):
            raise ValueError(f"size: must be in [{self.d}, {max(self.d, self.n_params)}] (d to D), got {self.size}")


def _pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(n)))


def _blocks(sizes: list[int], layout: str) -> list[int]:
    """Sizes of the projection's blocks: one per tensor ("layer") or one of all D ("global")."""
    return list(sizes) if layout == "layer" else [sum(sizes)]


@declare(n_params=Int(1, MAX_PARAMS), size=Int(1, MAX_PARAMS), kind=Choice(KINDS))
def projection_bytes(n_params: int, size: int, kind: str) -> int:
    """Bytes of a global projection P (D = `n_params`, theta_d of `size`) and theta_0, as stored (Li et al. 2018
    Sec. 2): dense 4 D size, sparse 12 size sqrt(D) (COO), fastfood 12 L (B, Pi, G, L = 2^ceil(log2 D))."""
    return _stored_bytes([n_params], size, kind)


def _stored_bytes(blocks: list[int], size: int, kind: str) -> int:
    """`projection_bytes` of a projection made of `blocks` (one per tensor under layout "layer"): each fastfood block
    is padded to 2^ceil(log2 max(block, size)), each sparse direction holds round(sqrt(block)) entries per block."""
    if kind == "fastfood":
        stored = 12 * sum(_pow2(max(n, size)) for n in blocks)
    elif kind == "sparse":
        stored = 12 * size * sum(max(1, round(math.sqrt(n))) for n in blocks)
    else:
        stored = 4 * sum(blocks) * size
    return stored + 4 * sum(blocks)


def _hadamard(v: jax.Array) -> jax.Array:
    """Unnormalised Walsh-Hadamard transform of v (length L = 2^k): H_L = H_2 (x) ... (x) H_2, applied as
    ceil(k / HADAMARD_BITS) products with H_(2^g) along one axis of v reshaped, O(L log L) operations."""
    n, done = v.shape[0], 1
    while done < n:
        g = min(HADAMARD_BITS, int(math.log2(n // done)))
        h = jnp.asarray(_sylvester(g))
        v = jnp.einsum("ij,ajb->aib", h, v.reshape(n // (done << g), 1 << g, done)).reshape(n)
        done <<= g
    return v


@functools.cache
def _sylvester(bits: int) -> np.ndarray:
    """The +-1 Hadamard matrix of size 2^bits (Sylvester's construction)."""
    h = np.ones((1, 1), np.float32)
    for _ in range(bits):
        h = np.block([[h, h], [h, -h]])
    return h


def _dense(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    """(size, D) Gaussian rows of unit norm: row j is direction j (drawn j-th, so nested in size)."""
    p = rng.standard_normal((size, n), dtype=np.float32)
    return p / np.linalg.norm(p, axis=1, keepdims=True)


def _sparse(rng: np.random.Generator, size: int, blocks: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COO (rows in D, directions, values) of sklearn's sparse random matrix per block (density 1/sqrt(D_block):
    round(sqrt(D_block)) entries +-1 per direction), every direction scaled to unit norm over all blocks; sorted by
    row. The same number of entries for every seed, so that subspace models stack along a seed axis."""
    rows, cols = [], []
    for j in range(size):
        start = 0
        for n in blocks:
            k = max(1, round(math.sqrt(n)))  # sklearn draws a binomial count of this mean; fixed, models stack
            rows.append(start + rng.choice(n, size=k, replace=False))
            cols.append(np.full(k, j))
            start += n
    r, c = np.concatenate(rows).astype(np.int32), np.concatenate(cols).astype(np.int32)
    v = rng.choice(np.array([-1.0, 1.0], np.float32), size=r.size)
    counts = np.bincount(c, minlength=size)  # squared norm of each direction (entries +-1)
    v = v / np.sqrt(np.maximum(counts[c], 1)).astype(np.float32)
    order = np.argsort(r, kind="stable")
    return r[order], c[order], v[order]


class Subspace(nnx.Module):
    """theta_0 + P theta_d of a wrapped NNX module (module docstring); `config` a `SubspaceConfig`."""

    def __init__(self, model: nnx.Module, config: SubspaceConfig, seed: int = 0):
        self.config = config
        self.inner, params = nnx.split(model, nnx.Param)
        leaves, self.treedef = jax.tree.flatten(params)
        self.shapes = tuple(tuple(a.shape) for a in leaves)
        self.theta0 = nnx.List([Fixed(jnp.asarray(a, jnp.float32).reshape(-1)) for a in leaves])
        self.theta_d = nnx.Param(jnp.zeros((config.size,), jnp.float32))
        self.mask = Fixed(jnp.asarray(np.arange(config.size) < config.d, jnp.float32))
        rng = np.random.default_rng(seed)
        blocks = _blocks([math.prod(s) for s in self.shapes], config.layout)
        if config.kind == "dense":
            self.matrix = Fixed(jnp.asarray(_dense(rng, config.size, config.n_params)))
        elif config.kind == "sparse":
            rows, cols, values = _sparse(rng, config.size, blocks)
            self.rows, self.cols, self.values = Fixed(jnp.asarray(rows)), Fixed(jnp.asarray(cols)), Fixed(values)
        else:
            signs, perms, gauss = [], [], []
            for n in blocks:
                length = _pow2(max(n, config.size))
                signs.append(Fixed(jnp.asarray(rng.choice(np.array([-1.0, 1.0], np.float32), size=length))))
                perms.append(Fixed(jnp.asarray(rng.permutation(length).astype(np.int32))))
                gauss.append(Fixed(jnp.asarray(rng.standard_normal(length, dtype=np.float32))))
            self.signs, self.perms, self.gauss = nnx.List(signs), nnx.List(perms), nnx.List(gauss)
            self.blocks = tuple(blocks)

    def offset(self, theta_d: jax.Array) -> jax.Array:
        """P theta_d (D,) for a theta_d of `size` entries (the mask is not applied here)."""
        c = self.config
        if c.kind == "dense":
            return theta_d @ self.matrix[...]
        if c.kind == "sparse":
            contrib = self.values[...] * theta_d[self.cols[...]]
            return jax.ops.segment_sum(contrib, self.rows[...], c.n_params, indices_are_sorted=True)
        parts = []
        for n, b, perm, g in zip(self.blocks, self.signs, self.perms, self.gauss):
            length = b.shape[0]
            v = _hadamard(b[...] * jnp.pad(theta_d, (0, length - c.size)))
            v = _hadamard(g[...] * v[perm[...]])
            # column norm^2 = L sum G^2 over all L rows, about n/L of it kept: n/D of the total, as the paper's scale
            parts.append(v[:n] / jnp.sqrt(c.n_params * jnp.sum(g[...] ** 2)))
        return jnp.concatenate(parts)

    def parameters(self) -> nnx.State:
        """The wrapped model's Param state at theta_0 + P theta_d."""
        flat = self.offset(self.theta_d[...] * self.mask[...])
        leaves, start = [], 0
        for t0, shape in zip(self.theta0, self.shapes):
            n = math.prod(shape)
            leaves.append((t0[...] + flat[start : start + n]).reshape(shape))
            start += n
        return jax.tree.unflatten(self.treedef, leaves)

    def __call__(self, x: jax.Array) -> jax.Array:
        return nnx.merge(self.inner, self.parameters())(x)


def _example_model() -> nnx.Module:
    return build_mlp(MLPConfig(in_dim=3, out_dim=3, width=8, depth=1))


@declare(
    model=Instance(nnx.Module, example=_example_model),
    d=Int(1, MAX_PARAMS),
    kind=Choice(KINDS),
    layout=Choice(LAYOUTS),
    size=Int(1, MAX_PARAMS, none_ok=True),
    seed=Int(0, _MAX_SEED),
)
def subspace(
    model: nnx.Module, d: int, *, kind: str = "fastfood", layout: str = "global", size: int | None = None, seed: int = 0
) -> Subspace:
    """`model` trained in a random d-dimensional subspace around its parameters (Li et al. 2018 Sec. 2): theta_d
    of `size` (default d) entries, the first d used; P drawn from `seed`. Refused before allocating when P would
    not fit in memory (`projection_bytes`, per block under layout "layer")."""
    params, rest = nnx.state(model, nnx.Param), nnx.state(model, nnx.Not(nnx.Param))
    n = sum(int(np.size(a)) for a in jax.tree.leaves(params))
    if n == 0:
        raise ValueError(f"model: {type(model).__name__} has no trainable parameters (nnx.Param) to project onto")
    if jax.tree.leaves(rest):
        raise ValueError(f"model: {type(model).__name__} has variables other than nnx.Param; wrap a stateless model")
    for leaf in jax.tree.leaves(params):
        if not jnp.issubdtype(leaf.dtype, jnp.floating) or not np.all(np.isfinite(np.asarray(leaf, np.float32))):
            raise ValueError(
                f"model: its parameters (theta_0) must be finite floats, got a {leaf.dtype} tensor of shape "
                f"{tuple(leaf.shape)} that is integer or holds NaN or inf"
            )
    if d > n:
        raise ValueError(f"d: must be in [1, {n}] (the model's parameters D), got {d}")
    size = d if size is None else size
    config = SubspaceConfig(d=d, size=size, kind=kind, layout=layout, n_params=n)
    blocks = _blocks([int(np.size(a)) for a in jax.tree.leaves(params)], layout)
    require(
        _stored_bytes(blocks, size, kind),
        "subspace",
        f"{kind} P of D = {n:,} x d = {size:,} ({layout} layout, {len(blocks)} blocks)",
        "use a smaller d, fastfood or the global layout",
    )
    return Subspace(model, config, seed)


def _example_state() -> nnx.State:
    return nnx.state(subspace(_example_model(), 4, size=8))


@declare(params=Instance(nnx.State, example=_example_state), d=Int(1, MAX_PARAMS))
def with_dim(params: nnx.State, d: int) -> nnx.State:
    """A `Subspace`'s state (or a stack of them along leading axes) training its first d directions."""
    mask = getattr(params, "mask", None)
    if not isinstance(mask, Fixed):
        raise ValueError("params: must be the state of a Subspace (nnx.state(model)), with its theta_d mask")
    size = mask.shape[-1]
    if d > size:
        raise ValueError(f"d: must be in [1, {size}] (the compiled size of theta_d), got {d}")
    out = jax.tree.map(lambda a: a, params)  # a new State sharing the arrays
    out["mask"] = Fixed(jnp.broadcast_to(jnp.arange(size) < d, mask.shape).astype(jnp.float32))
    return out
