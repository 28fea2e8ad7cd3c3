"""Gaussian expectations (dual activations) E[phi(u)phi(v)] and E[phi'(u)phi'(v)] for (u, v) ~ N(0, Q).

Closed forms are keyed by `Activation.family` (see `workbench.core.activations`): the (a, b)-ReLU family
relu / leaky_relu(a) / abs (Cho & Saul 2009), sign (its NTK factor is 0: phi' = 0 a.e., the same
derivative autograd gives the finite network), erf (Williams 1997), gelu (Tsuchida et al. 2021),
sin / cos, identity and quadratic. Everything else (typed expressions, callables, tanh, ...) falls
back to quadrature: each variance's Hermite coefficients come from a 1-D Gauss-Hermite rule with
2 x `DEGREE` nodes and the pair expectation is Mehler's series sum_k c^k a_k b_k (O(DEGREE) per pair
instead of the O(DEGREE^2) of a tensor-product rule, and 1e-6 accurate for smooth phi where a 64^2 rule
is not). Kinked expressions (e.g. "maximum(x, 0)" typed out) converge slowly, to ~1e-2 for the step
derivative at correlation 1: use the registered names, which have closed forms.

Positively homogeneous families ("angular": relu family, sign) depend on the angle theta between u
and v; they are written in terms of s = 1 - cos(theta) and sc = 1 + cos(theta), which
`workbench.theory.kernels.analytic` carries through the layers without cancellation (diagonal s = 0 exactly,
antipodal sc = 0 exactly).

This module is the one table of closed forms: the normalized dual k(rho) = E[phi(u)phi(v)] / E[phi^2] of the
infinite-depth theory (`workbench.theory.infinite_depth.duals`) is `Dual.normalized`, with its complements
1 - k and k'(1) - k' kept free of cancellation (`MINUS`), in numpy or jax.numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike
from scipy.linalg import eigh_tridiagonal

from workbench.core import checks
from workbench.core.activations import Activation, ActivationLike, derivative, get_activation
from workbench.core.declare import Activation as ActivationArg
from workbench.core.declare import Given, Instance, Int, Reals, declare

Array = jax.Array
Values = Array | np.ndarray  # jax or numpy arrays (`Dual.normalized` works in either)

__all__ = ["DEGREE", "MAX_DEGREE", "Dual", "dual_of", "gaussian_expectations", "hermite_coefficients"]

DEGREE = 256  # Hermite terms (2 x DEGREE Gauss-Hermite nodes); 1e-6 relative for smooth activations
MAX_DEGREE = 1024  # the 2 x degree tridiagonal eigenproblem: 0.5 s at 512 terms, 2.7 s at 1024 on a loaded 2-core box
_PI = math.pi


# ---------------------------------------------------------------- angles from s = 1 - cos and sc = 1 + cos


def _atan_unit_f32(t: Array, xp: ModuleType = jnp) -> Array:
    """arctan(t) on [0, 1] to float32 accuracy (Cephes atanf: reduction at tan(pi/8), degree-9 polynomial)."""
    mid = t > 0.4142135623730951
    x = xp.where(mid, (t - 1.0) / (t + 1.0), t)
    z = x * x
    p = (((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z - 3.33329491539e-1) * z * x + x
    return xp.where(mid, _PI / 4, 0.0) + p


def _angles(s: Values, sc: Values, xp: ModuleType = jnp) -> tuple[Any, Any]:
    """(theta, pi - theta) from s = 1 - cos theta and sc = 1 + cos theta, each accurate where
    it is small, so both theta near 0 and theta near pi come without cancellation (`xp`: jax.numpy or numpy)."""
    sh, ch = xp.sqrt(0.5 * s), xp.sqrt(0.5 * sc)
    lo, hi = xp.minimum(sh, ch), xp.maximum(sh, ch)
    t = lo / xp.where(hi > 0, hi, 1.0)
    half = 2.0 * (_atan_unit_f32(t, xp) if t.dtype == jnp.float32 else xp.arctan(t))  # in [0, pi/2]
    near_zero = sh <= ch
    return xp.where(near_zero, half, _PI - half), xp.where(near_zero, _PI - half, half)


_SMTC = tuple((-1) ** (k + 1) * 2 * k / math.factorial(2 * k + 1) for k in range(1, 11))


def _sin_minus_t_cos(t: Array) -> Array:
    """sin t - t cos t for 0 <= t <= pi/2 by its Taylor series in t^2 (relative error < 1e-16, no cancellation)."""
    z = t * t
    acc = _SMTC[-1]
    for c in _SMTC[-2::-1]:
        acc = acc * z + c
    return acc * z * t


class Angular(NamedTuple):
    """k-homogeneous phi: E[phi phi] = (q11 q22)^(k/2) j, E[phi' phi'] = dj, and the new s, sc = 1 -+ j / j(0)."""

    degree: int
    j0: float
    fn: Callable  # (s, sc, theta, theta_c, xp) -> (j, dj, one_minus, one_plus)
    nonnegative: bool = False  # phi >= 0: correlations after the first layer are >= 0
    dj_minus: Callable | None = None  # (theta, theta_c) -> dj(0) - dj(theta), where Price's theorem holds (not sign)


def _abrelu(a: float) -> Angular:
    """phi = alpha x + beta |x| with alpha = (1+a)/2, beta = (1-a)/2 (Cho & Saul 2009, arc-cosine kernels)."""
    al2, be2 = ((1 + a) / 2) ** 2, ((1 - a) / 2) ** 2
    j0 = (1 + a * a) / 2

    def fn(s: Array, sc: Array, theta: Array, theta_c: Array, xp: ModuleType = jnp) -> tuple[Array, ...]:
        cos = xp.where(s <= sc, 1.0 - s, sc - 1.0)
        # |x| kernel A(theta) = 2/pi (sin + (pi/2 - theta) cos) is symmetric about pi/2: use theta_m <= pi/2
        one_minus_abs = xp.minimum(s, sc) - (2 / _PI) * _sin_minus_t_cos(xp.minimum(theta, theta_c))
        j = al2 * cos + be2 * (1.0 - one_minus_abs)
        dj = al2 + be2 * (theta_c - theta) / _PI
        return j, dj, (al2 * s + be2 * one_minus_abs) / j0, (al2 * sc + be2 * (2.0 - one_minus_abs)) / j0

    return Angular(1, j0, fn, a <= 0, lambda theta, theta_c: be2 * 2.0 * theta / _PI)


def _sign(s: Array, sc: Array, theta: Array, theta_c: Array, xp: ModuleType = jnp) -> tuple[Array, ...]:
    return (theta_c - theta) / _PI, xp.zeros_like(s), 2.0 * theta / _PI, 2.0 * theta_c / _PI


ANGULAR: dict[str, Callable[[tuple], Angular]] = {
    "relu": lambda p: _abrelu(0.0),
    "leaky_relu": lambda p: _abrelu(p[0]),
    "abs": lambda p: _abrelu(-1.0),
    "sign": lambda p: Angular(0, 1.0, _sign),
}


def _angular(act: Activation) -> Angular | None:
    """The angular closed form of an activation, or None."""
    return ANGULAR[act.family](act.params) if act.family in ANGULAR else None


def _angular_expectations(ang: Angular, r11r22: Array, s: Array, sc: Array) -> tuple[Array, Array, Array, Array]:
    """(e_phi, e_dphi, s_new, sc_new) of an angular activation from sqrt(q11 q22) and s, sc = 1 -+ cos."""
    theta, theta_c = _angles(s, sc)
    j, dj, one_minus, one_plus = ang.fn(s, sc, theta, theta_c)
    return r11r22**ang.degree * j, dj, one_minus, one_plus


# ---------------------------------------------------------------- smooth closed forms (q11, q12, q22)


def _erf(p: tuple[float, ...], q11: Array, q12: Array, q22: Array, xp: ModuleType = jnp) -> tuple[Array, Array]:
    """erf (Williams 1997): 2/pi arcsin(2 q12 / sqrt(d1 d2)) and 4/pi (d1 d2 - 4 q12^2)^(-1/2), d = 1 + 2 q."""
    d1, d2 = 1 + 2 * q11, 1 + 2 * q22
    e_phi = (2 / _PI) * xp.arcsin(2 * q12 / xp.sqrt(d1 * d2))
    return e_phi, (4 / _PI) / xp.sqrt(d1 * d2 - 4 * q12**2)


def _gelu(p: tuple[float, ...], q11: Array, q12: Array, q22: Array) -> tuple[Array, Array]:
    """GELU x Phi(x) (Tsuchida et al. 2021), in the form used by neural-tangents' stax.Gelu."""
    prod, prod1 = q11 * q22, (1 + q11) * (1 + q22)
    delta2 = prod1 - q12**2
    delta = jnp.sqrt(delta2)
    ang = jnp.arctan2(q12, delta)
    e_phi = 0.25 * q12 + ((q12**2 + prod * delta2) / (prod1 * delta) + q12 * ang) / (2 * _PI)
    first = (1 / delta2 + (1 - prod) / prod1 + 1) * q12 / delta / (2 * _PI)
    return e_phi, first + 0.25 + ang / (2 * _PI)


