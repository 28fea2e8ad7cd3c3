"""Learning curves of random-feature and kernel ridge regression (Simon, Karkada, Ghosh & Belkin 2023, "More is
Better", arXiv 2311.14646): the eigenlearning theory of `workbench.theory.learning_curves` beside simulations.

Tasks: the paper code's synthetic power law (lam_i = i^-a, v_i^2 = i^-b, `modes` modes, Gaussian random features),
or scikit-learn's digits (parity labels +-1, the first `points` images as the population) with ReLU random features,
whose theory uses the eigensystem of the depth-1 ReLU NNGP on those points; the fitted power-law exponents (a, b) of
the workbench's NNGP and NTK (`mlp_kernels`, `depth` hidden layers) on the digits are reported.

A view in three stages:
1. theory: test/train MSE against k at n (`ks[K]`), the optimal-ridge envelope, test MSE over (n, k) (`theory_map`),
   test MSE against the fitting ratio R = train/test over ridges with the optimum and R* of the exponents;
2. simulation against k at n (`sim_ks`, mean and standard error over `trials`);
3. simulated test MSE over a coarse (n, k) grid (`sim_map`), one vmapped call.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import numpy as np

from workbench import data as D
from workbench.core.analysis import sem
from workbench.core.config import Config as _Config
from workbench.core.config import spec
from workbench.core.experiment import experiment_run, stages
from workbench.core.fields import DEPTH, SEED
from workbench.core.memory import require
from workbench.theory import learning_curves as LC
from workbench.theory.kernels import mlp_kernels

__all__ = ["Config", "METRICS", "run"]

TASKS = ("power_law", "digits")
CURVE_POINTS = 60  # k values of the theory curve
MAP_POINTS = 31  # n and k values of the theory heat map
SIM_MAP = 5  # n and k values of the simulated heat map
K_RANGE = (10, 10_000)  # the paper code's k range
FIT_RANKS = (2, 100)  # ranks on which the digits spectra are fitted


@dataclass(frozen=True)
class Config(_Config):
    """One task, n samples, k random features and a ridge (negative down to where kappa > 0)."""

    task: str = spec("power_law", choices=TASKS, doc="synthetic power law (a, b) or the digits data set")
    a: float = spec(1.5, lo=1.05, hi=4.0, doc="eigenvalue decay lam_i = i^-a (power-law task)")
    b: float = spec(1.5, lo=1.05, hi=4.0, doc="target decay v_i^2 = i^-b (power-law task)")
    noise: float = spec(0.5, lo=0.0, hi=4.0, doc="label noise variance sigma^2 (power-law task)")
    modes: int = spec(1000, lo=64, hi=20_000, log=True, doc="modes M of the power-law task")
    points: int = spec(600, lo=100, hi=1797, log=True, doc="digits used as the population")
    depth: int = DEPTH(1, doc="hidden layers of the NNGP/NTK whose exponents are fitted (digits)")
    n: int = spec(128, lo=4, hi=4096, log=True, doc="training samples n")
    k: int = spec(512, lo=1, hi=100_000, log=True, doc="random features k (the heat map marks (n, k))")
    ridge: float = spec(1e-3, lo=1e-6, hi=100.0, log=True, doc="ridge |delta| on K + delta I")
    negative: bool = spec(False, doc="use delta = -ridge (valid down to kappa = 0, only where k > n)")
    trials: int = spec(4, lo=0, hi=64, doc="simulated draws per point (0: theory only)")
    sim_max: int = spec(128, lo=8, hi=2048, log=True, doc="largest n and k of the simulations")
    seed: int = SEED(0)

    def validate(self) -> None:
        if self.trials:
            width = self.modes if self.task == "power_law" else 2 * self.points
            top = 1 << int(np.ceil(np.log2(max(self.n, self.sim_max))))
            need = LC.simulation_bytes(self.trials, top, top, width)
            require(
                need, "sim_max", f"{self.trials} trials up to n, k = {top}", "use a smaller sim_max or fewer trials"
            )
        if self.task == "digits" and self.n >= self.points:
            raise ValueError(f"n: must be below points = {self.points} on the digits, got {self.n}")
        if self.negative:  # a nonnegative ridge is always valid; a negative one only above the kappa = 0 bound
            task(self).solve(self.n, self.k, self.delta)  # ValueError naming the ridge and the bound

    @property
    def delta(self) -> float:
        """The signed ridge delta added to K."""
        return -self.ridge if self.negative else self.ridge


class Stage(TypedDict):
    """Metrics of the stage records (later stages carry the earlier ones)."""

    ks: np.ndarray  # (K,) features of the theory curve
    test_k: np.ndarray  # (K,) predicted test MSE at n and the ridge
    train_k: np.ndarray  # (K,) predicted train MSE
    optimal_k: np.ndarray  # (K,) test MSE at the optimal ridge (the envelope)
    optimal_ridge_k: np.ndarray  # (K,) that ridge
    krr_test: float  # k = infinity (kernel ridge regression) at the ridge
    min_ridge: float  # most negative valid ridge at (n, k)
    map_n: np.ndarray  # (A,) samples of the heat map
    map_k: np.ndarray  # (B,) features of the heat map
    theory_map: np.ndarray  # (A, B) predicted test MSE at the ridge
    ratio_ridges: np.ndarray  # (R,) ridges of the fitting-ratio curve
    ratio: np.ndarray  # (R,) R = train / test at (n, k)
    ratio_test: np.ndarray  # (R,) test MSE
    ratio_best: float  # R at the optimal nonnegative ridge of (n, k) (0 when interpolation is optimal)
    ratio_best_test: float  # the test MSE there
    ratio_star: float  # R* = ((a - b)/(b (a - 1)))^2 of the exponents (noise-free power law); 0 when b >= a
    exponent_a: float  # the task's a (power law) or the fitted one (digits NNGP)
    exponent_b: float
    ntk_a: NotRequired[float]  # digits: fitted exponents of the NTK
    ntk_b: NotRequired[float]
    sim_ks: NotRequired[np.ndarray]  # (S,) simulated features at n
    sim_theory: NotRequired[np.ndarray]  # (S,) predicted test MSE at those k
    sim_test: NotRequired[np.ndarray]  # (S,) mean test MSE over trials
    sim_test_sem: NotRequired[np.ndarray]  # (S,) its standard error
    sim_train: NotRequired[np.ndarray]  # (S,) mean train MSE
    sim_map_n: NotRequired[np.ndarray]  # (C,)
    sim_map_k: NotRequired[np.ndarray]  # (C,)
    sim_map: NotRequired[np.ndarray]  # (C, C) mean simulated test MSE


METRICS = {"stage": Stage}


@functools.lru_cache(maxsize=8)
def digits(points: int, depth: int) -> dict:
    """The first `points` digits with parity labels, the NNGP's and NTK's eigensystems and fitted exponents."""
    d = D.digits(seed=0)
    x = np.concatenate([d.x_train, d.x_test])[:points]
    y = np.where(np.concatenate([d.y_train, d.y_test])[:points] % 2 == 0, 1.0, -1.0)
    y = y - y.mean()
    relu = mlp_kernels(x, depth=1, activation="relu").nngp  # the kernel of the simulated ReLU features
    deep = mlp_kernels(x, depth=depth, activation="relu")
    out = {"x": x, "y": y, "spectrum": LC.empirical_spectrum(relu, y)}
    for name, kernel in (("nngp", deep.nngp), ("ntk", deep.ntk)):
        out[name] = LC.fit_power_law(*LC.empirical_spectrum(kernel, y), *FIT_RANKS)
    return out


@functools.lru_cache(maxsize=16)
def _task(kind: str, a: float, b: float, noise: float, modes: int, points: int, depth: int) -> LC.Task:
    if kind == "power_law":
        return LC.Task(*LC.power_law_task(a, b, modes), noise)
    lam, v2 = digits(points, depth)["spectrum"]
    keep = lam > 1e-12 * lam[0]  # drop the null space of a rank-deficient kernel
    return LC.Task(lam[keep], v2[keep], 0.0)


def task(config: Config) -> LC.Task:
    """The config's eigensystem (cached: moving n, k or the ridge reuses it)."""
    c = config
    return _task(c.task, c.a, c.b, c.noise, c.modes, c.points, c.depth)


