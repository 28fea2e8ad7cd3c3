"""Double descent in time of a linear student (Advani, Saxe & Sompolinsky 2020, arXiv 1710.03667): the theory of
`workbench.theory.linear_dynamics` beside a live simulation, and a nonlinear two-layer student trained by the engine.

A view in three stages:
1. theory: E_g(t), E_train(t) (`times[T]`), the optimal stopping time t* and E_g(t*), E_g at `time`; E_g against the
   load a at t = infinity, at t* and at the optimal ridge (`loads[A]`); the Marchenko-Pastur density (`mp_l[L]`,
   `mp_rho[L]`) with each mode's learning time 1/l;
2. simulation (`trials` > 0): E_g and E_train of the exact gradient flow at N = `inputs`, mean and standard error;
3. (`student`) a two-layer tanh network f = v . tanh(W x) / sqrt(width) (NTK parametrization, base width 1, so its
   NTK on these inputs is about x . x', the linear student's kernel) trained by full-batch gradient descent with the
   workbench engine on data of the same teacher: its test MSE against t = lr * steps / P, the linear theory's time.
   It is nonlinear in its weights (and tanh bends for large W x): the linear theory is its reference, not its
   prediction.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import numpy as np

from workbench.core.analysis import sem
from workbench.core.config import Config as _Config
from workbench.core.config import spec
from workbench.core.experiment import experiment_run, stages
from workbench.core.fields import SEED, WIDTH
from workbench.data import Dataset
from workbench.nets.engine import TrainConfig, train
from workbench.nets.models import MLPConfig, build_mlp
from workbench.theory import linear_dynamics as L

__all__ = ["Config", "METRICS", "run"]

TIMES = np.geomspace(1e-2, 1e4, 121)
SIM_TIMES = np.geomspace(0.5, 1000.0, 19)  # simulated times from t = 0.5 to 1000 (Advani & Saxe's range)
LOADS = np.geomspace(0.1, 10.0, 81)
MP_POINTS = 200
STUDENT_DT = 0.1  # theory time per gradient-descent step of the student (lr = dt * P; stable: dt * max NTK eig < 2)
STUDENT_T = 100.0  # theory time the student is trained for


@dataclass(frozen=True)
class Config(_Config):
    """Load a = P/N, SNR, initial weight scale sigma_0 and a time at which to read E_g."""

    a: float = spec(1.2, lo=0.05, hi=10.0, log=True, doc="load a = P/N (examples per input dimension)")
    snr: float = spec(4.0, lo=0.01, hi=100.0, log=True, doc="SNR = sigma_w^2 / sigma_eps^2 (sigma_w^2 = 1)")
    sigma0: float = spec(0.0, lo=0.0, hi=3.0, doc="initial student weight std sigma_0")
    time: float = spec(10.0, lo=0.01, hi=10_000.0, log=True, doc="training time t at which E_g is read")
    inputs: int = spec(200, lo=10, hi=1000, log=True, doc="input dimension N of the simulation")
    trials: int = spec(8, lo=0, hi=64, doc="simulated problems averaged (0: theory only)")
    student: bool = spec(False, doc="also train a two-layer tanh student with the engine (nonlinear)")
    width: int = WIDTH(256, doc="hidden width of the nonlinear student")
    seed: int = SEED(0)

    def validate(self) -> None:
        if self.student and round(self.a * self.inputs) < 2:
            raise ValueError(f"a: a * inputs must give at least 2 examples, got {self.a * self.inputs:.3g}")


class Stage(TypedDict):
    """Metrics of the stage records (later stages carry the earlier ones)."""

    times: np.ndarray  # (T,) training times
    eg: np.ndarray  # (T,) E_g(t), theory
    etrain: np.ndarray  # (T,) E_train(t), theory
    t_star: float  # optimal stopping time
    eg_star: float  # E_g(t*)
    eg_inf: float  # E_g(t = inf) (inf at a = 1)
    eg_time: float  # E_g at `time`
    ridge_star: float  # optimal ridge (numerical; theory 1/SNR at sigma_0 = 0)
    eg_ridge: float  # E_g at the optimal ridge
    loads: np.ndarray  # (A,) loads a
    eg_inf_a: np.ndarray  # (A,) E_g(inf) against a (inf at a = 1)
    eg_star_a: np.ndarray  # (A,) E_g(t*) against a
    eg_ridge_a: np.ndarray  # (A,) E_g at the optimal ridge against a
    mp_l: np.ndarray  # (L,) eigenvalues l over the Marchenko-Pastur support
    mp_rho: np.ndarray  # (L,) rho_MP(l)
    frozen: float  # (1 - a)_+, the atom at l = 0 (never learned)
    sim_times: NotRequired[np.ndarray]  # (S,)
    sim_eg: NotRequired[np.ndarray]  # (S,) mean over trials
    sim_eg_sem: NotRequired[np.ndarray]  # (S,)
    sim_etrain: NotRequired[np.ndarray]  # (S,)
    sim_etrain_sem: NotRequired[np.ndarray]  # (S,)
    student_times: NotRequired[np.ndarray]  # (R,) lr * steps / P
    student_test: NotRequired[np.ndarray]  # (R,) test MSE of the nonlinear student (noise included)
    student_train: NotRequired[np.ndarray]  # (R,)


METRICS = {"stage": Stage}


def theory(config: Config) -> dict:
    """Stage 1: the theory curves in time and in load, and the Marchenko-Pastur density."""
    c = config
    t_star, eg_star = L.optimal_stopping(c.a, c.snr, c.sigma0)
    ridge = L.optimal_ridge(c.a, c.snr)
    stars = np.array([L.optimal_stopping(a, c.snr, c.sigma0)[1] for a in LOADS[::4]])
    lo, hi = L.mp_edges(c.a)
    mp_l = np.linspace(lo, hi, MP_POINTS + 2)[1:-1]
    return {
        "times": TIMES,
        "eg": L.generalization_error(TIMES, c.a, c.snr, c.sigma0),
        "etrain": L.training_error(TIMES, c.a, c.snr, c.sigma0),
        "t_star": t_star,
        "eg_star": eg_star,
        "eg_inf": float(L.generalization_error(np.inf, c.a, c.snr, c.sigma0)),
        "eg_time": float(L.generalization_error(c.time, c.a, c.snr, c.sigma0)),
        "ridge_star": ridge,
        "eg_ridge": float(L.ridge_error(ridge, c.a, c.snr)),
        "loads": LOADS,
        "eg_inf_a": np.array([L.generalization_error(np.inf, a, c.snr, c.sigma0) for a in LOADS]),
        "eg_star_a": np.interp(np.log(LOADS), np.log(LOADS[::4]), stars),
        "eg_ridge_a": np.array([L.ridge_error(1.0 / c.snr, a, c.snr) for a in LOADS]),
        "mp_l": mp_l,
        "mp_rho": L.mp_density(mp_l, c.a),
        "frozen": max(0.0, 1.0 - c.a),
    }


def simulation(config: Config) -> dict:
    """Stage 2: the linear student's exact gradient flow on `trials` sampled problems at N = `inputs`."""
    c = config
    eg, et = L.simulate(SIM_TIMES, c.inputs, c.a, c.snr, c.sigma0, trials=c.trials, seed=c.seed)

    return {
        "sim_times": SIM_TIMES,
        "sim_eg": eg.mean(0),
        "sim_eg_sem": sem(eg),
        "sim_etrain": et.mean(0),
        "sim_etrain_sem": sem(et),
    }


