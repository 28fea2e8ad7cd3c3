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
from workbench.core.memory import require

PINV_RTOL = 1e-10
MAX_FEATURE = 1e50  # |entries| of features and classifiers: squared norms of Grams stay finite in float64


def _features(h: ArrayLike, y: ArrayLike, n_classes: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Validated (h (N, d) float64, y (N,) labels in [0, C), C >= 2)."""
    n_classes = checks.integer("n_classes", n_classes, 2, 100_000)
    h = checks.array("h", h, max_abs=MAX_FEATURE)
    return np.asarray(h, np.float64), checks.labels("y", y, h.shape[0], n_classes), n_classes


def class_means(h: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class means (C, d), global mean (d,), class counts (C,)) in float64."""
    h, y, n_classes = _features(h, y, n_classes)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    sums = np.zeros((n_classes, h.shape[1]))
    np.add.at(sums, y, h)  # no N x C one-hot
    return sums / np.maximum(counts, 1)[:, None], h.mean(0), counts


def nc1(h: ArrayLike, y: ArrayLike, n_classes: int) -> float:
    """Tr(Sigma_W Sigma_B^+)/C (Papyan et al. 2020), truncated pseudo-inverse, never negative."""
    h, y, n_classes = _features(h, y, n_classes)
    means, mu_g, _ = class_means(h, y, n_classes)
    within = h - means[np.asarray(y)]
    _, s, vt = np.linalg.svd(means - mu_g, full_matrices=False)  # Sigma_B = V diag(s^2/C) V^T
    lam = s**2 / n_classes
    keep = lam > PINV_RTOL * max(lam.max(), 1e-300)
    proj = within @ vt[keep].T  # Tr(Sigma_W Sigma_B^+) = sum_j v_j^T Sigma_W v_j / lam_j
    return float(np.sum(np.mean(proj**2, 0) / lam[keep]) / n_classes)


def _cosines(rows: np.ndarray) -> np.ndarray:
    unit = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-300)
    gram = unit @ unit.T
    return gram[~np.eye(len(rows), dtype=bool)]


def _cv(values: np.ndarray) -> float:
    return float(np.std(values) / max(np.mean(values), 1e-300))


def etf_distance(m: np.ndarray) -> float:
    """|| M M^T/||M M^T||_F - (I - 11^T/C)/sqrt(C-1) ||_F (Zhu et al. 2021): 0 for a simplex ETF."""
    c = len(m)
    gram = m @ m.T
    etf = (np.eye(c) - 1.0 / c) / math.sqrt(c - 1)
    return float(np.linalg.norm(gram / max(np.linalg.norm(gram), 1e-300) - etf))


def nc_metrics(
    h: ArrayLike, y: ArrayLike, n_classes: int, w: ArrayLike | None = None, b: ArrayLike | None = None
) -> dict[str, Any]:
    """NC1..NC4 of features h (N, d) with labels y and classifier rows w (C, d), bias b (C,) (see the
    module docstring). Without a classifier only nc1 and the class-mean parts of nc2 are returned."""
    h, y, n_classes = _features(h, y, n_classes)
    logits = 0 if w is None else 3 * h.shape[0] * n_classes  # logits, distances to the class means, argmax
    sizes = f"n_classes = {n_classes} with {h.shape[0]} points"
    require(8 * (2 * n_classes**2 + logits), "nc_metrics", sizes, "use fewer classes or points")  # Grams are C x C
    means, mu_g, _ = class_means(h, y, n_classes)
    m = means - mu_g
    cos_m = _cosines(m)
    out = {
        "nc1": nc1(h, y, n_classes),
        "nc2": etf_distance(m),
        "nc2_norm_M": _cv(np.linalg.norm(m, axis=1)),
        "nc2_angle_M": float(np.std(cos_m)),
        "nc2_maxangle_M": float(np.mean(np.abs(cos_m + 1.0 / (n_classes - 1)))),
    }
    if w is None:
        return out
    w = np.asarray(checks.array("w", w, max_abs=MAX_FEATURE), np.float64)
    if w.shape != means.shape:
        raise ValueError(f"w: must be (n_classes, d) = {means.shape} like the class means, got {w.shape}")
    if b is not None:
        b = np.asarray(checks.array("b", b, ndim=1), np.float64)
        if b.shape != (n_classes,):
            raise ValueError(f"b: must have one entry per class ({n_classes}), got shape {b.shape}")
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


