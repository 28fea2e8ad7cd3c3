"""Classification tasks on the sphere with known laws and exact Bayes classifiers, for the infinite-depth experiments
(`workbench.theory.infinite_depth`; Radhakrishnan, Belkin & Uhler 2023).

- Dirichlet tasks (the official code uhlerlab/inf_depth_ntks, `dataset.get_dirichlet_data` and `main.py`): class +1
  ~ Dirichlet(alpha1), class -1 ~ Dirichlet(alpha2) on the simplex, mapped to the sphere by s -> s / ||s||; a share
  `prior` (0.4) of the n_train + n_test points is class +1 (a fixed count, as in the code), then shuffled and split.
  The map is a bijection of the simplex onto the positive part of S^(d-1), so the Bayes classifier compares the two
  Dirichlet densities at s = x / sum(x): sign(log(prior p1(s)) - log((1 - prior) p2(s))).
- The workbench's 2-D playground sets (`workbench.data.playground`) lifted to the upper hemisphere of S^2 by the
  inverse central projection x -> (x, 1) / ||(x, 1)|| (a bijection, so no information is lost; d = 3 and alpha = 1
  is the consistent choice). Their Bayes classifiers follow the generator's law in the plane (noise sigma = `noise`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import gammaln, i0e, logsumexp

from workbench.core.declare import Array, Choice, Int, Real, declare

__all__ = [
    "DIRICHLET",
    "PLANE_EXTENT",
    "PLAYGROUND",
    "TASKS",
    "SphereTask",
    "dirichlet_task",
    "lift",
    "playground_task",
    "sphere_task",
    "unlift",
]

DIRICHLET = {  # the official code's parameter sets (main.py): d -> (alpha1 for class +1, alpha2 for class -1)
    2: ((1.0, 2.0), (2.0, 1.0)),
    3: ((0.5, 0.5, 2.5), (2.5, 0.1, 0.5)),
    5: ((3.0, 1.0, 2.0, 1.0, 1.0), (1.0, 2.0, 2.0, 2.0, 3.0)),
    9: ((1.0, 2.0, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0), (1.0, 1.0, 1.0, 2.0, 3.0, 4.0, 2.0, 2.0, 1.0)),
}
PLAYGROUND = ("circle", "xor", "gauss", "spiral")
TASKS = PLAYGROUND + tuple(f"dirichlet_{d}" for d in DIRICHLET)
PLANE_EXTENT = 1.3  # the playground plane shown: [-1.3, 1.3]^2


@dataclass(frozen=True)
class SphereTask:
    """Train/test points on the unit sphere (float64), labels +-1, and the task's exact Bayes classifier.

    `to_plane` / `from_plane` map sphere points to 2-D display coordinates and back (None when the task is not
    2-D); `extent` is the (x0, x1, y0, y1) box of the display; `inside(p)` masks display points inside the domain."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    bayes: Callable[[np.ndarray], np.ndarray]
    to_plane: Callable[[np.ndarray], np.ndarray] | None = None
    from_plane: Callable[[np.ndarray], np.ndarray] | None = None
    extent: tuple[float, float, float, float] | None = None
    inside: Callable[[np.ndarray], np.ndarray] | None = None
    description: str = ""

    @property
    def dim(self) -> int:
        """Ambient dimension d (the points lie on S^(d-1))."""
        return self.x_train.shape[1]


# ---------------------------------------------------------------- Dirichlet tasks


def _triangle_to_plane(points: np.ndarray) -> np.ndarray:
    """Points of S^2 with positive coordinates -> their simplex point drawn in an equilateral triangle."""
    p = np.asarray(points, np.float64)
    q = p / p.sum(-1, keepdims=True)
    return np.stack([q[..., 1] + q[..., 2] / 2, q[..., 2] * math.sqrt(3) / 2], -1)


def _triangle_from_plane(xy: np.ndarray) -> np.ndarray:
    """The inverse of `_triangle_to_plane` (clipped into the open triangle)."""
    xy = np.asarray(xy, np.float64)
    s3 = xy[..., 1] * 2 / math.sqrt(3)
    s2 = xy[..., 0] - s3 / 2
    q = np.stack([1 - s2 - s3, s2, s3], -1)
    q = np.clip(q, 1e-12, None)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def _triangle_inside(xy: np.ndarray) -> np.ndarray:
    """Mask of display points inside the triangle."""
    xy = np.asarray(xy, np.float64)
    s3 = xy[..., 1] * 2 / math.sqrt(3)
    s2 = xy[..., 0] - s3 / 2
    return (s2 >= 0) & (s3 >= 0) & (s2 + s3 <= 1)


