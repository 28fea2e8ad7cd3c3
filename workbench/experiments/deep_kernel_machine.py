"""Deep kernel machines against their NNGP limit (Yang et al., ICML 2023, arXiv 2108.13097;
`workbench.theory.dkm`): test accuracy or NLL and the learned Grams' distance from the NNGP's against nu.

Tasks: the `dkm` library's 2-D two-class sine toy (its `Sin2dHarness`: x ~ linspace(-2, 2) + N(0, 0.01), the second
coordinate 6 sin 3x + N(0, 1), shifted by 5 for class 1; standardised by the training set), the digits (10
classes) and a 1-D sine regression (`workbench.data.sine`, Gaussian likelihood). The inducing inputs are a random
subset of the training inputs (fixed). Every DKM trains through the engine (`Program(objective=dkm.loss)`, Adam or
plain gradient descent on -objective / n, full batch) in float64, one seed at a time.

A sweep over nu: first the NNGP (nu = 1e12: the Grams within 1e-12 of the NNGP's, scored with them exactly), then
the chosen nu (with its learned and NNGP Grams and the objective's terms over the steps), then `nus` values from
1e-2 to 1e6; the summary fits the log-log slope of the Grams' distance against nu (theory: -1) and picks the best nu.
"""

from __future__ import annotations

import functools
import threading
import warnings
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from workbench import data as D
from workbench.core import float64
from workbench.core.analysis import loglog_slope, sem
from workbench.core.config import Config as _Config
from workbench.core.config import spec
from workbench.core.experiment import Stopped, experiment_run, sweep
from workbench.core.fields import ACTIVATION, LR, OPTIMIZER, SEED, SEEDS, STEPS
from workbench.core.memory import require
from workbench.nets import engine
from workbench.theory import dkm

__all__ = ["Config", "METRICS", "NNGP_NU", "NU_GRID", "SLOPE_FROM", "run"]

TASKS = ("two_sines", "digits", "sine")
NNGP_NU = dkm.NU_RANGE[1]  # the NNGP's point: Grams within 1/nu of the NNGP's
NU_GRID = (1e-2, 1e6)  # the sweep's range (the panel's slider)
MAX_STEP_WORK = 4e9  # layers x points x inducing^2 of one gradient step (float64 products of that many terms)
SLOPE_FROM = 10.0  # the distance is fitted against nu from here (its 1/nu regime)
DIGITS = (1258, 539)  # train and test images of the digits at test_fraction 0.3


