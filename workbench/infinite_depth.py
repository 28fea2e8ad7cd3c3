"""Wide and deep networks at infinite depth (Radhakrishnan, Belkin & Uhler, "Wide and deep neural networks achieve
consistency for classification", PNAS 2023, arXiv 2204.14126; official code uhlerlab/inf_depth_ntks).

Conventions (those of the official code, `models.py`): inputs on the unit sphere, no biases, and an activation
enters only through its *normalized dual*. With phi = sum_k a_k h_k (h_k = He_k / sqrt(k!), orthonormal under
N(0, 1); a_k by Gauss-Hermite quadrature for a typed activation),

    k(rho) = E[phi(u) phi(v)] / E[phi(u)^2] = sum_k b_k rho^k,    b_k = a_k^2 / sum_j a_j^2,

so k(1) = 1 and the mean of phi enters as b_0 = k(0) = a_0^2 / E[phi^2] (it is not removed: an activation with
a nonzero mean pulls every correlation towards a positive fixed point). For u, v ~ N(0, 1) with correlation rho
this is the NNGP map of one Dense(W_std = 1, b_std = 0) + phi layer after dividing by E[phi^2].

    NNGP: rho_0 = <x, z>, rho_{l+1} = k(rho_l);    NTK: Theta_0 = rho_0, Theta_{l+1} = k(rho_l) + Theta_l k'(rho_l)

The classifier is ridgeless kernel regression, sign(y^T K(X, X)^{-1} K(X, x)) (argmax for one-hot y). With
lambda_0 = k(0) = b_0, lambda = k'(0) = b_1 and mu = k'(1), depth L -> infinity gives (the taxonomy of the paper):

- b_0 > 0: majority vote. Precisely: when mu > 1 the correlations converge geometrically to the attracting fixed
  point rho* in (0, 1) and both kernels tend to c 11^T + (1 - c) I; when mu = 1 (ReLU, |x|) every correlation tends
  to 1 like 1 / L^2, alike for all pairs at leading order, and both kernels tend to majority vote slowly (the
  official code needs depth > 5e4 for more than 1000 samples); when mu < 1 (a large mean: sigmoid, softplus) the
  correlations tend to 1 geometrically with a pair-dependent deficit and the limit is not majority vote (found
  here numerically, not a case of the paper's examples) - `regime` says which.
- b_0 = b_1 = 0: 1-nearest neighbour in the kernel's own order (the Boettcher coordinate of k at 0): by rho, by
  |rho| when k is even, by |rho| with the label times sign(rho) when k is odd.
- b_0 = 0 < b_1 < 1: the singular kernel classifier sign(sum_i y_i sigma(<x_i, x>)) with sigma the Koenigs
  eigenfunction of k at 0 (sigma o k = lambda sigma, sigma'(0) = 1, sigma = lim k^L / lambda^L), and
  sigma(rho) ~ (1 - rho)^(-alpha) as rho -> 1 with alpha = ln(1/k'(0)) / ln(k'(1)); as ||x - z||^2 = 2 (1 - rho)
  this is a Hilbert-kernel estimate, consistent for data on S^(d-1) when d = 1 + 2 alpha (Devroye et al. 1998).
- b_1 = 1: the linear kernel at every depth.

Numerics. A float64 loop over layers underflows (lambda^L sigma, and rho^(2^L) for the rho^2 dual: its Gram matrix has
condition ~1e17 by depth 4 and the classifier falls to chance) and costs n^2 L. Here every kernel entry is carried
as (sign, log|.|), with 1 - |rho| kept without cancellation near +-1 (from ||x -+ z||^2 / 2 and closed forms of
1 - k(1 - delta)), and leaves the layer loop as soon as it reaches a region where the rest of the depth is exact in
closed form: the Koenigs / Poincare series at 0 (singular duals: k^L(rho) = psi(lambda^L sigma(rho)), and a
matching closed form of the NTK), the Boettcher recursion (duals with b_0 = b_1 = 0) or the attracting fixed point
(b_0 > 0, mu > 1). Entries near a repelling +-1 take O(log(1 / delta) / log mu) layers, all others a few, so any
depth up to 1e5 (and infinity) costs about the same. Duals with b_0 > 0 and mu <= 1 (ReLU, |x|, sigmoid) have no
such shortcut: log(1 - rho_L) and log(1 - Theta_L / Theta_L(1)) are iterated on a table of angles (JAX, float64,
cost proportional to L: ~6 s for L = 1e5) and interpolated, and their classifiers are solved in that complement
form (K = 11^T - Delta). The classifier needs kernels only up to a positive factor per test point, so each column
of K(X, x) is divided by its largest entry. Checked against 50-digit iteration (tests/test_infinite_depth.py).
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple, cast

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike
from scipy.interpolate import CubicSpline
from scipy.optimize import brentq
from scipy.special import gammaln
from threadpoolctl import ThreadpoolController

from workbench.memory import require

SERIES_TERMS = 64  # Koenigs / Poincare series length
HERMITE_TERMS = 160  # Hermite coefficients of a typed activation (2 x this many Gauss-Hermite nodes)
NEAR = 0.05  # 1 - |rho| below this: carried as the complement delta
SMALL = 1e-3  # |rho| below this (b_0 = b_1 = 0): carried as log|rho|
DUPLICATE = 1e-20  # 1 - |<x_i, x_j>| below this (angle 1.4e-10): the same point up to rounding of its normalization
MAX_LAYERS = 20_000  # layer cap of an entry that has not reached its exact tail (only for an infinite depth)
TABLE_NODES = 1025  # table of 1 - rho for duals with b_0 > 0 and k'(1) <= 1


# ---------------------------------------------------------------- closed-form duals (numpy or jax.numpy as xp)


def _smtc(t, xp):
    """sin t - t cos t without cancellation for small t (Taylor series in t^2 below pi/2)."""
    z = t * t
    acc = 0.0
    for k in range(12, 0, -1):
        acc = acc * z + (-1) ** (k + 1) * 2 * k / math.factorial(2 * k + 1)
    small = acc * z * t
    return xp.where(t < 1.5, small, xp.sin(t) - t * xp.cos(t))


def _theta(delta, xp):
    """The angle theta with 1 - cos(theta) = delta, accurate for small delta."""
    return 2.0 * xp.arcsin(xp.sqrt(xp.clip(delta, 0.0, 2.0) / 2.0))


_ERF_A = math.asin(2.0 / 3.0)


def _erf_kc(delta, xp):
    """1 - k(1 - delta) for the erf dual arcsin(2 rho / 3) / arcsin(2/3), cancellation-free."""
    p = 2.0 / 3.0
    q = p * (1.0 - delta)
    num = p * p * delta * (2.0 - delta)  # p^2 - q^2
    return xp.arcsin(num / (p * xp.sqrt(1.0 - q * q) + q * math.sqrt(1.0 - p * p))) / _ERF_A


CLOSED: dict[str, tuple[Callable, Callable, Callable]] = {
    # name: (k(rho, a, xp), k'(rho, a, xp), 1 - k(1 - delta)(delta, a, xp))
    "relu": (
        lambda r, a, xp: (xp.sqrt(xp.clip(1 - r * r, 0, 1)) + r * (math.pi - xp.arccos(xp.clip(r, -1, 1)))) / math.pi,
        lambda r, a, xp: (math.pi - xp.arccos(xp.clip(r, -1, 1))) / math.pi,
        lambda d, a, xp: d - _smtc(_theta(d, xp), xp) / math.pi,
    ),
    "abs": (
        lambda r, a, xp: 2 / math.pi * (xp.sqrt(xp.clip(1 - r * r, 0, 1)) + r * xp.arcsin(xp.clip(r, -1, 1))),
        lambda r, a, xp: 2 / math.pi * xp.arcsin(xp.clip(r, -1, 1)),
        lambda d, a, xp: d - 2 / math.pi * _smtc(_theta(d, xp), xp),
    ),
    "erf": (
        lambda r, a, xp: xp.arcsin(2 * r / 3) / _ERF_A,
        lambda r, a, xp: (2 / 3) / xp.sqrt(1 - 4 * r * r / 9) / _ERF_A,
        lambda d, a, xp: _erf_kc(d, xp),
    ),
    "sine": (
        lambda r, a, xp: xp.sinh(a * r) / math.sinh(a),
        lambda r, a, xp: a * xp.cosh(a * r) / math.sinh(a),
        lambda d, a, xp: 2 * xp.cosh(a - a * d / 2) * xp.sinh(a * d / 2) / math.sinh(a),
    ),
}


def _abs_hermite_sq(terms: int) -> np.ndarray:
    """a_k^2 of |x| (E[|z| He_2j(z)] = 2 phi(0) He_{2j-2}(0) for j >= 1; odd terms vanish); sum = E[x^2] = 1."""
    out = np.zeros(terms)
    out[0] = 2 / math.pi
    for j in range(1, (terms - 1) // 2 + 1):
        # (2j - 3)!! = (2j - 2)! / (2^(j-1) (j-1)!), (-1)!! = 1
        log_dfact = gammaln(2 * j - 1) - (j - 1) * math.log(2) - gammaln(j)
        out[2 * j] = math.exp(2 * (math.log(2 / math.sqrt(2 * math.pi)) + log_dfact) - gammaln(2 * j + 1))
    return out


# ---------------------------------------------------------------- the normalized dual


@dataclass(frozen=True, eq=False)
class Dual:
    """A normalized dual k(rho) = sum_k b_k rho^k, b_k = a_k^2 / sum_j a_j^2 (module doc; `models.dual_act` of the
    official code), with an optional closed form for k, k' and 1 - k(1 - delta), and phi as a typed activation."""

    name: str
    b: tuple[float, ...]
    closed: str | None = None
    param: float = 0.0
    expression: str | None = None
    note: str = field(default="", compare=False)

    # -- coefficients and the three numbers of the taxonomy
    @cached_property
    def coef(self) -> np.ndarray:
        return np.asarray(self.b, np.float64)

    @property
    def lambda0(self) -> float:
        """k(0) = b_0 = a_0^2 / E[phi^2]."""
        return float(self.coef[0])

    @property
    def lam(self) -> float:
        """lambda = k'(0) = b_1 (the Koenigs multiplier at 0)."""
        return float(self.coef[1]) if len(self.coef) > 1 else 0.0

    @cached_property
    def mu(self) -> float:
        """mu = k'(1) = sum_k k b_k (the multiplier of the fixed point 1)."""
        return float(self.dk(np.float64(1.0)))

    @cached_property
    def order(self) -> int:
        """The lowest k with b_k > 0."""
        return int(np.flatnonzero(self.coef > 0)[0])

    @cached_property
    def parity(self) -> str | None:
        """'even' or 'odd' when k is (then k(-rho) = +-k(rho)), else None."""
        nz = np.flatnonzero(self.coef > 0)
        if np.all(nz % 2 == 0):
            return "even"
        if np.all(nz % 2 == 1):
            return "odd"
        return None

    @property
    def alpha(self) -> float:
        """alpha = ln(1 / k'(0)) / ln(k'(1)) (singular duals; inf when k'(0) = 0, nan when b_0 > 0)."""
        if self.lambda0 > 0 or self.mu <= 1:
            return math.nan
        return math.inf if self.lam == 0 else math.log(1 / self.lam) / math.log(self.mu)

    @cached_property
    def at_minus_one(self) -> np.ndarray | None:
        """Taylor coefficients of eps -> k(-1 + eps) (exact rational arithmetic) for a short polynomial of mixed
        parity, whose k(-1 + eps) is a cancelling sum near rho = -1 (5d_opt: k(-1) = k'(-1) = 0); else None."""
        if self.closed or self.parity is not None or len(self.coef) > 16:
            return None
        from fractions import Fraction

        b = [Fraction(float(v)) for v in self.coef]
        n = len(b)
        return np.asarray([float(sum(b[k] * math.comb(k, j) * (-1) ** (k - j) for k in range(j, n))) for j in range(n)])

    # -- evaluation (numpy by default; xp=jax.numpy inside the table loop)
    def k(self, rho, xp=np):
        """k(rho)."""
        if self.closed:
            return CLOSED[self.closed][0](rho, self.param, xp)
        return _horner(self.coef, rho, xp)

    def dk(self, rho, xp=np):
        """k'(rho)."""
        if self.closed:
            return CLOSED[self.closed][1](rho, self.param, xp)
        c = self.coef
        return _horner(c[1:] * np.arange(1, len(c)), rho, xp)

    def kc(self, delta, xp=np):
        """1 - k(1 - delta), without cancellation for small delta (0 <= delta <= 2)."""
        if self.closed:
            return CLOSED[self.closed][2](delta, self.param, xp)
        inside = xp.clip(delta, 0.0, 1.0)
        acc = xp.zeros_like(delta)
        lg = xp.log1p(-xp.minimum(inside, 1.0 - 1e-300))
        for j in np.flatnonzero(self.coef > 0):
            if j:
                acc = acc - self.coef[j] * xp.expm1(j * lg)
        return xp.where(delta <= 1.0, acc, 1.0 - _horner(self.coef, 1.0 - delta, xp))

    def dkc(self, delta, xp=np):
        """k'(1) - k'(1 - delta), without cancellation for small delta (the NTK's complement in `_TableFlow`)."""
        if self.closed == "relu":
            return _theta(delta, xp) / math.pi
        if self.closed == "abs":
            return 2 / math.pi * _theta(delta, xp)
        if self.closed:
            return self.mu - self.dk(1.0 - delta, xp)
        lg = xp.log1p(-xp.minimum(xp.clip(delta, 0.0, 1.0), 1.0 - 1e-300))
        acc = xp.zeros_like(delta)
        for j in np.flatnonzero(self.coef > 0):
            if j > 1:
                acc = acc - j * self.coef[j] * xp.expm1((j - 1) * lg)
        return xp.where(delta <= 1.0, acc, self.mu - self.dk(1.0 - delta, xp))

    @cached_property
    def d2(self) -> float:
        """k''(1) = sum_k k (k - 1) b_k (inf for relu and |x|, whose k' has a square-root cusp at 1)."""
        if self.closed in ("relu", "abs"):
            return math.inf
        c = self.coef
        return float(np.sum(np.arange(len(c)) * (np.arange(len(c)) - 1) * c))

    def __repr__(self):
        return f"Dual({self.name!r})"


