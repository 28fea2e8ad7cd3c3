"""Infinite-width NNGP and NTK of MLPs in neural-tangents' stax conventions (Lee et al. 2018; Jacot et al. 2018).

Architecture: `depth` x [Dense(weight_std, bias_std), phi] + Dense readout (same stds). With the input
kernel x.x'/d, a Dense layer maps nngp -> w^2 nngp + b^2 and ntk -> nngp_new + w^2 ntk ("ntk") or
ntk -> fan_in nngp + w^2 ntk + 1 ("standard"; +1 when a bias exists: bias_std is not None, as in
neural-tangents where b_std=0.0 still adds a zero-initialised trainable bias); phi maps (nngp, ntk)
-> (E[phi(u)phi(v)], E[phi'(u)phi'(v)] ntk) (see `workbench.theory.kernels.dual`).

Precision: diagonals come from their own recursion (angle 0); angular activations (relu family, sign)
carry s = 1 - cos(theta) and sc = 1 + cos(theta) through every layer with updates free of cancellation
(input angles from differences of unit rows wherever the Gram matrix would cancel), so float32 stays
within 1e-5 of float64 on every entry, relative to its scale sqrt(K_ii K_jj) (sign excepted for
near-duplicate inputs: its kernel map is not Lipschitz at angle 0). Symmetric requests compute only
tiles on and above the diagonal; everything runs in tiles of `block_size` rows (a `lax.map`), so memory
stays O(block x N), and a request whose output would not fit in memory fails at once with ValueError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from workbench.core.activations import Activation, ActivationLike, derivative, get_activation
from workbench.core.declare import Activation as ActivationArg
from workbench.core.declare import Array as ArrayArg
from workbench.core.declare import Choice, Flag, Int, Real, declare
from workbench.core.memory import require
from workbench.theory.kernels import dual

__all__ = ["MAX_DEPTH", "MAX_INPUT", "PARAMETRIZATIONS", "Kernels", "kernel_bytes", "mlp_kernels"]

PARAMETRIZATIONS = ("ntk", "standard")
_HIGHEST = jax.lax.Precision.HIGHEST


class Kernels(NamedTuple):
    """NNGP and NTK matrices of shape (N1, N2), per output unit."""

    nngp: jax.Array
    ntk: jax.Array


@dataclass(frozen=True)
class _Spec:
    """Static description of the network (hashable: the jit cache key)."""

    depth: int
    act_key: tuple
    has_bias: bool
    parametrization: str
    degree: int
    block: int
    act: Activation = field(compare=False, hash=False)


class Hyper(NamedTuple):
    """The traced hyper-parameters of the recursion (a pytree: moving a slider does not recompile)."""

    w2: jax.Array  # weight_std^2
    b2: jax.Array  # bias_std^2
    width: jax.Array  # fan_in of hidden layers under "standard" (0 under "ntk")


Array = jax.Array
# per point, per layer: (pre-activation variance, input variance of the Dense layer, Hermite coefficients)
_Side = tuple[Array, Array, tuple[Array, ...]]
_PointData = tuple[Array, Array, tuple[Array, ...], Array]  # a _Side and the unit rows
_T = TypeVar("_T")


def _act_key(act: Activation) -> tuple:
    return (act.name, act.family, act.params, act.fn if act.family == "callable" else None)


# ---------------------------------------------------------------- diagonal and pairwise recursions


def _dense_ntk(spec: _Spec, hp: Hyper, nngp: Array, nngp_hat: Array, ntk_hat: Array, fan_in: Array | int) -> Array:
    """NTK after a Dense layer: nngp + w^2 ntk ("ntk") or fan_in nngp_hat + w^2 ntk + 1 ("standard")."""
    if spec.parametrization == "ntk":
        return nngp + hp.w2 * ntk_hat
    return fan_in * nngp_hat + hp.w2 * ntk_hat + spec.has_bias


def _fan_ins(spec: _Spec, hp: Hyper, d: int) -> tuple[Array, Array | int]:
    """fan_in of the hidden layers (d, width, width, ...) and of the readout."""
    dtype = hp.w2.dtype
    hidden = jnp.concatenate([jnp.full((min(spec.depth, 1),), d, dtype), jnp.full((max(spec.depth - 1, 0),), hp.width)])
    return hidden, (d if spec.depth == 0 else hp.width)


def _diag(spec: _Spec, hp: Hyper, sq_norm: Array, d: int) -> tuple[Array, Array, tuple[Array, ...], Array, Array]:
    """Per-point recursion (exact diagonal): per layer the pre-activation variance, the input variance of
    the Dense layer and the Hermite coefficients (quadrature only); then diag nngp and ntk."""
    kernel = dual.dual_of(spec.act)

    def layer(
        carry: tuple[Array, Array], fan_in: Array
    ) -> tuple[tuple[Array, Array], tuple[Array, Array, tuple[Array, ...]]]:
        post, ntk_hat = carry
        q = hp.w2 * post + hp.b2
        ntk = _dense_ntk(spec, hp, q, post, ntk_hat, fan_in)
        e_phi, e_dphi = kernel.diagonal(q, spec.degree)
        coeffs = ()
        if kernel.kind == "quadrature":  # the pairs' Mehler sums need each point's Hermite coefficients
            coeffs = tuple(dual._hermite_coefficients(fn, q, spec.degree) for fn in (spec.act.fn, derivative(spec.act)))
        return (e_phi, e_dphi * ntk), (q, post, coeffs)

    hidden, readout = _fan_ins(spec, hp, d)
    (post, ntk_hat), (pre, post_in, coeffs) = jax.lax.scan(layer, (sq_norm / d, jnp.zeros_like(sq_norm)), hidden)
    q = hp.w2 * post + hp.b2
    points_first = lambda v: jnp.moveaxis(v, 0, 1)  # noqa: E731  (N, depth, ...) for tiling
    per_layer = (points_first(pre), points_first(post_in), jax.tree_util.tree_map(points_first, coeffs))
    return per_layer + (q, _dense_ntk(spec, hp, q, post, ntk_hat, readout))


def _dense_s(s: Array, sc: Array, qa: Array, qb: Array, w2: Array, b2: Array) -> tuple[Array, Array]:
    """(s'', sc'') = 1 -+ cos(theta'') after a Dense layer, every term non-negative (no cancellation).

    With r = sqrt(q), R = sqrt(w^2 q + b^2) and e = R - w r = b^2 / (R + w r) per point:
    Ra Rb - w^2 q12 - b^2 = w^2 [(ra - rb)^2 (ea + eb)(Ra + Rb + w(ra + rb)) / (2 (Ra + Rb)^2) + ra rb s],
    Ra Rb + w^2 q12 + b^2 = Ra eb + w rb ea + b^2 + w^2 ra rb sc."""
    w = jnp.sqrt(w2)
    ra, rb = jnp.sqrt(qa), jnp.sqrt(qb)
    Ra, Rb = jnp.sqrt(w2 * qa + b2), jnp.sqrt(w2 * qb + b2)
    ea, eb = (b2 / jnp.where(R + w * r > 0, R + w * r, 1.0) for R, r in ((Ra, ra), (Rb, rb)))
    ia, ib = (jnp.where(R > 0, 1.0 / jnp.where(R > 0, R, 1.0), 0.0) for R in (Ra, Rb))
    ra, rb, Ra, Rb, ea, ia = ra[:, None], rb[None, :], Ra[:, None], Rb[None, :], ea[:, None], ia[:, None]
    eb, ib = eb[None, :], ib[None, :]
    B = Ra + Rb
    spread = 0.5 * (ra - rb) ** 2 * (ea + eb) * (B + w * (ra + rb)) / jnp.where(B > 0, B * B, 1.0)
    rr, inv = ra * rb, ia * ib
    ok = inv > 0  # a zero-variance point counts as orthogonal to everything
    s_new = jnp.where(ok, w2 * (spread + rr * s) * inv, 1.0)
    sc_new = jnp.where(ok, (Ra * eb + w * rb * ea + b2 + w2 * rr * sc) * inv, 1.0)
    return s_new, sc_new


_NEAR = 1e-4  # blocks with a pair this close to (anti)parallel take s0, sc0 from differences


def _exact_pairs(xa: Array, xb: Array, ua: Array, ub: Array) -> tuple[Array, Array]:
    """(s0, sc0) of all row pairs: |ua - ub|^2 / 2, |ua + ub|^2 / 2, and exactly (0, 2) for equal rows and
    (2, 0) for opposite rows (unit rows of equal inputs may differ in the last bit)."""
    xa, xb, ua, ub = xa[:, None, :], xb[None, :, :], ua[:, None, :], ub[None, :, :]
    s = 0.5 * jnp.sum((ua - ub) ** 2, axis=-1)
    sc = 0.5 * jnp.sum((ua + ub) ** 2, axis=-1)
    equal, opposite = jnp.all(xa == xb, axis=-1), jnp.all(xa == -xb, axis=-1)
    return (jnp.where(equal, 0.0, jnp.where(opposite, 2.0, s)), jnp.where(equal, 2.0, jnp.where(opposite, 0.0, sc)))


def _one_minus_cos(xa: Array, xb: Array, ua: Array, ub: Array, same: Array | bool) -> tuple[Array, Array]:
    """(s0, sc0) = 1 -+ cos of the angles between rows: from the Gram matrix of the unit rows, or, in a block
    holding a nearly (anti)parallel pair (the diagonal of a block with itself, `same`, aside) where the
    Gram matrix would cancel, from differences."""
    c = jnp.clip(jnp.matmul(ua, ub.T, precision=_HIGHEST), -1.0, 1.0)
    s, sc = 1.0 - c, 1.0 + c
    near = (jnp.minimum(s, sc) < _NEAR) & ~(same & jnp.eye(*s.shape, dtype=bool))
    return jax.lax.cond(jnp.any(near), _exact_pairs, lambda *_: (s, sc), xa, xb, ua, ub)


def _layer(
    spec: _Spec,
    hp: Hyper,
    state: tuple[Array, ...],
    side_a: _Side,
    side_b: _Side,
    fan_in: Array,
    first: bool,
) -> tuple[Array, ...]:
    """One hidden layer [Dense, phi] on a block of pairs; state = (nngp_hat, ntk_hat[, s, sc])."""
    kernel = dual.dual_of(spec.act)
    ang = kernel.angular
    nngp_hat, ntk_hat, *angle = state
    (pre_a, post_a, coeffs_a), (pre_b, post_b, coeffs_b) = side_a, side_b
    nngp = hp.w2 * nngp_hat + hp.b2
    ntk = _dense_ntk(spec, hp, nngp, nngp_hat, ntk_hat, fan_in)
    qa, qb = pre_a[:, None], pre_b[None, :]
    if ang is not None:
        s_hat, sc_hat = angle
        s, sc = _dense_s(s_hat, sc_hat, post_a, post_b, hp.w2, hp.b2)
        if ang.nonnegative and not first:
            sc = 2.0 - s  # phi >= 0: correlations after the first layer are >= 0, so sc >= 1 is accurate
        e_phi, e_dphi, s, sc = dual._angular_expectations(
            ang, jnp.sqrt(pre_a)[:, None] * jnp.sqrt(pre_b)[None, :], s, sc
        )
        if ang.nonnegative:
            sc = 2.0 - s
        return e_phi, e_dphi * ntk, s, sc
    if kernel.kind == "smooth":
        e_phi, e_dphi = kernel.expectations(qa, nngp, qb)
    else:
        c = dual._correlation(qa, nngp, qb)
        e_phi = dual._mehler(coeffs_a[0][:, None, :], coeffs_b[0][None, :, :], c)
        e_dphi = dual._mehler(coeffs_a[1][:, None, :], coeffs_b[1][None, :, :], c)
    return e_phi, e_dphi * ntk


def _pairs(
    spec: _Spec, hp: Hyper, xa: Array, xb: Array, da: _PointData, db: _PointData, same: Array | bool = False
) -> tuple[Array, Array]:
    """nngp and ntk of the block xa x xb, given both sides' per-point data `da`, `db` (`same`: xa is xb)."""
    d = xa.shape[-1]
    state = (jnp.matmul(xa, xb.T, precision=_HIGHEST) / d, jnp.zeros((xa.shape[0], xb.shape[0]), xa.dtype))
    if dual.dual_of(spec.act).angular is not None:
        state += _one_minus_cos(xa, xb, da[3], db[3], same)
    layers_first = lambda v: jnp.moveaxis(v, 1, 0)  # noqa: E731
    side_a, side_b = (jax.tree_util.tree_map(layers_first, p[:3]) for p in (da, db))
    hidden, readout = _fan_ins(spec, hp, d)
    if spec.depth:
        state = _layer(spec, hp, state, _take(side_a, 0), _take(side_b, 0), hidden[0], True)

        def body(state: tuple[Array, ...], xs: tuple[_Side, _Side]) -> tuple[tuple[Array, ...], None]:
            return _layer(spec, hp, state, xs[0], xs[1], hp.width, False), None

        if spec.depth > 1:
            state, _ = jax.lax.scan(body, state, jax.tree_util.tree_map(lambda v: v[1:], (side_a, side_b)))
    nngp = hp.w2 * state[0] + hp.b2
    return nngp, _dense_ntk(spec, hp, nngp, state[0], state[1], readout)


