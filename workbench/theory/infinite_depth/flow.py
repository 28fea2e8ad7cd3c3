"""The depth flow of kernel entries in log space with exact tails (Koenigs / Boettcher series, fixed points, tables
in 1 - rho): NNGP and NTK at any depth up to infinity (Radhakrishnan, Belkin & Uhler, PNAS 2023, Sec. 3)."""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np
from numpy.typing import ArrayLike
from scipy.interpolate import CubicSpline

from workbench.core.declare import Choice, Given, Int, Reals, Times, declare
from workbench.theory.infinite_depth.duals import SERIES_TERMS, Dual, DualArg, _horner
from workbench.theory.infinite_depth.taxonomy import _regime

if TYPE_CHECKING:
    import jax

    from workbench.theory.infinite_depth.duals import DualLike

NEAR = 0.05  # 1 - |rho| below this: carried as the complement delta
SMALL = 1e-3  # |rho| below this (b_0 = b_1 = 0): carried as log|rho|
MAX_DEPTH = 100_000  # largest finite depth (the table flows cost ~L: ~6 s at 1e5)
MAX_LAYERS = 20_000  # layer cap of an entry that has not reached its exact tail (only for an infinite depth)
TABLE_NODES = 1025  # table of 1 - rho for duals with b_0 > 0 and k'(1) <= 1
MAX_SERIES_TERMS = 256  # Koenigs series length `koenigs` accepts

__all__ = [
    "MAX_DEPTH",
    "MAX_LAYERS",
    "NEAR",
    "SMALL",
    "TABLE_NODES",
    "Depth",
    "Layer",
    "deep_kernel",
    "deep_kernels",
    "diagonal_log_ntk",
    "koenigs",
    "koenigs_log",
]


