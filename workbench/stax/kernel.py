"""The infinite-width NNGP and NTK of a `workbench.stax` description, in neural-tangents' conventions.

`kernel_fn(x1, x2=None, get=("nngp", "ntk"))` checks the inputs against the description (every layer's shapes,
before any compute), plans the spatial layout, estimates its peak memory (`workbench.core.memory.require`) and runs
two jitted passes:

1. the point pass: each input with itself (the covariance of its positions), in chunks of rows; it records each
   point's per-position variances at every activation and LayerNorm (and Hermite coefficients for quadrature);
2. the pair pass: square tiles of pairs (only tiles on and above the diagonal when x2 is None, mirrored after),
   each reading the recorded data of its rows and columns; the diagonal pairs come from the point pass, so they
   are exact (a point's correlation with itself is exactly 1).

The layout: below a pooling or a global pooling the state holds every pair of positions (full spatial
covariance); where nothing above reads off-diagonal positions (a Flatten on top, or above the last pooling) it
drops to the same-position diagonal (neural-tangents' `diagonal_spatial`, decided here per layer, not once for the
network). A network whose output keeps spatial axes returns the full covariance (N1, N2, H, H', W, W'), as
neural-tangents does (in its layout before `is_reversed`), or the diagonal with `diagonal_spatial=True`.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from workbench.core import checks
from workbench.core.memory import require
from workbench.stax import ops
from workbench.stax.layers import Layer
from workbench.stax.state import Ctx, Info, KState, fmt_shape
from workbench.theory.kernels.analytic import MAX_INPUT, Kernels

Array = jax.Array
GETS = ("nngp", "ntk")
TILE_ENTRIES = 2**20  # kernel entries per array of one tile of pairs (B x B pairs x positions); 4 MiB in float32
WORK_COPIES = 10  # live tile-sized arrays at the peak of a layer (nngp, ntk, padded copies, dual temporaries)
QUADRATURE_COPIES = 6  # more of them inside Mehler's sums
OUTPUT_COPIES = {True: 1.5, False: 1.25}  # output-sized arrays at the peak (symmetric: tiles, mirror, select)
BASE_BYTES = 100 * 2**20  # compiled programs, XLA's start-up, constants
# fitted to the peak RSS increase of kernel_fn on 8x8x2 images (pooled CNN, N = 128..1024: 167-176 MiB measured,
# 185-197 MiB estimated; full-covariance output N = 64, 128: 323, 861 MiB measured, 377, 953 estimated)

__all__ = ["GETS", "Kernels"]


# ---------------------------------------------------------------- checks before any compute


def _shape_tuple(input_shape: Any) -> tuple[int, ...]:
    ok = isinstance(input_shape, (tuple, list)) and 2 <= len(input_shape) <= 5
    ok = ok and all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in input_shape)
    ok = ok and all(n >= 1 for n in input_shape[1:]) and (input_shape[0] >= 1 or input_shape[0] == -1)
    if not ok:
        raise ValueError(
            f"input_shape: must be (N, [D, H,] [W,] C) with positive sizes (N may be -1), got {input_shape!r:.80}"
        )
    return tuple(int(n) for n in input_shape)


def check_input_shape(layer: Layer, input_shape: Any) -> Info:
    """The input's Info after checking every layer of the description on it."""
    info = Info(_shape_tuple(input_shape), None)
    out = layer.infer(info, ())
    if isinstance(out, list):
        raise ValueError(f"the network ends in {len(out)} branches (a FanOut without FanInSum); end it in one output")
    return info


def check_inputs(layer: Layer, x: Any, name: str = "inputs", like: Array | None = None) -> Array:
    """x as a float jax array of shape (N, [spatial...,] C) that the description accepts."""
    x = checks.array(name, x, ndim=(2, 3, 4, 5), max_abs=MAX_INPUT)
    x = jnp.asarray(x)
    x = x.astype(jnp.result_type(x, jnp.float32) if like is None else like.dtype)
    if like is not None and x.shape[1:] != like.shape[1:]:
        raise ValueError(
            f"{name}: shape {tuple(x.shape)} does not match x1's {tuple(like.shape)} beyond the batch axis"
        )
    check_input_shape(layer, (-1,) + tuple(x.shape[1:]))
    return x