def _sin_cos(q11: Array, q12: Array, q22: Array, xp: ModuleType = jnp) -> tuple[Array, Array]:
    """(e^{-m} sinh q12, e^{-m} cosh q12), m = (q11 + q22)/2, as e^(|q12| - m) (1 -+ e^(-2|q12|)) / 2 with
    exponents <= 0 (|q12| <= m): no overflow at large variances, no cancellation at small q12 (expm1)."""
    a = xp.abs(q12)
    top, low = xp.exp(a - 0.5 * (q11 + q22)), xp.exp(-2.0 * a)
    return xp.sign(q12) * top * -0.5 * xp.expm1(-2.0 * a), top * 0.5 * (1.0 + low)


def _sin(p: tuple[float, ...], q11: Array, q12: Array, q22: Array, xp: ModuleType = jnp) -> tuple[Array, Array]:
    return _sin_cos(q11, q12, q22, xp)


def _cos(p: tuple[float, ...], q11: Array, q12: Array, q22: Array, xp: ModuleType = jnp) -> tuple[Array, Array]:
    sinh, cosh = _sin_cos(q11, q12, q22, xp)
    return cosh, sinh


SMOOTH: dict[str, Callable] = {
    "erf": _erf,
    "gelu": _gelu,
    "sin": _sin,
    "cos": _cos,
    "identity": lambda p, q11, q12, q22, xp=jnp: (q12, xp.ones_like(q12)),
    "quadratic": lambda p, q11, q12, q22, xp=jnp: (q11 * q22 + 2 * q12**2, 4 * q12),
}