def _depth(value: Any, name: str = "depth") -> float:
    """A depth: a whole number in [0, MAX_DEPTH], or +inf (the limit); a float (inf stays inf)."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if ok and (value == math.inf or (math.isfinite(value) and 0 <= value <= MAX_DEPTH and float(value).is_integer())):
        return float(value)
    raise ValueError(f"{name}: must be a whole number in [0, {MAX_DEPTH}] or inf, got {value!r:.80}")


@dataclasses.dataclass(frozen=True)
class Depth(Times):
    """Declares a depth: a whole number of layers in [0, MAX_DEPTH], or inf (the L -> infinity limit); passed on
    as a float. A kind of `Times` (0 and inf valid, negative, NaN and non-numbers not), so the attack suite attacks
    it as one."""

    def check(self, name: str, value: Any, axes: dict[str, tuple[str, int]]) -> Any:  # a float
        return _depth(value, name)


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


@declare(dual=DualArg(example="3d_opt"), n=Int(SERIES_TERMS, MAX_SERIES_TERMS))
def koenigs(dual: DualLike, n: int = SERIES_TERMS) -> _Koenigs:
    """The Koenigs / Poincare series at 0 of a singular dual (0 = k(0) < k'(0) < 1; `_Koenigs`), with `n` terms."""
    d = cast(Dual, dual)
    if _regime(d).kind != "singular":
        raise ValueError(f"dual: {d.name!r} is not singular (k(0) = {d.lambda0:.3g}, k'(0) = {d.lam:.3g})")
    return _koenigs(d, n)


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
        raise ValueError(f"dual: the Koenigs series of {dual.name!r} at 0 does not converge (k'(0) = {lam:.3g})")
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


_RHO = Reals(-1.0, 1.0)  # correlations
_DELTA = Reals(0.0, 2.0, none_ok=True)  # 1 - |rho| when known more accurately than from rho


def _complements(rho: np.ndarray, delta: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(rho, 1 - |rho|) broadcast together; `delta` replaces 1 - |rho| when given."""
    if delta is None:
        return rho, 1 - np.abs(rho)
    try:
        rho, dl = np.broadcast_arrays(rho, delta)
    except ValueError:
        raise ValueError(f"delta: shape {np.shape(delta)} does not broadcast with rho's {np.shape(rho)}") from None
    return rho, dl


@declare(finite=False, dual=DualArg(example="3d_opt"), rho=_RHO, delta=_DELTA)
def koenigs_log(dual: DualLike, rho: ArrayLike, delta: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(sign, log|sigma(rho)|) of the Koenigs eigenfunction sigma = lim k^L / lambda^L (singular duals; module doc),
    +inf at |rho| = 1 and -inf at rho = 0; delta = 1 - |rho| if known more accurately."""
    d = cast(Dual, dual)
    if _regime(d).kind != "singular":
        raise ValueError(f"dual: {d.name!r} is not singular (k(0) = {d.lambda0:.3g}, k'(0) = {d.lam:.3g})")
    rho, dl = _complements(np.asarray(rho, np.float64), None if delta is None else np.asarray(delta, np.float64))
    flow = _flow(
        d,
        np.sign(rho),
        np.abs(rho),
        dl,
        depths=(),
        infinite=True,
        ntk=False,
    )
    s, key = flow.limit()
    return s.reshape(rho.shape), key.reshape(rho.shape)


# ---------------------------------------------------------------- signed log helpers


def _slog_add(s1: np.ndarray, l1: np.ndarray, s2: np.ndarray, l2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


@declare(finite=False, dual=DualArg(example="relu"), depth=Depth())
def diagonal_log_ntk(dual: DualLike, depth: float) -> float:
    """log Theta_L(1) = log((mu^(L+1) - 1) / (mu - 1)) (L + 1 when mu = 1), the NTK of a point with itself; inf at
    depth inf."""
    return _diagonal_log_ntk(cast(Dual, dual), depth)


def _diagonal_log_ntk(dual: Dual, depth: float) -> float:
    mu = dual.mu
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


def _tabled(dual: Dual) -> bool:
    """Whether the entries of `dual` flow on a table in 1 - rho (b_0 > 0, k'(1) <= 1: every correlation tends to 1;
    `_TableFlow`), whose classifiers are solved in the complement form."""
    r = _regime(dual)
    return r.kind == "majority" and r.fixed_point == 1.0


def _flow(
    dual: Dual, sg: np.ndarray, ab: np.ndarray, dl: np.ndarray, depths: Sequence[int], infinite: bool, ntk: bool
) -> _LinearFlow | _TableFlow | _Flow:
    """The flow of entries (sign sg, |rho| ab, 1 - |rho| dl) through `depths` layers (and to the limit if infinite)."""
    bad = [L for L in depths if not 0 <= L <= MAX_DEPTH]
    if bad:
        raise ValueError(f"depth: must be in [0, {MAX_DEPTH}] or infinite, got {bad[0]}")
    if _regime(dual).kind == "linear":
        return _LinearFlow(dual, sg, ab, dl, ntk)
    if _tabled(dual):
        return _TableFlow(dual, sg, ab, dl, depths, ntk)
    return _Flow(dual, sg, ab, dl, depths, infinite, ntk)


class _LinearFlow:
    def __init__(self, dual: Dual, sg: np.ndarray, ab: np.ndarray, dl: np.ndarray, ntk: bool) -> None:
        self.sg, self.ab, self.ntk, self.notes = sg, ab, ntk, []
        self.dual = dual

    def at(self, L: int) -> Layer:
        with np.errstate(divide="ignore"):
            lr = np.log(self.ab)
        return Layer(self.sg, lr, self.sg if self.ntk else None, lr + math.log(L + 1) if self.ntk else None)

    def limit(self) -> tuple[np.ndarray, np.ndarray]:
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

    def __init__(
        self,
        dual: Dual,
        sg: np.ndarray,
        ab: np.ndarray,
        dl: np.ndarray,
        depths: Sequence[int],
        infinite: bool,
        ntk: bool,
    ) -> None:
        self.dual, self.ntk, self.notes = dual, ntk, []
        self.kind = _regime(dual).kind
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
            self.star = _regime(dual).fixed_point
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
    def _step(
        self,
        rho: np.ndarray,
        dl: np.ndarray,
        th: np.ndarray,
        sgn: np.ndarray | None,
        lr: np.ndarray | None,
        small: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        d = self.dual
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            v: np.ndarray = d.k(rho)  # numpy in, numpy out
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
                assert sgn is not None and lr is not None  # carried with `small` (nearest duals)
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
    def _exit(
        self,
        layer: int,
        idx: np.ndarray,
        rho: np.ndarray,
        dl: np.ndarray,
        th: np.ndarray,
        sgn: np.ndarray | None,
        lr: np.ndarray | None,
        small: np.ndarray | None,
        alive: np.ndarray,
        force: bool = False,
    ) -> np.ndarray:
        """Mark the entries that reached their exact tail at `layer` and keep their state (`_tails` uses it)."""
        if force:
            out = alive.copy()
        elif self.kind == "singular":
            out = alive & (np.abs(rho) <= self.ks.radius) & (dl >= NEAR)
        elif self.kind == "nearest":
            assert small is not None and lr is not None  # carried for nearest duals
            out = alive & small & (lr <= self.log_tiny)
        else:
            out = alive & (np.abs(rho - self.star) <= self.tol)
        i = np.flatnonzero(out)
        if i.size:
            e = idx[i]
            self.J[e] = layer
            self.raw_rho[e], self.raw_th[e] = rho[i], th[i]
            if small is not None:
                assert sgn is not None and lr is not None  # carried with `small` (nearest duals)
                self.raw_small[e], self.raw_lr[e], self.raw_sg[e] = small[i], lr[i], sgn[i]
        return out

    def _tails(self) -> None:
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

    def _run(self, idx: np.ndarray, rho: np.ndarray, dl: np.ndarray, parts: dict[int, list[tuple]]) -> int:
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

    def _snapshot(
        self,
        idx: np.ndarray,
        rho: np.ndarray,
        dl: np.ndarray,
        th: np.ndarray,
        sgn: np.ndarray | None,
        lr: np.ndarray | None,
        small: np.ndarray | None,
        alive: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        i = np.flatnonzero(alive)
        with np.errstate(divide="ignore", invalid="ignore"):
            r, d = rho[i], dl[i]
            lK = np.where(d < NEAR, np.log1p(-d), np.log(np.abs(r)))
            sK = np.sign(r)
            s = None if small is None else small[i]
            if s is not None:
                assert sgn is not None and lr is not None  # carried with `small` (nearest duals)
                lK = np.where(s, lr[i], lK)
                sK = np.where(s, sgn[i], sK)
            sT = lT = np.zeros(0)
            if self.ntk:
                t = th[i]
                lT, sT = np.log(np.abs(t)), np.sign(t)
                if s is not None:
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
                sT[u], lT[u] = odd_sign, _diagonal_log_ntk(self.dual, L)
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


def _scatter(n: int, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.zeros(n)
    out[idx] = values
    return out


def _terms(c: np.ndarray, top: float) -> int:
    """How many terms of sum_k c_k x^k matter for |x| <= top (|c_k| top^k above 1e-18 of the largest)."""
    if top == 0.0:
        return 1
    with np.errstate(divide="ignore", over="ignore"):
        size = np.abs(c) * np.exp(np.arange(len(c)) * math.log(top))
    big = np.flatnonzero(size > 1e-18 * np.max(size))
    return int(big[-1]) + 1 if big.size else 1


def _horner_fit(c: np.ndarray, x: np.ndarray) -> np.ndarray:
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


def _lse3(terms: Sequence[tuple[Any, Any]], xp: ModuleType) -> tuple[Any, Any]:
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

    def layer(_: int, state: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array, jax.Array]:
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
    def advance(ldl: jax.Array, lr: jax.Array, T: jax.Array, steps: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        return jax.lax.fori_loop(0, steps, layer, (ldl, lr, T))

    return advance


def _theta(delta: np.ndarray) -> np.ndarray:
    """The angle theta with 1 - cos(theta) = delta, accurate for small delta."""
    return 2.0 * np.arcsin(np.sqrt(np.clip(delta, 0.0, 2.0) / 2.0))


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

    def __init__(
        self, dual: Dual, sg: np.ndarray, ab: np.ndarray, dl: np.ndarray, depths: Iterable[int], ntk: bool
    ) -> None:
        self.dual, self.ntk, self.notes = dual, ntk, []
        sg, ab, dl = (np.asarray(v, np.float64).ravel() for v in (sg, ab, dl))
        self.n = sg.size
        self.rho0 = sg * ab
        even = dual.parity == "even"
        theta = _theta(dl) if even else np.where(sg >= 0, _theta(dl), math.pi - _theta(dl))
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
                sT, lT = np.sign(v), np.log(np.abs(v)) + _diagonal_log_ntk(self.dual, L)
        return Layer(sK, lK, sT, lT, lcomp, None, lcomp_ntk if self.ntk else None)

    def limit(self) -> tuple[np.ndarray, np.ndarray]:
        key = np.zeros(self.n)
        key[self.unit] = np.inf
        return np.ones(self.n), key


@declare(
    finite=False,
    dual=DualArg(example="3d_opt"),
    rho=_RHO,
    depths=Given(why="a non-empty list of depths, each checked as a `Depth` in the body", example=(1, 3, math.inf)),
    delta=_DELTA,
)
def deep_kernels(
    dual: DualLike, rho: ArrayLike, depths: Sequence[float], delta: ArrayLike | None = None
) -> dict[float, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """{L: {"nngp": (sign, log|K_L|), "ntk": (sign, log|Theta_L|)}} at correlations rho for every depth L (one flow;
    delta = 1 - |rho| if known more accurately); L = math.inf gives the limit weight (sign, log|sigma|) of a singular
    dual (the Boettcher coordinate for b_0 = b_1 = 0, 0 for majority duals) under both names. Logs are -inf where
    a kernel vanishes and +inf for the limit weight at |rho| = 1."""
    d = cast(Dual, dual)
    if isinstance(depths, (str, bytes)) or not isinstance(depths, Sequence) or not depths:
        raise ValueError(f"depths: must be a non-empty list of depths, got {depths!r:.80}")
    depths = [_depth(L, "depths") for L in depths]
    rho, dl = _complements(np.asarray(rho, np.float64), None if delta is None else np.asarray(delta, np.float64))
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


@declare(
    finite=False,
    dual=DualArg(example="3d_opt"),
    rho=_RHO,
    depth=Depth(),
    kernel=Choice(("nngp", "ntk")),
    delta=_DELTA,
)
def deep_kernel(
    dual: DualLike, rho: ArrayLike, depth: float, kernel: str = "nngp", delta: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(sign, log|K_L(rho)|) of the depth-L NNGP or NTK at correlations rho (`deep_kernels` for one depth)."""
    return deep_kernels(dual, rho, (depth,), delta)[depth][kernel]