def teacher_data(config: Config, test: int = 1000) -> Dataset:
    """P = a N noisy examples of the linear teacher y = w_bar . x + eps, x_i ~ N(0, 1/N), and `test` fresh ones."""
    c = config
    rng = np.random.default_rng(c.seed)
    n, p = c.inputs, max(2, round(c.a * c.inputs))
    w_bar = rng.normal(size=n)
    x = rng.normal(size=(p + test, n)) / np.sqrt(n)
    y = x @ w_bar + rng.normal(size=p + test) / np.sqrt(c.snr)
    x, y = x.astype(np.float32), y[:, None].astype(np.float32)
    return Dataset(x[:p], y[:p], x[p:], y[p:])


def student(config: Config) -> dict:
    """Stage 3: the two-layer tanh student, full-batch gradient descent on (1/2P) sum (y - f)^2 with the engine."""
    c = config
    data = teacher_data(c)
    p, steps = len(data.x_train), int(STUDENT_T / STUDENT_DT)
    model = build_mlp(
        MLPConfig(
            in_dim=c.inputs, width=c.width, depth=1, activation="tanh", parametrization="ntk", base_width=1, bias=False
        ),
        seed=c.seed,
    )
    records = list(train(model, data, TrainConfig(lr=STUDENT_DT * p, steps=steps, record_every=steps // 40)))
    records = [r for r in records if r.kind == "step"]
    return {
        "student_times": np.array([r.done * STUDENT_DT for r in records]),
        "student_test": np.array([2.0 * r.metrics["test_loss"] for r in records]),
        "student_train": np.array([2.0 * r.metrics["train_loss"] for r in records]),
    }


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """Stage 1: theory; stage 2 (`trials`): the simulated linear student; stage 3 (`student`): the nonlinear one."""
    parts = [lambda: theory(config)]
    parts += [lambda: simulation(config)] if config.trials else []
    parts += [lambda: student(config)] if config.student else []
    return stages(parts, stop)
