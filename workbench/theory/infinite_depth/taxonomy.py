"""Fixed points and the depth-limit regime of a dual (Radhakrishnan, Belkin & Uhler, PNAS 2023, Thm. 1-3)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple, cast

import numpy as np

from workbench.core.declare import Int, Real, declare
from workbench.theory.infinite_depth.duals import Dual, DualArg, _brentq

if TYPE_CHECKING:
    from workbench.theory.infinite_depth.duals import DualLike

__all__ = ["COBWEB_STEPS", "FixedPoint", "Regime", "cobweb", "fixed_points", "regime"]

# ---------------------------------------------------------------- taxonomy


class FixedPoint(NamedTuple):
    """A fixed point rho* = k(rho*) of the correlation map (stable: |k'(rho*)| < 1; neutral ones count as unstable)."""

    rho: float
    slope: float  # k'(rho*)
    stable: bool


@declare(dual=DualArg(example="sine_2.676"))
def fixed_points(dual: DualLike) -> list[FixedPoint]:
    """Fixed points of k on [-1, 1] with their multipliers k'(rho*) (stable when |k'| < 1; 1 always, 0 when b_0 = 0)."""
    return _fixed_points(cast(Dual, dual))


def _fixed_points(dual: Dual) -> list[FixedPoint]:
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


@declare(finite=False, dual=DualArg(example="relu"))
def regime(dual: DualLike) -> Regime:
    """The L -> infinity classifier of a dual: majority vote (b_0 > 0), 1-NN (b_0 = b_1 = 0), singular (0 < b_1 < 1);
    its alpha and d_consistent are NaN unless singular (inf for 1-NN)."""
    return _regime(cast(Dual, dual))


def _regime(d: Dual) -> Regime:
    b0, b1, mu = d.lambda0, d.lam, d.mu
    if b0 > 0:
        if mu > 1:
            star = [p.rho for p in _fixed_points(d) if p.stable and 0 < p.rho < 1]
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


COBWEB_STEPS = 10_000  # iterations a cobweb diagram draws at most (each is one evaluation of the dual)


@declare(dual=DualArg(example="relu"), rho0=Real(-1.0, 1.0), steps=Int(0, COBWEB_STEPS))
def cobweb(dual: DualLike, rho0: float, steps: int = 30) -> np.ndarray:
    """Vertices (2 steps + 1, 2) of the cobweb of rho_{l+1} = k(rho_l) from rho0: (rho0, rho0), (rho0, rho1),
    (rho1, rho1), ..."""
    d = cast(Dual, dual)
    pts, r = [(rho0, rho0)], float(rho0)
    for _ in range(steps):
        nxt = float(d.k(np.float64(r)))
        pts += [(r, nxt), (nxt, nxt)]
        r = nxt
    return np.asarray(pts)