def layer_nc(features: Iterable[ArrayLike], y: ArrayLike, n_classes: int) -> dict[str, np.ndarray]:
    """Per-layer nc1 and nc2 (arrays over the layers) of a list of feature matrices."""
    per = [nc_metrics(h, y, n_classes) for h in features]
    return {"nc1_layers": np.array([p["nc1"] for p in per]), "nc2_layers": np.array([p["nc2"] for p in per])}


def simplex_etf(n_classes: int, dim: int | None = None, seed: int = 0) -> np.ndarray:
    """C unit vectors of a simplex equiangular tight frame in R^dim (rows), randomly rotated."""
    n_classes = checks.integer("n_classes", n_classes, 2, 512)
    dim = n_classes if dim is None else checks.integer("dim", dim, 1, 100_000)
    seed = checks.seed(seed)
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


def gof_singular_value(s: float, n_total: int, c: float, depth: int) -> float:
    """Minimiser over z >= 0 of (z - s)^2/(2N) + (M+1)/2 c z^(2/(M+1)) (Dang et al. 2023, Thm. 4.2's
    per-class scalar problem, M = depth linear layers on the features): soft thresholding for M = 1,
    the largest stationary point or 0 (minority collapse) for M >= 2."""
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


def _counts(name: str, values: Sequence[float] | np.ndarray) -> tuple[int, ...]:
    """A non-empty sequence of positive integers (class sizes)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (tuple, list, np.ndarray)) or not len(values):
        raise ValueError(f"{name}: must be a non-empty list of class sizes in [1, 1000000000], got {values!r:.60}")
    return tuple(checks.integer(name, v, 1, 10**9) for v in values)


def gof_prediction(
    class_sizes: Sequence[float] | np.ndarray,
    weight_decay_h: float,
    weight_decays_w: Sequence[float] | np.ndarray,
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
    `n_total` (default sum of class_sizes) lets a subset of the classes be evaluated."""
    sizes = np.asarray(_counts("class_sizes", class_sizes), np.float64)
    if isinstance(weight_decays_w, (str, bytes)) or not isinstance(weight_decays_w, (tuple, list, np.ndarray)):
        raise ValueError(f"weight_decays_w: must be a list of positive weight decays, got {weight_decays_w!r:.60}")
    lambdas = [checks.real("weight_decay_h", weight_decay_h, 0.0, 1e6, lo_open=True)]
    lambdas += [checks.real("weight_decays_w", v, 0.0, 1e6, lo_open=True) for v in weight_decays_w]
    depth = len(lambdas) - 1
    if depth < 1:
        raise ValueError("weight_decays_w: the prediction needs a weight decay for every layer (at least one)")
    n_total = int(sizes.sum()) if n_total is None else checks.integer("n_total", n_total, 1, 10**12)
    c = math.prod(lambdas) ** (1.0 / (depth + 1))
    z = np.array([gof_singular_value(math.sqrt(n), n_total, c, depth) for n in sizes])
    sigma = np.sqrt(c / np.array(lambdas))[:, None] * z ** (1.0 / (depth + 1))  # (M+1, C): H, W_1 .. W_M
    return {
        "z": z,
        "w_norms": sigma[-1],
        "h_norms": sigma[0] / np.sqrt(sizes),
        "feature_norms": np.cumprod(sigma[:-1], axis=0) / np.sqrt(sizes),
        "collapsed": z == 0,
    }


def minority_collapse_threshold(class_sizes: Sequence[float] | np.ndarray, depth: int = 1) -> float:
    """The weight decay lambda (the same on H and every layer) above which the smallest class
    collapses (z_k = 0) in `gof_prediction`: sqrt(n_min)/N for depth 1, by bisection otherwise."""
    sizes = np.asarray(_counts("class_sizes", class_sizes), np.float64)
    depth = checks.integer("depth", depth, 1, 64)
    smallest = lambda lam: gof_prediction([sizes.min()], lam, [lam] * depth, n_total=int(sizes.sum()))["z"][0]
    lo, hi = 1e-12, 1.0
    while smallest(hi) > 0:
        hi *= 10
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if smallest(mid) > 0 else (lo, mid)
    return hi