@dataclass(frozen=True)
class Config(_Config):
    """A task, a DKM (inducing points, layers, kernel) and the nu values it is trained at."""

    task: str = spec("two_sines", choices=TASKS, doc="dkm's two-class sine toy, the digits or a 1-D sine regression")
    n_train: int = spec(200, lo=8, hi=4096, log=True, doc="training points")
    n_test: int = spec(500, lo=8, hi=4096, log=True, doc="test points")
    inducing: int = spec(20, lo=2, hi=1024, log=True, doc="inducing points P (a subset of the training inputs)")
    layers: int = spec(2, lo=1, hi=8, doc="learned Gram layers L (the limit: NNGP of L + 1 hidden layers)")
    activation: str = ACTIVATION("relu", doc="activation whose dual is the kernel map")
    bias_std: float = spec(0.3, lo=0.0, hi=10.0, doc="sigma_b of the kernel map (sigma_w = 1)")
    noise: float = spec(0.1, lo=1e-4, hi=10.0, log=True, doc="noise variance (sine regression)")
    nu: float = spec(
        1.0,
        lo=NU_GRID[0],
        hi=NU_GRID[1],
        log=True,
        doc="nu: weight of the KL terms (the width)",
    )
    nus: int = spec(5, lo=0, hi=17, doc="nu values swept from 1e-2 to 1e6 (0: the chosen nu and the NNGP)")
    steps: int = STEPS(200, doc="gradient-descent steps")
    optimizer: str = OPTIMIZER("adam", doc="adam (fast); sgd: plain gradient ascent on the objective (slow)")
    lr: float = LR(0.03, doc="learning rate on -objective / n")
    samples: int = spec(16, lo=1, hi=1024, log=True, doc="fixed Monte Carlo draws of the softmax likelihood")
    seeds: int = SEEDS(2, doc="seeds (data, inducing points) averaged")
    seed: int = SEED(0, doc="first seed")

    def validate(self) -> None:
        if self.inducing > self.n_train:
            raise ValueError(f"inducing: must be at most n_train = {self.n_train}, got {self.inducing}")
        if self.task == "digits" and (self.n_train > DIGITS[0] or self.n_test > DIGITS[1]):
            raise ValueError(f"n_train: the digits hold {DIGITS[0]} training and {DIGITS[1]} test images")
        n, p = max(self.n_train, self.n_test), self.inducing
        need = 8 * (4 * self.layers * (n * p + p * p) + 3 * self.samples * n * (10 if self.task == "digits" else 2))
        require(need, "inducing", f"{self.layers} layers of {n} x {p} Grams", "use fewer points or inducing points")
        if self.layers * n * p * p > MAX_STEP_WORK:  # a compiled step cannot be stopped: it must end in seconds
            raise ValueError(
                f"inducing: {self.layers} layers of {n} x {p} x {p} products ({self.layers * n * p * p:.2g}) make one "
                f"gradient step too long to stop (at most {MAX_STEP_WORK:.0e}); use fewer points or inducing points"
            )

    @property
    def likelihood(self) -> str:
        return "gaussian" if self.task == "sine" else "categorical"

    @property
    def grid(self) -> np.ndarray:
        """The swept nu values."""
        return np.geomspace(*NU_GRID, self.nus) if self.nus > 1 else np.array([NU_GRID[0]] * self.nus)


class Point(TypedDict):
    """Metrics of a point: one nu, mean and standard error over seeds."""

    nu: float  # NNGP_NU for the NNGP
    test_nll: float  # mean negative log-likelihood per test point (and output)
    test_nll_sem: float
    distance: np.ndarray  # (L,) ||G_l - G_l^NNGP||_F / ||G_l^NNGP||_F at the inducing points
    log_likelihood: float  # the objective's terms after training, per training point
    kl: float  # nu sum_l KL_l / n
    kl_output: float  # KL(q(f_u) || p(f_u)) / n
    test_acc: NotRequired[float]  # classification
    test_acc_sem: NotRequired[float]
    grams: NotRequired[np.ndarray]  # chosen nu: (L, P, P) learned Grams of the first seed
    nngp_grams: NotRequired[np.ndarray]  # (L, P, P) the NNGP's at the same inducing points
    trace_objective: NotRequired[np.ndarray]  # (steps + 1,) the objective / n over the steps (first seed)
    trace_ll: NotRequired[np.ndarray]  # (steps + 1,) its expected log-likelihood / n
    trace_kl: NotRequired[np.ndarray]  # (steps + 1,) its KL terms / n (layers and output)


class Summary(TypedDict):
    """The slope of the distance against nu and the best nu against the NNGP."""

    slope: np.ndarray  # (L,) log-log slope of the distance against nu >= SLOPE_FROM (theory: -1)
    best_nu: float  # the nu of the best test accuracy (classification) or NLL
    best: float  # its test accuracy or NLL
    best_sem: float
    nngp: float  # the NNGP's
    nngp_sem: float


METRICS = {"point": Point, "summary": Summary}


def _two_sines(n_train: int, n_test: int, seed: int) -> D.Dataset:
    """The `dkm` library's Sin2dHarness toy: two noisy sine bands 5 apart, standardised by the training set."""
    rng = np.random.default_rng(seed)
    half = (n_train + n_test + 1) // 2
    bands = []
    for shift in (0.0, 5.0):
        x = np.linspace(-2, 2, half) + 0.1 * rng.normal(size=half)
        bands.append(np.stack([x, 6 * np.sin(3 * x) + rng.normal(size=half) + shift], 1))
    order = rng.permutation(2 * half)
    x, y = np.concatenate(bands)[order], np.repeat([0, 1], half)[order].astype(np.int32)
    x_tr, x_te = x[:n_train], x[n_train : n_train + n_test]
    mean, std = x_tr.mean(0), x_tr.std(0)
    return D.Dataset((x_tr - mean) / std, y[:n_train], (x_te - mean) / std, y[n_train : n_train + n_test], 2)


