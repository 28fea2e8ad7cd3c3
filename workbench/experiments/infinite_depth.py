"""Infinite depth (Radhakrishnan, Belkin & Uhler, PNAS 2023, arXiv 2204.14126): which classifier an infinitely wide
network implements as its depth grows, by its activation's normalized dual (`workbench.theory.infinite_depth`), on the
official code's Dirichlet tasks or the playground sets lifted to S^2 (`workbench.data.sphere`).

A view in five stages, cheapest first (every stage record carries the metrics of the stages before it):

1. the dual: `rho[G]`, `k[G]`, `dk[G]`, the `cobweb` of rho_{l+1} = k(rho_l) from `rho0`, `fixed_points[F, 2]`,
   the regime (`regime`, `badge`, `alpha`, `d_consistent`), k(0), k'(0), k'(1), the coefficients b_k and phi;
2. scaling: log K_L(rho) against log(1 - rho) at several depths (`log_nngp[D2, R]`, `log_ntk[D2, R]`) and the
   fitted slopes (-alpha emerging for singular duals);
3. the classifiers at the chosen depth (or L = infinity): test accuracies of the NNGP, NTK, 1-NN, majority vote,
   Hilbert estimate, limit and Bayes classifiers; decision regions on a grid when the task is 2-D (playground plane,
   or the 2-simplex of dirichlet_3) with the Bayes regions;
4. accuracy and agreement with {1-NN, majority vote, limit} against depth (a log grid up to `depth`);
5. test error against the number of training points, with the Bayes error.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import numpy as np

from workbench.core.activations import get_activation
from workbench.core.config import Config as _Config
from workbench.core.config import spec
from workbench.core.experiment import experiment_run, stages
from workbench.core.fields import SEED
from workbench.data import sphere as S
from workbench.theory import infinite_depth as I

__all__ = ["Config", "METRICS", "run"]

PRESETS = (
    "relu",
    "abs",
    "erf",
    "sine_1",
    "sine_2.676",
    "sine_6.13539",
    "sine_13.8258",
    "2d_opt",
    "3d_opt",
    "5d_opt",
    "9d_opt",
    "h2",
    "h3",
)
ACTIVATIONS = PRESETS + ("designed", "typed")
MAX_ENTRIES = 12_000_000  # kernel entries of one view: n_train * (n_train / 2 + n_test + grid^2)
RHO = np.linspace(-1.0, 1.0, 201)
ONE_MINUS_RHO = np.geomspace(1e-8, 0.5, 49)
SLOPE_WINDOW = (1e-8, 1e-4)  # where the slope of log K_L against log(1 - rho) is fitted


OWN_RANGES = {  # fields named like a shared field (workbench.core.fields) whose range differs, and why
    "depth": "the depth of a kernel recursion (closed-form duals), not of a trained network",
    "activation": "activations with a closed-form dual (a family table of the paper), or typed",
}


@dataclass(frozen=True)
class Config(_Config):
    """One activation's infinitely wide network at depth L (or infinity) on one classification task."""

    activation: str = spec(
        "3d_opt",
        choices=ACTIVATIONS,
        doc="normalized dual: a preset, 'designed' (alpha below) or 'typed' (expression below)",
    )
    expression: str = spec(
        "tanh",
        doc="typed activation, a name or an expression in x (for activation = typed); "
        "its dual by Gauss-Hermite quadrature",
    )
    alpha: float = spec(
        1.0,
        lo=0.05,
        hi=10.0,
        doc="designed dual lam rho + (1 - lam) rho^m: its alpha (consistent on S^(d-1) for d = 1 + 2 alpha)",
    )
    depth: int = spec(
        100, lo=1, hi=100_000, log=True, soft=(1, 10_000), doc="hidden layers L (also the largest depth of the sweep)"
    )
    infinite: bool = spec(False, doc="L = infinity: the limit classifier (majority vote, 1-NN or singular kernel)")
    task: str = spec("circle", choices=S.TASKS, doc="playground set lifted to S^2, or the Dirichlet task on S^(d-1)")
    noise: float = spec(0.1, lo=0.0, hi=0.5, doc="noise of the playground sets")
    n_train: int = spec(300, lo=8, hi=4000, log=True, doc="training points")
    n_test: int = spec(300, lo=8, hi=4000, log=True, doc="test points")
    grid: int = spec(48, lo=8, hi=160, doc="decision-region grid points per axis (2-D tasks)")
    rho0: float = spec(0.9, lo=-1.0, hi=1.0, doc="start of the cobweb of rho_{l+1} = k(rho_l)")
    seed: int = SEED(0)

    def validate(self) -> None:
        grid = self.grid**2 if self.task in S.PLAYGROUND or self.task == "dirichlet_3" else 0
        entries = self.n_train * (self.n_train / 2 + self.n_test + grid)
        if entries > MAX_ENTRIES:
            raise ValueError(
                f"n_train: {self.n_train} training points against {self.n_test} test and {grid} grid "
                f"points make {entries:.3g} kernel entries (at most {MAX_ENTRIES:.3g}); use fewer"
            )
        try:
            get_activation(self.expression)
        except ValueError as err:  # the parser's messages start "activation: "; this field is `expression`
            raise ValueError(f"expression: {str(err).removeprefix('activation: ')}") from None
        dual(self)


