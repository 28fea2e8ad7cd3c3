"""Locality and hierarchy: learning-curve exponents of local, convolutional and deep hierarchical CNN kernels in
teacher-student kernel regression (Favero, Cagnetta & Wyart 2021, arXiv 2106.08619; Cagnetta, Favero & Wyart 2023,
arXiv 2208.01003), from `workbench.theory.locality`. The deep CNN's NNGP / NTK through its `workbench.stax`
description (`hierarchical_cnn`, `hierarchical_kernels`) lives here: stax sits above theory in the layering, and
the simulations use theory's compiled recursion of the same kernel (tested equal to both, and to the code's `dcntk`).

A view in three stages:
1. the simulated learning curve of the student on the teacher's Gaussian-field target (mean and standard error over
   `trials`), the fitted exponent beta with its error bar and the papers' prediction;
2. the eigenlearning prediction (`theory.learning_curves`) from the student's spectrum on `points` inputs, on the
   same n axis, its fitted slope, and the spectrum: the student's eigenvalues and the target's power per mode;
3. beta against the dimension: for a local teacher, the fc, lc and cn students at each d of `d_values`; for a deep
   student, targets on the meta-patch of each layer l = 1..depth-1 and on the whole input (d_eff = (s - 1) s^(l-1)).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, NamedTuple, NotRequired, TypedDict

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from workbench import stax
from workbench.core.config import Config as _Config
from workbench.core.config import spec
from workbench.core.declare import Array, Given, declare
from workbench.core.experiment import experiment_run, stages
from workbench.core.fields import SEED
from workbench.core.memory import require
from workbench.theory import locality as L

__all__ = ["Config", "DeepKernels", "METRICS", "hierarchical_cnn", "hierarchical_kernels", "run"]

SWEEP_STUDENTS = ("fc", "lc", "cn")
D_VALUES = ("8,12,16", "6,8", "4,8,16", "8,16,24,32")  # the stage-3 sweeps offered
SPECTRUM_MODES = 512  # leading modes of the spectrum kept in the records
GROUPED_POINTS, GROUPED_MODES = 512, 96  # a deep student's spectrum grouped by meta-patch: inputs, leading modes
OWN_RANGES = {  # fields named like a shared field (workbench.core.fields) whose range differs, and why
    "depth": "a deep student of filter s needs d a multiple of s^depth: beyond 6 layers d exceeds the simulated sizes",
}


class DeepKernels(NamedTuple):
    """NNGP and NTK (N1, N2) of the hierarchical CNN, float64."""

    nngp: np.ndarray
    ntk: np.ndarray


@declare(filters=Given(why="a tuple of 1 to 10 ints >= 2, checked in the body", example=(2, 2)))
def hierarchical_cnn(filters: tuple[int, ...]) -> stax.Layer:
    """The deep CNN of 2208.01003 (sec. 2) as a `workbench.stax` description: Conv(filter = stride = f_l, no bias),
    Relu per layer, Flatten, Dense; W_std = sqrt(f_1) on the first layer (input patches on unit spheres: its
    pre-activation covariance is their cosine), sqrt(2) after each ReLU. Its kernels equal the code's `dcntk` /
    `dcrfk`; unpacks as neural-tangents' (init_fn, apply_fn, kernel_fn)."""
    filters = _filters(filters)
    layers = [stax.Conv(1, (filters[0],), strides=(filters[0],), W_std=math.sqrt(filters[0])), stax.Relu()]
    for f in filters[1:]:
        layers += [stax.Conv(1, (f,), strides=(f,), W_std=math.sqrt(2.0)), stax.Relu()]
    return stax.serial(*layers, stax.Flatten(), stax.Dense(1, W_std=math.sqrt(2.0)))


def _filters(filters: Any) -> tuple[int, ...]:
    ok = isinstance(filters, (tuple, list)) and 1 <= len(filters) <= 10
    ok = ok and all(isinstance(f, (int, np.integer)) and not isinstance(f, bool) and 2 <= f <= L.MAX_D for f in filters)
    if not ok:
        raise ValueError(f"filters: must be a tuple of 1 to 10 ints in [2, {L.MAX_D}], got {filters!r:.80}")
    return tuple(int(f) for f in filters)