@functools.lru_cache(maxsize=8)
def _task_data(task: str, n_train: int, n_test: int, inducing: int, seed: int) -> tuple[D.Dataset, np.ndarray]:
    """(the data set of a task and seed, the indices of its inducing inputs among the training inputs)."""
    if task == "two_sines":
        data = _two_sines(n_train, n_test, seed)
    elif task == "digits":
        full = D.digits(seed=seed)
        data = D.Dataset(full.x_train[:n_train], full.y_train[:n_train], full.x_test[:n_test], full.y_test[:n_test], 10)
    else:
        data = D.sine(n_train, n_test, noise=0.3, seed=seed)
    return data, np.sort(np.random.default_rng(seed + 1).choice(n_train, inducing, replace=False))


def _model_config(config: Config) -> dkm.DKMConfig:
    data = _task_data(config.task, 8, 8, 2, 0)[0]
    return dkm.DKMConfig(
        in_dim=data.in_dim,
        inducing=config.inducing,
        layers=config.layers,
        out_dim=data.out_dim,
        activation=config.activation,
        bias_std=config.bias_std,
        likelihood=config.likelihood,
        noise=config.noise,
        samples=config.samples,
    )


def _observe(graphdef: nnx.GraphDef, params: nnx.State, params0: nnx.State, x: jax.Array) -> jax.Array:
    """The KL terms (nu sum_l KL_l, output KL) after every step."""
    return dkm.penalties(graphdef, params)


@functools.partial(jax.jit, static_argnums=0)
def _evaluate(graphdef: nnx.GraphDef, params: nnx.State, x: jax.Array, y: jax.Array, x_test: jax.Array, nu: float):
    """The objective's terms, the predictions (with the NNGP's Grams exactly at NNGP_NU) and the Grams, compiled once
    (op by op they are hundreds of small compilations)."""
    exact = dkm.predict(graphdef, params, x, y, x_test, nngp=True)
    trained = dkm.predict(graphdef, params, x, y, x_test)
    pred = jax.tree.map(lambda a, b: jnp.where(nu >= NNGP_NU, a, b), exact, trained)
    return dkm.objective_terms(graphdef, params, x, y), pred, dkm.grams(graphdef, params)


def _fit_one(config: Config, nu: float, seed: int, stop: threading.Event | None) -> dict:
    """Train one DKM (float64, through the engine) and score it: test metrics, distance, terms, traces."""
    c = _model_config(config)
    data, index = _task_data(config.task, config.n_train, config.n_test, config.inducing, seed)
    x, x_test = (np.asarray(a, np.float64) for a in (data.x_train, data.x_test))
    y = np.eye(c.out_dim)[data.y_train] if data.n_classes else np.asarray(data.y_train, np.float64)
    graphdef, params = nnx.split(dkm.build_dkm(c, x[index], nu, seed), nnx.Param)
    program = engine.Program(graphdef, c, optimizer=config.optimizer, objective=dkm.loss, observe=_observe)
    lift = lambda a: jax.tree.map(lambda v: jnp.asarray(v)[None], a)
    with warnings.catch_warnings():  # the engine logs float32 losses of this float64 objective
        warnings.filterwarnings("ignore", "scatter inputs have incompatible types", FutureWarning)
        trained, losses, seen = engine.runs(
            program, config.steps, lift(params), {"lr": np.array([config.lr])}, lift(x), lift(y), stop=stop
        )
    if stop is not None and stop.is_set():
        raise Stopped  # not scored on part of its training, and no further seed starts
    n = x.shape[0]
    terms, pred, (learned, nngp) = _evaluate(graphdef, jax.tree.map(lambda v: v[0, 0], trained), x, y, x_test, nu)
    final = float(terms["log_likelihood"] - terms["kl"] - terms["kl_output"]) / n
    penalties = np.asarray(seen[0, 0], np.float64).sum(-1) / n
    objective = np.append(-np.asarray(losses[0, 0], np.float64), final)
    out = {
        "distance": np.linalg.norm(learned - nngp, axis=(1, 2)) / np.linalg.norm(nngp, axis=(1, 2)),
        "log_likelihood": float(terms["log_likelihood"]) / n,
        "kl": float(terms["kl"]) / n,
        "kl_output": float(terms["kl_output"]) / n,
        "grams": learned,
        "nngp_grams": nngp,
        "trace_objective": objective,
        "trace_ll": objective + penalties,
        "trace_kl": penalties,
    }
    if data.n_classes:
        probs = np.asarray(pred.probs)
        out["test_acc"] = float(np.mean(np.argmax(probs, -1) == data.y_test))
        out["test_nll"] = float(-np.mean(np.log(np.maximum(probs[np.arange(len(probs)), data.y_test], 1e-300))))
    else:
        var = np.asarray(pred.var)[:, None] + config.noise
        err = (np.asarray(data.y_test, np.float64) - np.asarray(pred.mean)) ** 2
        out["test_nll"] = float(np.mean(0.5 * np.log(2 * np.pi * var) + err / (2 * var)))
    return out


