"""Signal propagation through deep random networks at infinite width, for any activation.

A layer h' = W phi(h) + b with W_ij ~ N(0, sigma_w2 / n), b_i ~ N(0, sigma_b2) maps the kernel of two
inputs (q11, q12, q22) to sigma_w2 E[phi(u) phi(v)] + sigma_b2 under (u, v) ~ N(0, [[q11, q12], [q12, q22]])
(Poole et al. 2016, eqs. 3 and 5). Every Gaussian expectation comes from
`workbench.theory.kernels.gaussian_expectations` (closed forms by family, quadrature otherwise). Quantities:

- `length_map`, `q_star`: the length map and its fixed point q* (Poole et al. 2016, eq. 3);
- `correlation_map`, `c_star`: the correlation map at q* and its stable fixed point c* (eq. 5);
- `chi_1` = sigma_w2 E[phi'(u)^2] at q* (eq. 7): < 1 ordered, > 1 chaotic, = 1 critical;
- `chi_c`, `chi_q`, `depth_scales`: slopes of the maps at their fixed points and the depth scales
  xi_c = -1 / log chi_c, xi_q = -1 / log chi_q (Schoenholz et al. 2017, eqs. 6-9);
- `critical_line`, `phase_diagram`: the order-to-chaos line over (sigma_w2, sigma_b2);
- `critical_init`: (C_b, C_W) of the universality classes of Roberts, Yaida & Hanin (2022), ch. 5;
- `selu_moment_map`, `selu_flow`: SELU's mean/variance map (Klambauer et al. 2017, eqs. 3-4).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize

from workbench.core.activations import Activation, ActivationLike, get_activation
from workbench.core.declare import Activation as ActivationArg
from workbench.core.declare import Given, Int, Reals, declare
from workbench.core.declare import Real as RealArg
from workbench.theory.kernels import dual

__all__ = [
    "MAX_PROFILE_DEPTH",
    "MAX_VARIANCE",
    "Q_MAX",
    "CriticalInit",
    "DepthScales",
    "PhaseDiagram",
    "c_star",
    "chi_1",
    "chi_c",
    "chi_q",
    "correlation_map",
    "critical_init",
    "critical_line",
    "depth_profile",
    "depth_scale",
    "depth_scales",
    "gaussian_moments",
    "length_map",
    "phase_diagram",
    "q_star",
    "selu_flow",
    "selu_moment_map",
]

Real = float | np.ndarray  # a number, or an array of them (broadcast)

Q_MAX = 1e6  # a length above this counts as diverged (no finite q*)
MAX_VARIANCE = 1e4  # sigma_w^2, sigma_b^2 and input moments accepted
MAX_PROFILE_DEPTH = 1000  # layers of `depth_profile` and steps of `selu_flow` (one host round trip each)


def _np(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


@functools.lru_cache(maxsize=64)
def _jitted(activation: Activation) -> Callable[..., tuple[jax.Array, jax.Array]]:
    """jit of the Gaussian expectations of one activation (compiled once per argument shape)."""
    return jax.jit(functools.partial(dual._gaussian_expectations, activation))


def _expectations(
    activation: ActivationLike, q11: ArrayLike, q12: ArrayLike, q22: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """(E[phi(u)phi(v)], E[phi'(u)phi'(v)]) as numpy arrays (`workbench.theory.kernels.gaussian_expectations`)."""
    act = get_activation(activation)
    e_phi, e_dphi = _jitted(act)(*np.broadcast_arrays(_np(q11), _np(q12), _np(q22)))
    return _np(e_phi), _np(e_dphi)


def _diagonal(act: Activation, q: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(E[phi(u)^2], E[phi'(u)^2]) for u ~ N(0, q): the closed forms of `dual` where they exist, else one
    Gauss-Hermite rule (`dual._hermite_diag`, O(nodes) per point instead of a Mehler sum at c = 1)."""
    return dual.dual_of(act).diagonal(jnp.asarray(q, jnp.result_type(q, float)))


@functools.lru_cache(maxsize=64)
def _jitted_diagonal(act: Activation) -> Callable[[ArrayLike], tuple[jax.Array, jax.Array]]:
    return jax.jit(functools.partial(_diagonal, act))