@declare(
    x1=Array("n d", lo=-1e6, hi=1e6, example=L._example_x),
    x2=Array("m d", lo=-1e6, hi=1e6, none_ok=True, example=L._example_x),
    filters=Given(why="a tuple of ints >= 2 whose product divides d, checked in the body", example=(2, 2)),
)
def hierarchical_kernels(x1: ArrayLike, x2: ArrayLike | None = None, *, filters: tuple[int, ...]) -> DeepKernels:
    """NNGP and NTK (N1, N2) of the deep hierarchical CNN (`hierarchical_cnn`) through `workbench.stax`, in
    float64, each input patch of size f_1 first normalised to the unit sphere (the code's `normalize=True`)."""
    filters = _filters(filters)
    x1 = np.asarray(x1, np.float64)
    d, tree = x1.shape[1], math.prod(filters)
    if d % tree:
        raise ValueError(f"filters: d = {d} must be a multiple of the product of the filters {tree}")

    def patches(x: np.ndarray) -> np.ndarray:
        p = x.reshape(len(x), -1, filters[0])
        norm = np.linalg.norm(p, axis=-1, keepdims=True)
        if np.any(norm == 0):
            raise ValueError("x1, x2: every input patch must be nonzero (it is normalised to the unit sphere)")
        return (p / norm).reshape(len(x), d, 1)

    _, _, kernel_fn = hierarchical_cnn(filters)
    a = patches(x1)
    b = None if x2 is None else patches(np.asarray(x2, np.float64))
    with jax.enable_x64(True):
        k = kernel_fn(jnp.asarray(a), None if b is None else jnp.asarray(b), ("nngp", "ntk"))
        return DeepKernels(np.asarray(k.nngp), np.asarray(k.ntk))


@dataclass(frozen=True)
class Config(_Config):
    """A teacher (filter t) and a student (filter s, or a deep CNN of `depth` layers of filter s) on d inputs."""

    teacher: str = spec("lc", choices=("lc", "cn", "deep"), doc="teacher kernel: local, convolutional or deep CNN")
    t: int = spec(2, lo=1, hi=16, doc="teacher filter size t")
    student: str = spec("lc", choices=L.KINDS, doc="student kernel: fully connected, local, convolutional, deep CNN")
    s: int = spec(2, lo=1, hi=16, doc="student filter size s (deep: filter = stride of every layer)")
    d: int = spec(8, lo=2, hi=64, doc="input dimension d")
    depth: int = spec(3, lo=1, hi=6, doc="layers of a deep student (d a multiple of s^depth)")
    level: int = spec(0, lo=0, hi=6, doc="deep teacher: the target reads the meta-patch of this layer (0: all)")
    base: str = spec("laplace", choices=("laplace", "gaussian"), doc="patch kernel C of fc / lc / cn kernels")
    n_min: int = spec(32, lo=2, hi=4096, log=True, doc="smallest training set n")
    n_max: int = spec(512, lo=4, hi=8192, log=True, doc="largest training set n")
    sizes: int = spec(6, lo=2, hi=16, doc="values of n (geometric)")
    trials: int = spec(4, lo=2, hi=64, doc="draws of inputs and target per n")
    test: int = spec(512, lo=16, hi=8192, log=True, doc="test points")
    ridge: float = spec(1e-10, lo=0.0, hi=1e-2, doc="ridge relative to the student's mean diagonal (vanishing)")
    points: int = spec(1024, lo=0, hi=8192, doc="inputs of the eigenlearning spectrum (0: no prediction)")
    d_values: str = spec("8,12,16", choices=D_VALUES, doc="stage 3: dimensions d of the beta-against-d sweep")
    sweep: bool = spec(True, doc="stage 3: beta against d (local teacher) or against the meta-patch (deep student)")
    seed: int = SEED(0)

    def validate(self) -> None:
        if self.n_min >= self.n_max:
            raise ValueError(f"n_min: must be below n_max = {self.n_max}, got {self.n_min}")
        if self.points and self.points <= self.n_max:
            raise ValueError(f"points: must be above n_max = {self.n_max} (the spectrum's sample), or 0")
        L.predicted_beta(teacher(self), student(self), self.d)  # ValueError naming teacher / student and d
        require(L.curve_bytes(1, self.n_max, self.test, self.d), "n_max", f"n = {self.n_max} + {self.test} test points")
        if self.sweep and self.student != "deep":
            for d in dims(self):
                L.predicted_beta(teacher(self), student(self, "lc"), d)

    @property
    def ns(self) -> np.ndarray:
        return np.unique(np.geomspace(self.n_min, self.n_max, self.sizes).round().astype(int))


def dims(config: Config) -> list[int]:
    """The d values of the stage-3 sweep."""
    return [int(v) for v in config.d_values.split(",")]


def teacher(config: Config, level: int | None = None) -> L.Spec:
    """The teacher kernel; a deep teacher has the student's tree, reading the meta-patch of `level` (0: all)."""
    c = config
    if c.teacher != "deep":
        return L.spec(c.teacher, c.t, c.base)
    level = c.level if level is None else level
    return L.spec("deep", c.t, depth=level or c.depth, span=c.t**level if level else 0)


def student(config: Config, kind: str | None = None) -> L.Spec:
    """The student kernel (`kind` overrides the config's)."""
    c, kind = config, kind or config.student
    return L.spec(kind, c.s, depth=c.depth) if kind == "deep" else L.spec(kind, c.s if kind != "fc" else 1, c.base)


