"""Ridgeless kernel classifiers at depth L and at the limit: majority vote, nearest neighbour, Hilbert kernel
(Radhakrishnan, Belkin & Uhler, PNAS 2023, Thm. 1-3), on points of the unit sphere."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike
from threadpoolctl import ThreadpoolController

from workbench.core.declare import Array, Choice, Given, Int, Real, declare
from workbench.core.memory import require
from workbench.theory.infinite_depth.duals import Dual, DualArg, _get_dual
from workbench.theory.infinite_depth.flow import MAX_DEPTH, Depth, _depth, _diagonal_log_ntk, _flow
from workbench.theory.infinite_depth.taxonomy import _regime

if TYPE_CHECKING:
    from workbench.theory.infinite_depth.duals import DualLike

__all__ = [
    "DUPLICATE",
    "DepthClassifier",
    "accuracy",
    "classify",
    "find_duplicates",
    "hilbert_classify",
    "limit_classify",
    "majority_vote",
    "naive_nngp",
    "nearest_neighbour",
    "pair_geometry",
    "to_sphere",
]

DUPLICATE = 1e-20  # 1 - |<x_i, x_j>| below this (angle 1.4e-10): the same point up to rounding of its normalization
MAX_POINTS = 10_000_000  # test points of `majority_vote`
_X = Array("n d")  # points (rows), normalized to the sphere
_X_TEST = Array("m d")


def _example_labels() -> np.ndarray:
    return np.array([1, -1, 1, 1, -1, -1])  # +-1 labels of the attack suite's 6 training points


_Y = Given(why="+-1 labels (n,) or one-hot rows (n, k), checked in the body", example=_example_labels)

# ---------------------------------------------------------------- pairs of points on the sphere


def _to_sphere(x: ArrayLike, name: str) -> np.ndarray:
    """Declared points (n, d) as x / ||x|| per row, float64, refusing zero rows (naming `name`)."""
    x = np.asarray(x, np.float64)
    x = x / np.maximum(np.max(np.abs(x), axis=1, keepdims=True), np.finfo(np.float64).tiny)  # no overflow below
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norm == 0):
        raise ValueError(
            f"{name}: row {int(np.flatnonzero(norm[:, 0] == 0)[0])} is zero; points must lie on the sphere"
        )
    return x / norm


@declare(x=_X)
def to_sphere(x: ArrayLike) -> np.ndarray:
    """x / ||x|| per row, float64 (refusing zero rows)."""
    return _to_sphere(x, "x")


@declare(x1=Array("n1 d", lo=-1.0, hi=1.0), x2=Array("n2 d", lo=-1.0, hi=1.0), block=Int(1, 1_000_000))
def pair_geometry(x1: ArrayLike, x2: ArrayLike, block: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sign rho, |rho|, 1 - |rho|) for rho = <x1_i, x2_j> of unit rows (`to_sphere`); 1 - |rho| = min ||x1 -+ x2||^2
    / 2 (no cancellation)."""
    return _pair_geometry(np.asarray(x1, np.float64), np.asarray(x2, np.float64), block)


def _pair_geometry(x1: np.ndarray, x2: np.ndarray, block: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _labels(score: np.ndarray) -> np.ndarray:
    """sign with 0 -> +1 (the official code's `get_acc`), or argmax for one-hot scores."""
    if score.ndim == 2:
        return np.argmax(score, axis=1)
    return np.where(score < 0, -1, 1)


def _check_labels(y: Any, n: int | None, name: str = "y_train") -> np.ndarray:
    """+-1 labels (n,) or one-hot rows (n, k) (n: None for any number), as float64."""
    what = "+-1 labels (n,) or one-hot rows (n, k)"
    if y is None or isinstance(y, (str, bytes, dict)):
        raise ValueError(f"{name}: must be {what}, got {type(y).__name__}")
    try:
        y = np.asarray(y)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be {what} (a rectangular array)") from None
    if y.dtype.kind not in "biuf" or y.ndim not in (1, 2) or y.shape[0] == 0:
        raise ValueError(f"{name}: must be {what}, got shape {y.shape} of {y.dtype}")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"{name}: {y.shape[0]} labels for {n} points")
    if y.ndim == 1 and not np.all(np.isin(y, (-1, 1))):
        raise ValueError(f"{name}: labels must be -1 or +1 (or one-hot rows)")
    if y.ndim == 2 and not (np.all(np.isin(y, (0, 1))) and np.all(y.sum(1) == 1)):
        raise ValueError(f"{name}: one-hot rows must hold a single 1 each")
    return y.astype(np.float64)