# ---------------------------------------------------------------- tiling


def _take(tree: _T, idx: int | Array) -> _T:
    return jax.tree_util.tree_map(lambda v: v[idx], tree)


def _pad_rows(x: Array, multiple: int) -> Array:
    n = x.shape[0]
    extra = -n % multiple
    return x if not extra else jnp.concatenate([x, jnp.broadcast_to(x[:1], (extra,) + x.shape[1:])])


def _assemble(tiles: Array, T: int, B: int, n: int) -> Array:
    """The exactly symmetric n x n matrix from its upper tiles (i <= j, row-major): entry (r, c) with r <= c
    is read from tile (r // B, c // B), the others mirrored, all by one gather. The indices are int32 numpy
    constants: indices computed inside the program (iota) halve the memory but make N = 2000 40% slower."""
    r, c = np.arange(n, dtype=np.int32)[:, None], np.arange(n, dtype=np.int32)[None, :]
    lo, hi = np.minimum(r, c), np.maximum(r, c)
    i, j = lo // B, hi // B
    pair = i * T - i * (i - 1) // 2 + (j - i)  # index of tile (i, j) in the row-major list
    return tiles[pair, lo % B, hi % B]


def _unit(x: Array) -> Array:
    """Rows scaled to unit norm (zero rows stay zero)."""
    n = jnp.linalg.norm(x, axis=1, keepdims=True)
    return x / jnp.where(n > 0, n, 1.0)