class Stage(TypedDict):
    """Metrics of the stage records (later stages carry the earlier ones)."""

    n: np.ndarray  # (K,) training set sizes
    test: np.ndarray  # (K,) mean test MSE over trials
    test_sem: np.ndarray  # (K,) its standard error
    beta: float  # fitted exponent (minus the log-log slope of the mean)
    beta_err: float  # its standard error over trials
    beta_theory: float  # the papers' prediction
    eigen_test: NotRequired[np.ndarray]  # (K,) eigenlearning prediction
    eigen_beta: NotRequired[float]  # its fitted slope on the same n
    eigenvalues: NotRequired[np.ndarray]  # (M,) leading eigenvalues of the student (K_S / points)
    power: NotRequired[np.ndarray]  # (M,) the target's power v_i^2 in each
    mode_eigenvalues: NotRequired[np.ndarray]  # (G,) deep student: leading eigenvalues on GROUPED_POINTS inputs
    mode_levels: NotRequired[np.ndarray]  # (G,) the layer of the meta-patches each eigenfunction lives on (0: constant)
    sweep_x: NotRequired[np.ndarray]  # (D,) d values (local) or effective dimensions d_eff (deep)
    sweep_beta: NotRequired[np.ndarray]  # (S, D) fitted beta per student (local) or per target (deep: one row)
    sweep_err: NotRequired[np.ndarray]  # (S, D)
    sweep_theory: NotRequired[np.ndarray]  # (S, D) predicted beta


METRICS = {"stage": Stage}


def curve(config: Config) -> dict:
    """Stage 1: the simulated learning curve and its fitted exponent."""
    c = config
    out = L.learning_curve(teacher(c), student(c), c.d, c.ns, trials=c.trials, test=c.test, ridge=c.ridge, seed=c.seed)
    return {
        "n": out.n,
        "test": out.test.mean(0),
        "test_sem": out.test.std(0, ddof=1) / math.sqrt(c.trials),
        "beta": out.beta,
        "beta_err": out.beta_err,
        "beta_theory": L.predicted_beta(teacher(c), student(c), c.d),
    }


def eigen(config: Config) -> dict:
    """Stage 2: the eigenlearning prediction on the same n and the spectrum it is computed from; for a deep student,
    its leading eigenvalues grouped by the meta-patches their eigenfunctions live on."""
    c = config
    pred, lam, v2 = L.eigen_prediction(teacher(c), student(c), c.d, c.ns, points=c.points, ridge=c.ridge, seed=c.seed)
    out = {
        "eigen_test": pred,
        "eigen_beta": L.fit_exponent(c.ns, pred[None])[0],
        "eigenvalues": lam[:SPECTRUM_MODES],
        "power": v2[:SPECTRUM_MODES],
    }
    if c.student == "deep":
        points = min(c.points, GROUPED_POINTS)
        modes = min(GROUPED_MODES, points // 4)
        grouped, levels = L.meta_patch_levels(student(c), c.d, points=points, modes=modes, seed=c.seed)
        out |= {"mode_eigenvalues": grouped, "mode_levels": levels}
    return out


def _beta(config: Config, t: L.Spec, s: L.Spec, d: int) -> tuple[float, float, float]:
    c = config
    out = L.learning_curve(t, s, d, c.ns, trials=c.trials, test=c.test, ridge=c.ridge, seed=c.seed)
    return out.beta, out.beta_err, L.predicted_beta(t, s, d)


def sweep(config: Config) -> dict:
    """Stage 3: beta against d for the fc, lc and cn students (local teacher), or against the effective dimension
    of the meta-patch the target reads (deep student, deep teacher of the layers 1..depth-1 and of the whole input)."""
    c = config
    if c.student == "deep":
        levels = [*range(1, c.depth), 0]  # the meta-patches of layers 1..depth-1, then the whole input
        tree = lambda lv: L.spec("deep", c.s, depth=lv or c.depth, span=c.s**lv if lv else 0)  # the student's tree
        rows = [_beta(c, tree(lv), student(c), c.d) for lv in levels]
        x = [(c.s**lv if lv else c.d) * (c.s - 1) / c.s for lv in levels]
        table = np.array(rows).T[:, None, :]
    else:
        ds = dims(c)
        kinds = [k for k in SWEEP_STUDENTS if not (k == "cn" and c.teacher == "lc")]
        table = np.array([[_beta(c, L.spec(c.teacher, c.t, c.base), student(c, k), d) for d in ds] for k in kinds])
        table = np.moveaxis(table, -1, 0)
        x = ds
    return {"sweep_x": np.asarray(x, float), "sweep_beta": table[0], "sweep_err": table[1], "sweep_theory": table[2]}


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """Stage 1: the learning curve; 2: eigenlearning (points > 0); 3: beta against the dimension (sweep)."""
    parts = [lambda: curve(config)]
    if config.points:
        parts.append(lambda: eigen(config))
    if config.sweep:
        parts.append(lambda: sweep(config))
    return stages(parts, stop)
