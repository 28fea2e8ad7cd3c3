"""Neural-collapse metrics (Papyan, Han & Donoho 2020) and the imbalanced "general orthogonal frame"
predicted for bias-free deep linear unconstrained-features models (Dang et al. 2023).

Notation: features H (N, d) with labels y in 0..C-1; global mean mu_G = mean of all features; class
means mu_c; centred class means M (C, d) with rows mu_c - mu_G; classifier W (C, d) (rows w_c), bias b.

- nc1 = Tr(Sigma_W Sigma_B^+) / C (Papyan et al. Fig. 6) with Sigma_W = 1/N sum_i (h_i - mu_{y_i})(.)^T,
  Sigma_B = 1/C sum_c (mu_c - mu_G)(.)^T; the pseudo-inverse keeps eigenvalues above 1e-10 of the
  largest, so nc1 >= 0. Float64 throughout.
- nc2 (Papyan et al. Figs. 2-4): equinorm = std/mean of ||mu_c - mu_G|| (`nc2_norm_M`) and of ||w_c||
  (`nc2_norm_W`); equiangularity = std of the pairwise cosines (`nc2_angle_M`, `nc2_angle_W`);
  max-angle = mean |cos + 1/(C-1)| (`nc2_maxangle_M`, `nc2_maxangle_W`); and the single number
  `nc2` = || M M^T/||M M^T||_F - (I - 11^T/C)/sqrt(C-1) ||_F, the distance to a simplex ETF Gram
  (Zhu et al. 2021, NC2 of their Eq. 8).
- nc3 = || W/||W||_F - M/||M||_F ||_F^2 (self-duality, Papyan et al. Fig. 5).
- nc4 = fraction of points whose prediction argmax(W h + b) differs from the nearest class mean
  (Papyan et al. Fig. 7).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from workbench.core import checks
from workbench.core.declare import Array, Given, Int, Real, Reals, declare
from workbench.core.memory import require

__all__ = [
    "MAX_CLASSES",
    "MAX_FEATURE",
    "PINV_RTOL",
    "class_means",
    "etf_distance",
    "gof_prediction",
    "gof_singular_value",
    "layer_nc",
    "minority_collapse_threshold",
    "nc1",
    "nc_metrics",
    "simplex_etf",
]

PINV_RTOL = 1e-10
MAX_FEATURE = 1e15  # |entries| of features and classifiers: squared norms of Grams stay finite in float64
MAX_CLASSES = 100_000
MAX_SIZE = 10**9  # points in one class

# the declared features, labels and number of classes (2 in the attack suite's base calls)
_H = Array("n d", lo=-MAX_FEATURE, hi=MAX_FEATURE)
_Y = Array("n", integer=True, lo=0, example=np.array([0, 1, 1, 0, 1, 0]))
_C = Int(2, MAX_CLASSES)


def _features(h: ArrayLike, y: ArrayLike, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Declared (h, y, n_classes) as (h (N, d) float64, y (N,) labels, checked below n_classes)."""
    return np.asarray(h, np.float64), checks.labels("y", y, np.shape(h)[0], n_classes)


