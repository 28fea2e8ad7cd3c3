"""Gaussian expectations (dual activations) E[phi(u)phi(v)] and E[phi'(u)phi'(v)] for (u, v) ~ N(0, Q).

Closed forms are keyed by `Activation.family` (see `workbench.activations`): the (a, b)-ReLU family
relu / leaky_relu(a) / abs (Cho & Saul 2009), sign (its NTK factor is 0: phi' = 0 a.e., the same
derivative autograd gives the finite network), erf (Williams 1997), gelu (Tsuchida et al. 2021),
sin / cos, identity and quadratic. Everything else (typed expressions, callables, tanh, ...) falls
back to quadrature: each variance's Hermite coefficients come from a 1-D Gauss-Hermite rule with
2 x `DEGREE` nodes and the pair expectation is Mehler's series sum_k c^k a_k b_k (O(DEGREE) per pair
instead of the O(DEGREE^2) of a tensor-product rule, and 1e-6 accurate where a 64^2 rule is not).

Positively homogeneous families ("angular": relu family, sign) depend on the angle theta between u
and v; they are written in terms of s = 1 - cos(theta), which `workbench.kernels.analytic` carries
through the layers without cancellation (diagonal s = 0 exactly).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from workbench.activations import Activation, derivative, get_activation

DEGREE = 256  # Hermite terms (2 x DEGREE Gauss-Hermite nodes); 1e-6 relative for smooth activations
_PI = math.pi


# ---------------------------------------------------------------- angle from s = 1 - cos(theta)

def _atan_f32(t):
    """arctan(t) for t >= 0 to float32 accuracy (Cephes atanf: range reduction + degree-9 odd polynomial)."""
    big, mid = t > 2.414213562373095, t > 0.4142135623730951
    x = jnp.where(big, -1.0 / jnp.maximum(t, 1e-30), jnp.where(mid, (t - 1.0) / (t + 1.0), t))
    z = x * x
    p = (((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z - 3.33329491539e-1) * z * x + x
    return jnp.where(big, _PI / 2, jnp.where(mid, _PI / 4, 0.0)) + p


def angle(s):
    """theta = arccos(1 - s) without cancellation: 2 atan(sqrt(s / (2 - s))) (fast path in float32)."""
    sh, ch = jnp.sqrt(0.5 * s), jnp.sqrt(1.0 - 0.5 * s)
    if s.dtype == jnp.float32:
        return 2.0 * _atan_f32(sh / jnp.maximum(ch, 1e-30))
    return 2.0 * jnp.arctan2(sh, ch)


def _sin_minus_t_cos(t, sin, cos):
    """sin t - t cos t, by its series below t = 0.5 (no cancellation for small t)."""
    z = t * t
    series = t * z * (1 / 3 - z * (1 / 30 - z * (1 / 840 - z / 45360)))
    return jnp.where(t < 0.5, series, sin - t * cos)


class Angular(NamedTuple):
    """k-homogeneous phi: E[phi phi] = (q11 q22)^(k/2) j, E[phi' phi'] = dj, 1 - j / j(0) = one_minus."""

    degree: int
    j0: float
    fn: Callable  # (s, theta, sin) -> (j, dj, one_minus)


def _abrelu(a: float) -> Angular:
    """phi = alpha x + beta |x| with alpha = (1+a)/2, beta = (1-a)/2 (Cho & Saul 2009, arc-cosine kernels)."""
    al2, be2 = ((1 + a) / 2) ** 2, ((1 - a) / 2) ** 2
    j0 = (1 + a * a) / 2

    def fn(s, theta, sin):
        cos = 1.0 - s
        # |x| kernel A(theta) = 2/pi (sin + (pi/2 - theta) cos), symmetric about pi/2; 1 - A via theta_m
        upper = theta > _PI / 2
        t_m = jnp.where(upper, _PI - theta, theta)
        one_minus_cos_m = jnp.where(upper, 2.0 - s, s)
        one_minus_abs = (2 / _PI) * (_PI / 2 * one_minus_cos_m - _sin_minus_t_cos(t_m, sin, jnp.abs(cos)))
        j = al2 * cos + be2 * (1.0 - one_minus_abs)
        dj = al2 + be2 * (1.0 - 2.0 * theta / _PI)
        return j, dj, (al2 * s + be2 * one_minus_abs) / j0

    return Angular(1, j0, fn)


def _sign(s, theta, sin):
    return 1.0 - 2.0 * theta / _PI, jnp.zeros_like(s), 2.0 * theta / _PI


ANGULAR: dict[str, Callable[[tuple], Angular]] = {
    "relu": lambda p: _abrelu(0.0),
    "leaky_relu": lambda p: _abrelu(p[0]),
    "abs": lambda p: _abrelu(-1.0),
    "sign": lambda p: Angular(0, 1.0, _sign),
}


def angular(act: Activation) -> Angular | None:
    """The angular closed form of an activation, or None."""
    return ANGULAR[act.family](act.params) if act.family in ANGULAR else None


def angular_expectations(ang: Angular, q11, q22, s):
    """(e_phi, e_dphi, s_new) of an angular activation from the diagonals and s = 1 - cos(theta)."""
    theta = angle(s)
    sin = jnp.sqrt(s * (2.0 - s))
    j, dj, one_minus = ang.fn(s, theta, sin)
    scale = jnp.sqrt(q11 * q22) ** ang.degree
    return scale * j, dj, one_minus


# ---------------------------------------------------------------- smooth closed forms (q11, q12, q22)

def _erf(p, q11, q12, q22):
    d1, d2 = 1 + 2 * q11, 1 + 2 * q22
    e_phi = (2 / _PI) * jnp.arcsin(2 * q12 / jnp.sqrt(d1 * d2))
    return e_phi, (4 / _PI) / jnp.sqrt(d1 * d2 - 4 * q12 ** 2)


def _gelu(p, q11, q12, q22):
    """GELU x Phi(x) (Tsuchida et al. 2021), in the form used by neural-tangents' stax.Gelu."""
    prod, prod1 = q11 * q22, (1 + q11) * (1 + q22)
    delta2 = prod1 - q12 ** 2
    delta = jnp.sqrt(delta2)
    ang = jnp.arctan2(q12, delta)
    e_phi = 0.25 * q12 + ((q12 ** 2 + prod * delta2) / (prod1 * delta) + q12 * ang) / (2 * _PI)
    first = (1 / delta2 + (1 - prod) / prod1 + 1) * q12 / delta / (2 * _PI)
    return e_phi, first + 0.25 + ang / (2 * _PI)