def _dirichlet_log_ratio(s: np.ndarray, alpha1: ArrayLike, alpha2: ArrayLike, prior: float = 0.4) -> np.ndarray:
    """log(prior p1(s)) - log((1 - prior) p2(s)) for Dirichlet densities p1, p2 at simplex points s (rows); a zero
    coordinate counts only through the parameters that differ (no inf - inf)."""
    a1, a2 = np.asarray(alpha1, np.float64), np.asarray(alpha2, np.float64)
    const = (gammaln(a1.sum()) - gammaln(a1).sum()) - (gammaln(a2.sum()) - gammaln(a2).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(s)
        terms = np.where(a1 == a2, 0.0, (a1 - a2) * logs)
    return const + terms.sum(-1) + math.log(prior) - math.log(1 - prior)


MAX_POINTS = 1_000_000  # train or test points of a task
SAMPLERS = ("default", "official")  # numpy's Generator, or the official code's global RandomState + random.shuffle
OFFICIAL_DRAWS = 10_000  # re-draws `_official_draw` tries before giving up


def _official_draw(a1: np.ndarray, a2: np.ndarray, n1: int, total: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(points on the sphere, shuffle order) as the official `main.py` draws them after `np.random.seed(seed)` and
    `random.seed(seed)`: scipy's `dirichlet.rvs` of the global RandomState (n1 points of alpha1, then the rest of
    alpha2), mapped by s / ||s||, drawn again while max(X X^T - I) >= 1 or min(X X^T - I) == 0 (two points equal to
    float64 precision; checked a block of rows at a time), then shuffled by Python's `random.shuffle`."""
    rs = np.random.RandomState(seed)
    for _ in range(OFFICIAL_DRAWS):
        s = np.concatenate([rs.dirichlet(a1, n1), rs.dirichlet(a2, total - n1)])
        x = s / np.linalg.norm(s, axis=-1).reshape(-1, 1)
        top, low = -np.inf, np.inf
        for i in range(0, total, 1024):
            g = x[i : i + 1024] @ x.T
            rows = np.arange(len(g))
            g[rows, i + rows] -= 1.0
            top, low = max(top, float(g.max())), min(low, float(g.min()))
            if top >= 1:  # drawn again whatever the other blocks hold
                break
        if not (top >= 1 or low == 0):
            order = list(range(total))
            random.Random(seed).shuffle(order)
            return x, np.asarray(order)
    raise ValueError(f"seed: {OFFICIAL_DRAWS} official draws all held two points equal to float64 precision")


SEED = Int(0, 2**31 - 1)


@declare(
    d=Choice(tuple(DIRICHLET)),
    n_train=Int(1, MAX_POINTS),
    n_test=Int(1, MAX_POINTS),
    seed=SEED,
    prior=Real(0.0, 1.0, lo_open=True),
    alpha1=Array("k", lo=0.0, hi=1e6, none_ok=True, example=np.array(DIRICHLET[2][0])),
    alpha2=Array("k", lo=0.0, hi=1e6, none_ok=True, example=np.array(DIRICHLET[2][1])),
    sampler=Choice(SAMPLERS),
)
def dirichlet_task(
    d: int = 2,
    n_train: int = 2000,
    n_test: int = 2000,
    seed: int = 0,
    prior: float = 0.4,
    alpha1: ArrayLike | None = None,
    alpha2: ArrayLike | None = None,
    sampler: str = "default",
) -> SphereTask:
    """The official code's Dirichlet task on S^(d-1), seeded: class +1 ~ Dirichlet(alpha1), class -1 ~
    Dirichlet(alpha2), a share `prior` of the points class +1. A parameter not given is `DIRICHLET[d]`'s (d is
    the dimension of those presets; given parameters set their own). sampler="official" draws as the official
    `main.py` does (`_official_draw`: its seed 1717 gives its table's points)."""
    a1 = np.asarray(DIRICHLET[d][0] if alpha1 is None else alpha1, np.float64)
    a2 = np.asarray(DIRICHLET[d][1] if alpha2 is None else alpha2, np.float64)
    for name, a in (("alpha1", a1), ("alpha2", a2)):
        if a.size < 2 or np.any(a <= 0):
            raise ValueError(f"{name}: Dirichlet parameters must be positive, at least 2 of them, got {a.tolist()}")
    if a1.shape != a2.shape:
        given, other = ("alpha1", "alpha2") if alpha1 is not None else ("alpha2", "alpha1")
        raise ValueError(
            f"{given}: its length differs from {other}'s ({a1.size} against {a2.size} parameters; "
            f"{other} is DIRICHLET[{d}]'s when not given)"
        )
    if prior >= 1:
        raise ValueError(f"prior: must be in (0, 1), got {prior!r}")
    total = n_train + n_test
    n1 = int(total * prior)
    y = np.concatenate([np.ones(n1, int), -np.ones(total - n1, int)])
    if sampler == "official":
        x, order = _official_draw(a1, a2, n1, total, seed)
    else:
        rng = np.random.default_rng(seed)
        s = np.concatenate([rng.dirichlet(a1, n1), rng.dirichlet(a2, total - n1)])
        order = rng.permutation(total)
        x = s / np.linalg.norm(s, axis=1, keepdims=True)
    x, y = x[order], y[order]

    def bayes(points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, np.float64)
        simplex = p / p.sum(-1, keepdims=True)
        return np.where(_dirichlet_log_ratio(simplex, a1, a2, prior) > 0, 1, -1)

    triangle = a1.size == 3  # the 2-simplex drawn as an equilateral triangle
    return SphereTask(
        f"dirichlet_{a1.size}",
        x[:n_train],
        y[:n_train],
        x[n_train:],
        y[n_train:],
        bayes,
        to_plane=_triangle_to_plane if triangle else None,
        from_plane=_triangle_from_plane if triangle else None,
        extent=(0.0, 1.0, 0.0, math.sqrt(3) / 2) if triangle else None,
        inside=_triangle_inside if triangle else None,
        description=f"Dirichlet{tuple(a1.tolist())} (+1, prior {prior}) vs Dirichlet{tuple(a2.tolist())} "
        f"on S^{a1.size - 1}",
    )


# ---------------------------------------------------------------- playground sets lifted to S^2


def _lift(xy: ArrayLike) -> np.ndarray:
    xy = np.asarray(xy, np.float64)
    p = np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], -1)
    return p / np.linalg.norm(p, axis=-1, keepdims=True)