def _horner(c, x, xp=np):
    """sum_k c_k x^k (in place for numpy arrays)."""
    if xp is np and isinstance(x, np.ndarray) and x.ndim:
        acc = np.full(x.shape, c[-1], np.result_type(x, np.float64))
        for v in c[-2::-1]:
            acc *= x
            acc += v
        return acc
    acc = xp.zeros_like(x) + c[-1]
    for v in c[-2::-1]:
        acc = acc * x + v
    return acc


def _trim(b: np.ndarray, rel: float = 1e-15) -> np.ndarray:
    """Zero coefficients below `rel` of the total (quadrature noise), drop a negligible tail, normalize to sum 1."""
    b = np.where(b < rel * b.sum(), 0.0, b)
    last = np.flatnonzero(b)[-1]
    return b[: last + 1] / b[: last + 1].sum()


def dual_from_series(b: ArrayLike, name: str | None = None, expression: str | None = None) -> Dual:
    """The dual with k(rho) = sum_k b_k rho^k for nonnegative b (normalized to sum 1), e.g. the d-opt duals; its
    phi (`expression`) takes a_k = +sqrt(b_k) (the dual sees only a_k^2)."""
    c = np.asarray(b, np.float64)
    if c.ndim != 1 or c.size == 0 or not np.all(np.isfinite(c)) or np.any(c < 0) or c.sum() <= 0:
        raise ValueError(f"b: a dual needs finite nonnegative power-series coefficients with a positive sum, got {c}")
    c = c / c.sum()
    if name is None:
        name = " + ".join(f"{v:.4g} rho^{k}" for k, v in enumerate(c) if v > 0)
    if expression is None:
        expression = hermite_expression(np.sqrt(c))
    return Dual(name, tuple(float(v) for v in c), expression=expression)


def dual_from_hermite(a: ArrayLike, name: str | None = None) -> Dual:
    """The normalized dual of phi = sum_k a_k h_k: b_k = a_k^2 / sum_j a_j^2 (a_0, the mean of phi, gives
    b_0 = k(0))."""
    a = np.asarray(a, np.float64)
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) or not np.any(a):
        raise ValueError(f"a: Hermite coefficients must be finite and not all zero, got {a}")
    return dual_from_series(a * a, name, hermite_expression(a))


def hermite_expression(a: ArrayLike) -> str | None:
    """phi = sum_k a_k h_k as a typed activation in x (polynomials up to degree 12), or None."""
    a = np.asarray(a, np.float64)
    a = np.where(np.abs(a) < 1e-12, 0.0, a)
    if np.flatnonzero(a).size == 0 or np.flatnonzero(a)[-1] > 12:
        return None
    from numpy.polynomial import hermite_e

    scaled = a / np.sqrt([math.factorial(k) for k in range(len(a))])
    poly = hermite_e.herme2poly(scaled)
    terms = []
    for k, c in enumerate(poly):
        if abs(c) > 1e-14:
            terms.append(f"{c:.12g}" + ("" if k == 0 else "*x" if k == 1 else f"*x**{k}"))
    return " + ".join(terms).replace("+ -", "- ") or None


def _hermite_series(fn, terms: int = HERMITE_TERMS) -> np.ndarray:
    """a_k = E[fn(z) He_k(z)] / sqrt(k!) in float64 (`workbench.kernels.dual.hermite_coefficients`)."""
    import jax
    import jax.numpy as jnp

    from workbench.kernels.dual import hermite_coefficients

    with jax.enable_x64(True):
        a = hermite_coefficients(fn, jnp.asarray(1.0, jnp.float64), terms)
        return np.asarray(a, np.float64)


def dual_from_activation(spec, terms: int = HERMITE_TERMS) -> Dual:
    """The normalized dual of a registered or typed activation (`workbench.activations.get_activation`): the closed
    form for relu, abs, erf, sin, identity; otherwise a_k by Gauss-Hermite quadrature with 2 x `terms` nodes, b_k below
    1e-15 of the total set to zero (quadrature noise) and the truncated series normalized to k(1) = 1."""
    if isinstance(spec, str):
        return _dual_from_text(spec.strip(), terms)
    return _dual_from_activation(spec, terms)


@functools.lru_cache(maxsize=64)
def _dual_from_text(spec: str, terms: int) -> Dual:
    return _dual_from_activation(spec, terms)


def _dual_from_activation(spec, terms: int) -> Dual:
    from workbench.activations import get_activation

    act = get_activation(spec)
    known = {"relu": "relu", "abs": "abs", "erf": "erf", "sin": "sine_1", "identity": "linear"}
    if act.family in known:
        return DUALS[known[act.family]]
    a = _hermite_series(act.fn, terms)
    if not np.all(np.isfinite(a)) or not np.any(a):
        raise ValueError(f"activation: the Hermite coefficients of {act.name!r} are not finite or all zero")
    b = _trim(a * a)
    return Dual(
        act.name,
        tuple(float(v) for v in b),
        expression=act.name,
        note=f"Hermite series of {act.name} by {2 * terms}-node Gauss-Hermite quadrature",
    )


def _sine(a: float) -> Dual:
    """sine_a = c sin(sqrt(a) x), c^2 = 2 / (1 - e^(-2a)): k(rho) = sinh(a rho) / sinh(a) (official code `dual_act`)."""
    ks = np.arange(1, SERIES_TERMS + 40, 2)
    b = np.zeros(ks[-1] + 1)
    b[ks] = np.exp(ks * math.log(a) - gammaln(ks + 1) - math.log(math.sinh(a)))
    c = math.sqrt(2.0 / -math.expm1(-2 * a))
    return Dual(f"sine_{a:g}", tuple(_trim(b)), "sine", a, f"{c:.12g}*sin({math.sqrt(a):.12g}*x)")