class Stage(TypedDict):
    """Metrics of the stage records (later stages carry the earlier stages' metrics too)."""

    rho: np.ndarray  # (G,) correlations in [-1, 1]
    k: np.ndarray  # (G,) the normalized dual k(rho)
    dk: np.ndarray  # (G,) k'(rho)
    cobweb: np.ndarray  # (2 S + 1, 2) vertices (rho_l, rho_l), (rho_l, rho_{l+1}), ... from rho0
    fixed_points: np.ndarray  # (F, 2) rows (rho*, k'(rho*)) of the fixed points in [-1, 1]
    regime: str  # "majority", "nearest", "singular" or "linear"
    badge: str  # the regime in one line (with alpha and "consistent for d = 1 + 2 alpha")
    regime_note: str  # what else to know about the regime
    alpha: float  # ln(1 / k'(0)) / ln k'(1); nan unless singular (inf for 1-NN duals)
    d_consistent: float  # 1 + 2 alpha
    k0: float  # k(0) = a_0^2 / E[phi^2]
    dk0: float  # k'(0)
    dk1: float  # k'(1)
    coefficients: np.ndarray  # (C,) b_k = a_k^2 / sum a_j^2, k < C (C <= 16)
    phi: str  # the activation (typed expression of phi = sum a_k h_k, or its name)
    one_minus_rho: NotRequired[np.ndarray]  # (R,) 1 - rho of the scaling curves
    scaling_depths: NotRequired[np.ndarray]  # (D2,) float; inf = the limit weight sigma (singular duals)
    log_nngp: NotRequired[np.ndarray]  # (D2, R) log K_L(rho) - log K_L(rho at 1 - rho = 0.5), nan where K_L <= 0
    log_ntk: NotRequired[np.ndarray]  # (D2, R) the same for the NTK
    slope_nngp: NotRequired[np.ndarray]  # (D2,) slope of log_nngp against log(1 - rho) on 1 - rho in [1e-8, 1e-4]
    slope_ntk: NotRequired[np.ndarray]  # (D2,)
    nngp_acc: NotRequired[float]  # test accuracy of the NNGP classifier at `depth` (the limit when infinite)
    ntk_acc: NotRequired[float]  # test accuracy of the NTK classifier at `depth`
    nn_acc: NotRequired[float]  # 1-nearest neighbour
    majority_acc: NotRequired[float]  # majority vote
    hilbert_acc: NotRequired[float]  # Hilbert estimate sign(sum y_i ||x - x_i||^-(d-1))
    limit_acc: NotRequired[float]  # the dual's L = infinity classifier
    bayes_acc: NotRequired[float]  # the Bayes classifier of the task's law
    notes: NotRequired[str]  # duplicates dropped, ill-conditioned K(X, X), ...
    plane_x: NotRequired[np.ndarray]  # (P,) display coordinates of the region grid (2-D tasks)
    plane_y: NotRequired[np.ndarray]  # (P,)
    nngp_region: NotRequired[np.ndarray]  # (P, P) labels +-1 of the NNGP classifier (rows: y), nan outside the domain
    ntk_region: NotRequired[np.ndarray]  # (P, P)
    bayes_region: NotRequired[np.ndarray]  # (P, P)
    train_xy: NotRequired[np.ndarray]  # (n_train, 2) training points in display coordinates
    train_y: NotRequired[np.ndarray]  # (n_train,) their labels +-1
    depths: NotRequired[np.ndarray]  # (D,) depths of the sweep (log grid up to `depth`)
    nngp_acc_depth: NotRequired[np.ndarray]  # (D,) test accuracy of the NNGP classifier
    ntk_acc_depth: NotRequired[np.ndarray]  # (D,)
    nngp_agree_nn: NotRequired[np.ndarray]  # (D,) share of test points where NNGP and 1-NN agree
    nngp_agree_majority: NotRequired[np.ndarray]  # (D,)
    nngp_agree_limit: NotRequired[np.ndarray]  # (D,) agreement with the dual's limit classifier
    ntk_agree_nn: NotRequired[np.ndarray]  # (D,)
    ntk_agree_majority: NotRequired[np.ndarray]  # (D,)
    ntk_agree_limit: NotRequired[np.ndarray]  # (D,)
    n_values: NotRequired[np.ndarray]  # (M,) training-set sizes
    err_nngp: NotRequired[np.ndarray]  # (M,) test error of the NNGP at `depth` (the limit when infinite)
    err_nn: NotRequired[np.ndarray]  # (M,)
    err_majority: NotRequired[np.ndarray]  # (M,)
    err_hilbert: NotRequired[np.ndarray]  # (M,)
    err_limit: NotRequired[np.ndarray]  # (M,)
    bayes_error: NotRequired[float]  # 1 - Bayes accuracy on the test set