def _unlift(points: ArrayLike) -> np.ndarray:
    p = np.asarray(points, np.float64)
    return p[..., :2] / p[..., 2:3]


@declare(xy=Array("n 2", lo=-1e15, hi=1e15))
def lift(xy: ArrayLike) -> np.ndarray:
    """Plane -> upper hemisphere of S^2: x -> (x, 1) / ||(x, 1)|| (inverse central projection), rows (n, 2) ->
    (n, 3)."""
    return _lift(xy)


@declare(points=Array("n 3", example=lambda: _lift(np.random.default_rng(0).normal(size=(6, 2)))))
def unlift(points: ArrayLike) -> np.ndarray:
    """Upper hemisphere of S^2 -> plane (the central projection x / x_3), rows (n, 3) with x_3 > 0 -> (n, 2)."""
    if np.any(np.asarray(points)[:, 2] <= 0):
        raise ValueError("points: the central projection needs points of the upper hemisphere (x_3 > 0)")
    return _unlift(points)


def _gauss_bayes(xy: np.ndarray, noise: float) -> np.ndarray:
    return np.where(xy[..., 0] + xy[..., 1] > 0, 1, -1)


def _xor_bayes(xy: np.ndarray, noise: float) -> np.ndarray:
    # class densities (g(x1) g(x2) + g(-x1) g(-x2)) vs (g(-x1) g(x2) + g(x1) g(-x2)): their difference is
    # (g(x1) - g(-x1)) (g(x2) - g(-x2)), g(t) > g(-t) for t > 0, so the Bayes rule is the sign of -x1 x2
    return np.where(xy[..., 0] * xy[..., 1] < 0, 1, -1)