def _class_means(h: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    sums = np.zeros((n_classes, h.shape[1]))
    np.add.at(sums, y, h)  # no N x C one-hot
    return sums / np.maximum(counts, 1)[:, None], h.mean(0), counts


@declare(h=_H, y=_Y, n_classes=_C)
def class_means(h: ArrayLike, y: ArrayLike, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class means (C, d), global mean (d,), class counts (C,)) in float64 (an empty class has mean 0)."""
    return _class_means(*_features(h, y, n_classes), n_classes)


def _nc1(h: np.ndarray, y: np.ndarray, n_classes: int) -> float:
    means, mu_g, _ = _class_means(h, y, n_classes)
    within = h - means[np.asarray(y)]
    _, s, vt = np.linalg.svd(means - mu_g, full_matrices=False)  # Sigma_B = V diag(s^2/C) V^T
    lam = s**2 / n_classes
    keep = lam > PINV_RTOL * max(lam.max(), 1e-300)
    proj = within @ vt[keep].T  # Tr(Sigma_W Sigma_B^+) = sum_j v_j^T Sigma_W v_j / lam_j
    return float(np.sum(np.mean(proj**2, 0) / lam[keep]) / n_classes)


@declare(h=_H, y=_Y, n_classes=_C)
def nc1(h: ArrayLike, y: ArrayLike, n_classes: int) -> float:
    """Tr(Sigma_W Sigma_B^+)/C (Papyan et al. 2020), truncated pseudo-inverse, never negative."""
    return _nc1(*_features(h, y, n_classes), n_classes)


def _cosines(rows: np.ndarray) -> np.ndarray:
    unit = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-300)
    gram = unit @ unit.T
    return gram[~np.eye(len(rows), dtype=bool)]


def _cv(values: np.ndarray) -> float:
    return float(np.std(values) / max(np.mean(values), 1e-300))


def _etf_distance(m: np.ndarray) -> float:
    c = len(m)
    gram = m @ m.T
    etf = (np.eye(c) - 1.0 / c) / math.sqrt(c - 1)
    return float(np.linalg.norm(gram / max(np.linalg.norm(gram), 1e-300) - etf))


@declare(m=Array("c d", lo=-MAX_FEATURE, hi=MAX_FEATURE))
def etf_distance(m: ArrayLike) -> float:
    """|| M M^T/||M M^T||_F - (I - 11^T/C)/sqrt(C-1) ||_F (Zhu et al. 2021): 0 for a simplex ETF; M (C, d),
    C >= 2 rows (centred class means)."""
    m = np.asarray(m, np.float64)
    if len(m) < 2:
        raise ValueError(f"m: a simplex ETF needs at least 2 rows (classes), got shape {m.shape}")
    return _etf_distance(m)


def _example_classifier() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(2, 3))  # 2 classes of 3 features (the suite's d)


@declare(
    h=_H,
    y=_Y,
    n_classes=_C,
    w=Array("c d", lo=-MAX_FEATURE, hi=MAX_FEATURE, none_ok=True, example=_example_classifier),
    b=Array("c", lo=-MAX_FEATURE, hi=MAX_FEATURE, none_ok=True, example=np.zeros(2)),
)
def nc_metrics(
    h: ArrayLike, y: ArrayLike, n_classes: int, w: ArrayLike | None = None, b: ArrayLike | None = None
) -> dict[str, Any]:
    """NC1..NC4 of features h (N, d) with labels y and classifier rows w (C, d), bias b (C,) (see the
    module docstring). Without a classifier only nc1 and the class-mean parts of nc2 are returned."""
    h, y = _features(h, y, n_classes)
    if w is not None and np.shape(w)[0] != n_classes:
        raise ValueError(f"w: must have one row per class (n_classes = {n_classes}), got shape {np.shape(w)}")
    if b is not None and np.shape(b)[0] != n_classes:
        raise ValueError(f"b: must have one entry per class (n_classes = {n_classes}), got shape {np.shape(b)}")
    return _nc_metrics(h, y, n_classes, w, b)


def _nc_metrics(
    h: np.ndarray, y: np.ndarray, n_classes: int, w: ArrayLike | None, b: ArrayLike | None
) -> dict[str, Any]:
    logits = 0 if w is None else 3 * h.shape[0] * n_classes  # logits, distances to the class means, argmax
    sizes = f"n_classes = {n_classes} with {h.shape[0]} points"
    require(8 * (2 * n_classes**2 + logits), "nc_metrics", sizes, "use fewer classes or points")  # Grams are C x C
    means, mu_g, _ = _class_means(h, y, n_classes)
    m = means - mu_g
    cos_m = _cosines(m)
    out = {
        "nc1": _nc1(h, y, n_classes),
        "nc2": _etf_distance(m),
        "nc2_norm_M": _cv(np.linalg.norm(m, axis=1)),
        "nc2_angle_M": float(np.std(cos_m)),
        "nc2_maxangle_M": float(np.mean(np.abs(cos_m + 1.0 / (n_classes - 1)))),
    }
    if w is None:
        return out
    w = np.asarray(w, np.float64)
    b = None if b is None else np.asarray(b, np.float64)
    cos_w = _cosines(w)
    logits = h @ w.T + (0.0 if b is None else b)
    # nearest class mean by |h|^2 - 2 h.mu + |mu|^2: N x C, no N x C x d difference tensor
    nearest = np.argmin((means**2).sum(1)[None, :] - 2 * h @ means.T, axis=1)
    out.update(
        nc2_norm_W=_cv(np.linalg.norm(w, axis=1)),
        nc2_angle_W=float(np.std(cos_w)),
        nc2_maxangle_W=float(np.mean(np.abs(cos_w + 1.0 / (n_classes - 1)))),
        nc3=float(np.linalg.norm(w / np.linalg.norm(w) - m / np.linalg.norm(m)) ** 2),
        nc4=float(np.mean(np.argmax(logits, 1) != nearest)),
    )
    return out


def _example_features() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(size=(6, 3)), rng.normal(size=(6, 5))]  # two layers of the suite's 6 points


@declare(
    features=Given(
        why="a list of (N, d_l) feature matrices, one per layer, checked in the body", example=_example_features
    ),
    y=_Y,
    n_classes=_C,
)
def layer_nc(features: Iterable[ArrayLike], y: ArrayLike, n_classes: int) -> dict[str, np.ndarray]:
    """Per-layer nc1 and nc2 (arrays over the layers) of a list of feature matrices."""
    if isinstance(features, (str, bytes, dict)) or not isinstance(features, Iterable):
        raise ValueError(f"features: must be a list of feature matrices (one per layer), got {type(features).__name__}")
    per = []
    for i, h in enumerate(features):
        h = checks.array(f"features[{i}]", h, max_abs=MAX_FEATURE)
        per.append(_nc_metrics(*_features(h, y, n_classes), n_classes, None, None))
    if not per:
        raise ValueError("features: needs at least one layer's features")
    return {"nc1_layers": np.array([p["nc1"] for p in per]), "nc2_layers": np.array([p["nc2"] for p in per])}


@declare(n_classes=Int(2, 512), dim=Int(1, 100_000, none_ok=True), seed=Int(0, 2**31 - 1))
def simplex_etf(n_classes: int, dim: int | None = None, seed: int = 0) -> np.ndarray:
    """C unit vectors of a simplex equiangular tight frame in R^dim (rows, dim >= C - 1; default C), randomly
    rotated."""
    dim = n_classes if dim is None else dim
    if dim < n_classes - 1:
        raise ValueError(f"dim: a simplex ETF of {n_classes} classes needs dim >= {n_classes - 1}, got {dim}")
    rng = np.random.default_rng(seed)
    # Helmert's orthonormal basis of the sum-zero subspace (column k: k ones, then -k, over sqrt(k (k + 1))),
    # which the centring I - 11^T/C leaves unchanged: no C x C decomposition
    j, k = np.arange(n_classes)[:, None], np.arange(1, n_classes)[None, :]
    basis = np.where(j < k, 1.0, np.where(j == k, -k, 0.0)) / np.sqrt(k * (k + 1.0))
    rotation = np.linalg.qr(rng.normal(size=(dim, n_classes - 1)))[0].T  # orthonormal rows in R^dim
    rows = basis @ rotation
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


# --- Dang et al. 2023: imbalanced bias-free deep linear unconstrained features ----------------------


def _gof_singular_value(s: float, n_total: int, c: float, depth: int) -> float:
    n = float(n_total)
    if depth == 1:
        return max(s - n * c, 0.0)
    q = 2.0 / (depth + 1)
    objective = lambda z: (z - s) ** 2 / (2 * n) + (depth + 1) / 2 * c * z**q
    slope = lambda z: (z - s) / n + c * z ** (q - 1)  # objective'(z); +inf at 0+, positive at s
    z_min = (n * c * (1 - q)) ** (1 / (2 - q))  # where slope is smallest
    if z_min >= s or slope(z_min) >= 0:
        return 0.0
    lo, hi = z_min, s
    for _ in range(200):  # bisection for the largest root on (z_min, s): slope < 0 at lo, > 0 at hi
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if slope(mid) < 0 else (lo, mid)
    z = 0.5 * (lo + hi)
    return z if objective(z) < objective(0.0) else 0.0


@declare(s=Real(0.0, 1e9), n_total=Int(1, 10**12), c=Real(0.0, 1e6, lo_open=True), depth=Int(1, 64))
def gof_singular_value(s: float, n_total: int, c: float, depth: int) -> float:
    """Minimiser over z >= 0 of (z - s)^2/(2N) + (M+1)/2 c z^(2/(M+1)) (Dang et al. 2023, Thm. 4.2's
    per-class scalar problem, M = depth linear layers on the features, N = n_total): soft thresholding for
    M = 1, the largest stationary point or 0 (minority collapse) for M >= 2."""
    return _gof_singular_value(s, n_total, c, depth)


_SIZES = Array("k", integer=True, lo=1, hi=MAX_SIZE)  # class sizes


@declare(
    class_sizes=_SIZES,
    weight_decay_h=Real(0.0, 1e6, lo_open=True),
    weight_decays_w=Reals(0.0, 1e6, lo_open=True),
    n_total=Int(1, 10**12, none_ok=True),
)
def gof_prediction(
    class_sizes: Sequence[float] | np.ndarray,
    weight_decay_h: float,
    weight_decays_w: float | Sequence[float] | np.ndarray,
    n_total: int | None = None,
) -> dict[str, np.ndarray]:
    """Global minimiser of 1/(2N)||W_M..W_1 H - Y||^2 + lambda_H/2 ||H||^2 + sum_m lambda_m/2 ||W_m||^2
    (Dang et al. 2023, Sec. 4, bias-free, width >= C): a "general orthogonal frame" where class means
    and the last layer's rows are orthogonal, with lengths set by the class sizes n_k.

    The product W_M..W_1 [class means] diag(sqrt n_k) has singular values z_k (`gof_singular_value`
    of s = sqrt(n_k)); balancedness gives every factor the singular value sqrt(c/lambda) z_k^(1/(M+1)),
    c = (lambda_H prod lambda_m)^(1/(M+1)). Returns arrays over classes: `z`, `w_norms` (||w_k||, last
    layer rows), `h_norms` (||h_k||, class means of H), `feature_norms` (M, C) (class-mean norms of the
    features entering layers 1..M: H, W_1 H, ...), `collapsed` (z_k = 0: minority collapse).
    `weight_decays_w`: lambda_1..lambda_M, one per layer (a number: one layer); `n_total` (default sum of
    class_sizes) lets a subset of the classes be evaluated."""
    if np.ndim(weight_decays_w) > 1:
        raise ValueError(
            f"weight_decays_w: must be a list of weight decays, one per layer, got shape {np.shape(weight_decays_w)}"
        )
    return _gof_prediction(np.asarray(class_sizes, np.float64), weight_decay_h, np.atleast_1d(weight_decays_w), n_total)


def _gof_prediction(
    sizes: np.ndarray, weight_decay_h: float, weight_decays_w: np.ndarray, n_total: int | None
) -> dict[str, np.ndarray]:
    lambdas = [float(weight_decay_h)] + [float(v) for v in weight_decays_w]
    depth = len(lambdas) - 1
    n_total = int(sizes.sum()) if n_total is None else n_total
    c = math.prod(lambdas) ** (1.0 / (depth + 1))
    z = np.array([_gof_singular_value(math.sqrt(n), n_total, c, depth) for n in sizes])
    sigma = np.sqrt(c / np.array(lambdas))[:, None] * z ** (1.0 / (depth + 1))  # (M+1, C): H, W_1 .. W_M
    return {
        "z": z,
        "w_norms": sigma[-1],
        "h_norms": sigma[0] / np.sqrt(sizes),
        "feature_norms": np.cumprod(sigma[:-1], axis=0) / np.sqrt(sizes),
        "collapsed": z == 0,
    }


@declare(class_sizes=_SIZES, depth=Int(1, 64))
def minority_collapse_threshold(class_sizes: Sequence[float] | np.ndarray, depth: int = 1) -> float:
    """The weight decay lambda (the same on H and every layer) above which the smallest class
    collapses (z_k = 0) in `gof_prediction`: sqrt(n_min)/N for depth 1, by bisection otherwise."""
    sizes = np.asarray(class_sizes, np.float64)
    smallest = lambda lam: _gof_prediction(sizes.min(keepdims=True), lam, np.full(depth, lam), int(sizes.sum()))["z"][0]
    lo, hi = 1e-12, 1.0
    while smallest(hi) > 0:
        hi *= 10
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if smallest(mid) > 0 else (lo, mid)
    return hi