METRICS = {"stage": Stage}


def dual(config: Config) -> I.Dual:
    """The config's normalized dual (a preset, the designed dual of `alpha`, or the typed expression's)."""
    if config.activation == "designed":
        return I.design_dual(config.alpha)
    if config.activation == "typed":
        try:
            d = I.dual_from_activation(config.expression)
        except ValueError as err:  # the parser's messages start "activation: "; this field is `expression`
            raise ValueError(f"expression: {str(err).removeprefix('activation: ')}") from None
    else:
        d = I.get_dual(config.activation)
    if I.regime(d).kind == "singular":
        try:
            I.koenigs(d)
        except ValueError as err:
            raise ValueError(f"{'expression' if config.activation == 'typed' else 'activation'}: {err}") from None
    return d


def depth_grid(depth: int, points: int = 12) -> np.ndarray:
    """A log grid of depths from 1 to `depth` (at most `points`)."""
    return np.unique(np.round(np.geomspace(1, depth, min(points, depth))).astype(int))


def dual_view(config: Config) -> dict:
    """Stage 1: the dual, its cobweb and fixed points, the regime."""
    d = dual(config)
    r = I.regime(d)
    fps = I.fixed_points(d)
    with np.errstate(all="ignore"):
        k, dk = d.k(RHO), d.dk(RHO)
    return {
        "rho": RHO,
        "k": k,
        "dk": dk,
        "cobweb": I.cobweb(d, config.rho0, 30),
        "fixed_points": np.asarray([(p.rho, p.slope) for p in fps]).reshape(-1, 2),
        "regime": r.kind,
        "badge": r.badge,
        "regime_note": r.note,
        "alpha": float(r.alpha),
        "d_consistent": float(r.d_consistent),
        "k0": d.lambda0,
        "dk0": float(d.dk(np.float64(0.0))),
        "dk1": d.mu,
        "coefficients": np.asarray(d.coef[:16]),
        "phi": d.expression or d.name,
    }