def _erf_minus(q: Array, s: Array, sc: Array, xp: ModuleType) -> tuple[Array, Array]:
    """erf's diagonal minus pair expectations at equal variances q and correlation 1 - s, without cancellation:
    arcsin a - arcsin b = arcsin((a^2 - b^2) / (a sqrt(1 - b^2) + b sqrt(1 - a^2))) for b >= 0, and
    d^-1/2 - D^-1/2 = (D - d) / (sqrt(d D) (sqrt d + sqrt D)) with D - d = 4 q^2 s sc."""
    a = 2 * q / (1 + 2 * q)
    b = a * (1.0 - s)
    near = s <= 1.0
    den = xp.where(near, a * xp.sqrt(1 - b * b) + b * xp.sqrt(1 - a * a), 1.0)
    e_minus = xp.where(near, xp.arcsin(a * a * s * sc / den), xp.arcsin(a) - xp.arcsin(b))
    gap = 4 * q * q * s * sc
    d, big = 1 + 4 * q, 1 + 4 * q + gap
    return (2 / _PI) * e_minus, (4 / _PI) * gap / (xp.sqrt(d * big) * (xp.sqrt(d) + xp.sqrt(big)))


def _sin_minus(q: Array, s: Array, sc: Array, xp: ModuleType) -> tuple[Array, Array]:
    """sin's diagonal minus pair expectations at equal variances q and correlation 1 - s: e^-q (sinh q -
    sinh q rho) = -(1 + e^(-q sc)) expm1(-q s) / 2 and e^-q (cosh q - cosh q rho) = expm1(-q sc) expm1(-q s) / 2
    (both terms of one sign, exponents <= 0: no cancellation, no overflow)."""
    lo = xp.expm1(-q * s)
    return -(1.0 + xp.exp(-q * sc)) * lo / 2, xp.expm1(-q * sc) * lo / 2


