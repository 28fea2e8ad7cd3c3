"""Array maps of `workbench.stax` kernels: what a convolution, a pooling, a flattening or a global pooling does to
the covariance of its input, in the two layouts of the kernel state.

A kernel array has `nb` leading batch axes (2 for a block of pairs (x1 rows, x2 rows), 1 for each point with itself)
followed by its spatial axes:

- diagonal layout, (batch..., H, W): the covariance of the same position in both inputs, enough when everything
  above only ever reads the diagonal (Flatten on top; neural-tangents' `diagonal_spatial=True`);
- full layout, (batch..., H, H', W, W'): every pair of positions (needed below a pooling or a global pooling),
  interleaved as in neural-tangents (its layout before any `is_reversed` transposition).

Every map is separable over spatial dimensions, so a k x k convolution costs 2 x k shifted slices, not k^2.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

Array = jax.Array
PADDINGS = ("VALID", "SAME", "CIRCULAR")
_HIGHEST = jax.lax.Precision.HIGHEST

__all__ = ["PADDINGS"]


def out_size(n: int, k: int, s: int, padding: str) -> int:
    """Output length of a window k, stride s over n positions (VALID: whole windows only; SAME, CIRCULAR: ceil(n/s))."""
    return (n - k) // s + 1 if padding == "VALID" else -(-n // s)


def pads(n: int, k: int, s: int, padding: str) -> tuple[int, int]:
    """(low, high) padding of one axis: none for VALID, jax's SAME split (low = total // 2) otherwise."""
    if padding == "VALID":
        return 0, 0
    total = max((out_size(n, k, s, padding) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def _pad(x: Array, axes: tuple[int, ...], lo: int, hi: int, padding: str) -> Array:
    """x padded on `axes` by (lo, hi): zeros (SAME) or periodically (CIRCULAR)."""
    if lo == hi == 0:
        return x
    widths = [(0, 0)] * x.ndim
    for a in axes:
        widths[a] = (lo, hi)
    return jnp.pad(x, widths, mode="wrap" if padding == "CIRCULAR" else "constant")


def _window(x: Array, axis: int, start: int, count: int, stride: int) -> Array:
    """x[..., start : start + stride * (count - 1) + 1 : stride, ...] along `axis`."""
    return jax.lax.slice_in_dim(x, start, start + stride * (count - 1) + 1, stride, axis)


def shift_sum(x: Array, axes: tuple[int, ...], k: int, s: int, padding: str, n: int) -> Array:
    """sum_{d < k} x[s h + d] on every axis in `axes` at once (the same offset d on all of them): a filter's
    offsets, applied to both positions of a pair (full layout) or to the one position (diagonal layout)."""
    lo, hi = pads(n, k, s, padding)
    x = _pad(x, axes, lo, hi, padding)
    count = out_size(n, k, s, padding)
    total = None
    for d in range(k):
        part = x
        for a in axes:
            part = _window(part, a, d, count, s)
        total = part if total is None else total + part
    assert total is not None
    return total


def conv(x: Array, nb: int, full: bool, filt: tuple[int, ...], strides: tuple[int, ...], padding: str) -> Array:
    """Covariance after a weight-shared convolution (before W_std^2 and the bias): the mean over filter offsets of
    the input covariance at positions shifted by the same offset on both sides."""
    for i, (k, s) in enumerate(zip(filt, strides)):
        axes = (nb + 2 * i, nb + 2 * i + 1) if full else (nb + i,)
        x = shift_sum(x, axes, k, s, padding, x.shape[axes[0]])
    return x / math.prod(filt)


def _counts(n: int, k: int, s: int, padding: str, dtype: jnp.dtype) -> Array:
    """Number of real (unpadded) positions in each window (SAME padding)."""
    lo, _ = pads(n, k, s, padding)
    starts = jnp.arange(out_size(n, k, s, padding)) * s - lo
    return (jnp.minimum(starts + k, n) - jnp.maximum(starts, 0)).astype(dtype)


def pool(
    x: Array,
    nb: int,
    window: tuple[int, ...],
    strides: tuple[int, ...],
    padding: str,
    normalize_edges: bool,
    average: bool,
) -> Array:
    """Covariance after a sum or average pooling, full layout: the window sums on each position of a pair
    independently (divided by the window size, or by the real positions of each window with `normalize_edges`)."""
    for i, (k, s) in enumerate(zip(window, strides)):
        a, b = nb + 2 * i, nb + 2 * i + 1
        n = x.shape[a]
        x = shift_sum(shift_sum(x, (a,), k, s, padding, n), (b,), k, s, padding, n)
        if average and normalize_edges and padding == "SAME":
            c = _counts(n, k, s, padding, x.dtype)
            shape = [1] * x.ndim
            shape[a] = shape[b] = c.shape[0]
            x = x / (c[:, None] * c[None, :]).reshape(shape)
        elif average:
            x = x / (k * k)
    return x


def diagonal(x: Array, nb: int, nsp: int) -> Array:
    """The diagonal layout (batch..., H, W) of a full-layout array (batch..., H, H', W, W')."""
    for _ in range(nsp):
        x = jnp.diagonal(x, axis1=nb, axis2=nb + 1)  # the pair's diagonal moves to the end: order is kept
    return x


def spatial_mean(x: Array, nb: int, nsp: int, full: bool, average: bool = True) -> Array:
    """Global pooling over every position pair (full layout), averaged or summed."""
    assert full or nsp == 0
    axes = tuple(range(nb, nb + 2 * nsp))
    return (jnp.mean if average else jnp.sum)(x, axis=axes) if axes else x


def trace_mean(x: Array, nb: int, nsp: int, full: bool) -> Array:
    """Mean of the same-position covariances (Flatten then a readout: mean over positions of K[h, h])."""
    if full:
        x = diagonal(x, nb, nsp)
    axes = tuple(range(nb, nb + nsp))
    return jnp.mean(x, axis=axes) if axes else x


def side(v: Array, nb: int, full: bool, first: bool, extra: int = 0) -> Array:
    """A per-point, per-position quantity v (points, H, W, [extra axes]) shaped to broadcast against a kernel
    array: as the first point of each pair (rows) or the second (columns), in either layout."""
    nsp = v.ndim - 1 - extra
    shape = list(v.shape)
    points, positions, rest = shape[0], shape[1 : 1 + nsp], shape[1 + nsp :]
    lead = ([points, 1] if first else [1, points]) if nb == 2 else [points]
    if not full:
        return v.reshape(lead + positions + rest)
    inner = []
    for n in positions:
        inner += [n, 1] if first else [1, n]
    return v.reshape(lead + inner + rest)


LOOP_CHANNELS = 64  # up to this many channels the input kernel is a sum in channel order (see `input_kernel`)


def input_kernel(xa: Array, xb: Array | None, full: bool) -> Array:
    """x.x' / channels at every position pair (full) or position (diagonal); xb None: each point with itself.

    With few channels (images) the sum runs in channel order, so a pair of equal inputs gets bitwise the numbers
    of the point pass: its correlation at equal positions is exactly 1 through every layer (a float32 rounding there
    would cost the ReLU-family NTK ~sqrt(eps))."""
    nsp = xa.ndim - 2
    c = xa.shape[-1]
    if c <= LOOP_CHANNELS:
        nb, other = (1, xa) if xb is None else (2, xb)
        total = None
        for k in range(c):
            term = side(xa[..., k], nb, full, True) * side(other[..., k], nb, full, False)
            total = term if total is None else total + term
        assert total is not None
        return total / c
    letters = "hwdijk"[:nsp]
    upper = letters.upper()
    c = xa.shape[-1]
    a = "n" + letters + "c"
    if xb is None:
        b = "n" + (upper if full else letters) + "c"
        out = "n" + ("".join(p + q for p, q in zip(letters, upper)) if full else letters)
        return jnp.einsum(f"{a},{b}->{out}", xa, xa, precision=_HIGHEST) / c
    b = "m" + (upper if full else letters) + "c"
    out = "nm" + ("".join(p + q for p, q in zip(letters, upper)) if full else letters)
    return jnp.einsum(f"{a},{b}->{out}", xa, xb, precision=_HIGHEST) / c


def swap_pairs(x: Array, nb: int, nsp: int, full: bool) -> Array:
    """K(x2, x1) from K(x1, x2) for a block of pairs: the two batch axes swapped, and each position pair."""
    order = [1, 0] + list(range(2, nb))
    for i in range(nsp):
        order += [nb + 2 * i + 1, nb + 2 * i] if full else [nb + i]
    return jnp.transpose(x, order)