def scaling_view(config: Config) -> dict:
    """Stage 2: log K_L against log(1 - rho) near rho = 1, normalized at 1 - rho = 0.5, and the fitted slopes."""
    d = dual(config)
    kind = I.regime(d).kind
    top = 30 if kind == "nearest" else config.depth
    depths = [float(L) for L in (1, 3, 10, 30, 100, 300, 1000, 3000, 10_000, 30_000, 100_000) if L <= top]
    if kind == "singular":
        depths.append(math.inf)
    rho = 1.0 - ONE_MINUS_RHO
    curves = I.deep_kernels(d, rho, depths, delta=ONE_MINUS_RHO)
    logs = {"nngp": [], "ntk": []}
    for L in depths:
        for kernel in ("nngp", "ntk"):
            s, lk = curves[L][kernel]
            with np.errstate(invalid="ignore"):
                logs[kernel].append(np.where(s > 0, lk - lk[-1], np.nan))
    x = np.log(ONE_MINUS_RHO)
    window = (ONE_MINUS_RHO >= SLOPE_WINDOW[0]) & (ONE_MINUS_RHO <= SLOPE_WINDOW[1])

    def slopes(curves):
        out = []
        for c in curves:
            ok = window & np.isfinite(c)
            out.append(np.polyfit(x[ok], c[ok], 1)[0] if ok.sum() >= 2 else np.nan)
        return np.asarray(out)

    return {
        "one_minus_rho": ONE_MINUS_RHO,
        "scaling_depths": np.asarray(depths),
        "log_nngp": np.asarray(logs["nngp"]),
        "log_ntk": np.asarray(logs["ntk"]),
        "slope_nngp": slopes(logs["nngp"]),
        "slope_ntk": slopes(logs["ntk"]),
    }


class _Shared:
    """What the later stages reuse: the task and the test-set classifier over the depth grid."""

    def __init__(self, config: Config):
        self.config = config
        self.task = S.sphere_task(config.task, config.n_train, config.n_test, config.seed, config.noise)
        self.dual = dual(config)
        depths = [float(L) for L in depth_grid(config.depth)]
        self.depths = depths
        t = self.task
        self.test = I.DepthClassifier(
            self.dual, t.x_train, t.y_train, t.x_test, depths, duplicates="drop", seed=config.seed
        )
        self.x_train, self.y_train = self.test.x_train, self.test.y.astype(int)
        self.nn = I.nearest_neighbour(self.x_train, self.y_train, t.x_test)
        self.majority = I.majority_vote(self.y_train, len(t.x_test))
        self.limit = self.test.limit()

    @property
    def at(self) -> float:
        return math.inf if self.config.infinite else float(self.config.depth)


def classifiers_view(shared: _Shared) -> dict:
    """Stage 3: test accuracies at the chosen depth and the decision regions of 2-D tasks."""
    c, t, at = shared.config, shared.task, shared.at
    test = shared.test
    if not math.isinf(at) and at not in shared.depths:
        raise ValueError(f"depth: {at} is not on the depth grid")
    nngp, ntk = test.labels(at, "nngp"), test.labels(at, "ntk")
    y = t.y_test
    out: dict[str, float | str | np.ndarray] = {
        "nngp_acc": I.accuracy(nngp, y),
        "ntk_acc": I.accuracy(ntk, y),
        "nn_acc": I.accuracy(shared.nn, y),
        "majority_acc": I.accuracy(shared.majority, y),
        "hilbert_acc": I.accuracy(I.hilbert_classify(shared.x_train, shared.y_train, t.x_test), y),
        "limit_acc": I.accuracy(shared.limit, y),
        "bayes_acc": I.accuracy(t.bayes(t.x_test), y),
    }
    notes = sorted(set(test.notes_for(at, "nngp") + test.notes_for(at, "ntk")))
    if t.to_plane is not None:
        # a 2-D task sets all four display fields together (data_sphere.SphereTask)
        assert t.extent is not None and t.inside is not None and t.from_plane is not None
        x0, x1, y0, y1 = t.extent
        px, py = np.linspace(x0, x1, c.grid), np.linspace(y0, y1, c.grid)
        xy = np.stack(np.meshgrid(px, py), -1).reshape(-1, 2)
        inside = t.inside(xy)
        points = t.from_plane(xy[inside])
        grid = I.DepthClassifier(
            shared.dual,
            shared.x_train,
            shared.y_train,
            points,
            () if math.isinf(at) else (at,),
            limit=math.isinf(at),
            duplicates="refuse",
        )
        regions = {}
        for name, lab in (
            ("nngp_region", grid.labels(at, "nngp")),
            ("ntk_region", grid.labels(at, "ntk")),
            ("bayes_region", t.bayes(points)),
        ):
            full = np.full(len(xy), np.nan)
            full[inside] = lab
            regions[name] = full.reshape(c.grid, c.grid)
        notes = sorted(set(notes + grid.notes_for(at, "nngp") + grid.notes_for(at, "ntk")))
        out.update(
            plane_x=px, plane_y=py, **regions, train_xy=t.to_plane(shared.x_train), train_y=shared.y_train.astype(float)
        )
    out["notes"] = "; ".join(notes)
    return out