def exponents(config: Config) -> dict:
    """(a, b) of the power-law task, or fitted on the digits (NNGP and NTK of `depth` layers)."""
    if config.task == "power_law":
        return {"exponent_a": config.a, "exponent_b": config.b}
    fits = digits(config.points, config.depth)
    return {
        "exponent_a": fits["nngp"][0],
        "exponent_b": fits["nngp"][1],
        "ntk_a": fits["ntk"][0],
        "ntk_b": fits["ntk"][1],
    }


def theory(config: Config) -> dict:
    """Stage 1: the theory curves, heat map and fitting-ratio curve (NaN where a negative ridge is below a point's
    valid range: for k <= n every negative ridge)."""
    t, c = task(config), config
    ks = np.geomspace(*K_RANGE, CURVE_POINTS)
    curve = _theory(c, c.n, ks)
    best = t.optimal(c.n, ks)
    map_n, map_k = np.geomspace(4, 4096, MAP_POINTS), np.geomspace(*K_RANGE, MAP_POINTS)
    grid_n, grid_k = np.meshgrid(map_n, map_k, indexing="ij")
    theory_map = _theory(c, grid_n, grid_k)
    low = float(t.min_ridge(c.n, c.k))
    ridges = np.logspace(-4, 2, 40)
    if low < 0:
        ridges = np.concatenate([low * np.linspace(0.98, 0.02, 12), ridges])
    fit = t.risk(c.n, c.k, ridges)
    opt = t.optimal(c.n, c.k, negative=False)  # R* is the fitting ratio over nonnegative ridges
    fitted = exponents(c)
    return {
        "ks": ks,
        "test_k": curve.test,
        "train_k": curve.train,
        "optimal_k": best.test,
        "optimal_ridge_k": best.ridge,
        "krr_test": float(t.risk(c.n, np.inf, max(c.delta, float(t.min_ridge(c.n)))).test),
        "min_ridge": low,
        "map_n": map_n,
        "map_k": map_k,
        "theory_map": theory_map.test,
        "ratio_ridges": ridges,
        "ratio": fit.train / fit.test,
        "ratio_test": fit.test,
        "ratio_best": float(opt.train / opt.test),
        "ratio_best_test": float(opt.test),
        "ratio_star": LC.optimal_fitting_ratio(max(fitted["exponent_a"], 1.01), max(fitted["exponent_b"], 1.01)),
        **fitted,
    }


