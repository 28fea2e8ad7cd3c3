"""Normalized duals of activations k(rho) = sum_k b_k rho^k (Radhakrishnan, Belkin & Uhler, PNAS 2023, Sec. 2):
closed forms, Hermite series of typed activations, and the activation designer."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq
from scipy.special import gammaln

from workbench.core.declare import Activation as ActivationArg
from workbench.core.declare import Arg, Given, Int, Real, Text, declare
from workbench.core.declare import Array as ArrayArg
from workbench.core.declare import Choice as ChoiceArg

if TYPE_CHECKING:
    import jax

    from workbench.core.activations import ActivationLike

    Values: TypeAlias = float | np.ndarray | jax.Array  # numpy values, or jax.numpy ones inside the table loop

__all__ = [
    "DUALS",
    "HERMITE_TERMS",
    "SERIES_TERMS",
    "Dual",
    "DualArg",
    "consistent_dual",
    "design_dual",
    "dual_from_activation",
    "dual_from_hermite",
    "dual_from_series",
    "get_dual",
    "hermite_expression",
]

SERIES_TERMS = 64  # Koenigs / Poincare series length
HERMITE_TERMS = 160  # Hermite coefficients of a typed activation (2 x this many Gauss-Hermite nodes)

# ---------------------------------------------------------------- closed forms (workbench.theory.kernels.dual)


def _brentq(f: Callable[[float], float], a: float, b: float, **kw: Any) -> float:
    """scipy's brentq: the root alone (scipy has no stubs; pyright infers a union with the full_output=True tuple,
    and rtol's type from its float64 default)."""
    return cast(float, brentq(f, a, b, **kw))


_ERF_A = math.asin(2.0 / 3.0)  # erf's dual is arcsin(2 rho / 3) / arcsin(2/3)