def _erf() -> Dual:
    n = np.arange(0, 200)
    logc = gammaln(2 * n + 1) - n * math.log(4) - 2 * gammaln(n + 1) - np.log(2 * n + 1) + (2 * n + 1) * math.log(2 / 3)
    b = np.zeros(2 * n[-1] + 2)
    b[2 * n + 1] = np.exp(logc) / _ERF_A
    return Dual("erf", tuple(_trim(b)), "erf", expression="erf(x)")


def _relu() -> Dual:
    sq = _abs_hermite_sq(256) / 4
    sq[1] += 0.25
    return Dual("relu", tuple(2 * sq), "relu", expression="relu")


def _poly(name: str, b: Sequence[float]) -> Dual:
    return dual_from_series(b, name)


DUALS: dict[str, Dual] = {
    "relu": _relu(),
    "abs": Dual("abs", tuple(_abs_hermite_sq(256)), "abs", expression="abs"),
    "erf": _erf(),
    "sine_1": _sine(1.0),
    "sine_2.676": _sine(2.676),
    "sine_6.13539": _sine(6.13539),
    "sine_13.8258": _sine(13.8258),
    "2d_opt": _poly("2d_opt", [0, 1 / 2, 0, 0, 0, 0, 0, 1 / 2]),
    "3d_opt": _poly("3d_opt", [0, 1 / 2, 0, 1 / 2]),
    "5d_opt": _poly("5d_opt", [0, 1 / 4, 1 / 2, 1 / 4]),
    "9d_opt": _poly("9d_opt", [0, 1 / 16, 7 / 8, 1 / 16]),
    "h2": _poly("h2", [0, 0, 1]),
    "h3": _poly("h3", [0, 0, 0, 1]),
    "linear": _poly("linear", [0, 1]),
}
"""The official code's duals (`models.dual_act`: erf, sine_a for d = 3, 5, 9, the d-opt polynomials) and a few more:
relu and |x| (arc-cosine kernels, Cho & Saul 2009), h2 = He_2 / sqrt 2 (k = rho^2), h3 (k = rho^3), linear."""


def get_dual(spec) -> Dual:
    """A Dual, a preset name (`DUALS`, or sine_<a>), or any registered / typed activation (`dual_from_activation`)."""
    if isinstance(spec, Dual):
        return spec
    if isinstance(spec, str):
        key = spec.strip()
        if key in DUALS:
            return DUALS[key]
        if key.startswith("sine_"):
            try:
                a = float(key[5:])
            except ValueError:
                raise ValueError(f"activation: sine_<a> needs a number a, got {key!r}") from None
            if not 0 < a <= 700:
                raise ValueError(f"activation: sine_<a> needs 0 < a <= 700, got {a}")
            return _sine(a)
    return dual_from_activation(spec)


# ---------------------------------------------------------------- taxonomy


class FixedPoint(NamedTuple):
    """A fixed point rho* = k(rho*) of the correlation map (stable: |k'(rho*)| < 1; neutral ones count as unstable)."""

    rho: float
    slope: float  # k'(rho*)
    stable: bool


def _brentq(f: Callable[[float], float], a: float, b: float, **kw) -> float:
    """scipy's brentq: the root alone (scipy has no stubs; pyright infers a union with the full_output=True tuple,
    and rtol's type from its float64 default)."""
    return cast(float, brentq(f, a, b, **kw))


def fixed_points(dual) -> list[FixedPoint]:
    """Fixed points of k on [-1, 1] with their multipliers k'(rho*) (stable when |k'| < 1; 1 always, 0 when b_0 = 0)."""
    dual = get_dual(dual)
    grid = np.linspace(-1.0, 1.0, 4001)
    f = dual.k(grid) - grid
    if np.all(np.abs(f) < 1e-14):  # k(rho) = rho: every point is fixed and neutral
        return [FixedPoint(r, 1.0, False) for r in (-1.0, 0.0, 1.0)]
    roots = {1.0}
    if dual.lambda0 == 0:
        roots.add(0.0)
    if dual.parity == "odd":
        roots.add(-1.0)
    for i in np.flatnonzero(np.sign(f[:-1]) * np.sign(f[1:]) < 0):
        roots.add(float(_brentq(lambda r: float(dual.k(np.float64(r)) - r), grid[i], grid[i + 1], xtol=1e-15)))
    roots.update(float(grid[i]) for i in np.flatnonzero(f == 0))
    out, last = [], None
    for r in sorted(roots):
        if last is not None and abs(r - last) < 1e-9:
            continue
        slope = float(dual.dk(np.float64(r)))
        out.append(FixedPoint(r, slope, abs(slope) < 1))
        last = r
    return out


class Regime(NamedTuple):
    """Which classifier the infinitely deep network implements (the paper's taxonomy), with alpha for singular
    duals."""

    kind: str  # "majority", "nearest", "singular" or "linear"
    alpha: float  # ln(1/k'(0)) / ln k'(1) (singular), else nan (inf for nearest)
    d_consistent: float  # 1 + 2 alpha: the sphere S^(d-1) on which the singular classifier is consistent
    badge: str  # one line for a panel
    note: str  # what else to know (the NNGP when k'(1) <= 1, the order for 1-NN)
    fixed_point: float  # the attracting fixed point of the correlations (1 or rho*), 0 for b_0 = 0


def regime(dual) -> Regime:
    """The L -> infinity classifier of a dual: majority vote (b_0 > 0), 1-NN (b_0 = b_1 = 0), singular (0 < b_1 < 1)."""
    d = get_dual(dual)
    b0, b1, mu = d.lambda0, d.lam, d.mu
    if b0 > 0:
        if mu > 1:
            star = [p.rho for p in fixed_points(d) if p.stable and 0 < p.rho < 1]
            rho = star[0] if star else 1.0
            return Regime(
                "majority",
                math.nan,
                math.nan,
                f"majority vote (k(0) = {b0:.3g}, rho* = {rho:.4g})",
                "the correlations converge to rho*: both kernels tend to c 11^T + (1 - c) I",
                rho,
            )
        note = (
            f"every correlation tends to 1 like 1 / L^2 (k'(1) = {mu:.3g}), alike for all pairs at leading order: "
            "both kernels tend to majority vote, slowly (relative corrections O(1 / L))"
        )
        if mu < 1 - 1e-12:
            note = (
                f"every correlation tends to 1 geometrically (k'(1) = {mu:.3g} < 1): neither kernel becomes "
                "majority vote"
            )
        return Regime("majority", math.nan, math.nan, f"majority vote (k(0) = {b0:.3g}, k'(1) = {mu:.3g})", note, 1.0)
    if b1 >= 1 - 1e-14:
        return Regime("linear", math.nan, math.nan, "linear kernel at every depth (k(rho) = rho)", "", 0.0)
    if b1 == 0:
        how = {
            "even": "by |rho| (k is even)",
            "odd": "by |rho|, label times sign(rho) (k is odd)",
            None: "in the kernel's order (Boettcher coordinate)",
        }[d.parity]
        return Regime(
            "nearest",
            math.inf,
            math.inf,
            f"1-nearest neighbour {how}",
            f"k(rho) ~ {d.coef[d.order]:.3g} rho^{d.order} at 0: log K_L ~ {d.order}^L",
            0.0,
        )
    alpha = d.alpha
    return Regime(
        "singular",
        alpha,
        1 + 2 * alpha,
        f"singular kernel, alpha = {alpha:.4g}: consistent for d = 1 + 2 alpha = {1 + 2 * alpha:.4g}",
        "sigma(rho) ~ (1 - rho)^(-alpha): a Hilbert-kernel estimate",
        0.0,
    )


def cobweb(dual, rho0: float, steps: int = 30) -> np.ndarray:
    """Vertices (2 steps + 1, 2) of the cobweb of rho_{l+1} = k(rho_l) from rho0: (rho0, rho0), (rho0, rho1),
    (rho1, rho1), ..."""
    d = get_dual(dual)
    pts, r = [(rho0, rho0)], float(rho0)
    for _ in range(steps):
        nxt = float(d.k(np.float64(r)))
        pts += [(r, nxt), (nxt, nxt)]
        r = nxt
    return np.asarray(pts)


# ---------------------------------------------------------------- activation designer


def _poly_alpha(lam: float, m: int) -> float:
    return math.log(1 / lam) / math.log(lam + m * (1 - lam))


def design_dual(
    alpha: float | None = None, *, d: float | None = None, family: str = "poly", degree: int | None = None
) -> Dual:
    """A dual with a prescribed alpha (or consistent for S^(d-1): alpha = (d - 1) / 2), as the paper's d-opt and
    sine_a: family "poly" gives k = lam rho + (1 - lam) rho^m (degree m: by default the one for which lam = 1/2
    is closest, m = 2^(1 + 1/alpha) - 1, e.g. 3d_opt, 2d_opt), family "sine" gives sinh(a rho) / sinh(a)."""
    if (alpha is None) == (d is None):
        raise ValueError("alpha: give exactly one of alpha and d")
    if d is not None:
        if not (isinstance(d, (int, float)) and math.isfinite(d) and d > 1):
            raise ValueError(f"d: must be a number > 1, got {d!r}")
        alpha = (d - 1) / 2
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and 0.01 <= alpha <= 50):
        raise ValueError(f"alpha: must be in [0.01, 50], got {alpha!r}")
    if family == "sine":
        f = lambda a: math.log(math.sinh(a) / a) / math.log(a / math.tanh(a)) - alpha
        a = _brentq(f, 1e-3, 700.0, xtol=1e-14)
        return _sine(a)
    if family != "poly":
        raise ValueError(f"family: must be 'poly' or 'sine', got {family!r}")
    if degree is None:
        degree = max(2, round(2 ** (1 + 1 / alpha) - 1))
        while 1 / (degree - 1) >= alpha:
            degree += 1
    if not isinstance(degree, int) or degree < 2 or degree > 64:
        raise ValueError(f"degree: must be an integer in [2, 64], got {degree!r}")
    if 1 / (degree - 1) >= alpha:
        raise ValueError(
            f"degree: lam rho + (1 - lam) rho^{degree} reaches only alpha > 1/{degree - 1}; "
            f"alpha = {alpha} needs a degree above {1 + 1 / alpha:.3g}"
        )
    lam = _brentq(lambda x: _poly_alpha(x, degree) - alpha, 1e-300, 1 - 1e-12, xtol=1e-16, rtol=1e-15)
    b = np.zeros(degree + 1)
    b[1], b[degree] = lam, 1 - lam
    return dual_from_series(b, f"designed(alpha={alpha:g}, rho^{degree})")


