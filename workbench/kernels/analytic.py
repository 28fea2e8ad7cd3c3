"""Infinite-width NNGP and NTK of MLPs in neural-tangents' stax conventions (Lee et al. 2018; Jacot et al. 2018).

Architecture: `depth` x [Dense(weight_std, bias_std), phi] + Dense readout (same stds). With the input
kernel x.x'/d, a Dense layer maps nngp -> w^2 nngp + b^2 and ntk -> nngp_new + w^2 ntk ("ntk") or
ntk -> fan_in nngp + w^2 ntk + 1 ("standard"; +1 when a bias exists: bias_std is not None, as in
neural-tangents where b_std=0.0 still adds a zero-initialised trainable bias); phi maps (nngp, ntk)
-> (E[phi(u)phi(v)], E[phi'(u)phi'(v)] ntk) (see `workbench.kernels.dual`).

Precision: diagonals come from their own recursion (angle 0); angular activations (relu family, sign)
carry s = 1 - cos(theta) through every layer with cancellation-free updates, so float32 stays within
1e-5 relative of float64 on every entry. Symmetric requests compute only tiles above the diagonal;
everything is done in tiles of `block_size` rows so memory stays O(block x N).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp

from workbench.activations import Activation, derivative, get_activation
from workbench.kernels import dual

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
    w2: float
    b2: float
    has_bias: bool
    parametrization: str
    width: int | None
    degree: int
    block: int
    act: Activation = field(compare=False, hash=False)


def _act_key(act: Activation) -> tuple:
    return (act.name, act.family, act.params, act.fn if act.family == "callable" else None)


# ---------------------------------------------------------------- diagonal and pairwise recursions

def _diag(spec: _Spec, sq_norm, d: int):
    """Per-point recursion: pre- and post-activation variances of every layer, and diag nngp/ntk."""
    ang, act = dual.angular(spec.act), spec.act
    post, pre, coeffs = [sq_norm / d], [], []
    ntk_hat = jnp.zeros_like(sq_norm)
    for l in range(spec.depth + 1):
        q = spec.w2 * post[-1] + spec.b2
        fan_in = d if l == 0 else spec.width
        ntk = (q + spec.w2 * ntk_hat if spec.parametrization == "ntk"
               else fan_in * post[-1] + spec.w2 * ntk_hat + spec.has_bias)
        if l == spec.depth:
            return pre, post, coeffs, q, ntk
        pre.append(q)
        if ang is not None:
            zero = jnp.zeros_like(q)
            j, dj, _ = ang.fn(zero, zero, zero)
            e_phi, e_dphi = q ** ang.degree * j, dj
        elif act.family in dual.SMOOTH:
            e_phi, e_dphi = dual.SMOOTH[act.family](act.params, q, q, q)
        else:
            dphi = derivative(act)
            e_phi, e_dphi = dual.hermite_diag(act.fn, q, spec.degree), dual.hermite_diag(dphi, q, spec.degree)
            coeffs.append((dual.hermite_coefficients(act.fn, q, spec.degree),
                           dual.hermite_coefficients(dphi, q, spec.degree)))
        post.append(e_phi)
        ntk_hat = e_dphi * ntk


def _dense_s(s, qa, qb, w2, b2):
    """s'' = 1 - cos(theta'') after a Dense layer, with every term non-negative (no cancellation).

    From sqrt(Q1 Q2) - w^2 q12 - b^2 = w^2 [(qa-qb)^2 / 2 (1/A^2 - w^2/B^2) + sqrt(qa qb) s] with
    A = sqrt(qa) + sqrt(qb), B = sqrt(Qa) + sqrt(Qb), B - wA = sum_i b^2 / (sqrt(Qi) + w sqrt(qi))."""
    w = math.sqrt(w2)
    ra, rb = jnp.sqrt(qa), jnp.sqrt(qb)
    Ra, Rb = jnp.sqrt(w2 * qa + b2), jnp.sqrt(w2 * qb + b2)
    ea = b2 / jnp.where(Ra + w * ra > 0, Ra + w * ra, 1.0)
    eb = b2 / jnp.where(Rb + w * rb > 0, Rb + w * rb, 1.0)
    A, B = ra[:, None] + rb[None, :], Ra[:, None] + Rb[None, :]
    AB = jnp.where(A > 0, A * B, 1.0)
    spread = 0.5 * (qa[:, None] - qb[None, :]) ** 2 * (ea[:, None] + eb[None, :]) * (B + w * A) / (AB * AB)
    inv = 1.0 / jnp.where(Ra > 0, Ra, 1.0)[:, None] / jnp.where(Rb > 0, Rb, 1.0)[None, :]
    out = w2 * (spread + (ra[:, None] * rb[None, :]) * s) * inv
    return jnp.where((Ra[:, None] > 0) & (Rb[None, :] > 0), out, 1.0)


def _pairs(spec: _Spec, xa, xb, da, db):
    """nngp and ntk of the block xa x xb, given both sides' per-point recursions `da`, `db`."""
    d = xa.shape[-1]
    ang, act = dual.angular(spec.act), spec.act
    nngp_hat = jnp.matmul(xa, xb.T, precision=_HIGHEST) / d
    ntk_hat = None
    if ang is not None:
        na, nb = [x / jnp.where(n > 0, n, 1.0)[:, None] for x, n in
                  ((xa, jnp.linalg.norm(xa, axis=1)), (xb, jnp.linalg.norm(xb, axis=1)))]
        s = 1.0 - jnp.clip(jnp.matmul(na, nb.T, precision=_HIGHEST), -1.0, 1.0)
        s = jnp.where(s < 8 * jnp.finfo(s.dtype).eps, 0.0, s)  # coincident inputs: angle exactly 0
    pre_a, post_a, coeffs_a = da
    pre_b, post_b, coeffs_b = db
    for l in range(spec.depth + 1):
        nngp = spec.w2 * nngp_hat + spec.b2
        if spec.parametrization == "ntk":
            ntk = nngp if ntk_hat is None else nngp + spec.w2 * ntk_hat
        else:
            fan_in = d if l == 0 else spec.width
            ntk = fan_in * nngp_hat + spec.has_bias + (0.0 if ntk_hat is None else spec.w2 * ntk_hat)
        if l == spec.depth:
            return nngp, ntk
        qa, qb = pre_a[l][:, None], pre_b[l][None, :]
        if ang is not None:
            s = _dense_s(s, post_a[l], post_b[l], spec.w2, spec.b2)
            e_phi, e_dphi, s = dual.angular_expectations(ang, qa, qb, s)
        elif act.family in dual.SMOOTH:
            e_phi, e_dphi = dual.SMOOTH[act.family](act.params, qa, nngp, qb)
        else:
            c = dual.correlation(qa, nngp, qb)
            (fa, dfa), (fb, dfb) = coeffs_a[l], coeffs_b[l]
            e_phi = dual.mehler(fa[:, None, :], fb[None, :, :], c)
            e_dphi = dual.mehler(dfa[:, None, :], dfb[None, :, :], c)
        nngp_hat, ntk_hat = e_phi, e_dphi * ntk