def _circle_bayes(xy: np.ndarray, noise: float) -> np.ndarray:
    r = np.hypot(xy[..., 0], xy[..., 1])
    if noise < 1e-3:
        return np.where(r > 0.6, 1, -1)
    # radius uniform on [0, 0.5] (class 0) or [0.7, 1] (class 1), angle uniform, then N(0, noise^2 I): the density
    # at distance R is E_r[exp(-(R - r)^2 / 2 s^2) i0e(R r / s^2)] / (2 pi s^2)
    nodes, weights = np.polynomial.legendre.leggauss(200)

    def dens(lo: float, hi: float, R: np.ndarray) -> np.ndarray:
        rr = lo + (hi - lo) * (nodes + 1) / 2
        s2 = noise * noise
        vals = np.exp(-((R[..., None] - rr) ** 2) / (2 * s2)) * i0e(R[..., None] * rr / s2)
        return (vals @ weights) / 2  # mean over r (weights sum to 2)

    return np.where(dens(0.7, 1.0, r) > dens(0.0, 0.5, r), 1, -1)


def _spiral_bayes(xy: np.ndarray, noise: float, n: int) -> np.ndarray:
    half = n // 2
    s = max(noise, 1e-3)

    def curve(count: int, label: int) -> np.ndarray:
        t = np.linspace(0, 1, count)
        a = 1.75 * t * 2 * math.pi + math.pi * label
        return np.stack([t * np.sin(a), t * np.cos(a)], 1)

    out = np.empty(xy.shape[:-1], int)
    flat, res = xy.reshape(-1, 2), out.reshape(-1)
    c0, c1 = curve(half, 0), curve(n - half, 1)
    for i in range(0, len(flat), 2048):
        p = flat[i : i + 2048]
        # scipy has no stubs: logsumexp's inferred return includes the return_sign=True tuple
        lse0 = cast(np.ndarray, logsumexp(-np.sum((p[:, None] - c0) ** 2, -1) / (2 * s * s), axis=-1))
        lse1 = cast(np.ndarray, logsumexp(-np.sum((p[:, None] - c1) ** 2, -1) / (2 * s * s), axis=-1))
        d2_0 = lse0 - math.log(len(c0))
        d2_1 = lse1 - math.log(len(c1))
        res[i : i + 2048] = np.where(d2_1 > d2_0, 1, -1)
    return out


@declare(
    name=Choice(PLAYGROUND),
    n_train=Int(2, MAX_POINTS),
    n_test=Int(1, MAX_POINTS),
    noise=Real(0.0, 1.0),
    seed=SEED,
)
def playground_task(
    name: str = "circle", n_train: int = 400, n_test: int = 400, noise: float = 0.1, seed: int = 0
) -> SphereTask:
    """`workbench.data.playground(name)` (labels 0/1 -> -1/+1) lifted to the upper hemisphere of S^2, with the Bayes
    classifier of its generator (equal priors; gauss, xor exact; circle by quadrature of the radial law; spiral as
    the mixture of the generator's n // 2 curve points per class)."""
    from workbench import data as D

    n = n_train + n_test
    if n < 4:
        raise ValueError(f"n_test: the playground sets need at least 4 points in all, got {n_train} + {n_test}")
    data = D.playground(name, n=n, noise=float(noise), test_fraction=n_test / n, seed=seed)
    to_pm = lambda y: np.where(np.asarray(y) == 1, 1, -1)
    rule = {
        "gauss": _gauss_bayes,
        "xor": _xor_bayes,
        "circle": _circle_bayes,
        "spiral": lambda xy, s: _spiral_bayes(xy, s, n),
    }[name]

    def bayes(points: np.ndarray) -> np.ndarray:
        return rule(_unlift(points), float(noise))

    e = PLANE_EXTENT
    return SphereTask(
        name,
        _lift(data.x_train),
        to_pm(data.y_train),
        _lift(data.x_test),
        to_pm(data.y_test),
        bayes,
        to_plane=_unlift,
        from_plane=_lift,
        extent=(-e, e, -e, e),
        inside=lambda xy: np.ones(np.shape(xy)[:-1], bool),
        description=f"playground {name} (noise {noise}) lifted to S^2 by x -> (x, 1) / ||(x, 1)||",
    )


@declare(name=Choice(TASKS), n_train=Int(2, MAX_POINTS), n_test=Int(1, MAX_POINTS), seed=SEED, noise=Real(0.0, 1.0))
def sphere_task(name: str, n_train: int, n_test: int, seed: int = 0, noise: float = 0.1) -> SphereTask:
    """One of `TASKS`: a playground set lifted to S^2 (with `noise`) or dirichlet_<d> for d in 2, 3, 5, 9."""
    if name in PLAYGROUND:
        return playground_task(name, n_train, n_test, noise, seed)
    return dirichlet_task(int(name.removeprefix("dirichlet_")), n_train, n_test, seed)