@functools.lru_cache(maxsize=16)
def _closed_form(name: str) -> Any:
    """The Gaussian dual (`workbench.theory.kernels.dual.Dual`) of the registry activation `name`: the one family
    table of closed forms, whose `normalized` gives k, k' and their complements."""
    from workbench.core.activations import get_activation
    from workbench.theory.kernels.dual import dual_of

    return dual_of(get_activation(name))


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
    official code), with an optional closed form for k, k' and 1 - k(1 - delta), and phi as a typed activation.

    `closed`: the registry activation whose Gaussian dual (`workbench.theory.kernels.dual`, the one table of closed
    forms) gives k at inputs of variance `param` (sine_a: sin at variance a, i.e. sin(sqrt(a) x) at variance 1)."""

    name: str
    b: tuple[float, ...]
    closed: str | None = None
    param: float = 1.0
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
    def _closed(self, rho: Values, s: Values, sc: Values, xp: ModuleType) -> tuple[Any, ...]:
        """(k, k', 1 - k, k'(1) - k') at rho = 1 - s = sc - 1 from the closed form (`Dual.normalized`)."""
        assert self.closed is not None
        rho, s, sc = (xp.asarray(v) for v in (rho, s, sc))
        return _closed_form(self.closed).normalized(rho, s, sc, self.param, xp)

    def k(self, rho: Values, xp: ModuleType = np) -> Any:
        """k(rho)."""
        if self.closed:
            return self._closed(rho, 1.0 - rho, 1.0 + rho, xp)[0]
        return _horner(self.coef, rho, xp)

    def dk(self, rho: Values, xp: ModuleType = np) -> Any:
        """k'(rho)."""
        if self.closed:
            return self._closed(rho, 1.0 - rho, 1.0 + rho, xp)[1]
        c = self.coef
        return _horner(c[1:] * np.arange(1, len(c)), rho, xp)

    def kc(self, delta: Values, xp: ModuleType = np) -> Any:
        """1 - k(1 - delta), without cancellation for small delta (0 <= delta <= 2)."""
        if self.closed:
            return self._closed(1.0 - delta, delta, 2.0 - delta, xp)[2]
        inside = xp.clip(delta, 0.0, 1.0)
        acc = xp.zeros_like(delta)
        lg = xp.log1p(-xp.minimum(inside, 1.0 - 1e-300))
        for j in np.flatnonzero(self.coef > 0):
            if j:
                acc = acc - self.coef[j] * xp.expm1(j * lg)
        return xp.where(delta <= 1.0, acc, 1.0 - _horner(self.coef, 1.0 - delta, xp))

    def dkc(self, delta: Values, xp: ModuleType = np) -> Any:
        """k'(1) - k'(1 - delta), without cancellation for small delta (the NTK's complement in `_TableFlow`)."""
        if self.closed:
            return self._closed(1.0 - delta, delta, 2.0 - delta, xp)[3]
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

    def __repr__(self) -> str:
        return f"Dual({self.name!r})"


if TYPE_CHECKING:
    DualLike: TypeAlias = Dual | ActivationLike  # what `get_dual` resolves: a Dual, a preset name, an activation


def _horner(c: np.ndarray, x: Values, xp: ModuleType = np) -> Any:
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


def _not_constant(b: np.ndarray, field: str) -> None:
    """Refuse a series with only b_0 > 0: a constant activation, whose dual k = 1 makes all inputs one point."""
    if not np.any(np.asarray(b)[1:] > 0):
        raise ValueError(
            f"{field}: a constant activation (only b_0 > 0) has the constant dual k = 1, under which every pair of"
            " inputs is the same after one layer; give an activation that depends on x"
        )


@declare(
    b=ArrayArg("k", lo=0.0, example=np.array([0.0, 0.5, 0.0, 0.5])),
    name=Text(max_len=1000, none_ok=True),
    expression=ActivationArg(none_ok=True),
)
def dual_from_series(b: ArrayLike, name: str | None = None, expression: str | None = None) -> Dual:
    """The dual with k(rho) = sum_k b_k rho^k for nonnegative b (normalized to sum 1), e.g. the d-opt duals; its
    phi (`expression`, a typed activation) takes a_k = +sqrt(b_k) (the dual sees only a_k^2)."""
    c = np.asarray(b, np.float64)
    if not c.sum() > 0 or not np.isfinite(c.sum()):
        raise ValueError(f"b: a dual needs power-series coefficients with a positive, finite sum, got {c}")
    _not_constant(c, "b")
    c = c / c.sum()
    if name is None:
        name = " + ".join(f"{v:.4g} rho^{k}" for k, v in enumerate(c) if v > 0)
    if expression is None:
        expression = _hermite_expression(np.sqrt(c))
    return Dual(name, tuple(float(v) for v in c), expression=expression)


_HERMITE = ArrayArg("k", lo=-1e15, hi=1e15, example=np.array([0.0, 0.8, 0.0, 0.6]))  # squares stay finite


@declare(a=_HERMITE, name=Text(max_len=1000, none_ok=True))
def dual_from_hermite(a: ArrayLike, name: str | None = None) -> Dual:
    """The normalized dual of phi = sum_k a_k h_k: b_k = a_k^2 / sum_j a_j^2 (a_0, the mean of phi, gives
    b_0 = k(0))."""
    a = np.asarray(a, np.float64)
    if not np.any(a):
        raise ValueError(f"a: Hermite coefficients must not be all zero, got {a}")
    return dual_from_series(a * a, name, _hermite_expression(a))


@declare(a=_HERMITE)
def hermite_expression(a: ArrayLike) -> str | None:
    """phi = sum_k a_k h_k as a typed activation in x (polynomials up to degree 12), or None."""
    return _hermite_expression(a)


def _hermite_expression(a: ArrayLike) -> str | None:
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


def _hermite_series(fn: Callable[[jax.Array], jax.Array], terms: int = HERMITE_TERMS) -> np.ndarray:
    """a_k = E[fn(z) He_k(z)] / sqrt(k!) in float64 (`workbench.theory.kernels.dual.hermite_coefficients`)."""
    import jax

    from workbench.theory.kernels.dual import hermite_coefficients

    with jax.enable_x64(True):
        return np.asarray(hermite_coefficients(fn, 1.0, terms), np.float64)


MAX_HERMITE_TERMS = 1024  # the 2 x terms-node Gauss-Hermite rule (`workbench.theory.kernels.dual.MAX_DEGREE`)


@declare(
    activation=Given(
        why="a registered or typed activation, an Activation or a function of jax arrays (get_activation checks it)",
        example="tanh",
    ),
    terms=Int(2, MAX_HERMITE_TERMS),
)
def dual_from_activation(activation: ActivationLike, terms: int = HERMITE_TERMS) -> Dual:
    """The normalized dual of a registered or typed activation (`workbench.core.activations.get_activation`): the closed
    form for relu, abs, erf, sin, identity; otherwise a_k by Gauss-Hermite quadrature with 2 x `terms` nodes, b_k below
    1e-15 of the total set to zero (quadrature noise) and the truncated series normalized to k(1) = 1."""
    return _dual_from_any(activation, terms, "activation")


def _dual_from_any(spec: Any, terms: int, field: str) -> Dual:
    """`dual_from_activation` with errors naming `field` (the argument that held the activation)."""
    try:
        if isinstance(spec, str):
            return _dual_from_text(spec.strip(), terms)
        return _dual_from_activation(spec, terms)
    except ValueError as err:
        text = str(err)
        raise ValueError(f"{field}: {text.removeprefix('activation: ')}" if field != "activation" else text) from None


@functools.lru_cache(maxsize=64)
def _dual_from_text(spec: str, terms: int) -> Dual:
    return _dual_from_activation(spec, terms)


def _dual_from_activation(spec: ActivationLike, terms: int) -> Dual:
    from workbench.core.activations import get_activation

    act = get_activation(spec)
    known = {"relu": "relu", "abs": "abs", "erf": "erf", "sin": "sine_1", "identity": "linear"}
    if act.family in known:
        return DUALS[known[act.family]]
    a = _hermite_series(act.fn, terms)
    if not np.all(np.isfinite(a)) or not np.any(a):
        raise ValueError(f"activation: the Hermite coefficients of {act.name!r} are not finite or all zero")
    b = _trim(a * a)
    _not_constant(b, "activation")
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
    return Dual(f"sine_{a:g}", tuple(_trim(b)), "sin", a, f"{c:.12g}*sin({math.sqrt(a):.12g}*x)")


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


def _get_dual(spec: Any, field: str) -> Dual:
    """`get_dual` with errors naming `field` (the argument that held the dual)."""
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
                raise ValueError(f"{field}: sine_<a> needs a number a, got {key!r}") from None
            if not 0 < a <= 700:
                raise ValueError(f"{field}: sine_<a> needs 0 < a <= 700, got {a}")
            return _sine(a)
    elif not callable(spec):  # an Activation is callable
        raise ValueError(
            f"{field}: must be a Dual, a preset ({', '.join(DUALS)}, sine_<a>) or an activation, "
            f"got {type(spec).__name__}"
        )
    return _dual_from_any(spec, HERMITE_TERMS, field)


@dataclasses.dataclass(frozen=True)
class DualArg(Arg):
    """Declares a normalized dual: a Dual, a preset name (`DUALS`, sine_<a>) or an activation (a name, an
    expression in x, an Activation or a function); the function receives the resolved Dual (`get_dual`)."""

    def check(self, name: str, value: Any, axes: dict[str, tuple[str, int]]) -> Dual:
        return _get_dual(value, name)


@declare(activation=DualArg(example="relu"))
def get_dual(activation: DualLike) -> Dual:
    """A Dual, a preset name (`DUALS`, or sine_<a>), or any registered / typed activation (`dual_from_activation`)."""
    return cast(Dual, activation)  # resolved by the declaration


# ---------------------------------------------------------------- activation designer


def _poly_alpha(lam: float, m: int) -> float:
    return math.log(1 / lam) / math.log(lam + m * (1 - lam))


ALPHA_MIN, ALPHA_MAX = 0.02, 50.0  # designable alphas (the polynomial family reaches alpha > 1/63 at degree 64)
MAX_DESIGN_DEGREE = 64
FAMILIES = ("poly", "sine")
_SINE_ALPHA_MIN = 0.5  # sinh(a rho) / sinh(a) has alpha -> 1/2 as a -> 0


@declare(
    alpha=Real(ALPHA_MIN, ALPHA_MAX, example=2.0),
    family=ChoiceArg(FAMILIES),
    degree=Int(2, MAX_DESIGN_DEGREE, none_ok=True),
)
def design_dual(alpha: float, *, family: str = "poly", degree: int | None = None) -> Dual:
    """A dual with a prescribed alpha, as the paper's d-opt and sine_a: family "poly" gives k = lam rho + (1 - lam)
    rho^m (degree m: by default the one for which lam = 1/2 is closest, m = 2^(1 + 1/alpha) - 1, e.g. 3d_opt,
    2d_opt; it needs alpha > 1 / (m - 1)), family "sine" gives sinh(a rho) / sinh(a) (alpha > 1/2)."""
    if family == "sine":
        if alpha <= _SINE_ALPHA_MIN:
            raise ValueError(f"alpha: the sine family reaches only alpha > {_SINE_ALPHA_MIN}, got {alpha}")
        f = lambda a: math.log(math.sinh(a) / a) / math.log(a / math.tanh(a)) - alpha
        a = _brentq(f, 1e-3, 700.0, xtol=1e-14)
        return _sine(a)
    if degree is None:
        degree = min(max(2, round(2 ** min(1 + 1 / alpha, 64) - 1)), MAX_DESIGN_DEGREE)
        while 1 / (degree - 1) >= alpha and degree < MAX_DESIGN_DEGREE:
            degree += 1
    if 1 / (degree - 1) >= alpha:
        raise ValueError(
            f"degree: lam rho + (1 - lam) rho^{degree} reaches only alpha > 1/{degree - 1}; "
            f"alpha = {alpha} needs a degree above {1 + 1 / alpha:.3g}"
        )
    lam = _brentq(lambda x: _poly_alpha(x, degree) - alpha, 1e-300, 1 - 1e-12, xtol=1e-16, rtol=1e-15)
    b = np.zeros(degree + 1)
    b[1], b[degree] = lam, 1 - lam
    return dual_from_series(b, f"designed(alpha={alpha:g}, rho^{degree})")


@declare(
    d=Real(1 + 2 * ALPHA_MIN, 1 + 2 * ALPHA_MAX, example=5.0),
    family=ChoiceArg(FAMILIES),
    degree=Int(2, MAX_DESIGN_DEGREE, none_ok=True),
)
def consistent_dual(d: float, *, family: str = "poly", degree: int | None = None) -> Dual:
    """The designed dual (`design_dual`) whose singular kernel classifier is consistent on S^(d-1): alpha =
    (d - 1) / 2."""
    alpha = min(max((d - 1) / 2, ALPHA_MIN), ALPHA_MAX)  # d at an end of its range: alpha there despite rounding
    try:
        return design_dual(alpha, family=family, degree=degree)
    except ValueError as err:  # alpha is d's
        raise ValueError(f"d: {str(err).removeprefix('alpha: ')} (alpha = (d - 1) / 2 = {(d - 1) / 2:g})") from None