def _diagonal_expectations(activation: ActivationLike, q: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(E[phi(sqrt(q) z)^2], E[phi'(sqrt(q) z)^2]) as numpy arrays."""
    e_phi, e_dphi = _jitted_diagonal(get_activation(activation))(_np(q))
    return _np(e_phi), _np(e_dphi)


def _kernel_map(
    activation: ActivationLike, sigma_w2: float, sigma_b2: float, q11: ArrayLike, q12: ArrayLike, q22: ArrayLike
) -> tuple[np.ndarray, ...]:
    """One layer on the kernel of two inputs: (q11, q12, q22) -> the next layer's (Poole et al., eqs. 3, 5)."""
    e = _expectations(activation, np.stack([q11, q11, q22]), np.stack([q11, q12, q22]), np.stack([q11, q22, q22]))[0]
    return tuple(sigma_w2 * e + sigma_b2)


_VARIANCE = Reals(0.0, MAX_VARIANCE)  # sigma_w2, sigma_b2: a number or a grid of them


def _broadcast(**named: ArrayLike) -> list[np.ndarray]:
    """The named arrays broadcast together as float64, or ValueError naming the first that does not broadcast."""
    arrays, shape, first = [], (), next(iter(named))
    for name, value in named.items():
        try:
            shape = np.broadcast_shapes(shape, np.shape(value))
        except ValueError:
            raise ValueError(
                f"{name}: shape {np.shape(value)} does not broadcast with {first}'s {np.shape(named[first])}"
            ) from None
        arrays.append(_np(value))
    return list(np.broadcast_arrays(*arrays))


def _length_map(activation: ActivationLike, sigma_w2: Real, sigma_b2: Real, q: ArrayLike) -> np.ndarray:
    return sigma_w2 * _diagonal_expectations(activation, q)[0] + sigma_b2


@declare(activation=ActivationArg(), sigma_w2=_VARIANCE, sigma_b2=_VARIANCE, q=Reals(0.0, Q_MAX))
def length_map(activation: ActivationLike, sigma_w2: ArrayLike, sigma_b2: ArrayLike, q: ArrayLike) -> np.ndarray:
    """q -> sigma_w2 E[phi(sqrt(q) z)^2] + sigma_b2 (Poole et al. 2016, eq. 3)."""
    return _length_map(activation, *_broadcast(sigma_w2=sigma_w2, sigma_b2=sigma_b2, q=q))


_LoopState = tuple[jax.Array | int, jax.Array, jax.Array | float]  # (iteration, x, last relative change)


@functools.lru_cache(maxsize=64)
def _fixed_point(activation: Activation, kind: str) -> Callable[..., jax.Array]:
    """jit(while_loop) iterating the length map (kind "q") or the correlation map at q (kind "c")."""

    def step(x: jax.Array, sw: jax.Array, sb: jax.Array, q: jax.Array) -> jax.Array:
        if kind == "q":
            return jnp.minimum(sw * _diagonal(activation, x)[0] + sb, 10 * Q_MAX)
        return jnp.clip((sw * dual._gaussian_expectations(activation, q, x * q, q)[0] + sb) / q, -1.0, 1.0)

    @jax.jit
    def solve(x0: jax.Array, sw: jax.Array, sb: jax.Array, q: jax.Array, iters: int, tol: float) -> jax.Array:
        def body(state: _LoopState) -> _LoopState:
            i, x, _ = state
            new = step(x, sw, sb, q)
            return i + 1, new, jnp.max(jnp.where(new < Q_MAX, jnp.abs(new - x) / jnp.maximum(1.0, x), 0.0))

        return jax.lax.while_loop(lambda s: (s[0] < iters) & (s[2] > tol), body, (0, x0, jnp.inf))[1]

    return solve


def _q_star(
    activation: ActivationLike, sw: np.ndarray, sb: np.ndarray, q0: float = 1.0, iters: int = 5000, tol: float = 1e-7
) -> np.ndarray:
    """`q_star` of broadcast, checked sigma_w2 and sigma_b2."""
    solve = _fixed_point(get_activation(activation), "q")
    q = _np(solve(jnp.full(sw.shape, q0, jnp.float32), sw, sb, sw, iters, tol))
    return np.where(q >= Q_MAX, np.inf, q)


@declare(
    finite=False,
    activation=ActivationArg(),
    sigma_w2=_VARIANCE,
    sigma_b2=_VARIANCE,
    q0=RealArg(0.0, Q_MAX, lo_open=True),
    iters=Int(1, 1_000_000),
    tol=RealArg(0.0, 1.0, lo_open=True),
)
def q_star(
    activation: ActivationLike,
    sigma_w2: ArrayLike,
    sigma_b2: ArrayLike,
    *,
    q0: float = 1.0,
    iters: int = 5000,
    tol: float = 1e-7,
) -> np.ndarray:
    """Fixed point of the length map reached from q0 by iteration; inf where the length diverges.
    Broadcasts over sigma_w2 and sigma_b2."""
    sw, sb = _broadcast(sigma_w2=sigma_w2, sigma_b2=sigma_b2)
    return _q_star(activation, sw, sb, q0, iters, tol)


def _chi_1(activation: ActivationLike, sw: np.ndarray, q: np.ndarray) -> np.ndarray:
    """chi_1 at lengths q (NaN where q is infinite)."""
    qf = np.where(np.isfinite(q), q, 1.0)
    return np.where(np.isfinite(q), sw * _diagonal_expectations(activation, qf)[1], np.nan)


@declare(
    finite=False,
    activation=ActivationArg(),
    sigma_w2=_VARIANCE,
    sigma_b2=_VARIANCE,
    q=Reals(0.0, Q_MAX, none_ok=True),
)
def chi_1(
    activation: ActivationLike, sigma_w2: ArrayLike, sigma_b2: ArrayLike, q: ArrayLike | None = None
) -> np.ndarray:
    """chi_1 = sigma_w2 E[phi'(sqrt(q*) z)^2] (Poole et al. 2016, eq. 7): slope of the c-map at c = 1, at q
    (default q*); NaN where q* diverges (no fixed length)."""
    if q is None:
        sw, sb = _broadcast(sigma_w2=sigma_w2, sigma_b2=sigma_b2)
        return _chi_1(activation, sw, _q_star(activation, sw, sb))
    sw, _, q = _broadcast(sigma_w2=sigma_w2, sigma_b2=sigma_b2, q=q)
    return _chi_1(activation, sw, q)


@declare(
    activation=ActivationArg(),
    sigma_w2=_VARIANCE,
    sigma_b2=_VARIANCE,
    c=Reals(-1.0, 1.0),
    q=Reals(0.0, Q_MAX, lo_open=True),
)
def correlation_map(
    activation: ActivationLike, sigma_w2: ArrayLike, sigma_b2: ArrayLike, c: ArrayLike, q: ArrayLike
) -> np.ndarray:
    """c -> (sigma_w2 E[phi(u) phi(v)] + sigma_b2) / q with u, v at length q and correlation c (eq. 5)."""
    sw, sb, c, q = _broadcast(sigma_w2=sigma_w2, sigma_b2=sigma_b2, c=c, q=q)
    return (sw * _expectations(activation, q, c * q, q)[0] + sb) / q


def _c_star(
    activation: ActivationLike, sw: np.ndarray, sb: np.ndarray, c0: float = 0.0, iters: int = 5000, tol: float = 1e-6
) -> np.ndarray:
    """`c_star` of broadcast, checked sigma_w2 and sigma_b2."""
    q = _q_star(activation, sw, sb)
    solve = _fixed_point(get_activation(activation), "c")
    return _np(solve(jnp.full(sw.shape, c0, jnp.float32), sw, sb, np.where(np.isfinite(q), q, 1.0), iters, tol))


@declare(
    activation=ActivationArg(),
    sigma_w2=_VARIANCE,
    sigma_b2=_VARIANCE,
    c0=RealArg(-1.0, 1.0),
    iters=Int(1, 1_000_000),
    tol=RealArg(0.0, 1.0, lo_open=True),
)
def c_star(
    activation: ActivationLike,
    sigma_w2: ArrayLike,
    sigma_b2: ArrayLike,
    *,
    c0: float = 0.0,
    iters: int = 5000,
    tol: float = 1e-6,
) -> np.ndarray:
    """Stable fixed point c* of the correlation map at q*, reached from c0 (1 in the ordered phase)."""
    sw, sb = _broadcast(sigma_w2=sigma_w2, sigma_b2=sigma_b2)
    return _c_star(activation, sw, sb, c0, iters, tol)


def _chi_c(
    activation: ActivationLike, sw: np.ndarray, sb: np.ndarray, c: np.ndarray | None, q: np.ndarray | None = None
) -> np.ndarray:
    """chi_c at (q, c) (defaults q*, c*); NaN where q is infinite."""
    q = _q_star(activation, sw, sb) if q is None else q
    c = _c_star(activation, sw, sb) if c is None else c
    finite = np.isfinite(q)
    qf = np.where(finite, q, 1.0)
    return np.where(finite, sw * _expectations(activation, qf, c * qf, qf)[1], np.nan)


@declare(
    finite=False,
    activation=ActivationArg(),
    sigma_w2=_VARIANCE,
    sigma_b2=_VARIANCE,
    c=Reals(-1.0, 1.0, none_ok=True),
)
def chi_c(
    activation: ActivationLike, sigma_w2: ArrayLike, sigma_b2: ArrayLike, c: ArrayLike | None = None
) -> np.ndarray:
    """chi_c = sigma_w2 E[phi'(u) phi'(v)] at (q*, c) (default c*): slope of the c-map at c* (Schoenholz et al.,
    eq. 9); NaN where q* diverges."""
    if c is None:
        sw, sb = _broadcast(sigma_w2=sigma_w2, sigma_b2=sigma_b2)
        return _chi_c(activation, sw, sb, None)
    sw, sb, c = _broadcast(sigma_w2=sigma_w2, sigma_b2=sigma_b2, c=c)
    return _chi_c(activation, sw, sb, c)


def _chi_q(
    activation: ActivationLike, sw: np.ndarray, sb: np.ndarray, rel: float = 1e-3, q: np.ndarray | None = None
) -> np.ndarray:
    """Slope of the length map at q (default q*) by a central difference (one-sided at q = 0); NaN where q is
    infinite."""
    q = _q_star(activation, sw, sb) if q is None else q
    finite = np.isfinite(q)
    qf = np.where(finite, q, 1.0)
    h = rel * np.maximum(qf, 1e-3)
    below = np.maximum(qf - h, 0.0)
    slope = (_length_map(activation, sw, sb, qf + h) - _length_map(activation, sw, sb, below)) / (qf + h - below)
    return np.where(finite, slope, np.nan)


@declare(
    finite=False,
    activation=ActivationArg(),
    sigma_w2=_VARIANCE,
    sigma_b2=_VARIANCE,
    rel=RealArg(0.0, 0.5, lo_open=True),
)
def chi_q(activation: ActivationLike, sigma_w2: ArrayLike, sigma_b2: ArrayLike, *, rel: float = 1e-3) -> np.ndarray:
    """Slope of the length map at q* (Schoenholz et al. 2017, eq. 6), by a central difference of relative step
    `rel`; NaN where q* diverges."""
    sw, sb = _broadcast(sigma_w2=sigma_w2, sigma_b2=sigma_b2)
    return _chi_q(activation, sw, sb, rel)


def _depth_scale(chi: ArrayLike) -> np.ndarray:
    chi = _np(chi)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(chi - 1) < 1e-9, np.inf, -1.0 / np.log(chi))


@declare(finite=False, chi=Reals(0.0))
def depth_scale(chi: ArrayLike) -> np.ndarray:
    """xi = -1 / log(chi): layers over which a perturbation of the fixed point decays (inf at chi = 1; negative
    for chi > 1, where it grows)."""
    return _depth_scale(chi)


class DepthScales(NamedTuple):
    """Fixed points, slopes and depth scales of one (activation, sigma_w2, sigma_b2)."""

    q_star: float
    c_star: float
    chi_1: float
    chi_c: float
    chi_q: float
    xi_q: float
    xi_c: float


@declare(
    finite=False,
    activation=ActivationArg(),
    sigma_w2=RealArg(0.0, MAX_VARIANCE),
    sigma_b2=RealArg(0.0, MAX_VARIANCE),
)
def depth_scales(activation: ActivationLike, sigma_w2: float, sigma_b2: float) -> DepthScales:
    """q*, c*, chi_1, chi_c, chi_q, xi_q and xi_c (Schoenholz et al. 2017, Sec. 3) of one network; q* is inf and
    the slopes NaN where the length diverges, a depth scale is inf at criticality."""
    sw, sb = _np(sigma_w2), _np(sigma_b2)
    q, c = _q_star(activation, sw, sb), _c_star(activation, sw, sb)
    x1, xc, xq = _chi_1(activation, sw, q), _chi_c(activation, sw, sb, c, q), _chi_q(activation, sw, sb, q=q)
    return DepthScales(*(float(v) for v in (q, c, x1, xc, xq, _depth_scale(xq), _depth_scale(xc))))


def _critical_line(activation: ActivationLike, sigma_b2: np.ndarray, q_max: float = 100.0) -> np.ndarray:
    def on_line(q: float) -> tuple[float, float]:
        e_phi, e_dphi = (float(v) for v in _diagonal_expectations(activation, q))
        return 1.0 / e_dphi, q - e_phi / e_dphi

    def solve(target: float) -> float:
        g = lambda q: on_line(q)[1] - target
        lo, hi = 1e-8, q_max
        if target == 0 and abs(g(lo)) < 1e-7:
            return on_line(lo)[0]
        if not np.isfinite(g(hi)) or g(lo) * g(hi) > 0:
            return np.nan
        # scipy leaves brentq unannotated, so rtol's type is inferred from its default, a np.float64
        return on_line(optimize.brentq(g, lo, hi, xtol=1e-12, rtol=1e-10))[0]  # pyright: ignore[reportArgumentType]

    with np.errstate(divide="ignore", invalid="ignore"):
        return np.vectorize(solve, otypes=[float])(sigma_b2)


@declare(finite=False, activation=ActivationArg(), sigma_b2=_VARIANCE, q_max=RealArg(0.0, 1000.0, lo_open=True))
def critical_line(activation: ActivationLike, sigma_b2: ArrayLike, *, q_max: float = 100.0) -> np.ndarray:
    """sigma_w2 on the order-to-chaos line chi_1 = 1 at each sigma_b2.

    Parametrised by q* (Poole et al. 2016, Sec. 3): chi_1 = 1 gives sigma_w2(q) = 1 / E[phi'(sqrt(q) z)^2]
    and the fixed-point equation then sigma_b2(q) = q - sigma_w2(q) E[phi(sqrt(q) z)^2]; solve for q in
    (0, q_max]. NaN where the line does not reach that sigma_b2 (for example ReLU, whose line is the point
    (2, 0))."""
    return _critical_line(activation, _np(sigma_b2), q_max)


class PhaseDiagram(NamedTuple):
    """chi_1, q* and c* on a (sigma_b2, sigma_w2) grid, with the critical line sigma_w2(sigma_b2)."""

    sigma_w2: np.ndarray
    sigma_b2: np.ndarray
    chi_1: np.ndarray  # (len(sigma_b2), len(sigma_w2)); NaN where q* diverges
    q_star: np.ndarray
    critical_w2: np.ndarray  # (len(sigma_b2),)


@declare(finite=False, activation=ActivationArg(), sigma_w2=_VARIANCE, sigma_b2=_VARIANCE)
def phase_diagram(activation: ActivationLike, sigma_w2: ArrayLike, sigma_b2: ArrayLike) -> PhaseDiagram:
    """Order (chi_1 < 1) and chaos (chi_1 > 1) over a grid (Poole et al. 2016, Fig. 2; Schoenholz Fig. 1):
    chi_1 is NaN where q* diverges (inf), the critical line NaN where it does not reach a sigma_b2."""
    sigma_w2, sigma_b2 = _np(sigma_w2), _np(sigma_b2)
    sw, sb = np.meshgrid(sigma_w2, sigma_b2)
    q = _q_star(activation, sw, sb)
    return PhaseDiagram(sigma_w2, sigma_b2, _chi_1(activation, sw, q), q, _critical_line(activation, sigma_b2))


@declare(
    activation=ActivationArg(),
    sigma_w2=RealArg(0.0, MAX_VARIANCE),
    sigma_b2=RealArg(0.0, MAX_VARIANCE),
    depth=Int(1, MAX_PROFILE_DEPTH),
    q0=RealArg(0.0, Q_MAX, lo_open=True),
    c0=RealArg(-1.0, 1.0),
)
def depth_profile(
    activation: ActivationLike, sigma_w2: float, sigma_b2: float, depth: int, *, q0: float = 1.0, c0: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-layer (q_l, c_l, chi_l), l = 1..depth, for two inputs with |x|^2 / d = q0 and correlation c0:
    the first layer gives (sigma_w2 q0 + sigma_b2, sigma_w2 c0 q0 + sigma_b2), each further layer the
    kernel map; chi_l = sigma_w2 E[phi'(h_l)^2] is layer l's factor in the squared gradient norm, so
    E||df/dh_l||^2 = prod_{k >= l} chi_k for a readout of the same sigma_w2 (Schoenholz et al. 2017, Sec. 4).
    Lengths are capped at Q_MAX; two inputs of length 0 count as correlated (c = 1)."""
    q11 = q22 = sigma_w2 * q0 + sigma_b2
    q12 = sigma_w2 * c0 * q0 + sigma_b2
    qs, cs = [], []
    for _ in range(depth):
        qs.append(q11)
        cs.append(q12 / q11 if q11 > 0 else 1.0)
        q11, q12, q22 = (min(float(v), Q_MAX) for v in _kernel_map(activation, sigma_w2, sigma_b2, q11, q12, q22))
    qs = np.array(qs)
    return qs, np.array(cs), sigma_w2 * _diagonal_expectations(activation, qs)[1]


# ---------------------------------------------------------------- universality classes (RYH ch. 5)


class CriticalInit(NamedTuple):
    """Critical initialisation hyperparameters (C_b, C_W) and the universality class."""

    C_b: float
    C_W: float
    universality: str


@declare(activation=ActivationArg())
def critical_init(activation: ActivationLike) -> CriticalInit | None:
    """(C_b, C_W) of Roberts, Yaida & Hanin (2022), Sec. 5.2-5.3: scale-invariant phi(x) = a+ x (x > 0),
    a- x (x < 0) gives (0, 2 / (a+^2 + a-^2)); the K* = 0 class (phi(0) = 0, sigma_1 = phi'(0) != 0 and
    a_1 = sigma_3 / sigma_1 + 3/4 (sigma_2 / sigma_1)^2 < 0 with sigma_p = phi^(p)(0); tanh, sin,
    erf) gives (0, 1 / sigma_1^2). None for activations in neither class (sigmoid, softplus, GELU, SWISH)."""
    act = get_activation(activation)
    fn = lambda t: act(jnp.asarray(t, jnp.float32))
    phi = lambda t: np.asarray(fn(t), float)
    if abs(phi(0.0)) > 1e-6:
        return None
    x = np.linspace(-3.0, 3.0, 61)
    a_plus, a_minus = float(phi(1.0)), -float(phi(-1.0))
    if a_plus**2 + a_minus**2 == 0:  # phi = 0 near the origin: no kernel to keep fixed
        return None
    if np.allclose(phi(x), np.where(x > 0, a_plus, a_minus) * x, atol=1e-5):
        return CriticalInit(0.0, 2.0 / (a_plus**2 + a_minus**2), "scale-invariant")
    d1 = jax.grad(fn)
    d2 = jax.grad(d1)
    s1, s2, s3 = (float(d(jnp.float32(0.0))) for d in (d1, d2, jax.grad(d2)))
    if abs(s1) > 1e-6 and s3 / s1 + 0.75 * (s2 / s1) ** 2 < 0:
        return CriticalInit(0.0, 1.0 / s1**2, "K*=0")
    return None


# ---------------------------------------------------------------- SELU moment map (Klambauer et al. 2017)

_LEGENDRE = np.polynomial.legendre.leggauss(96)


def _gaussian_moments(activation: ActivationLike, mean: ArrayLike, var: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    act = get_activation(activation)
    mean, sd = np.broadcast_arrays(_np(mean)[..., None], np.sqrt(_np(var))[..., None])
    point = sd == 0  # z = mean exactly
    sd = np.where(point, 1.0, sd)
    lo, hi = mean - 12 * sd, mean + 12 * sd
    kink = np.clip(0.0, lo, hi)
    nodes, weights = _LEGENDRE
    total = [0.0, 0.0]
    for a, b in ((lo, kink), (kink, hi)):
        z = 0.5 * (b - a) * nodes + 0.5 * (a + b)
        w = 0.5 * (b - a) * weights * np.exp(-0.5 * ((z - mean) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
        f = _np(act(jnp.asarray(z, jnp.float32)))
        total = [total[0] + np.sum(w * f, -1), total[1] + np.sum(w * f * f, -1)]
    at = _np(act(jnp.asarray(mean[..., 0], jnp.float32)))
    return np.where(point[..., 0], at, total[0]), np.where(point[..., 0], at * at, total[1])


@declare(
    activation=Given(
        why="an activation: a name, an expression in x or a function of jax arrays (checked by get_activation)",
        example="selu",
    ),
    mean=Reals(-MAX_VARIANCE, MAX_VARIANCE),
    var=Reals(0.0, MAX_VARIANCE),
)
def gaussian_moments(activation: ActivationLike, mean: ArrayLike, var: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(E[phi(z)], E[phi(z)^2]) for z ~ N(mean, var), broadcasting: Gauss-Legendre on [mean - 12 sd, 0]
    and [0, mean + 12 sd] (exponentially accurate for activations smooth away from a kink at 0); the
    nonzero mean is what the zero-mean dual kernels do not cover. var = 0 gives (phi(mean), phi(mean)^2)."""
    return _gaussian_moments(activation, *_broadcast(mean=mean, var=var))


def _selu_moment_map(
    mu: Real, nu: Real, omega: float = 0.0, tau: float = 1.0, activation: ActivationLike = "selu"
) -> tuple[np.ndarray, np.ndarray]:
    m1, m2 = _gaussian_moments(activation, mu * omega, nu * tau)
    return m1, np.maximum(m2 - m1**2, 0.0)


@declare(
    mu=Reals(-MAX_VARIANCE, MAX_VARIANCE),
    nu=Reals(0.0, MAX_VARIANCE),
    omega=RealArg(-1000.0, 1000.0),
    tau=RealArg(0.0, 1000.0),
    activation=ActivationArg(),
)
def selu_moment_map(
    mu: ArrayLike, nu: ArrayLike, *, omega: float = 0.0, tau: float = 1.0, activation: ActivationLike = "selu"
) -> tuple[np.ndarray, np.ndarray]:
    """(mu, nu) -> (mean, variance) of phi(z), z ~ N(mu omega, nu tau), where mu, nu are the mean and
    variance of a layer's inputs and omega, tau the sum and sum of squares of a unit's weights
    (Klambauer et al. 2017, eqs. 3-4; fixed point (0, 1) at omega = 0, tau = 1 for SELU)."""
    mu, nu = _broadcast(mu=mu, nu=nu)
    return _selu_moment_map(mu, nu, omega, tau, activation)


@declare(mu0=Reals(-MAX_VARIANCE, MAX_VARIANCE), nu0=Reals(0.0, MAX_VARIANCE), steps=Int(0, MAX_PROFILE_DEPTH))
def selu_flow(mu0: ArrayLike, nu0: ArrayLike, steps: int, **kw: Any) -> np.ndarray:
    """Trajectories (steps + 1, ..., 2) of the moment map from (mu0, nu0) (arrays broadcast); `kw`: omega, tau
    and activation of `selu_moment_map` (checked there, once)."""
    mu, nu = _broadcast(mu0=mu0, nu0=nu0)
    selu_moment_map(mu, nu, **kw)  # checks omega, tau and activation before the loop
    path = [(mu, nu)]
    for _ in range(steps):
        mu, nu = _selu_moment_map(mu, nu, **kw)
        path.append((mu, nu))
    return np.moveaxis(np.array(path), 1, -1)