def _sin(p, q11, q12, q22):
    damp = jnp.exp(-0.5 * (q11 + q22))
    return damp * jnp.sinh(q12), damp * jnp.cosh(q12)


def _cos(p, q11, q12, q22):
    damp = jnp.exp(-0.5 * (q11 + q22))
    return damp * jnp.cosh(q12), damp * jnp.sinh(q12)


SMOOTH: dict[str, Callable] = {
    "erf": _erf,
    "gelu": _gelu,
    "sin": _sin,
    "cos": _cos,
    "identity": lambda p, q11, q12, q22: (q12, jnp.ones_like(q12)),
    "quadratic": lambda p, q11, q12, q22: (q11 * q22 + 2 * q12 ** 2, 4 * q12),
}


# ---------------------------------------------------------------- Hermite expansion (quadrature fallback)

@lru_cache(maxsize=16)
def hermite_basis(terms: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z_m of 2*terms-point Gauss-Hermite (weight N(0,1)) and psi[k, m] = He_k(z_m) sqrt(w_m / k!).

    Golub-Welsch: the eigenvectors of the Jacobi matrix are exactly the normalised Hermite functions
    at the nodes, so psi is orthogonal and no factorial or weight ever overflows."""
    n = 2 * terms
    off = np.sqrt(np.arange(1, n, dtype=np.float64))
    z, v = np.linalg.eigh(np.diag(off, 1) + np.diag(off, -1))
    return z, (v * np.sign(v[0]))[:terms]


def hermite_coefficients(fn, q, terms: int = DEGREE):
    """a_k = E[fn(sqrt(q) z) He_k(z)] / sqrt(k!), z ~ N(0, 1), shape q.shape + (terms,)."""
    z, psi = hermite_basis(terms)
    z, psi = jnp.asarray(z, q.dtype), jnp.asarray(psi, q.dtype)
    return (fn(jnp.sqrt(q)[..., None] * z) * psi[0]) @ psi.T


def hermite_diag(fn, q, terms: int = DEGREE):
    """E[fn(u)^2], u ~ N(0, q), by the 2*terms-point Gauss-Hermite rule (exact diagonal)."""
    z, psi = hermite_basis(terms)
    z, w = jnp.asarray(z, q.dtype), jnp.asarray(psi[0] ** 2, q.dtype)
    return fn(jnp.sqrt(q)[..., None] * z) ** 2 @ w


def mehler(a, b, c):
    """sum_k c^k a_k b_k (Mehler's formula: E[f(z1) g(z2)] for standard normals with correlation c).

    a, b: coefficients on the last axis, broadcasting with c over the others; Horner's scheme."""
    def step(acc, ab):
        return acc * c + ab[0] * ab[1], None

    zero = jnp.zeros(jnp.broadcast_shapes(a.shape[:-1], b.shape[:-1], c.shape), c.dtype)
    out, _ = jax.lax.scan(step, zero, (jnp.moveaxis(a, -1, 0), jnp.moveaxis(b, -1, 0)), reverse=True)
    return out


def correlation(q11, q12, q22):
    """c = q12 / sqrt(q11 q22) clipped to [-1, 1] (0 where a variance vanishes)."""
    norm = jnp.sqrt(q11 * q22)
    return jnp.clip(jnp.where(norm > 0, q12 / jnp.where(norm > 0, norm, 1.0), 0.0), -1.0, 1.0)


def quadrature(act: Activation, q11, q12, q22, terms: int = DEGREE):
    """(E[phi phi], E[phi' phi']) by Hermite expansion: 1-D Gauss-Hermite coefficients, Mehler sum."""
    dphi = derivative(act)
    c = correlation(q11, q12, q22)
    out = []
    for fn in (act.fn, dphi):
        out.append(mehler(hermite_coefficients(fn, q11, terms), hermite_coefficients(fn, q22, terms), c))
    return tuple(out)


# ---------------------------------------------------------------- public entry point

def gaussian_expectations(activation, q11, q12, q22, *, degree: int = DEGREE):
    """(E[phi(u)phi(v)], E[phi'(u)phi'(v)]) for (u, v) ~ N(0, [[q11, q12], [q12, q22]]), broadcasting.

    Closed forms by activation family, Gauss-Hermite quadrature otherwise; jit-able."""
    act = get_activation(activation)
    q11, q12, q22 = jnp.broadcast_arrays(*(jnp.asarray(q, jnp.result_type(q, float)) for q in (q11, q12, q22)))
    ang = angular(act)
    if ang is not None:
        e_phi, e_dphi, _ = angular_expectations(ang, q11, q22, 1.0 - correlation(q11, q12, q22))
        return e_phi, e_dphi
    if act.family in SMOOTH:
        return SMOOTH[act.family](act.params, q11, q12, q22)
    return quadrature(act, q11, q12, q22, degree)