# ---------------------------------------------------------------- the two passes


@dataclass(frozen=True)
class _Spec:
    """Static description of one computation (hashable: the jit cache key)."""

    net: Layer
    ntk: bool
    top_full: bool
    block: int


def _plan(spec: _Spec, nsp: int) -> tuple[dict, bool]:
    """Whether the full spatial covariance is needed after each layer, and at the input."""
    plan: dict = {}
    before = spec.net.need(spec.top_full, (), plan)
    return plan, bool(before) and nsp > 0


def _start(spec: _Spec, xa: Array, xb: Array | None) -> KState:
    """The input kernel x.x' / channels (pairs, or points with themselves when xb is None), in the planned layout."""
    plan_full = _plan(spec, xa.ndim - 2)[1]
    nngp = ops.input_kernel(xa, xb, plan_full)
    return KState(nngp, jnp.zeros_like(nngp) if spec.ntk else None, plan_full, Info((-1,) + xa.shape[1:], None))


def _run(spec: _Spec, st: KState, ctx: Ctx) -> KState:
    out = ctx.settle(spec.net.kernel(st, ctx, ()), ())
    assert isinstance(out, KState)
    return out


def _points(spec: _Spec, x: Array) -> tuple[Array, Array | None, list]:
    """Each point with itself: (nngp, ntk) of shape (points, *spatial) and the per-point records."""
    ctx = Ctx(1, _plan(spec, x.ndim - 2)[0])
    st = _run(spec, _start(spec, x, None), ctx)
    return st.nngp, st.ntk, ctx.records


def _pairs(spec: _Spec, xa: Array, xb: Array, ra: list, rb: list) -> tuple[Array, Array | None]:
    """A tile of pairs (rows xa, columns xb) from both sides' records."""
    ctx = Ctx(2, _plan(spec, xa.ndim - 2)[0], rows=ra, cols=rb)
    st = _run(spec, _start(spec, xa, xb), ctx)
    return st.nngp, st.ntk


def _pad_rows(x: Array, multiple: int) -> Array:
    extra = -x.shape[0] % multiple
    return x if not extra else jnp.concatenate([x, jnp.broadcast_to(x[:1], (extra,) + x.shape[1:])])


def _take(tree: Any, i: Array) -> Any:
    return jax.tree_util.tree_map(lambda v: v[i], tree)