def _simulate(config: Config, n, k) -> tuple[np.ndarray, np.ndarray]:
    """Simulated (test, train) MSE, each (trials, *shape), of the config's task at its ridge; NaN where the theory
    is invalid (ridge below the most negative valid one)."""
    c = config
    valid = _valid(c, n, k)
    ridge = np.where(valid, c.delta, 1.0)
    if c.task == "power_law":
        t = task(c)
        test, train = LC.simulate_rf(t, n, k, ridge, trials=c.trials, seed=c.seed)
    else:
        d = digits(c.points, c.depth)
        test, train = LC.simulate_rf_data(d["x"], d["y"], n, k, ridge, trials=c.trials, seed=c.seed)
    return np.where(valid, test, np.nan), np.where(valid, train, np.nan)


def _valid(config: Config, n, k) -> np.ndarray:
    """Where the config's ridge is at or above the most negative valid ridge (kappa > 0)."""
    shape = np.broadcast(n, k).shape
    if config.delta >= 0:
        return np.ones(shape, bool)
    return config.delta >= task(config).min_ridge(n, k)


def _theory(config: Config, n, k) -> LC.Risk:
    """The predicted risk at the config's ridge over (n, k), NaN where that ridge is below the valid range."""
    valid = _valid(config, n, k)
    r = task(config).risk(n, k, np.where(valid, config.delta, 1.0))
    return LC.Risk(*(np.where(valid, v, np.nan) for v in r))


def simulation_k(config: Config) -> dict:
    """Stage 2: simulated test and train MSE against k at n (k up to `sim_max`), mean and standard error."""
    c = config
    ks = np.unique(np.geomspace(min(8, c.sim_max), c.sim_max, 9).round().astype(int)).astype(float)
    ks = np.unique(np.append(ks, min(c.n, c.sim_max)))
    test, train = _simulate(c, c.n, ks)
    return {
        "sim_ks": ks,
        "sim_theory": _theory(c, c.n, ks).test,
        "sim_test": test.mean(0),
        "sim_test_sem": sem(test),
        "sim_train": train.mean(0),
    }


def simulation_map(config: Config) -> dict:
    """Stage 3: simulated test MSE over a coarse (n, k) grid up to `sim_max` (one vmapped compiled call)."""
    c = config
    ns = np.geomspace(4, min(c.sim_max, c.points - 1 if c.task == "digits" else c.sim_max), SIM_MAP).round()
    ks = np.geomspace(4, c.sim_max, SIM_MAP).round()
    grid_n, grid_k = np.meshgrid(ns, ks, indexing="ij")
    test, _ = _simulate(c, grid_n, grid_k)
    return {"sim_map_n": ns, "sim_map_k": ks, "sim_map": test.mean(0)}


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """Stage 1: theory; with `trials`, stage 2: simulation against k, stage 3: the simulated heat map."""
    sims = [lambda: simulation_k(config), lambda: simulation_map(config)] if config.trials else []
    return stages([lambda: theory(config), *sims], stop)