@declare(y_train=_Y, n_test=Int(1, MAX_POINTS))
def majority_vote(y_train: ArrayLike, n_test: int) -> np.ndarray:
    """The label of the larger class for every test point (ties -> +1; the official code's `majority_vote`)."""
    y = _check_labels(y_train, None)
    if y.ndim == 2:
        return np.full(n_test, int(np.argmax(y.sum(0))))
    return np.full(n_test, 1 if y.sum() >= 0 else -1)


@declare(x_train=_X, y_train=_Y, x_test=_X_TEST)
def nearest_neighbour(x_train: ArrayLike, y_train: ArrayLike, x_test: ArrayLike) -> np.ndarray:
    """1-NN: the label of the closest training point (largest <x_i, x> on the sphere)."""
    xt, xs = _to_sphere(x_train, "x_train"), _to_sphere(x_test, "x_test")
    y = _check_labels(y_train, len(xt))
    i = np.argmax(xt @ xs.T, axis=0)
    return np.argmax(y[i], 1) if y.ndim == 2 else y[i].astype(int)


@declare(x_train=_X, y_train=_Y, x_test=_X_TEST, dim=Int(1, 100_000, none_ok=True))
def hilbert_classify(x_train: ArrayLike, y_train: ArrayLike, x_test: ArrayLike, dim: int | None = None) -> np.ndarray:
    """Hilbert-kernel (Devroye et al. 1998) estimate sign(sum_i y_i ||x - x_i||^-(d-1)), d the ambient dimension
    unless `dim` is given (the official code's `devroye_classifier`); a test point equal to a training point takes
    its label."""
    xt, xs = _to_sphere(x_train, "x_train"), _to_sphere(x_test, "x_test")
    d = xt.shape[1] if dim is None else dim
    y = _check_labels(y_train, len(xt))
    out = np.empty(len(xs), int) if y.ndim == 1 else np.empty(len(xs), int)
    for i in range(0, len(xs), 512):
        dist2 = np.sum((xt[:, None, :] - xs[None, i : i + 512, :]) ** 2, -1)
        with np.errstate(divide="ignore"):
            lw = -(d - 1) / 2 * np.log(dist2)
        out[i : i + 512] = _labels(_weighted_vote(y, np.ones_like(lw), lw))
    return out


def _weighted_vote(y: np.ndarray, s: np.ndarray, key: np.ndarray) -> np.ndarray:
    """sum_i y_i s_i exp(key_i - max_i key_i) per column (+inf keys: only those count)."""
    top = np.max(key, axis=0, keepdims=True)
    with np.errstate(invalid="ignore"):
        w = np.where(np.isposinf(top), np.isposinf(key).astype(float), np.exp(key - np.where(np.isfinite(top), top, 0)))
    w = np.where(np.isneginf(top), 0.0, w) * s
    return (y.T @ w).T if y.ndim == 2 else y @ w


_BLAS = ThreadpoolController()


def _solve(K: np.ndarray, y: np.ndarray, notes: list[str], what: str = "K(X, X)", definite: bool = True) -> np.ndarray:
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