# ---------------------------------------------------------------- tiling

def _take(tree, idx):
    return jax.tree_util.tree_map(lambda v: v[idx], tree)


def _pad_rows(x, multiple):
    n = x.shape[0]
    extra = -n % multiple
    return x if not extra else jnp.concatenate([x, jnp.broadcast_to(x[:1], (extra,) + x.shape[1:])])


@jax.jit
def _symmetrize(k):
    upper = jnp.arange(k.shape[0])[:, None] <= jnp.arange(k.shape[1])[None, :]
    return jnp.where(upper, k, k.T)


def _blocks(spec: _Spec, x, B: int):
    """x padded to T x B rows, and its per-point recursion in the same (T, B, ...) layout."""
    T, d = -(-x.shape[0] // B), x.shape[1]
    xp = _pad_rows(x, B)
    dp = _diag(spec, jnp.sum(xp * xp, axis=1), d)[:3]
    return T, xp.reshape(T, B, d), jax.tree_util.tree_map(lambda v: v.reshape((T, B) + v.shape[1:]), dp)


def _compute(spec: _Spec, x1, x2):
    n1, d = x1.shape
    B = min(spec.block, n1)
    if x2 is not None:
        T, xp, dp = _blocks(spec, x1, B)
        diag2 = _diag(spec, jnp.sum(x2 * x2, axis=1), d)[:3]
        rows = jax.lax.map(lambda i: _pairs(spec, xp[i], x2, _take(dp, i), diag2), jnp.arange(T))
        return Kernels(*(r.reshape(T * B, -1)[:n1] for r in rows))
    diag1 = _diag(spec, jnp.sum(x1 * x1, axis=1), d)
    if n1 > B:
        T, xp, dp = _blocks(spec, x1, B)
        pairs = [(i, j) for i in range(T) for j in range(i, T)]
        I, J = jnp.array([p[0] for p in pairs]), jnp.array([p[1] for p in pairs])
        tiles = jax.lax.map(lambda ij: _pairs(spec, xp[ij[0]], xp[ij[1]], _take(dp, ij[0]), _take(dp, ij[1])),
                            (I, J))

        def assemble(t):
            full = jnp.zeros((T, T, B, B), t.dtype).at[I, J].set(t).at[J, I].set(jnp.swapaxes(t, 1, 2))
            return _symmetrize(full.transpose(0, 2, 1, 3).reshape(T * B, T * B)[:n1, :n1])

        out = Kernels(*map(assemble, tiles))
    else:
        out = Kernels(*map(_symmetrize, _pairs(spec, x1, x1, diag1[:3], diag1[:3])))
    idx = jnp.arange(n1)
    return Kernels(out.nngp.at[idx, idx].set(diag1[3]), out.ntk.at[idx, idx].set(diag1[4]))


_compute_jit = jax.jit(_compute, static_argnums=0)


# ---------------------------------------------------------------- public entry point

def _available_bytes() -> int:
    """MemAvailable from /proc/meminfo (physical pages as a fallback)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(n1: int, n2: int, itemsize: int, copies: int, what: str) -> None:
    """Raise ValueError early when `copies` arrays of n1 x n2 entries would not fit in memory."""
    need, have = copies * n1 * n2 * itemsize, _available_bytes()
    if need > 0.8 * have:
        raise ValueError(f"{what}: {n1} x {n2} kernels need about {need / 2**30:.1f} GiB but only "
                         f"{have / 2**30:.1f} GiB of memory is available; use fewer points or "
                         f"compute the kernel in row slices of x1")


def _check_float(name, value, lo=0.0):
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < lo:
        raise ValueError(f"{name}: must be a finite number >= {lo}, got {value!r}")


def mlp_kernels(x1, x2=None, *, depth: int, activation="relu", weight_std: float = 1.0,
                bias_std: float | None = 0.0, parametrization: str = "ntk", width: int | None = None,
                degree: int = dual.DEGREE, block_size: int = 1024) -> Kernels:
    """Infinite-width (NNGP, NTK) of `depth` x [Dense, phi] + Dense between rows of x1 and x2 (x1 if None)."""
    if not isinstance(depth, int) or depth < 0:
        raise ValueError(f"depth: must be an integer >= 0, got {depth!r}")
    _check_float("weight_std", weight_std)
    if bias_std is not None:
        _check_float("bias_std", bias_std)
    if parametrization not in PARAMETRIZATIONS:
        raise ValueError(f"parametrization: must be one of {', '.join(PARAMETRIZATIONS)}, got {parametrization!r}")
    if parametrization == "standard" and (not isinstance(width, int) or width < 1):
        raise ValueError(f"width: parametrization 'standard' needs an integer width >= 1, got {width!r}")
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size: must be an integer >= 1, got {block_size!r}")
    x1 = jnp.asarray(x1)
    x1 = x1.astype(jnp.result_type(x1, jnp.float32))
    if x1.ndim != 2:
        raise ValueError(f"x1: must be a 2-D array (points x features), got shape {x1.shape}")
    if x2 is not None:
        x2 = jnp.asarray(x2).astype(x1.dtype)
        if x2.ndim != 2 or x2.shape[1] != x1.shape[1]:
            raise ValueError(f"x2: must be 2-D with {x1.shape[1]} features like x1, got shape {x2.shape}")
    n2 = x1.shape[0] if x2 is None else x2.shape[0]
    check_memory(x1.shape[0], n2, x1.dtype.itemsize, 3 if x2 is None else 2, "mlp_kernels")
    act = get_activation(activation)
    spec = _Spec(depth, _act_key(act), float(weight_std) ** 2, float(bias_std or 0.0) ** 2,
                 bias_std is not None, parametrization, width, degree, block_size, act)
    return _compute_jit(spec, x1, x2)