def _point_pass(spec: _Spec, x: Array) -> tuple[int, Array, tuple[Array, Array | None], Any]:
    """x in (T, B) row tiles, the point pass's (nngp, ntk) per point, and its records in (T, B) tiles."""
    B = spec.block
    T = -(-x.shape[0] // B)
    xt = _pad_rows(x, B).reshape((T, B) + x.shape[1:])
    nngp, ntk, records = jax.lax.map(lambda xc: _points(spec, xc), xt)
    own = nngp.reshape((T * B,) + nngp.shape[2:]), None if ntk is None else ntk.reshape((T * B,) + ntk.shape[2:])
    return T, xt, own, records


def _mirror(t: Array, nsp: int, full: bool) -> Array:
    """K(x2, x1) tiles from K(x1, x2) tiles of shape (T, T, B, B, *spatial)."""
    order = [0, 1, 3, 2]
    for i in range(nsp):
        order += [4 + 2 * i + 1, 4 + 2 * i] if full else [4 + i]
    return jnp.transpose(t, order)


def _assemble(tiles: Array, T1: int, T2: int, B: int, n1: int, n2: int) -> Array:
    t = tiles.reshape((T1, T2, B, B) + tiles.shape[3:])
    t = jnp.moveaxis(t, 2, 1)
    return t.reshape((T1 * B, T2 * B) + tiles.shape[3:])[:n1, :n2]


def _compute(spec: _Spec, x1: Array, x2: Array | None) -> tuple[Array, Array | None]:
    n1 = x1.shape[0]
    T1, x1t, own, rec1 = _point_pass(spec, x1)
    B = spec.block
    if x2 is not None:
        T2, x2t, _, rec2 = _point_pass(spec, x2)
        I, J = np.divmod(np.arange(T1 * T2), T2)
        tiles = jax.lax.map(
            lambda ij: _pairs(spec, x1t[ij[0]], x2t[ij[1]], _take(rec1, ij[0]), _take(rec2, ij[1])),
            (jnp.asarray(I), jnp.asarray(J)),
        )
        nngp, ntk = tiles
        n2 = x2.shape[0]
        return _assemble(nngp, T1, T2, B, n1, n2), None if ntk is None else _assemble(ntk, T1, T2, B, n1, n2)
    pairs = [(i, j) for i in range(T1) for j in range(i, T1)]
    index = np.zeros((T1, T1), np.int32)
    for p, (i, j) in enumerate(pairs):
        index[i, j] = index[j, i] = p
    I, J = (jnp.asarray([p[k] for p in pairs]) for k in (0, 1))
    tiles = jax.lax.map(lambda ij: _pairs(spec, x1t[ij[0]], x1t[ij[1]], _take(rec1, ij[0]), _take(rec1, ij[1])), (I, J))
    lower = np.arange(T1)[:, None] > np.arange(T1)[None, :]
    out = []
    for t, diag in zip(tiles, own):
        if t is None or diag is None:
            out.append(None)
            continue
        full_tiles = t[index]
        nsp_out, full = _out_layout(t.ndim - 3, spec.top_full)
        mask = lower.reshape(lower.shape + (1,) * (full_tiles.ndim - 2))
        full_tiles = jnp.where(mask, _mirror(full_tiles, nsp_out, full), full_tiles)
        k = _assemble(full_tiles.reshape((T1 * T1,) + full_tiles.shape[2:]), T1, T1, B, n1, n1)
        idx = jnp.arange(n1)
        k = k.at[idx, idx].set(diag[:n1])
        out.append(0.5 * (k + _mirror(k[None, None], nsp_out, full)[0, 0]))  # exactly symmetric
    return out[0], out[1]


def _out_layout(spatial_axes: int, top_full: bool) -> tuple[int, bool]:
    """(spatial dimensions, full layout) of an output with this many spatial array axes."""
    return (spatial_axes // 2, True) if top_full and spatial_axes else (spatial_axes, False)


_compute_jit = jax.jit(_compute, static_argnums=0)


# ---------------------------------------------------------------- sizes and memory


@lru_cache(maxsize=64)
def _probe(net: Layer, ntk: bool, top_full: bool, rest: tuple[int, ...], dtype: str) -> tuple[int, int, int, int, bool]:
    """(largest per-pair kernel entries of any layer, largest per-point entries, recorded bytes per point, output
    entries per pair, whether an activation uses quadrature), from shapes only (`jax.eval_shape`)."""
    spec = _Spec(net, ntk, top_full, 1)
    x = jax.ShapeDtypeStruct((1,) + rest, jnp.dtype(dtype))
    seen: dict = {}

    def points(x: Array) -> Any:
        ctx = Ctx(1, _plan(spec, x.ndim - 2)[0])
        _run(spec, _start(spec, x, None), ctx)
        seen["point"] = max(ctx.sizes, default=1)
        seen["quadrature"] = any("coef" in r for r in ctx.records)
        return ctx.records

    records = jax.eval_shape(points, x)
    rec_bytes = sum(int(np.prod(r.shape)) * r.dtype.itemsize for r in jax.tree_util.tree_leaves(records))

    def pairs(xa: Array, ra: Any) -> Any:
        ctx = Ctx(2, _plan(spec, xa.ndim - 2)[0], rows=ra, cols=ra)
        st = _run(spec, _start(spec, xa, xa), ctx)
        seen["pair"] = max(ctx.sizes + [st.nngp.size], default=1)
        return st.nngp

    out = jax.eval_shape(pairs, x, records)
    return seen["pair"], seen["point"], rec_bytes, int(np.prod(out.shape)), seen["quadrature"]


def _block(pair_entries: int, n: int) -> int:
    """Tile side B: B^2 x (entries per pair) about TILE_ENTRIES, at most the number of points."""
    return max(1, min(n, math.isqrt(max(TILE_ENTRIES // max(pair_entries, 1), 1))))


def estimate(
    net: Layer, rest: tuple[int, ...], n1: int, n2: int | None, itemsize: int, ntk: bool, top_full: bool
) -> tuple[float, int]:
    """(peak bytes, tile side) of `kernel_fn` on n1 x n2 points (n2 None: x1 with itself)."""
    dtype = "float64" if itemsize == 8 else "float32"
    pair, point, rec, out, quadrature = _probe(net, ntk, top_full, rest, dtype)
    B = _block(pair, max(n1, n2 or n1))
    arrays = 2 if ntk else 1
    p1 = -(-n1 // B) * B
    p2 = p1 if n2 is None else -(-n2 // B) * B
    work = (WORK_COPIES + (QUADRATURE_COPIES if quadrature else 0)) * arrays * itemsize
    tile = B * B * pair * work
    chunk = B * point * work
    records = (p1 + (0 if n2 is None else p2)) * rec
    output = p1 * p2 * out * itemsize * arrays * OUTPUT_COPIES[n2 is None]
    return BASE_BYTES + tile + chunk + records + output, B


# ---------------------------------------------------------------- neural-tangents' kernel_fn


def _gets(get: Any) -> tuple[str, ...]:
    if get is None:
        return GETS
    gets = (get,) if isinstance(get, str) else get
    if not isinstance(gets, (tuple, list)) or not gets or any(g not in GETS for g in gets):
        raise ValueError(f"get: must be None, 'nngp', 'ntk' or a tuple of them, got {get!r:.80}")
    return tuple(gets)


@lru_cache(maxsize=8)
def _named(gets: tuple[str, ...]) -> type:
    return collections.namedtuple("Kernel", gets)


def kernel_fn(layer: Layer, x1: Any, x2: Any = None, get: Any = None, **kwargs: Any) -> Any:
    """NNGP and NTK of `layer` between the rows of x1 and x2 (x1 if None), arrays (N, [spatial...,] C).

    get: None (both, as `Kernels(nngp, ntk)`), a name ("nngp" or "ntk": that array) or a tuple of names (a
    namedtuple in that order). `diagonal_spatial=True`: for an output with spatial axes, only same-position
    covariances (N1, N2, H, W) instead of (N1, N2, H, H', W, W'). The dtype follows x1 (float64 under
    `jax.enable_x64`)."""
    unknown = sorted(set(kwargs) - {"diagonal_spatial"})
    if unknown:
        raise ValueError(f"kernel_fn: unknown keyword(s) {unknown}; it takes x1, x2, get and diagonal_spatial")
    diagonal_spatial = kwargs.get("diagonal_spatial", False)
    if not isinstance(diagonal_spatial, (bool, np.bool_)):
        raise ValueError(f"diagonal_spatial: must be True or False, got {diagonal_spatial!r:.80}")
    gets = _gets(get)
    x1 = check_inputs(layer, x1, "x1")
    x2 = None if x2 is None else check_inputs(layer, x2, "x2", like=x1)
    out = layer.infer(Info((-1,) + tuple(x1.shape[1:]), None), ())
    assert isinstance(out, Info)
    top_full = len(out.shape) > 2 and not diagonal_spatial
    rest = tuple(int(n) for n in x1.shape[1:])
    n2 = None if x2 is None else int(x2.shape[0])
    need, B = estimate(layer, rest, int(x1.shape[0]), n2, x1.dtype.itemsize, "ntk" in gets, top_full)
    sizes = (
        f"{x1.shape[0]} x {x1.shape[0] if n2 is None else n2} inputs of shape {fmt_shape((-1,) + rest)} "
        f"(output per pair {fmt_shape(out.shape)}, tiles of {B} x {B} pairs)"
    )
    require(need, "kernel_fn", sizes, "use fewer inputs (call kernel_fn on row slices of x1) or smaller images")
    spec = _Spec(layer, "ntk" in gets, top_full, B)
    nngp, ntk = _compute_jit(spec, x1, x2)
    values = {"nngp": nngp, "ntk": ntk}
    if get is None:
        return Kernels(nngp, ntk)  # pyright: ignore[reportArgumentType]  # ntk is computed: "ntk" in GETS
    if isinstance(get, str):
        return values[get]
    return _named(gets)(*(values[g] for g in gets))