# ---------------------------------------------------------------- Koenigs / Poincare series at 0


@dataclass(frozen=True)
class _Koenigs:
    """Series at 0 of sigma (sigma o k = lam sigma), psi = sigma^{-1} (psi(lam t) = k(psi(t))), psi' and
    Xi(t) = sum_{q>=2} e_q (lam t)^(q-1) / (1 - lam^(q-1)) with psi / psi' = t + sum_q e_q t^q; radius: |rho| where
    all of them are accurate to 1e-13 (checked against the functional equations)."""

    lam: float
    sigma: np.ndarray
    psi_t: np.ndarray  # psi(t) / t
    dpsi: np.ndarray
    xi: np.ndarray
    radius: float


@functools.lru_cache(maxsize=64)
def _koenigs(dual: Dual, n: int = SERIES_TERMS) -> _Koenigs:
    b = np.zeros(n + 1)
    b[: min(n + 1, len(dual.coef))] = dual.coef[: n + 1]
    lam = b[1]
    powers = [np.eye(1, n + 1, 0)[0], b.copy()]  # k^j truncated
    for _ in range(2, n + 1):
        powers.append(np.convolve(powers[-1], b)[: n + 1])
    P = np.asarray(powers)  # P[j, m] = [k^j]_m
    c = np.zeros(n + 1)
    c[1] = 1.0
    for m in range(2, n + 1):
        c[m] = np.dot(c[1:m], P[1:m, m]) / (lam - lam**m)
    d = np.zeros(n + 1)
    d[1] = 1.0
    Q = np.zeros((n + 1, n + 1))  # Q[j, m] = [psi^j]_m
    Q[1, 1] = 1.0
    for m in range(2, n + 1):
        for j in range(2, m + 1):
            Q[j, m] = np.dot(d[1 : m - j + 2], Q[j - 1, m - 1 : j - 2 : -1])
        d[m] = np.dot(b[2 : m + 1], Q[2 : m + 1, m]) / (lam**m - lam)
        Q[1, m] = d[m]
    dpsi = d[1:] * np.arange(1, n + 1)  # psi'(t) coefficients
    h = np.zeros(n + 1)  # psi / psi'
    for m in range(1, n + 1):
        h[m] = d[m] - np.dot(h[1:m], dpsi[m - 1 : 0 : -1])
    q = np.arange(2, n + 1)
    xi = np.zeros(n)
    xi[q - 1] = h[q] * lam ** (q - 1) / (1 - lam ** (q - 1))
    sig, psi_t = c, d[1:]
    radius = 0.0
    for r in (0.5, 0.35, 0.25, 0.18, 0.125, 0.09, 0.06, 0.04, 0.03, 0.02, 0.014, 0.01, 0.007, 0.005, 0.0035, 0.0025):
        rr = np.array([r, r / 2, -r, -r / 2])
        s = _horner(sig, rr)
        ks = _horner(sig, dual.k(rr))
        back = s * _horner(psi_t, s)
        tails = [
            np.max(np.abs(sig[-4:])) * r ** (n - 3),
            np.max(np.abs(psi_t[-4:])) * np.max(np.abs(s)) ** (n - 4),
            np.max(np.abs(xi[-4:])) * np.max(np.abs(s)) ** (n - 4),
        ]
        if (
            np.max(np.abs(ks - lam * s) / np.abs(lam * s)) < 1e-13
            and np.max(np.abs(back - rr) / np.abs(rr)) < 1e-13
            and max(tails) < 1e-15
            and np.all(np.diff(s[[3, 1, 0]]) > 0)
        ):
            radius = r
            break
    if radius == 0.0:
        raise ValueError(f"activation: the Koenigs series of {dual.name!r} at 0 does not converge (k'(0) = {lam:.3g})")
    # exit where a layer (~40 ns an entry) costs about what it saves in series terms (~10 ns a term)
    best, cost = radius, math.inf
    for j in range(10):
        r = radius / 2**j
        size = np.abs(sig) * r ** np.arange(n + 1)
        terms = int(np.flatnonzero(size > 1e-18 * size.max())[-1]) + 1
        c = 40.0 * j * math.log(2) / -math.log(lam) + 10.0 * terms
        if c < cost:
            best, cost = r, c
    return _Koenigs(lam, sig, psi_t, dpsi, xi, best)


def koenigs_log(dual, rho, delta=None) -> tuple[np.ndarray, np.ndarray]:
    """(sign, log|sigma(rho)|) of the Koenigs eigenfunction sigma = lim k^L / lambda^L (singular duals; module doc),
    +inf at |rho| = 1."""
    d = get_dual(dual)
    if regime(d).kind != "singular":
        raise ValueError(f"activation: {d.name!r} is not singular (k(0) = {d.lambda0:.3g}, k'(0) = {d.lam:.3g})")
    rho = np.asarray(rho, np.float64)
    flow = _flow(
        d,
        np.sign(rho),
        np.abs(rho),
        1 - np.abs(rho) if delta is None else np.asarray(delta, np.float64),
        depths=(),
        infinite=True,
        ntk=False,
    )
    s, key = flow.limit()
    return s.reshape(rho.shape), key.reshape(rho.shape)


# ---------------------------------------------------------------- signed log helpers