def _measure(config: Config, nu: float, chosen: bool, stop: threading.Event | None = None) -> dict:
    """One point of the sweep: the DKM at nu over the seeds (the NNGP at NNGP_NU); `chosen`: with its Grams and
    the objective's terms over the steps (first seed)."""
    fits = [
        float64.call(_fit_one, config, nu, config.seed + s, stop) for s in range(config.seeds)
    ]  # one at a time: batched float64 LAPACK kernels deadlock the CPU pool when two run at once
    point = {"nu": float(nu), "distance": np.mean([f["distance"] for f in fits], 0)}
    names = ("test_nll", "test_acc") if "test_acc" in fits[0] else ("test_nll",)
    for name in names:
        values = [f[name] for f in fits]
        point[name], point[f"{name}_sem"] = float(np.mean(values)), float(sem(values))
    point.update({k: float(np.mean([f[k] for f in fits])) for k in ("log_likelihood", "kl", "kl_output")})
    if chosen:
        point.update({k: fits[0][k] for k in ("grams", "nngp_grams", "trace_objective", "trace_ll", "trace_kl")})
    return point


def _summarise(config: Config, points: list[dict]) -> dict:
    """The distance's log-log slope against nu >= SLOPE_FROM and the best nu against the NNGP."""
    dkms = [p for p in points if p["nu"] < NNGP_NU]
    fitted = sorted((p for p in dkms if p["nu"] >= SLOPE_FROM), key=lambda p: p["nu"])
    slope = np.full(config.layers, np.nan)
    if len({p["nu"] for p in fitted}) > 1:
        slope = loglog_slope([p["nu"] for p in fitted], np.array([p["distance"] for p in fitted]))
    key = "test_acc" if config.likelihood == "categorical" else "test_nll"
    sign = -1.0 if key == "test_acc" else 1.0
    best = min(dkms, key=lambda p: sign * p[key])
    nngp = next(p for p in points if p["nu"] >= NNGP_NU)
    return {
        "slope": np.asarray(slope, float),
        "best_nu": best["nu"],
        "best": best[key],
        "best_sem": best[f"{key}_sem"],
        "nngp": nngp[key],
        "nngp_sem": nngp[f"{key}_sem"],
    }


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """The NNGP, the chosen nu, then the swept nu values: one point each; the summary last."""
    items = [(NNGP_NU, False), (config.nu, True), *((float(nu), False) for nu in config.grid)]
    return sweep(
        items,
        lambda item: _measure(config, *item, stop=stop),
        stop,
        summary=lambda points: _summarise(config, points),
        finite_metrics=("test_nll", "distance"),
    )
