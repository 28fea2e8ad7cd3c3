"""Ridgeless kernel classifiers at depth L and at the limit: majority vote, nearest neighbour, Hilbert kernel
(Radhakrishnan, Belkin & Uhler, PNAS 2023, Thm. 1-3), on points of the unit sphere."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike
from threadpoolctl import ThreadpoolController

from workbench.core.declare import Array, Choice, Given, Int, Real, declare
from workbench.core.memory import require
from workbench.theory.infinite_depth.duals import Dual, DualArg, _get_dual
from workbench.theory.infinite_depth.flow import MAX_DEPTH, Depth, Layer, _depth, _diagonal_log_ntk, _flow, _tabled
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
    rho, dl = np.empty((n1, n2)), np.empty((n1, n2))
    for i in range(0, n1, block):  # elementwise sums, not BLAS: a pair's numbers do not depend on the blocks
        a = x1[i : i + block, None, :]
        rho[i : i + block] = np.sum(a * x2[None], -1)
        minus = 0.5 * np.sum((a - x2[None]) ** 2, -1)
        plus = 0.5 * np.sum((a + x2[None]) ** 2, -1)
        dl[i : i + block] = np.minimum(minus, plus)
    rho, dl = np.clip(rho, -1.0, 1.0), np.clip(dl, 0.0, 1.0)
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
CHUNK = 1 << 19  # kernel entries flowed at once: training rows against the later ones, training against test columns
_ENTRY_BYTES = 600  # working bytes per entry of a chunk at one (depth, kernel) (flow state, geometry, temporaries)
_DEPTH_BYTES = 40  # more per entry and (depth, kernel) of a chunk (snapshots and values at each depth)


def _blocks(count: int, width: int, chunk: int) -> list[tuple[int, int]]:
    """[start, stop) blocks of `count` rows of `width` entries, at most `chunk` entries (one row at least) each."""
    step = max(1, chunk // max(1, width))
    return [(i, min(i + step, count)) for i in range(0, count, step)]


def _geometry(x1: np.ndarray, x2: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_pair_geometry` with its (rows, len(x2), d) temporaries kept within `chunk` entries."""
    return _pair_geometry(x1, x2, max(1, chunk // max(1, x2.size)))


def _close_pairs(x: np.ndarray, parity: str | None, tol: float, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j), i < j, of unit rows with 1 - |<x_i, x_j>| < tol (and <x_i, x_j> > 0 unless `parity`), row-major,
    a block of rows at a time."""
    found: list[tuple[np.ndarray, np.ndarray]] = []
    for i0, i1 in _blocks(len(x), len(x), chunk):
        sg, _, dl = _geometry(x[i0:i1], x[i0:], chunk)
        close = np.triu(dl < tol, 1)
        if parity is None:
            close &= sg > 0
        i, j = np.nonzero(close)
        found.append((i + i0, j + i0))
    return np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])


def _memory(n: int, m: int, systems: int, limit: bool, chunk: int) -> float:
    """Bytes of `DepthClassifier`'s chunked pass over `systems` (depth, kernel) pairs: 8 per training pair and system
    (kept until solved), one n x n system solved in place, a chunk's flow, the scores."""
    pairs = n * (n - 1) / 2
    entries = min(chunk, max(pairs, n * m)) if systems else min(chunk, n * m) if limit else 0
    return (
        8 * pairs * systems
        + (8.0 * n * n if systems else 0)
        + entries * (_ENTRY_BYTES + _DEPTH_BYTES * systems)
        + 8 * m * (systems + 1)
    )


def _solve(
    make: Callable[[], np.ndarray], y: np.ndarray, notes: list[str], what: str = "K(X, X)", definite: bool = True
) -> np.ndarray:
    """K^{-1} y for the symmetric K = make() (built again for each try: it is factorized in place): Cholesky (when
    `definite`), else a symmetric indefinite solve, else least squares for a singular K; what happened is noted.
    One BLAS thread: on a shared 2-core machine OpenBLAS's threaded potrf was 30x slower (2.8 s against 0.08 s at
    n = 2000)."""
    with warnings.catch_warnings(record=True) as caught, _BLAS.limit(limits=1, user_api="blas"):
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        try:
            if not definite:
                raise np.linalg.LinAlgError
            out = scipy.linalg.solve(make(), y, assume_a="pos", overwrite_a=True, check_finite=False)
        except np.linalg.LinAlgError:
            if definite:
                notes.append(f"{what} is not positive definite to float64 precision: solved as a symmetric system")
            try:
                out = scipy.linalg.solve(make(), y, assume_a="sym", overwrite_a=True, check_finite=False)
            except np.linalg.LinAlgError:
                notes.append(f"{what} is singular to float64 precision: minimum-norm least-squares solution")
                out = np.linalg.lstsq(make(), y, rcond=None)[0]
    if any(issubclass(w.category, scipy.linalg.LinAlgWarning) for w in caught):
        notes.append(
            f"{what} is ill-conditioned (reciprocal condition below float64 epsilon): the ridgeless "
            "solution is not determined to machine precision"
        )
    return out


def _square(pairs: np.ndarray, n: int, diagonal: float, top: float | None) -> np.ndarray:
    """The symmetric n x n matrix with the row-major upper-triangle entries `pairs` (exp(pairs - top) when `top` is
    given) and a constant diagonal, Fortran-ordered (LAPACK factorizes it in place)."""
    K = np.empty((n, n))
    off = 0
    for i in range(n):
        row = K[i, i + 1 :]
        if top is None:
            row[:] = pairs[off : off + n - 1 - i]
        else:
            np.exp(np.subtract(pairs[off : off + n - 1 - i], top, out=row), out=row)
        off += n - 1 - i
        K[i, i] = diagonal
    for i0, i1 in _blocks(n, n, CHUNK):  # the lower triangle: blocks below the diagonal, then inside it
        K[i1:, i0:i1] = K[i0:i1, i1:].T
        block = K[i0:i1, i0:i1]
        lower = np.tril_indices(i1 - i0, -1)
        block[lower] = block.T[lower]
    return K.T  # symmetric: the transpose of the C-ordered matrix is the same matrix, Fortran-ordered


@declare(x=_X, parity=Choice(("even", "odd"), none_ok=True), tol=Real(0.0, 1.0))
def find_duplicates(x: ArrayLike, parity: str | None = None, tol: float = DUPLICATE) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, with 1 - <x_i, x_j> < tol (and 1 + <x_i, x_j> < tol for an even or odd dual)."""
    i, j = _close_pairs(_to_sphere(x, "x"), parity, tol, CHUNK)
    return list(zip(i.tolist(), j.tolist()))


class DepthClassifier:
    """Ridgeless NNGP and NTK classifiers of one dual at any depth and at L = infinity (the paper's setting): the
    entries of K(X, X) and K(X, x) flow through the layers (`workbench.theory.infinite_depth` module doc) in chunks
    of `chunk` entries, all depths in `depths` (and the limit) in one pass; another depth, the limit or the NTK is
    computed when first asked and kept. Memory: 8 bytes per training pair and (depth, kernel), one n x n system, a
    chunk. `duplicates`: "refuse" (ValueError naming x_train), "drop" (keep the first of each duplicate pair) or
    "jitter" (move the later point by 1e-6 along a random tangent); what was done is in `notes`."""

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
        chunk: int = CHUNK,
    ) -> None:
        self.dual = _get_dual(dual, "dual")
        self.regime = _regime(self.dual)
        self.chunk = Int(1, 1 << 40).check("chunk", chunk, {})
        self.notes: list[str] = []
        self.solve_notes: dict[tuple[int, str], list[str]] = {}
        xt, xs = (_to_sphere(_X.check(name, x, {}), name) for name, x in (("x_train", x_train), ("x_test", x_test)))
        if xt.shape[1] != xs.shape[1]:
            raise ValueError(f"x_test: {xs.shape[1]} coordinates, x_train has {xt.shape[1]}")
        y = _check_labels(y_train, len(xt))
        if isinstance(depths, (str, bytes)) or not isinstance(depths, Sequence):
            raise ValueError(f"depths: must be a list of depths, got {type(depths).__name__}")
        self.depths = sorted({int(L) for L in (_depth(L) for L in depths) if not math.isinf(L)})
        self.x_train, self.y = self._deduplicate(xt, y, duplicates, seed)
        self.x_test = xs
        self._scores: dict[tuple[float, str], np.ndarray] = {}
        self._compute(self.depths, ("nngp", "ntk") if ntk else ("nngp",), limit)

    def _deduplicate(self, x: np.ndarray, y: np.ndarray, how: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) without (or with jittered) duplicate training points."""
        if how not in ("refuse", "drop", "jitter"):
            raise ValueError(f"duplicates: must be 'refuse', 'drop' or 'jitter', got {how!r}")
        i, j = _close_pairs(x, self.dual.parity, DUPLICATE, self.chunk)
        if not i.size:
            return x, y
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
            return x[keep], y[keep]
        rng = np.random.default_rng(seed)
        x = x.copy()
        for b in later:
            v = rng.normal(size=x.shape[1])
            v -= (v @ x[b]) * x[b]
            x[b] = x[b] + 1e-6 * v / np.linalg.norm(v)
            x[b] /= np.linalg.norm(x[b])
        self.notes.append(f"jittered {later.size} duplicate training points by 1e-6 along the sphere")
        return x, y

    def _note(self, notes: list[str]) -> None:
        self.notes += [t for t in notes if t not in self.notes]

    def _compute(self, depths: Sequence[int], kernels: Sequence[str], limit: bool) -> None:
        """Scores at every (depth, kernel) and of the limit (if `limit`): the training entries flow a chunk at a
        time into one array per system, each system is solved, then the test entries flow a chunk of test points at
        a time into scores (module doc)."""
        if self.regime.kind == "linear":  # K_L = rho (NNGP), (L + 1) rho (NTK): rank d, least squares
            return
        n, m = len(self.x_train), len(self.x_test)
        keys = [(L, k) for L in depths for k in kernels]
        require(
            _memory(n, m, len(keys), limit, self.chunk),
            "n_train",
            f"{n} training and {m} test points at {len(keys)} (depth, kernel) pairs",
            "use fewer points or depths",
        )
        ntk = "ntk" in kernels
        pairs = {key: np.empty(n * (n - 1) // 2) for key in keys}
        off = 0
        for i0, i1 in _blocks(n, n, self.chunk) if keys else []:
            sg, ab, dl = _geometry(self.x_train[i0:i1], self.x_train[i0:], self.chunk)
            upper = np.triu(np.ones(sg.shape, bool), 1)
            size = int(upper.sum())
            if size:
                flow = _flow(self.dual, sg[upper], ab[upper], dl[upper], depths, False, ntk)
                for L, k in keys:
                    pairs[L, k][off : off + size] = self._pair_values(flow.at(L), L, k)
                self._note(flow.notes)
            off += size
        systems = {}
        for key in keys:
            systems[key] = self._system(key, pairs.pop(key))
        shape = (m,) + self.y.shape[1:]
        out = {key: np.empty(shape) for key in [*keys, *([(math.inf, "limit")] if limit else [])]}
        for c0, c1 in _blocks(m, n, self.chunk):
            sg, ab, dl = _geometry(self.x_train, self.x_test[c0:c1], self.chunk)
            flow = _flow(self.dual, sg.ravel(), ab.ravel(), dl.ravel(), depths, limit, ntk)
            for key, system in systems.items():
                out[key][c0:c1] = self._chunk_scores(flow.at(key[0]), key[1], system, c1 - c0)
            if limit:
                out[math.inf, "limit"][c0:c1] = self._limit_chunk(flow, c1 - c0)
            self._note(flow.notes)
        self._scores.update(out)

    def _pair_values(self, layer: Layer, L: int, kernel: str) -> np.ndarray:
        """What K(X, X) keeps of one chunk of training pairs: log(1 - K) (table duals), else K normalized to a unit
        diagonal."""
        if _tabled(self.dual):
            out = layer.lcomp if kernel == "nngp" else layer.lcomp_ntk
            assert out is not None  # table flows carry both complements
            return out
        s, lg = (layer.s_nngp, layer.l_nngp) if kernel == "nngp" else (layer.s_ntk, layer.l_ntk)
        assert s is not None and lg is not None  # the NTK entries exist when the flow was asked for them
        diag = 0.0 if kernel == "nngp" else _diagonal_log_ntk(self.dual, L)
        with np.errstate(over="ignore"):
            return s * np.exp(lg - diag)

    def _system(self, key: tuple[int, str], pairs: np.ndarray) -> tuple[np.ndarray, ...]:
        """The solved ridgeless system of one (depth, kernel): (alpha = K^{-1} y,), or for table duals, with
        Delta = 1 - K = c D (c = e^top, the largest training entry), (u = D^{-1} 1, w = D^{-1} y, [top, 1^T u],
        y^T u)."""
        n = len(self.x_train)
        notes = self.solve_notes.setdefault(key, [])
        if not _tabled(self.dual):
            return (_solve(lambda: _square(pairs, n, 1.0, None), self.y, notes),)
        top = float(np.max(pairs, initial=-np.inf))
        top = top if np.isfinite(top) else 0.0
        ones = np.ones(n)
        sol = _solve(
            lambda: _square(pairs, n, 0.0, top), np.column_stack([ones, self.y]), notes, "1 - K(X, X)", definite=False
        )
        u, w = sol[:, 0], sol[:, 1:]
        yu = self.y @ u if self.y.ndim == 1 else self.y.T @ u
        return u, w, np.array([top, ones @ u]), np.atleast_1d(yu)

    def _chunk_scores(self, layer: Layer, kernel: str, system: tuple[np.ndarray, ...], cols: int) -> np.ndarray:
        """y^T K^{-1} K(X, x) for a chunk of test points, up to a positive factor per point; table duals: with
        d(x) = c e(x), y^T K^{-1} k(x) = w^T e(x) - (y^T u)(1 - u^T e(x)) / (c - 1^T u) (Sherman-Morrison on
        K = 11^T - Delta)."""
        n = len(self.x_train)
        if len(system) == 4:
            u, w, (top, s), yu = system
            lg = layer.lcomp if kernel == "nngp" else layer.lcomp_ntk
            assert lg is not None  # table flows carry both complements
            e = np.exp(lg.reshape(n, cols) - top)
            score = (w.T @ e) - np.outer(yu, (1 - u @ e)) / (math.exp(top) - s)
            return score[0] if self.y.ndim == 1 else score.T
        (alpha,) = system
        s, lg = (layer.s_nngp, layer.l_nngp) if kernel == "nngp" else (layer.s_ntk, layer.l_ntk)
        assert s is not None and lg is not None  # the NTK entries exist when the flow was asked for them
        s, lg = s.reshape(n, cols), lg.reshape(n, cols)
        top = np.max(lg, axis=0, keepdims=True)
        with np.errstate(invalid="ignore", over="ignore"):
            Kx = s * np.exp(lg - np.where(np.isfinite(top), top, 0.0))
        Kx = np.where(np.isneginf(top), 0.0, Kx)
        score = (alpha.T @ Kx).T if self.y.ndim == 2 else alpha @ Kx
        dead = np.isneginf(top[0])
        if dead.any() and layer.key is not None:  # every weight underflowed: only the kernel's own order is left
            kd = layer.key.reshape(n, cols)[:, dead]
            score[dead] = _weighted_vote(self.y, s[:, dead], np.where(kd == kd.max(0), 0.0, -np.inf))
        return score

    def _limit_chunk(self, flow: Any, cols: int) -> np.ndarray:
        """Scores of the L = infinity classifier for a chunk of test points (majority / 1-NN / singular)."""
        n = len(self.x_train)
        s, key = flow.limit()
        s, key = s.reshape(n, cols), key.reshape(n, cols)
        if self.regime.kind == "nearest":
            key = np.where(key == key.max(0, keepdims=True), 0.0, -np.inf)
        return _weighted_vote(self.y, s, key)

    def scores(self, depth: float, kernel: str = "nngp") -> np.ndarray:
        """y^T K^{-1} K(X, x) per test point, up to a positive factor per test point (`limit_scores` at infinity),
        at any depth (computed when first asked)."""
        depth = _depth(depth)
        if kernel not in ("nngp", "ntk"):
            raise ValueError(f"kernel: must be 'nngp' or 'ntk', got {kernel!r}")
        if math.isinf(depth) or self.regime.kind == "linear":
            return self.limit_scores()
        L = int(depth)
        if (L, kernel) not in self._scores:
            self._compute([L], (kernel,), False)
        return self._scores[L, kernel]

    def limit_scores(self) -> np.ndarray:
        """Scores of the L = infinity classifier of the dual's regime (majority / 1-NN / singular / linear)."""
        if self.regime.kind == "linear":
            K = self.x_train @ self.x_train.T
            alpha = np.linalg.lstsq(K, self.y, rcond=None)[0]
            Kx = self.x_train @ self.x_test.T
            return (alpha.T @ Kx).T if self.y.ndim == 2 else alpha @ Kx
        if (math.inf, "limit") not in self._scores:
            self._compute([], (), True)
        return self._scores[math.inf, "limit"]

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