def _points(spec: _Spec, hp: Hyper, x: Array, unit: Array) -> _PointData:
    """Everything `_pairs` needs per point: the diagonal recursion and the unit rows."""
    return _diag(spec, hp, jnp.sum(x * x, axis=1), x.shape[1])[:3] + (unit,)


def _blocks(spec: _Spec, hp: Hyper, x: Array, unit: Array, B: int) -> tuple[int, Array, _PointData]:
    """x padded to T x B rows, and its per-point data in the same (T, B, ...) layout."""
    T = -(-x.shape[0] // B)
    xp, up = _pad_rows(x, B), _pad_rows(unit, B)
    dp = _points(spec, hp, xp, up)
    return T, xp.reshape(T, B, -1), jax.tree_util.tree_map(lambda v: v.reshape((T, B) + v.shape[1:]), dp)


def _compute(spec: _Spec, hp: Hyper, x1: Array, x2: Array | None) -> Kernels:
    """`hp` is traced (`Hyper`), so moving a slider does not recompile."""
    n1, d = x1.shape
    B = min(spec.block, n1)  # small tiles keep each layer's intermediates in cache
    if x2 is not None:
        unit = _unit(jnp.concatenate([x1, x2]))
        T, xp, dp = _blocks(spec, hp, x1, unit[:n1], B)
        d2 = _points(spec, hp, x2, unit[n1:])
        rows = jax.lax.map(lambda i: _pairs(spec, hp, xp[i], x2, _take(dp, i), d2), jnp.arange(T))
        return Kernels(*(r.reshape(T * B, -1)[:n1] for r in rows))
    # symmetric: only tiles (i, j >= i); lax.map also keeps XLA's fusions far faster than one flat graph
    diag1 = _diag(spec, hp, jnp.sum(x1 * x1, axis=1), d)
    T, xp, dp = _blocks(spec, hp, x1, _unit(x1), B)
    pairs = [(i, j) for i in range(T) for j in range(i, T)]
    I, J = jnp.array([p[0] for p in pairs]), jnp.array([p[1] for p in pairs])
    tiles = jax.lax.map(
        lambda ij: _pairs(spec, hp, xp[ij[0]], xp[ij[1]], _take(dp, ij[0]), _take(dp, ij[1]), ij[0] == ij[1]), (I, J)
    )
    out = Kernels(*(_assemble(t, T, B, n1) for t in tiles))
    idx = jnp.arange(n1)
    return Kernels(out.nngp.at[idx, idx].set(diag1[3]), out.ntk.at[idx, idx].set(diag1[4]))


_compute_jit = jax.jit(_compute, static_argnums=0)


# ---------------------------------------------------------------- public entry point

KERNEL_BYTES_PER_ENTRY = 88  # peak of mlp_kernels per float32 output entry, fitted at N = 1k..8k (bench_memory)
CROSS_BYTES_PER_ENTRY = 20  # the same for x1 x x2 kernels: tiles of rows, no gather (the same fit)
KERNEL_BASE_BYTES = 180 * 2**20  # compiled program, XLA's start-up, constants and tiles (the same fit)
POINT_BYTES_PER_TERM = 8  # per point, layer and stored term: variances, Hermite coefficients, their inputs
MAX_INPUT = 1e15  # |x| entries: x.x'/d stays finite in float32 up to d = 1e5
MAX_DEPTH = 10_000  # layers of the recursion (`workbench.theory.infinite_depth` takes deeper limits in closed form)


@declare(
    n1=Int(1, 10**9),
    n2=Int(1, 10**9),
    itemsize=Int(1, 16),
    symmetric=Flag(),
    depth=Int(0, MAX_DEPTH),
    activation=ActivationArg(),
    degree=Int(1, dual.MAX_DEGREE, none_ok=True),
)
def kernel_bytes(
    n1: int,
    n2: int,
    itemsize: int,
    symmetric: bool,
    depth: int,
    activation: ActivationLike = "relu",
    degree: int | None = None,
) -> float:
    """Estimated peak bytes of `mlp_kernels` on n1 x n2 pairs (fitted in benchmarks/bench_memory.py): the
    output entries (tiles, the gather and its indices when symmetric; the rows of tiles otherwise), the
    per-point, per-layer data of the diagonal recursion (2 x `degree` Hermite terms for quadrature) and a base."""
    quadrature = dual.dual_of(get_activation(activation)).kind == "quadrature"
    terms = 2 + (4 * (degree or dual.DEGREE) if quadrature else 0)
    per_entry = (KERNEL_BYTES_PER_ENTRY if symmetric else CROSS_BYTES_PER_ENTRY) * itemsize / 4
    per_point = POINT_BYTES_PER_TERM * itemsize / 4 * max(depth, 1) * terms
    return KERNEL_BASE_BYTES + per_entry * n1 * n2 + per_point * (n1 + n2)


def _check_memory(n1: int, n2: int, itemsize: int, copies: int, what: str) -> None:
    """Raise ValueError before computing when an n1 x n2 kernel would not fit (`workbench.core.memory.require`);
    `copies` scales the per-entry peak of `mlp_kernels` for other computations of the same size."""
    need = KERNEL_BASE_BYTES + copies / 3 * KERNEL_BYTES_PER_ENTRY * itemsize / 4 * n1 * n2
    require(need, what, f"{n1} x {n2} kernel entries", "use fewer points or compute the kernel in row slices of x1")


def _example_x2() -> np.ndarray:
    """A second set of points for the attack suite's base call (3 features, like its x1)."""
    return np.random.default_rng(1).normal(size=(4, 3))


@declare(
    x1=ArrayArg("n1 d", lo=-MAX_INPUT, hi=MAX_INPUT),
    x2=ArrayArg("n2 d", lo=-MAX_INPUT, hi=MAX_INPUT, none_ok=True, example=_example_x2),
    depth=Int(0, MAX_DEPTH),
    activation=ActivationArg(),
    weight_std=Real(0.0, 1e6),
    bias_std=Real(0.0, 1e6, none_ok=True),
    parametrization=Choice(PARAMETRIZATIONS),
    width=Int(1, 10_000_000, none_ok=True, example=16),
    degree=Int(1, dual.MAX_DEGREE),
    block_size=Int(1, 4096),
)
def mlp_kernels(
    x1: ArrayLike,
    x2: ArrayLike | None = None,
    *,
    depth: int,
    activation: ActivationLike = "relu",
    weight_std: float = 1.0,
    bias_std: float | None = 0.0,
    parametrization: str = "ntk",
    width: int | None = None,
    degree: int = dual.DEGREE,
    block_size: int = 128,
) -> Kernels:
    """Infinite-width (NNGP, NTK) of `depth` x [Dense, phi] + Dense between rows of x1 and x2 (x1 if None);
    `width`: the hidden fan-in of parametrization "standard" (required there, unused by "ntk")."""
    if parametrization == "standard" and width is None:
        raise ValueError("width: parametrization 'standard' needs an integer width in [1, 10000000]")
    x1 = jnp.asarray(x1)
    x1 = x1.astype(jnp.result_type(x1, jnp.float32))
    if x2 is not None:
        x2 = jnp.asarray(x2).astype(x1.dtype)
    n2 = x1.shape[0] if x2 is None else x2.shape[0]
    sizes = f"{x1.shape[0]} x {n2} kernel entries, depth {depth}"
    need = kernel_bytes(x1.shape[0], n2, x1.dtype.itemsize, x2 is None, depth, activation, degree)
    require(need, "mlp_kernels", sizes, "use fewer points or compute the kernel in row slices of x1")
    act = get_activation(activation)
    spec = _Spec(depth, _act_key(act), bias_std is not None, parametrization, degree, block_size, act)
    hp = Hyper(*(jnp.asarray(v, x1.dtype) for v in (weight_std**2, (bias_std or 0.0) ** 2, width or 0)))
    return _compute_jit(spec, hp, x1, x2)