@declare(x=_X, parity=Choice(("even", "odd"), none_ok=True), tol=Real(0.0, 1.0))
def find_duplicates(x: ArrayLike, parity: str | None = None, tol: float = DUPLICATE) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, with 1 - <x_i, x_j> < tol (and 1 + <x_i, x_j> < tol for an even or odd dual)."""
    x = _to_sphere(x, "x")
    sg, _, dl = _pair_geometry(x, x)
    close = dl < tol
    if parity is None:
        close &= sg > 0
    i, j = np.nonzero(np.triu(close, 1))
    return list(zip(i.tolist(), j.tolist()))


class DepthClassifier:
    """Ridgeless NNGP and NTK classifiers of one dual at several depths and at L = infinity (the paper's setting):
    the entries of K(X, X) and K(X, x) flow through the layers once (`workbench.theory.infinite_depth` module doc)
    and any depth in `depths` is then read off. `duplicates`: "refuse" (ValueError naming x_train), "drop" (keep the
    first of each duplicate pair) or "jitter" (move the later point by 1e-6 along a random tangent); what was done is
    in `notes`."""

    def __init__(
        self,
        dual: DualLike,
        x_train: ArrayLike,
        y_train: ArrayLike,
        x_test: ArrayLike,
        depths: Sequence[float] = (),
        *,
        ntk: bool = True,
        limit: bool = True,
        duplicates: str = "refuse",
        seed: int = 0,
    ) -> None:
        self.dual = _get_dual(dual, "dual")
        self.regime = _regime(self.dual)
        self.notes: list[str] = []
        self.solve_notes: dict[tuple[int, str], list[str]] = {}
        xt, xs = (_to_sphere(_X.check(name, x, {}), name) for name, x in (("x_train", x_train), ("x_test", x_test)))
        if xt.shape[1] != xs.shape[1]:
            raise ValueError(f"x_test: {xs.shape[1]} coordinates, x_train has {xt.shape[1]}")
        y = _check_labels(y_train, len(xt))
        finite = []
        if isinstance(depths, (str, bytes)) or not isinstance(depths, Sequence):
            raise ValueError(f"depths: must be a list of depths, got {type(depths).__name__}")
        for L in (_depth(L) for L in depths):
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
        geometry = _pair_geometry(xt, xt)
        xt, y, changed = self._deduplicate(xt, y, geometry, duplicates, seed)
        if changed:
            geometry = _pair_geometry(xt, xt)
        self.x_train, self.y, self.x_test = xt, y, xs
        n = len(xt)
        self._iu = iu = np.triu_indices(n, 1)
        sg, ab, dl = (v[iu] for v in geometry)
        self.train = _flow(self.dual, sg, ab, dl, self.depths, False, ntk) if n > 1 else None
        sg, ab, dl = _pair_geometry(xt, xs)
        self.test = _flow(self.dual, sg.ravel(), ab.ravel(), dl.ravel(), self.depths, limit, ntk)
        self.has_limit = limit
        self.notes += (self.train.notes if self.train else []) + self.test.notes

    def _deduplicate(
        self, x: np.ndarray, y: np.ndarray, geometry: tuple[np.ndarray, np.ndarray, np.ndarray], how: str, seed: int
    ) -> tuple[np.ndarray, np.ndarray, bool]:
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

    def _matrices(
        self, L: int, kernel: str
    ) -> (
        tuple[Literal["comp"], np.ndarray | None, np.ndarray]
        | tuple[Literal["log"], np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray | None]]
    ):
        """The ridgeless system at depth L: ("comp", log 1 - K(X, X) entries or None, log 1 - K(X, x)) for duals
        whose correlations all tend to 1, else ("log", K(X, X), (sign, log|.|, order key) of K(X, x))."""
        n, m = len(self.x_train), len(self.x_test)
        te = self.test.at(L)
        tr = self.train.at(L) if self.train else None
        if te.lcomp is not None and kernel in ("nngp", "ntk"):
            if kernel == "ntk" and not self.ntk:
                raise ValueError("kernel: this classifier was built with ntk=False")
            l_te = te.lcomp if kernel == "nngp" else te.lcomp_ntk
            l_tr = None if tr is None else tr.lcomp if kernel == "nngp" else tr.lcomp_ntk
            assert l_te is not None  # the NTK complement exists when self.ntk
            return "comp", l_tr, l_te
        if kernel == "nngp":
            s_te, l_te, diag = te.s_nngp, te.l_nngp, 0.0
            s_tr, l_tr = (tr.s_nngp, tr.l_nngp) if tr else (None, None)
        elif kernel == "ntk":
            if not self.ntk:
                raise ValueError("kernel: this classifier was built with ntk=False")
            s_te, l_te, diag = te.s_ntk, te.l_ntk, _diagonal_log_ntk(self.dual, L)
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
        system = self._matrices(L, kernel)
        if system[0] == "comp":
            return self._comp_scores(system[1], system[2], notes)
        _, K, (s, l, key) = system
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

    def _comp_scores(self, l_tr: np.ndarray | None, l_te: np.ndarray, notes: list[str]) -> np.ndarray:
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


@declare(
    dual=DualArg(example="3d_opt"),
    x_train=_X,
    y_train=_Y,
    x_test=_X_TEST,
    depth=Depth(),
    kernel=Choice(("nngp", "ntk")),
)
def classify(
    dual: DualLike,
    x_train: ArrayLike,
    y_train: ArrayLike,
    x_test: ArrayLike,
    depth: float,
    kernel: str = "nngp",
    **kw: Any,
) -> np.ndarray:
    """Labels of the depth-L ridgeless NNGP / NTK classifier (depth = math.inf: the limit classifier); `kw`: the
    keywords duplicates and seed of `DepthClassifier`."""
    depths = () if math.isinf(depth) else (depth,)
    return DepthClassifier(dual, x_train, y_train, x_test, depths, ntk=kernel == "ntk", **kw).labels(depth, kernel)


@declare(dual=DualArg(example="3d_opt"), x_train=_X, y_train=_Y, x_test=_X_TEST)
def limit_classify(dual: DualLike, x_train: ArrayLike, y_train: ArrayLike, x_test: ArrayLike, **kw: Any) -> np.ndarray:
    """Labels of the L = infinity classifier: majority vote, 1-NN in the kernel's order, or
    sign(sum y_i sigma(<x_i, x>)); `kw`: the keywords duplicates and seed of `DepthClassifier`."""
    return DepthClassifier(dual, x_train, y_train, x_test, (), ntk=False, **kw).limit()


@declare(
    x1=Array("n1 d"),
    x2=Array("n2 d"),
    dual=DualArg(example="3d_opt"),
    depth=Int(0, MAX_DEPTH),
)
def naive_nngp(x1: ArrayLike, x2: ArrayLike, dual: DualLike, depth: int) -> np.ndarray:
    """The official code's `nngp_kernel`: rho <- clip(k(rho), -1, 1) for `depth` layers (finite: it iterates layer
    by layer) in plain float64 (the peer of the benchmark; it underflows and loses the near-diagonal structure at
    depth)."""
    d = cast(Dual, dual)
    rho = np.clip(_to_sphere(x1, "x1") @ _to_sphere(x2, "x2").T, -1, 1)
    for _ in range(depth):
        rho = np.clip(d.k(rho), -1, 1)
    return rho


@declare(
    labels=Array("n", integer=True, example=_example_labels),
    y=Given(why="+-1 labels (n,) or one-hot rows (n, k), checked in the body", example=_example_labels),
)
def accuracy(labels: ArrayLike, y: ArrayLike) -> float:
    """Share of labels equal to y (+-1 labels, or class indices against one-hot y)."""
    y = _check_labels(y, np.shape(labels)[0], "y")
    if y.ndim == 2:
        y = np.argmax(y, 1)
    return float(np.mean(np.asarray(labels) == y))