def depth_view(shared: _Shared) -> dict:
    """Stage 4: accuracy and agreement with 1-NN, majority vote and the limit against depth."""
    y = shared.task.y_test
    rows = {
        k: []
        for k in (
            "nngp_acc_depth",
            "ntk_acc_depth",
            "nngp_agree_nn",
            "nngp_agree_majority",
            "nngp_agree_limit",
            "ntk_agree_nn",
            "ntk_agree_majority",
            "ntk_agree_limit",
        )
    }
    for L in shared.depths:
        for kernel in ("nngp", "ntk"):
            lab = shared.test.labels(L, kernel)
            rows[f"{kernel}_acc_depth"].append(I.accuracy(lab, y))
            rows[f"{kernel}_agree_nn"].append(float(np.mean(lab == shared.nn)))
            rows[f"{kernel}_agree_majority"].append(float(np.mean(lab == shared.majority)))
            rows[f"{kernel}_agree_limit"].append(float(np.mean(lab == shared.limit)))
    return {"depths": np.asarray(shared.depths), **{k: np.asarray(v) for k, v in rows.items()}}


def samples_view(shared: _Shared) -> dict:
    """Stage 5: test error against the number of training points (the first n of the training set)."""
    t, at = shared.task, shared.at
    n_max = len(shared.x_train)
    ns = np.unique(np.round(np.geomspace(max(4, n_max // 32), n_max, 6)).astype(int))
    y = t.y_test
    errs = {k: [] for k in ("err_nngp", "err_nn", "err_majority", "err_hilbert", "err_limit")}
    for n in ns:
        xt, yt = shared.x_train[:n], shared.y_train[:n]
        clf = I.DepthClassifier(
            shared.dual, xt, yt, t.x_test, () if math.isinf(at) else (at,), ntk=False, duplicates="drop"
        )
        errs["err_nngp"].append(1 - I.accuracy(clf.labels(at), y))
        errs["err_limit"].append(1 - I.accuracy(clf.limit(), y))
        errs["err_nn"].append(1 - I.accuracy(I.nearest_neighbour(xt, yt, t.x_test), y))
        errs["err_majority"].append(1 - I.accuracy(I.majority_vote(yt, len(y)), y))
        errs["err_hilbert"].append(1 - I.accuracy(I.hilbert_classify(xt, yt, t.x_test), y))
    return {
        "n_values": ns,
        **{k: np.asarray(v) for k, v in errs.items()},
        "bayes_error": 1 - I.accuracy(t.bayes(t.x_test), y),
    }


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """Five stages: the dual, the scaling near rho = 1, the classifiers at `depth`, the depth and sample sweeps."""
    shared: dict = {}

    def get() -> _Shared:
        if "s" not in shared:
            shared["s"] = _Shared(config)
        return shared["s"]

    return stages(
        [
            lambda: dual_view(config),
            lambda: scaling_view(config),
            lambda: classifiers_view(get()),
            lambda: depth_view(get()),
            lambda: samples_view(get()),
        ],
        stop,
    )