def _slog_add(s1, l1, s2, l2):
    """(sign, log|.|) of s1 e^l1 + s2 e^l2."""
    hi = np.maximum(l1, l2)
    lo = np.minimum(l1, l2)
    first = l1 >= l2
    s_hi, s_lo = np.where(first, s1, s2), np.where(first, s2, s1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(np.isfinite(hi), np.exp(lo - hi), 0.0) * s_hi * s_lo
        out = hi + np.log1p(np.where(ratio <= -1, -1.0, ratio))
    sign = np.where(ratio <= -1, 0.0, s_hi)
    return np.where(s_hi == 0, s_lo, sign), np.where(s_hi == 0, lo, np.where(ratio <= -1, -np.inf, out))


def diagonal_log_ntk(dual, depth: float) -> float:
    """log Theta_L(1) = log((mu^(L+1) - 1) / (mu - 1)) (L + 1 when mu = 1), the NTK of a point with itself."""
    mu = get_dual(dual).mu
    if math.isinf(depth):
        return math.inf
    n = depth + 1
    if abs(mu - 1) < 1e-14:
        return math.log(n)
    lm = math.log(mu)
    if mu > 1:
        return n * lm + math.log(-math.expm1(-n * lm)) - math.log(mu - 1)
    return math.log(-math.expm1(n * lm)) - math.log(1 - mu)


# ---------------------------------------------------------------- the depth flow of kernel entries


class Layer(NamedTuple):
    """Kernel entries at one depth: NNGP and NTK as (sign, log|.|); `lcomp` = log(1 - NNGP) and `lcomp_ntk` =
    log(1 - NTK / NTK(1)) when those are the accurate forms (duals whose correlations all tend to 1); `key` orders
    entries once exp(log) underflows (1-NN duals)."""

    s_nngp: np.ndarray
    l_nngp: np.ndarray
    s_ntk: np.ndarray | None
    l_ntk: np.ndarray | None
    lcomp: np.ndarray | None = None
    key: np.ndarray | None = None
    lcomp_ntk: np.ndarray | None = None


def _flow(dual: Dual, sg, ab, dl, depths: Sequence[int], infinite: bool, ntk: bool):
    kind = regime(dual).kind
    if kind == "linear":
        return _LinearFlow(dual, sg, ab, dl, ntk)
    if kind == "majority" and regime(dual).fixed_point == 1.0:
        return _TableFlow(dual, sg, ab, dl, depths, ntk)
    return _Flow(dual, sg, ab, dl, depths, infinite, ntk)


class _LinearFlow:
    def __init__(self, dual, sg, ab, dl, ntk):
        self.sg, self.ab, self.ntk, self.notes = sg, ab, ntk, []
        self.dual = dual

    def at(self, L):
        with np.errstate(divide="ignore"):
            lr = np.log(self.ab)
        return Layer(self.sg, lr, self.sg if self.ntk else None, lr + math.log(L + 1) if self.ntk else None)

    def limit(self):
        with np.errstate(divide="ignore"):
            return self.sg, np.log(self.ab)


class _LastDepth:
    """`at(L)` of the iterated flows: `_at(L)`, with the last depth asked cached (the classifier asks it twice)."""

    _last: tuple[int, Layer] | None = None

    def _at(self, L: int) -> Layer:
        raise NotImplementedError

    def at(self, L: int) -> Layer:
        if self._last is None or self._last[0] != L:
            self._last = (L, self._at(L))
        return self._last[1]


class _Flow(_LastDepth):
    """Entries (sign, |rho_0|, 1 - |rho_0|) iterated layer by layer until each reaches its exact tail (module doc):
    rho_l and Theta_l as floats (1 - |rho_l| carried separately near +-1), log|rho_l| and Theta_l / rho_l in the
    log zone of duals with b_0 = b_1 = 0. Processed in chunks of CHUNK entries (cache-sized), an entry leaving its
    chunk's loop at its exit layer. Entries with |rho_0| = 1 exactly (a point with itself or, for an even or odd k,
    its antipode) are closed-form."""

    CHUNK = 1 << 17

    def __init__(self, dual: Dual, sg, ab, dl, depths: Sequence[int], infinite: bool, ntk: bool):
        self.dual, self.ntk, self.notes = dual, ntk, []
        self.kind = regime(dual).kind
        sg, ab, dl = (np.asarray(v, np.float64).ravel() for v in (sg, ab, dl))
        self.n = n = sg.size
        self.depths = sorted({int(L) for L in depths})
        self.infinite = infinite
        unit = dl <= 0.0
        if dual.parity is None:
            unit &= sg > 0
        self.unit, self.unit_sign = unit, sg.copy()
        self.J = np.full(n, -1, np.int64)  # exit layer (-1: not exited)
        self.tail: dict[str, np.ndarray] = {}
        lam = dual.lam
        self.loglam = math.log(lam) if lam > 0 else -math.inf
        if self.kind == "singular":
            self.ks = _koenigs(dual)
        if self.kind == "nearest":
            m, bm = dual.order, dual.coef[dual.order]
            self.m, self.beta = m, math.log(bm) / (m - 1)
            c = dual.coef[m:] / bm
            self.g = c  # k(r) / (b_m r^m) = sum_j g_j r^j
            self.g1 = c * np.arange(m, m + len(c)) / m  # k'(r) / (m b_m r^(m-1))
            self.log_tiny = math.log(1e-17 / max(1.0, float(np.sum(self.g1[1:]))))
        if self.kind == "majority":
            self.star = regime(dual).fixed_point
            self.kappa = float(dual.dk(np.float64(self.star)))
            self.tol = 1e-12  # then rho_L = rho* + kappa^(L - J) (rho_J - rho*) to O(1e-24)
        self.raw_rho, self.raw_th = np.zeros(n), np.zeros(n)
        if self.kind == "nearest":
            self.raw_small, self.raw_lr, self.raw_sg = np.zeros(n, bool), np.zeros(n), np.zeros(n)
        parts: dict[int, list] = {L: [] for L in self.depths}
        todo = np.flatnonzero(~unit)
        left = 0
        for start in range(0, todo.size, self.CHUNK):
            idx = todo[start : start + self.CHUNK]
            left += self._run(idx, sg[idx] * ab[idx], dl[idx], parts)
        self._tails()
        if left:
            self.notes.append(
                f"{left} entries had not reached their exact tail after {MAX_LAYERS} layers; "
                "their limit is extrapolated from there"
            )
        self.snap = {
            L: tuple(np.concatenate(col) if col else np.zeros(0) for col in zip(*p)) if p else None
            for L, p in parts.items()
        }

    # -- one layer
    def _step(self, rho, dl, th, sgn, lr, small):
        d = self.dual
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            v = d.k(rho)
            w = d.dk(rho) if self.ntk else None
            ndl = 1.0 - np.abs(v)
            near = dl < NEAR
            if d.parity is None:
                near &= rho > 0
            i = np.flatnonzero(near)
            if i.size:
                c = d.kc(dl[i])
                v[i] = (np.sign(rho[i]) if d.parity == "odd" else 1.0) * (1.0 - c)
                ndl[i] = c
            if d.at_minus_one is not None:
                i = np.flatnonzero((dl < NEAR) & (rho < 0))
                if i.size:  # k(-1 + eps) by its Taylor series in eps = 1 - |rho| (no cancellation)
                    t = d.at_minus_one
                    v[i] = _horner(t, dl[i])
                    ndl[i] = 1.0 - np.abs(v[i])
                    if self.ntk:
                        assert w is not None  # computed whenever self.ntk
                        w[i] = _horner(t[1:] * np.arange(1, len(t)), dl[i])
            old = th
            if self.ntk:
                th = v + th * w
            if small is not None:
                i = np.flatnonzero(small)
                if i.size:  # log zone: log|rho| and T = Theta / rho
                    m = self.m
                    r = sgn[i] * np.exp(lr[i])
                    gv = _horner(self.g, r)
                    lr[i] = math.log(self.dual.coef[m]) + m * lr[i] + np.log(np.abs(gv))
                    sgn[i] = sgn[i] ** m * np.sign(gv)
                    if self.ntk:  # T' = 1 + T rho k'(rho) / k(rho) = 1 + m T g1(r) / g(r)
                        th[i] = 1.0 + m * old[i] * _horner(self.g1, r) / gv
                    v[i], ndl[i] = 0.0, 1.0
                enter = ~small & (np.abs(v) < SMALL)
                j = np.flatnonzero(enter)
                if j.size:
                    sgn[j], lr[j] = np.sign(v[j]), np.log(np.abs(v[j]))
                    if self.ntk:
                        th[j] = th[j] / v[j]
                    small = small | enter
                k = np.flatnonzero(~small)
                sgn[k] = np.sign(v[k])
        return v, ndl, th, sgn, lr, small

    # -- exits to the exact tails
    def _exit(self, layer, idx, rho, dl, th, sgn, lr, small, alive, force=False):
        """Mark the entries that reached their exact tail at `layer` and keep their state (`_tails` uses it)."""
        if force:
            out = alive.copy()
        elif self.kind == "singular":
            out = alive & (np.abs(rho) <= self.ks.radius) & (dl >= NEAR)
        elif self.kind == "nearest":
            out = alive & small & (lr <= self.log_tiny)
        else:
            out = alive & (np.abs(rho - self.star) <= self.tol)
        i = np.flatnonzero(out)
        if i.size:
            e = idx[i]
            self.J[e] = layer
            self.raw_rho[e], self.raw_th[e] = rho[i], th[i]
            if small is not None:
                self.raw_small[e], self.raw_lr[e], self.raw_sg[e] = small[i], lr[i], sgn[i]
        return out

    def _tails(self):
        """Depth-independent tail constants of every exited entry (module doc): log|sigma|, sign and the NTK constant
        R (singular); the Boettcher coordinate B and U (b_0 = b_1 = 0); Theta at exit (fixed point rho*)."""
        e = np.flatnonzero(self.J >= 0)
        J, rho, th = self.J[e], self.raw_rho[e], self.raw_th[e]
        t = self.tail = {}
        full = lambda v: _scatter(self.n, e, v)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.kind == "singular":
                ks = self.ks
                s = _horner_fit(ks.sigma, rho)
                t["lsig"], t["ssig"] = full(np.log(np.abs(s)) - J * self.loglam), full(np.sign(s))
                if self.ntk:
                    zero = s == 0
                    R = th / np.where(zero, 1.0, s * _horner_fit(ks.dpsi, s)) - J + _horner_fit(ks.xi, s)
                    t["R"], t["T0"] = full(np.where(zero, 0.0, R)), full(th)
            elif self.kind == "nearest":
                m, small = self.m, self.raw_small[e]
                lri = np.where(small, self.raw_lr[e], np.log(np.abs(rho)))
                t["B"] = full((lri + self.beta) * np.exp(-J * math.log(m)))
                t["sg"] = full(np.where(small, self.raw_sg[e], np.sign(rho)))
                if self.ntk:
                    T = np.where(small, th, th / rho)
                    t["U"] = full((T + 1 / (m - 1)) * np.exp(-J * math.log(m)))
            else:
                t["e0"] = full(rho - self.star)
                if self.ntk:
                    t["T0"] = full(th)
        del self.raw_rho, self.raw_th

    def _run(self, idx, rho, dl, parts) -> int:
        """Iterate one chunk; returns how many entries were forced out at the layer cap."""
        th = rho.copy()
        nearest = self.kind == "nearest"
        small = np.zeros(rho.size, bool) if nearest else None
        sgn = np.sign(rho) if nearest else None
        lr = np.zeros(rho.size) if nearest else None
        alive = np.ones(rho.size, bool)
        last = self.depths[-1] if self.depths else 0
        cap = max(MAX_LAYERS, last) if self.infinite else last
        layer = 0
        while True:
            alive &= ~self._exit(layer, idx, rho, dl, th, sgn, lr, small, alive)
            if layer in parts:
                parts[layer].append(self._snapshot(idx, rho, dl, th, sgn, lr, small, alive))
            count = int(alive.sum())
            if count == 0 or layer >= cap:
                break
            if count < 0.75 * alive.size:
                keep = np.flatnonzero(alive)
                idx, rho, dl, th = idx[keep], rho[keep], dl[keep], th[keep]
                if nearest:
                    assert small is not None and sgn is not None and lr is not None  # set when nearest
                    small, sgn, lr = small[keep], sgn[keep], lr[keep]
                alive = np.ones(keep.size, bool)
            rho, dl, th, sgn, lr, small = self._step(rho, dl, th, sgn, lr, small)
            layer += 1
        if count and self.infinite:
            self._exit(layer, idx, rho, dl, th, sgn, lr, small, alive, force=True)
            return count
        return 0

    def _snapshot(self, idx, rho, dl, th, sgn, lr, small, alive):
        i = np.flatnonzero(alive)
        with np.errstate(divide="ignore", invalid="ignore"):
            r, d = rho[i], dl[i]
            lK = np.where(d < NEAR, np.log1p(-d), np.log(np.abs(r)))
            sK = np.sign(r)
            if small is not None:
                s = small[i]
                lK = np.where(s, lr[i], lK)
                sK = np.where(s, sgn[i], sK)
            sT = lT = np.zeros(0)
            if self.ntk:
                t = th[i]
                lT, sT = np.log(np.abs(t)), np.sign(t)
                if small is not None:
                    lT = np.where(s, lK + lT, lT)
                    sT = np.where(s, sK * sT, sT)
        return idx[i].astype(np.int32), sK.astype(np.int8), lK, sT.astype(np.int8), lT  # 22 bytes an entry

    # -- values at a depth
    def _at(self, L: int) -> Layer:
        n, t = self.n, self.tail
        sK, lK = np.zeros(n), np.full(n, -np.inf)
        sT, lT = np.zeros(n), np.full(n, -np.inf)  # returned only when self.ntk
        key = None
        done = (self.J >= 0) & (self.J <= L)
        e = np.flatnonzero(done)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.kind == "singular" and e.size:
                ks = self.ks
                ltl = L * self.loglam + t["lsig"][e]
                tt = t["ssig"][e] * np.exp(ltl)
                sK[e], lK[e] = t["ssig"][e], ltl + np.log(_horner_fit(ks.psi_t, tt))
                if self.ntk:
                    br = L + t["R"][e] - _horner_fit(ks.xi, tt)
                    val = ltl + np.log(_horner_fit(ks.dpsi, tt)) + np.log(np.abs(br))
                    zero = t["ssig"][e] == 0
                    T0 = t["T0"][e]
                    lT[e] = np.where(zero, np.log(np.abs(T0)) + (L - self.J[e]) * self.loglam, val)
                    sT[e] = np.where(zero, np.sign(T0), t["ssig"][e] * np.sign(br))
            elif self.kind == "nearest" and e.size:
                m = self.m
                mL = math.exp(L * math.log(m)) if L * math.log(m) < 700 else math.inf
                B = t["B"][e]
                lK[e] = np.where(B == 0, 0.0, B * mL) - self.beta
                sK[e] = np.where((m % 2 == 1) | (self.J[e] == L), t["sg"][e], 1.0)
                key = np.full(n, -np.inf)
                key[e] = B
                if self.ntk:
                    u = t["U"][e] - (1 / (m - 1)) * math.exp(-L * math.log(m))
                    lT[e] = lK[e] + L * math.log(m) + np.log(np.abs(u))
                    sT[e] = sK[e] * np.sign(u)
            elif e.size:
                v = self.star + self.kappa ** (L - self.J[e]) * t["e0"][e]
                sK[e], lK[e] = np.sign(v), np.log(np.abs(v))
                if self.ntk:  # Theta* = rho* / (1 - kappa); corrections of the order of |rho_J - rho*| <= 1e-12
                    star = self.star / (1 - self.kappa)
                    v = star + self.kappa ** (L - self.J[e]) * (t["T0"][e] - star)
                    sT[e], lT[e] = np.sign(v), np.log(np.abs(v))
        snap = self.snap.get(L)
        if snap is not None and snap[0].size:
            idx = snap[0].astype(np.int64)
            sK[idx], lK[idx] = snap[1], snap[2]
            if self.ntk:
                sT[idx], lT[idx] = snap[3], snap[4]
        elif L not in self.snap and np.any(~done & ~self.unit):
            raise ValueError(f"depth: {L} was not among the depths this flow was computed for")
        u = self.unit
        if u.any():
            flip = self.unit_sign[u] < 0
            odd_sign = np.where(flip & ((self.dual.parity == "odd") | (L == 0)), -1.0, 1.0)
            sK[u], lK[u] = odd_sign, 0.0
            if self.ntk:
                sT[u], lT[u] = odd_sign, diagonal_log_ntk(self.dual, L)
            if key is not None:
                key[u] = 0.0
        return Layer(sK, lK, sT if self.ntk else None, lT if self.ntk else None, None, key)

    def limit(self) -> tuple[np.ndarray, np.ndarray]:
        """(sign, key) of the L = infinity classifier's weight per entry: log|sigma| (singular), the Boettcher
        coordinate (nearest; compare within a column only) or 0 (majority); +inf for |rho_0| = 1."""
        n, t = self.n, self.tail
        if self.kind == "singular":
            s, key = t.get("ssig", np.zeros(n)).copy(), t.get("lsig", np.full(n, -np.inf)).copy()
        elif self.kind == "nearest":
            s = np.where(self.m % 2 == 1, t.get("sg", np.zeros(n)), 1.0)
            key = t.get("B", np.full(n, -np.inf)).copy()
        else:
            s, key = np.ones(n), np.zeros(n)
        u = self.unit
        s[u] = np.where((self.unit_sign[u] < 0) & (self.dual.parity == "odd"), -1.0, 1.0)
        key[u] = np.inf
        return s, key


def _scatter(n, idx, values):
    out = np.zeros(n)
    out[idx] = values
    return out


def _terms(c, top: float) -> int:
    """How many terms of sum_k c_k x^k matter for |x| <= top (|c_k| top^k above 1e-18 of the largest)."""
    if top == 0.0:
        return 1
    with np.errstate(divide="ignore", over="ignore"):
        size = np.abs(c) * np.exp(np.arange(len(c)) * math.log(top))
    big = np.flatnonzero(size > 1e-18 * np.max(size))
    return int(big[-1]) + 1 if big.size else 1


def _horner_fit(c, x):
    """sum_k c_k x^k with, for each of three bands of |x|, only the terms that matter there."""
    a = np.abs(x)
    out = np.full(np.shape(x), np.nan)
    lo = 0.0
    for hi in (1e-6, 1e-2, np.inf):
        band = (a >= lo) & (a < hi) if np.isfinite(hi) else a >= lo
        i = np.flatnonzero(band)
        if i.size:
            xi = x[i]
            out[i] = _horner(c[: _terms(c, float(np.max(np.abs(xi))))], xi)
        lo = hi
    return out


# ---------------------------------------------------------------- duals with b_0 > 0 and k'(1) <= 1: a table in 1 - rho


def _lse3(terms, xp):
    """(sign, log|.|) of sum_i s_i e^(l_i) for three (s_i, l_i) pairs (-inf logs are zeros)."""
    top = terms[0][1]
    for _, lg in terms[1:]:
        top = xp.maximum(top, lg)
    ref = xp.where(xp.isfinite(top), top, 0.0)
    v = sum(sg * xp.exp(lg - ref) for sg, lg in terms)
    return xp.sign(v), ref + xp.log(xp.abs(v))


@functools.lru_cache(maxsize=16)
def _table_program(dual: Dual):
    """A jitted advance by `steps` layers of (log(1 - rho_l), log r_l, Theta_l(1)), r_l = 1 - Theta_l / Theta_l(1),
    in float64 (enable_x64): 1 - rho' = q(delta) delta with q = (1 - k(1 - delta)) / delta, and
    r' (1 + mu T) = delta' + mu r T + (1 - r) T (k'(1) - k'(rho)), every term carried in logs."""
    import jax
    import jax.numpy as jnp

    mu, d2 = dual.mu, dual.d2

    def layer(_, state):
        ldl, lr, T = state
        dl = jnp.exp(ldl)
        tiny = dl < 1e-300
        safe = jnp.where(tiny, 1.0, dl)
        new = ldl + jnp.log(jnp.where(tiny, mu, dual.kc(safe, jnp) / safe))
        le = ldl + jnp.log(jnp.where(tiny, d2, dual.dkc(safe, jnp) / safe))
        r = jnp.exp(lr)
        sign, lr_new = _lse3(
            [
                (1.0, new),
                (1.0, math.log(mu) + lr + jnp.log(T)),
                (jnp.sign(1.0 - r), jnp.log(jnp.abs(1.0 - r)) + jnp.log(T) + le),
            ],
            jnp,
        )
        return new, lr_new - jnp.log(1.0 + mu * T), 1.0 + mu * T

    @jax.jit
    def advance(ldl, lr, T, steps):
        return jax.lax.fori_loop(0, steps, layer, (ldl, lr, T))

    return advance


TABLE_THETA = 1e-12  # smallest angle of the table (smaller angles are clamped to it)
_TABLES: dict = {}  # dual -> {depth: (log(1 - rho_L), log r_L, Theta_L(1)) on the table's nodes}
_TABLES_LOCK = threading.Lock()


def _table_nodes(dual: Dual) -> np.ndarray:
    """log theta_0 of the table: TABLE_NODES values uniform from log TABLE_THETA to log pi (pi / 2 for an even dual)."""
    top = math.pi / 2 if dual.parity == "even" else math.pi
    return np.linspace(math.log(TABLE_THETA), math.log(top), TABLE_NODES)


def _table_at(dual: Dual, L: int) -> tuple[np.ndarray, np.ndarray]:
    """(log(1 - rho_L), log(1 - Theta_L / Theta_L(1))) on the table's nodes (module doc: duals with b_0 > 0 and
    k'(1) <= 1), continued from the deepest depth already computed below L (cached per dual)."""
    import jax
    import jax.numpy as jnp

    with _TABLES_LOCK:
        snaps = _TABLES.setdefault(dual, {})
        if len(_TABLES) > 8:
            _TABLES.pop(next(iter(_TABLES)))
        if L not in snaps:
            start = max((d for d in snaps if d <= L), default=0)
            with jax.enable_x64(True):
                if start:
                    state = tuple(jnp.asarray(v) for v in snaps[start])
                else:
                    theta = np.exp(_table_nodes(dual))
                    ldl = jnp.asarray(np.log(2 * np.sin(theta / 2) ** 2))
                    state = (ldl, ldl, jnp.asarray(1.0, jnp.float64))  # r_0 = 1 - rho_0, Theta_0(1) = 1
                if L > start:
                    state = _table_program(dual)(*state, L - start)
                snaps[L] = tuple(np.asarray(v) for v in state)
        ldl, lr, _ = snaps[L]
    return ldl, lr


class _TableFlow(_LastDepth):
    """Duals with b_0 > 0 and k'(1) <= 1 (ReLU, |x|, sigmoid): every correlation tends to 1 with no closed-form tail,
    so log(1 - rho_l) and log(1 - Theta_l / Theta_l(1)) are iterated layer by layer (JAX, float64) on TABLE_NODES
    angles (uniform in log theta_0, shared by every flow of the dual) and cubic-spline interpolated to the entries;
    the classifiers then work with these complements (`DepthClassifier._comp_scores`)."""

    def __init__(self, dual: Dual, sg, ab, dl, depths, ntk):
        self.dual, self.ntk, self.notes = dual, ntk, []
        sg, ab, dl = (np.asarray(v, np.float64).ravel() for v in (sg, ab, dl))
        self.n = sg.size
        self.rho0 = sg * ab
        even = dual.parity == "even"
        theta = _theta(dl, np) if even else np.where(sg >= 0, _theta(dl, np), math.pi - _theta(dl, np))
        self.unit = theta <= 0
        self.x = np.log(np.clip(theta, TABLE_THETA, math.pi))
        self.depths = tuple(sorted({int(L) for L in depths}))
        self.w = _table_nodes(dual)
        self.tab = {L: _table_at(dual, L) for L in self.depths if L > 0}

    def _at(self, L: int) -> Layer:
        with np.errstate(divide="ignore", invalid="ignore"):
            if L == 0:
                lcomp = np.log(1.0 - self.rho0)
                lcomp_ntk = lcomp
            else:
                ldl, lr = self.tab[L]
                lcomp = CubicSpline(self.w, ldl)(self.x)
                lcomp_ntk = CubicSpline(self.w, lr)(self.x)
            lcomp[self.unit] = -np.inf
            lcomp_ntk[self.unit] = -np.inf
            v = -np.expm1(lcomp)
            sK, lK = np.sign(v), np.log(np.abs(v))
            sT = lT = None
            if self.ntk:
                v = -np.expm1(lcomp_ntk)
                sT, lT = np.sign(v), np.log(np.abs(v)) + diagonal_log_ntk(self.dual, L)
        return Layer(sK, lK, sT, lT, lcomp, None, lcomp_ntk if self.ntk else None)

    def limit(self):
        key = np.zeros(self.n)
        key[self.unit] = np.inf
        return np.ones(self.n), key


# ---------------------------------------------------------------- pairs of points on the sphere


def to_sphere(x) -> np.ndarray:
    """x / ||x|| per row, float64 (refusing zero rows and non-finite values)."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"x: expected a non-empty (n, d) array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x: contains NaN or infinite values")
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norm == 0):
        raise ValueError(f"x: row {int(np.flatnonzero(norm[:, 0] == 0)[0])} is zero; points must lie on the sphere")
    return x / norm


def pair_geometry(x1, x2, block: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sign rho, |rho|, 1 - |rho|) for rho = <x1_i, x2_j> of unit rows; 1 - |rho| = min ||x1 -+ x2||^2 / 2 (no
    cancellation)."""
    n1, n2 = len(x1), len(x2)
    rho = np.clip(x1 @ x2.T, -1.0, 1.0)
    dl = np.empty((n1, n2))
    for i in range(0, n1, block):
        a = x1[i : i + block, None, :]
        minus = 0.5 * np.sum((a - x2[None]) ** 2, -1)
        plus = 0.5 * np.sum((a + x2[None]) ** 2, -1)
        dl[i : i + block] = np.minimum(minus, plus)
    dl = np.clip(dl, 0.0, 1.0)
    sg = np.where(rho >= 0, 1.0, -1.0)
    return sg, np.abs(rho), dl


# ---------------------------------------------------------------- classifiers


def _labels(score) -> np.ndarray:
    """sign with 0 -> +1 (the official code's `get_acc`), or argmax for one-hot scores."""
    if score.ndim == 2:
        return np.argmax(score, axis=1)
    return np.where(score < 0, -1, 1)


def _check_labels(y, n) -> np.ndarray:
    y = np.asarray(y)
    if y.shape[0] != n:
        raise ValueError(f"y_train: {y.shape[0]} labels for {n} points")
    if y.ndim == 1:
        if not np.all(np.isin(y, (-1, 1))):
            raise ValueError("y_train: labels must be -1 or +1 (or one-hot rows)")
        return y.astype(np.float64)
    return y.astype(np.float64)


def majority_vote(y_train, n_test: int) -> np.ndarray:
    """The label of the larger class for every test point (ties -> +1; the official code's `majority_vote`)."""
    y = np.asarray(y_train, np.float64)
    if y.ndim == 2:
        return np.full(n_test, int(np.argmax(y.sum(0))))
    return np.full(n_test, 1 if y.sum() >= 0 else -1)


def nearest_neighbour(x_train, y_train, x_test) -> np.ndarray:
    """1-NN: the label of the closest training point (largest <x_i, x> on the sphere)."""
    xt, xs = to_sphere(x_train), to_sphere(x_test)
    i = np.argmax(xt @ xs.T, axis=0)
    y = np.asarray(y_train)
    return np.argmax(y[i], 1) if y.ndim == 2 else y[i].astype(int)


def hilbert_classify(x_train, y_train, x_test, dim: int | None = None) -> np.ndarray:
    """Hilbert-kernel (Devroye et al. 1998) estimate sign(sum_i y_i ||x - x_i||^-(d-1)), d the ambient dimension
    (the official code's `devroye_classifier`); a test point equal to a training point takes its label."""
    xt, xs = to_sphere(x_train), to_sphere(x_test)
    d = xt.shape[1] if dim is None else dim
    y = _check_labels(y_train, len(xt))
    out = np.empty(len(xs), int) if y.ndim == 1 else np.empty(len(xs), int)
    for i in range(0, len(xs), 512):
        dist2 = np.sum((xt[:, None, :] - xs[None, i : i + 512, :]) ** 2, -1)
        with np.errstate(divide="ignore"):
            lw = -(d - 1) / 2 * np.log(dist2)
        out[i : i + 512] = _labels(_weighted_vote(y, np.ones_like(lw), lw))
    return out


def _weighted_vote(y, s, key):
    """sum_i y_i s_i exp(key_i - max_i key_i) per column (+inf keys: only those count)."""
    top = np.max(key, axis=0, keepdims=True)
    with np.errstate(invalid="ignore"):
        w = np.where(np.isposinf(top), np.isposinf(key).astype(float), np.exp(key - np.where(np.isfinite(top), top, 0)))
    w = np.where(np.isneginf(top), 0.0, w) * s
    return (y.T @ w).T if y.ndim == 2 else y @ w


_BLAS = ThreadpoolController()


def _solve(K, y, notes: list, what: str = "K(X, X)", definite: bool = True) -> np.ndarray:
    """K^{-1} y for a symmetric K: Cholesky (when `definite`), else a symmetric indefinite solve, else least squares
    for a singular K; what happened is noted. One BLAS thread: on a shared 2-core machine OpenBLAS's threaded potrf
    was 30x slower (2.8 s against 0.08 s at n = 2000)."""
    with warnings.catch_warnings(record=True) as caught, _BLAS.limit(limits=1, user_api="blas"):
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        try:
            if not definite:
                raise np.linalg.LinAlgError
            out = scipy.linalg.solve(K, y, assume_a="pos", check_finite=False)
        except np.linalg.LinAlgError:
            if definite:
                notes.append(f"{what} is not positive definite to float64 precision: solved as a symmetric system")
            try:
                out = scipy.linalg.solve(K, y, assume_a="sym", check_finite=False)
            except np.linalg.LinAlgError:
                notes.append(f"{what} is singular to float64 precision: minimum-norm least-squares solution")
                out = np.linalg.lstsq(K, y, rcond=None)[0]
    if any(issubclass(w.category, scipy.linalg.LinAlgWarning) for w in caught):
        notes.append(
            f"{what} is ill-conditioned (reciprocal condition below float64 epsilon): the ridgeless "
            "solution is not determined to machine precision"
        )
    return out


def find_duplicates(x, parity: str | None = None, tol: float = DUPLICATE) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, with 1 - <x_i, x_j> < tol (and 1 + <x_i, x_j> < tol for an even or odd dual)."""
    x = to_sphere(x)
    sg, _, dl = pair_geometry(x, x)
    close = dl < tol
    if parity is None:
        close &= sg > 0
    i, j = np.nonzero(np.triu(close, 1))
    return list(zip(i.tolist(), j.tolist()))


class DepthClassifier:
    """Ridgeless NNGP and NTK classifiers of one dual at several depths and at L = infinity (the paper's setting):
    the entries of K(X, X) and K(X, x) flow through the layers once (`workbench.infinite_depth` module doc) and any
    depth in `depths` is then read off. `duplicates`: "refuse" (ValueError naming x_train), "drop" (keep the first
    of each duplicate pair) or "jitter" (move the later point by 1e-6 along a random tangent); what was done is in
    `notes`."""

    def __init__(
        self,
        dual,
        x_train,
        y_train,
        x_test,
        depths: Sequence[float] = (),
        *,
        ntk: bool = True,
        limit: bool = True,
        duplicates: str = "refuse",
        seed: int = 0,
    ):
        self.dual = get_dual(dual)
        self.regime = regime(self.dual)
        self.notes: list[str] = []
        self.solve_notes: dict[tuple[int, str], list[str]] = {}
        xt, xs = to_sphere(x_train), to_sphere(x_test)
        if xt.shape[1] != xs.shape[1]:
            raise ValueError(f"x_test: {xs.shape[1]} coordinates, x_train has {xt.shape[1]}")
        y = _check_labels(y_train, len(xt))
        finite = []
        for L in depths:
            if not (
                isinstance(L, (int, float, np.integer, np.floating))
                and (math.isinf(L) or 0 <= L <= 10**6)
                and (math.isinf(L) or float(L).is_integer())
            ):
                raise ValueError(f"depth: must be an integer in [0, 1e6] or infinity, got {L!r}")
            if not math.isinf(L):
                finite.append(int(L))
        self.depths = sorted(set(finite))
        self.ntk = ntk
        n, m = len(xt), len(xs)
        require(
            (n * (n - 1) / 2 + n * m) * (160 + 22 * len(self.depths)),
            "n_train",
            f"{n} training and {m} test points at {len(self.depths)} depths",
            "use fewer points or depths",
        )
        geometry = pair_geometry(xt, xt)
        xt, y, changed = self._deduplicate(xt, y, geometry, duplicates, seed)
        if changed:
            geometry = pair_geometry(xt, xt)
        self.x_train, self.y, self.x_test = xt, y, xs
        n = len(xt)
        self._iu = iu = np.triu_indices(n, 1)
        sg, ab, dl = (v[iu] for v in geometry)
        self.train = _flow(self.dual, sg, ab, dl, self.depths, False, ntk) if n > 1 else None
        sg, ab, dl = pair_geometry(xt, xs)
        self.test = _flow(self.dual, sg.ravel(), ab.ravel(), dl.ravel(), self.depths, limit, ntk)
        self.has_limit = limit
        self.notes += (self.train.notes if self.train else []) + self.test.notes

    def _deduplicate(self, x, y, geometry, how, seed):
        if how not in ("refuse", "drop", "jitter"):
            raise ValueError(f"duplicates: must be 'refuse', 'drop' or 'jitter', got {how!r}")
        sg, _, dl = geometry
        close = dl < DUPLICATE
        if self.dual.parity is None:
            close &= sg > 0
        i, j = np.nonzero(np.triu(close, 1))
        if not i.size:
            return x, y, False
        if how == "refuse":
            raise ValueError(
                f"x_train: points {i[0]} and {j[0]} coincide on the sphere (1 - |<x_i, x_j>| < "
                f"{DUPLICATE:g}{' up to sign' if self.dual.parity else ''}); {i.size} such pairs make "
                "K(X, X) singular: remove them or pass duplicates='drop' or 'jitter'"
            )
        later = np.unique(j)
        if how == "drop":
            keep = np.setdiff1d(np.arange(len(x)), later)
            self.notes.append(f"dropped {later.size} duplicate training points")
            return x[keep], y[keep], True
        rng = np.random.default_rng(seed)
        x = x.copy()
        for b in later:
            v = rng.normal(size=x.shape[1])
            v -= (v @ x[b]) * x[b]
            x[b] = x[b] + 1e-6 * v / np.linalg.norm(v)
            x[b] /= np.linalg.norm(x[b])
        self.notes.append(f"jittered {later.size} duplicate training points by 1e-6 along the sphere")
        return x, y, True

    def _matrices(self, L: int, kernel: str):
        n, m = len(self.x_train), len(self.x_test)
        te = self.test.at(L)
        tr = self.train.at(L) if self.train else None
        if te.lcomp is not None and kernel in ("nngp", "ntk"):
            if kernel == "ntk" and not self.ntk:
                raise ValueError("kernel: this classifier was built with ntk=False")
            pick = (lambda lay: lay.lcomp) if kernel == "nngp" else (lambda lay: lay.lcomp_ntk)
            return "comp", None if tr is None else pick(tr), pick(te)
        if kernel == "nngp":
            s_te, l_te, diag = te.s_nngp, te.l_nngp, 0.0
            s_tr, l_tr = (tr.s_nngp, tr.l_nngp) if tr else (None, None)
        elif kernel == "ntk":
            if not self.ntk:
                raise ValueError("kernel: this classifier was built with ntk=False")
            s_te, l_te, diag = te.s_ntk, te.l_ntk, diagonal_log_ntk(self.dual, L)
            s_tr, l_tr = (tr.s_ntk, tr.l_ntk) if tr else (None, None)
        else:
            raise ValueError(f"kernel: must be 'nngp' or 'ntk', got {kernel!r}")
        assert s_te is not None and l_te is not None  # the NTK entries exist when self.ntk
        K = np.eye(n)
        if tr is not None:
            assert s_tr is not None and l_tr is not None
            with np.errstate(over="ignore"):
                vals = s_tr * np.exp(l_tr - diag)
            K[self._iu] = vals
            K.T[self._iu] = vals
        return "log", K, (s_te.reshape(n, m), l_te.reshape(n, m), None if te.key is None else te.key.reshape(n, m))

    def scores(self, depth: float, kernel: str = "nngp") -> np.ndarray:
        """y^T K^{-1} K(X, x) per test point, up to a positive factor per test point (`limit_scores` at infinity)."""
        if math.isinf(depth):
            return self.limit_scores()
        L = int(depth)
        if L not in self.depths:
            raise ValueError(f"depth: {depth} is not among this classifier's depths {self.depths}")
        notes = self.solve_notes.setdefault((L, kernel), [])
        if self.regime.kind == "linear":  # K_L = rho (NNGP), (L + 1) rho (NTK): rank d, least squares
            return self.limit_scores()
        form, K, test = self._matrices(L, kernel)
        if form == "comp":
            return self._comp_scores(K, test, notes)
        s, l, key = test
        top = np.max(l, axis=0, keepdims=True)
        with np.errstate(invalid="ignore", over="ignore"):
            Kx = s * np.exp(l - np.where(np.isfinite(top), top, 0.0))
        Kx = np.where(np.isneginf(top), 0.0, Kx)
        alpha = _solve(K, self.y, notes)
        score = (alpha.T @ Kx).T if self.y.ndim == 2 else alpha @ Kx
        dead = np.isneginf(top[0])
        if dead.any() and key is not None:  # every weight underflowed: only the kernel's own order is left
            kd = key[:, dead]
            score[dead] = _weighted_vote(self.y, s[:, dead], np.where(kd == kd.max(0), 0.0, -np.inf))
        return score

    def _comp_scores(self, l_tr, l_te, notes: list) -> np.ndarray:
        """Scores from the complement Delta = 1 - K (K normalized to a unit diagonal; duals whose correlations all
        tend to 1), given as logs: with Delta = c D, d(x) = c e(x) (c the largest entry), u = D^{-1} 1, s = 1^T u,
        y^T K^{-1} k(x) = y^T D^{-1} e(x) - (y^T u)(1 - u^T e(x)) / (c - s)  (Sherman-Morrison on K = 11^T - Delta)."""
        n, m = len(self.x_train), len(self.x_test)
        top = max(
            float(np.max(l_te, initial=-np.inf)), float(np.max(l_tr, initial=-np.inf)) if l_tr is not None else -np.inf
        )
        top = top if np.isfinite(top) else 0.0
        D = np.zeros((n, n))
        if l_tr is not None:
            vals = np.exp(l_tr - top)
            D[self._iu] = vals
            D.T[self._iu] = vals
        e = np.exp(l_te.reshape(n, m) - top)
        ones = np.ones(n)
        sol = _solve(D, np.column_stack([ones, self.y]), notes, "1 - K(X, X)", definite=False)
        u, w = sol[:, 0], sol[:, 1:]
        s = ones @ u
        yu = self.y @ u if self.y.ndim == 1 else self.y.T @ u
        score = (w.T @ e) - np.outer(np.atleast_1d(yu), (1 - u @ e)) / (math.exp(top) - s)
        return score[0] if self.y.ndim == 1 else score.T

    def limit_scores(self) -> np.ndarray:
        """Scores of the L = infinity classifier of the dual's regime (majority / 1-NN / singular / linear)."""
        n, m = len(self.x_train), len(self.x_test)
        kind = self.regime.kind
        if not self.has_limit and kind != "linear":
            raise ValueError("depth: this classifier was built with limit=False")
        if kind == "linear":
            K = self.x_train @ self.x_train.T
            alpha = np.linalg.lstsq(K, self.y, rcond=None)[0]
            Kx = self.x_train @ self.x_test.T
            return (alpha.T @ Kx).T if self.y.ndim == 2 else alpha @ Kx
        s, key = self.test.limit()
        s, key = s.reshape(n, m), key.reshape(n, m)
        if kind == "nearest":
            key = np.where(key == key.max(0, keepdims=True), 0.0, -np.inf)
        return _weighted_vote(self.y, s, key)

    def labels(self, depth: float, kernel: str = "nngp") -> np.ndarray:
        """Predicted labels (+-1, or class indices for one-hot y) at `depth` (math.inf: the limit classifier)."""
        return _labels(self.scores(depth, kernel))

    def limit(self) -> np.ndarray:
        """Labels of the L = infinity classifier."""
        return _labels(self.limit_scores())

    def notes_for(self, depth: float, kernel: str = "nngp") -> list[str]:
        """What was done or found for the classifier at (depth, kernel): duplicates, conditioning of K(X, X)."""
        return self.notes + ([] if math.isinf(depth) else self.solve_notes.get((int(depth), kernel), []))


def classify(dual, x_train, y_train, x_test, depth: float, kernel: str = "nngp", **kw) -> np.ndarray:
    """Labels of the depth-L ridgeless NNGP / NTK classifier (depth = math.inf: the limit classifier)."""
    depths = () if math.isinf(depth) else (depth,)
    return DepthClassifier(dual, x_train, y_train, x_test, depths, ntk=kernel == "ntk", **kw).labels(depth, kernel)


def limit_classify(dual, x_train, y_train, x_test, **kw) -> np.ndarray:
    """Labels of the L = infinity classifier: majority vote, 1-NN in the kernel's order, or
    sign(sum y_i sigma(<x_i, x>))."""
    return DepthClassifier(dual, x_train, y_train, x_test, (), ntk=False, **kw).limit()


def deep_kernels(dual, rho, depths: Sequence[float], delta=None) -> dict:
    """{L: {"nngp": (sign, log|K_L|), "ntk": (sign, log|Theta_L|)}} at correlations rho for every depth L (one flow;
    delta = 1 - |rho| if known more accurately); L = math.inf gives the limit weight (sign, log|sigma|) of a singular
    dual (the Boettcher coordinate for b_0 = b_1 = 0, 0 for majority duals) under both names."""
    d = get_dual(dual)
    rho = np.asarray(rho, np.float64)
    dl = 1 - np.abs(rho) if delta is None else np.asarray(delta, np.float64)
    sg, ab, dl = np.where(rho >= 0, 1.0, -1.0).ravel(), np.abs(rho).ravel(), dl.ravel()
    finite = sorted({int(L) for L in depths if not math.isinf(L)})
    shape, out = rho.shape, {}
    if finite:
        f = _flow(d, sg, ab, dl, finite, False, True)
        for L in finite:
            lay = f.at(L)
            assert lay.s_ntk is not None and lay.l_ntk is not None  # the flow was built with ntk=True
            out[float(L)] = {
                "nngp": (lay.s_nngp.reshape(shape), lay.l_nngp.reshape(shape)),
                "ntk": (lay.s_ntk.reshape(shape), lay.l_ntk.reshape(shape)),
            }
    if any(math.isinf(L) for L in depths):
        s, key = _flow(d, sg, ab, dl, (), True, False).limit()
        out[math.inf] = {"nngp": (s.reshape(shape), key.reshape(shape)), "ntk": (s.reshape(shape), key.reshape(shape))}
    return out


def deep_kernel(dual, rho, depth: float, kernel: str = "nngp", delta=None) -> tuple[np.ndarray, np.ndarray]:
    """(sign, log|K_L(rho)|) of the depth-L NNGP or NTK at correlations rho (`deep_kernels` for one depth)."""
    if kernel not in ("nngp", "ntk"):
        raise ValueError(f"kernel: must be 'nngp' or 'ntk', got {kernel!r}")
    return deep_kernels(dual, rho, (depth,), delta)[float(depth)][kernel]


def naive_nngp(x1, x2, dual, depth: int) -> np.ndarray:
    """The official code's `nngp_kernel`: rho <- clip(k(rho), -1, 1) for `depth` layers in plain float64 (the peer of
    the benchmark; it underflows and loses the near-diagonal structure at depth)."""
    d = get_dual(dual)
    rho = np.clip(to_sphere(x1) @ to_sphere(x2).T, -1, 1)
    for _ in range(depth):
        rho = np.clip(d.k(rho), -1, 1)
    return rho


def accuracy(labels, y) -> float:
    """Share of labels equal to y (+-1 labels, or class indices against one-hot y)."""
    y = np.asarray(y)
    if y.ndim == 2:
        y = np.argmax(y, 1)
    return float(np.mean(np.asarray(labels) == y))