MINUS: dict[str, Callable] = {"erf": _erf_minus, "sin": _sin_minus}
"""Smooth families whose normalized dual (`Dual.normalized`) has cancellation-free complements."""


# ---------------------------------------------------------------- Hermite expansion (quadrature fallback)


@lru_cache(maxsize=16)
def _hermite_basis(terms: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z_m of 2*terms-point Gauss-Hermite (weight N(0,1)) and psi[k, m] = He_k(z_m) sqrt(w_m / k!).

    Golub-Welsch: the eigenvectors of the Jacobi matrix are exactly the normalised Hermite functions
    at the nodes, so psi is orthogonal and no factorial or weight ever overflows."""
    n = 2 * terms
    z, v = eigh_tridiagonal(np.zeros(n), np.sqrt(np.arange(1, n, dtype=np.float64)))  # O(n^2), not dense O(n^3)
    return z, (v * np.sign(v[0]))[:terms]


def _hermite_coefficients(fn: Callable[[Array], Array], q: Array, terms: int = DEGREE) -> Array:
    """`hermite_coefficients` unchecked, in q's dtype (the jitted kernels' inner loop)."""
    z, psi = _hermite_basis(terms)
    z, psi = jnp.asarray(z, q.dtype), jnp.asarray(psi, q.dtype)
    return (fn(jnp.sqrt(q)[..., None] * z) * psi[0]) @ psi.T


@declare(
    fn=Given(
        why="a function of jax arrays (an activation or its derivative), checked callable in the body",
        example=lambda: jnp.tanh,
    ),
    q=Reals(0.0),
    terms=Int(1, MAX_DEGREE),
)
def hermite_coefficients(fn: Callable[[Array], Array], q: ArrayLike, terms: int = DEGREE) -> Array:
    """a_k = E[fn(sqrt(q) z) He_k(z)] / sqrt(k!), z ~ N(0, 1), shape q.shape + (terms,), in jax's default float
    (float64 under `jax.enable_x64`)."""
    if not callable(fn):
        raise ValueError(f"fn: must be a function of jax arrays, got {type(fn).__name__}")
    return _hermite_coefficients(fn, jnp.asarray(q, jnp.result_type(float)), terms)


def _hermite_diag(fn: Callable[[Array], Array], q: Array, terms: int = DEGREE) -> Array:
    """E[fn(u)^2], u ~ N(0, q), by the 2*terms-point Gauss-Hermite rule (exact diagonal)."""
    z, psi = _hermite_basis(terms)
    z, w = jnp.asarray(z, q.dtype), jnp.asarray(psi[0] ** 2, q.dtype)
    return fn(jnp.sqrt(q)[..., None] * z) ** 2 @ w


def _mehler(a: Array, b: Array, c: Array) -> Array:
    """sum_k c^k a_k b_k (Mehler's formula: E[f(z1) g(z2)] for standard normals with correlation c).

    a, b: coefficients on the last axis, broadcasting with c over the others; Horner's scheme."""

    def step(acc: Array, ab: tuple[Array, Array]) -> tuple[Array, None]:
        return acc * c + ab[0] * ab[1], None

    zero = jnp.zeros(jnp.broadcast_shapes(a.shape[:-1], b.shape[:-1], c.shape), c.dtype)
    out, _ = jax.lax.scan(step, zero, (jnp.moveaxis(a, -1, 0), jnp.moveaxis(b, -1, 0)), reverse=True)
    return out


def _correlation(q11: Array, q12: Array, q22: Array) -> Array:
    """c = q12 / sqrt(q11 q22) clipped to [-1, 1] (0 where a variance vanishes)."""
    norm = jnp.sqrt(q11 * q22)
    return jnp.clip(jnp.where(norm > 0, q12 / jnp.where(norm > 0, norm, 1.0), 0.0), -1.0, 1.0)


# ---------------------------------------------------------------- the dual of an activation


@dataclass(frozen=True)
class Dual:
    """The Gaussian dual of an activation (Daniely et al. 2016; Cho & Saul 2009), decided once by
    `dual_of`: an angular closed form, a smooth closed form, or Gauss-Hermite quadrature of `act.fn`."""

    act: Activation
    angular: Angular | None
    smooth: Callable | None

    @property
    def kind(self) -> str:
        return "angular" if self.angular is not None else ("smooth" if self.smooth is not None else "quadrature")

    def expectations(self, q11: Array, q12: Array, q22: Array, degree: int = DEGREE) -> tuple[Array, Array]:
        """(E[phi(u)phi(v)], E[phi'(u)phi'(v)]) for (u, v) ~ N(0, [[q11, q12], [q12, q22]]); jit-able."""
        if self.angular is not None:
            c = _correlation(q11, q12, q22)
            e_phi, e_dphi, _, _ = _angular_expectations(self.angular, jnp.sqrt(q11 * q22), 1.0 - c, 1.0 + c)
            return e_phi, e_dphi
        if self.smooth is not None:
            return self.smooth(self.act.params, q11, q12, q22)
        coef = self.coefficients(q11, degree), self.coefficients(q22, degree)
        return self.mehler(*coef, self.diagonal(q11, degree), q11, q12, q22)

    def diagonal(self, q: Array, degree: int = DEGREE) -> tuple[Array, Array]:
        """(E[phi(u)^2], E[phi'(u)^2]) for u ~ N(0, q): a closed form, or one Gauss-Hermite rule (no Mehler sum)."""
        if self.kind != "quadrature":
            return self.expectations(q, q, q)
        return _hermite_diag(self.act.fn, q, degree), _hermite_diag(derivative(self.act), q, degree)

    def coefficients(self, q: Array, degree: int = DEGREE) -> tuple[Array, Array]:
        """Hermite coefficients (a_k of phi, of phi') at variances q, shape q.shape + (degree,), in q's dtype
        (`hermite_coefficients`): what `mehler` needs of each point, computed once per point; jit-able."""
        return _hermite_coefficients(self.act.fn, q, degree), _hermite_coefficients(derivative(self.act), q, degree)

    def mehler(
        self,
        coef_a: tuple[Array, ...],
        coef_b: tuple[Array, ...],
        diag: tuple[Array, ...],
        q11: Array,
        q12: Array,
        q22: Array,
    ) -> tuple[Array, Array]:
        """(E[phi(u)phi(v)], E[phi'(u)phi'(v)]) by Mehler's series sum_k c^k a_k b_k from each side's
        `coefficients` (broadcasting with q12 over the leading axes), and `diag` (`diagonal` of side a) where the
        correlation c is 1 and q11 = q22 (the 1-D rule, no truncated tail); jit-able."""
        c = _correlation(q11, q12, q22)
        same = (c == 1.0) & (q11 == q22)
        e_phi, e_dphi = (jnp.where(same, d, _mehler(a, b, c)) for a, b, d in zip(coef_a, coef_b, diag))
        return e_phi, e_dphi

    def normalized(self, rho: Values, s: Values, sc: Values, q: float = 1.0, xp: ModuleType = jnp) -> tuple[Any, ...]:
        """The normalized dual k(rho) = E[phi(u)phi(v)] / E[phi(u)^2] of two inputs of variance q at correlation
        rho (Daniely et al. 2016, Sec. 4), its derivative k'(rho) = q E[phi'(u)phi'(v)] / E[phi^2] (Price's
        theorem), and the complements 1 - k(rho) and k'(1) - k'(rho) without cancellation; closed forms only (the
        relu family and `MINUS`). rho, s = 1 - rho and sc = 1 + rho are each given to full relative accuracy
        (whichever is small); `xp`: numpy (float64 in, float64 out) or jax.numpy (jit-able)."""
        ang, minus = self.angular, MINUS.get(self.act.family)
        if (ang is None or ang.dj_minus is None) and (self.smooth is None or minus is None):
            raise ValueError(
                f"activation: {self.act.name!r} has no normalized closed form here (the relu family, erf and sin"
                " have); use its Hermite series"
            )
        if ang is not None and ang.dj_minus is not None:
            theta, theta_c = _angles(s, sc, xp)
            j, dj, one_minus, _ = ang.fn(s, sc, theta, theta_c, xp)
            return j / ang.j0, dj / ang.j0, one_minus, ang.dj_minus(theta, theta_c) / ang.j0
        assert self.smooth is not None and minus is not None
        e_phi, e_dphi = self.smooth(self.act.params, q, q * rho, q, xp=xp)
        norm = self.smooth(self.act.params, q, q, q, xp=xp)[0]
        phi_minus, dphi_minus = minus(q, s, sc, xp)
        return e_phi / norm, q * e_dphi / norm, phi_minus / norm, q * dphi_minus / norm


@declare(act=Instance(Activation, example=lambda: get_activation("relu")))
@lru_cache(maxsize=128)
def dual_of(act: Activation) -> Dual:
    """The one place that decides how an activation's Gaussian expectations are computed (`act`: a resolved
    activation, `workbench.core.activations.get_activation`)."""
    return Dual(act, _angular(act), SMOOTH.get(act.family))


# ---------------------------------------------------------------- public entry point


def _gaussian_expectations(
    act: Activation, q11: ArrayLike, q12: ArrayLike, q22: ArrayLike, degree: int = DEGREE
) -> tuple[Array, Array]:
    """`gaussian_expectations` unchecked, for a resolved activation (jit-able: the criticality fixed points)."""
    q11, q12, q22 = jnp.broadcast_arrays(*(jnp.asarray(q, jnp.result_type(q, float)) for q in (q11, q12, q22)))
    return dual_of(act).expectations(q11, q12, q22, degree)


@declare(activation=ActivationArg(), q11=Reals(0.0), q12=Reals(example=0.0), q22=Reals(0.0), degree=Int(1, MAX_DEGREE))
def gaussian_expectations(
    activation: ActivationLike, q11: ArrayLike, q12: ArrayLike, q22: ArrayLike, *, degree: int = DEGREE
) -> tuple[Array, Array]:
    """(E[phi(u)phi(v)], E[phi'(u)phi'(v)]) for (u, v) ~ N(0, [[q11, q12], [q12, q22]]), broadcasting.

    Closed forms by activation family, Gauss-Hermite quadrature otherwise (`dual_of`)."""
    if not any(map(checks.is_traced, (q11, q12, q22))):
        try:
            np.broadcast_shapes(np.shape(q11), np.shape(q12), np.shape(q22))
        except ValueError:
            raise ValueError(
                f"q12: shape {np.shape(q12)} does not broadcast with q11's {np.shape(q11)} and q22's {np.shape(q22)}"
            ) from None
        if np.any(np.asarray(q12) ** 2 > np.asarray(q11) * np.asarray(q22) * (1 + 1e-6)):
            raise ValueError("q12: the covariance must be positive semi-definite, q12^2 <= q11 q22")
    return _gaussian_expectations(get_activation(activation), q11, q12, q22, degree)
