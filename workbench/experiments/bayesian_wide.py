"""Priors and posteriors of wide networks: Student-t processes from a last-layer scale prior (Lee, Yun, Yang & Lee,
ICLR 2022, `workbench.theory.scale_mixture`) and the finite-width four-point vertex (Roberts, Yaida & Hanin, ch. 4-5,
`workbench.theory.finite_width`).

A view in four stages on a 1-D regression over the angle theta of inputs sqrt(2) (cos theta, sin theta):
1. "posterior": NNGP (GP) and Student-t process predictive bands on a grid, with and without an outlier, and the
   band ratios far from the data (out of distribution);
2. "prior": function samples of the t-process for heavy (alpha = beta = 1/2) and light (alpha = beta = 2) tails;
3. "ensemble": outputs at one input of `members` finite NTK-parametrized Flax MLPs with sigma^2 ~ InvGamma(alpha,
   beta) each, at initialisation, after GD of the last layer only and after GD of all layers, with the predicted
   t laws and Kolmogorov-Smirnov p-values;
4. "kurtosis": excess kurtosis of the outputs of random critical Flax MLPs for every (depth, width) pair, Monte Carlo
   with its standard error (the conditional estimator 3 E[Q^2] / E[Q]^2 - 3 of `finite_width.conditional_kurtosis`,
   Q the output's variance given the last hidden layer), and the book's leading-order line 3 V / (n K^2).

Ensemble members: f = sigma g with g a workbench MLP (parametrization "ntk" at base width 1: unit-variance hidden
and readout weights behind 1/sqrt(fan_in)). GD on 0.5 mean (f - y)^2 at learning rate lr / sigma^2 follows exactly
the trajectory of g trained at lr on the targets y / sigma, which is how all members train in one vmapped, jitted
call of the engine's `runs` (the per-member step lr / sigma^2 keeps heavy-tailed members stable).
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from scipy import stats

from workbench.core.config import Config as _Config
from workbench.core.config import group, spec
from workbench.core.experiment import experiment_run, stages
from workbench.core.fields import SEED
from workbench.core.memory import require
from workbench.nets.engine import Program, TrainConfig, runs
from workbench.nets.models import MLP, TRAINING_COPIES, MLPConfig, n_params
from workbench.theory import finite_width as fw
from workbench.theory import scale_mixture as sm
from workbench.theory.criticality import critical_init
from workbench.theory.kernels import Kernels, limit_kernels, mlp_kernels

__all__ = ["Config", "METRICS", "run"]

SPAN = 1.2  # training angles in [-SPAN, SPAN]
GRID = np.linspace(-math.pi, math.pi, 121)  # angles of the bands
OOD_X = math.pi  # where the bands are compared "out of distribution": the far side of the circle
NEAR_X = 0.0  # inside the data
OUTLIER = (0.0, 4.0)  # (angle, y) of the added outlier, midway between two training angles
HEAVY, LIGHT = 0.5, 2.0  # alpha = beta of the prior samples


UNUSED = ("optimizer", "momentum", "weight_decay", "beta2", "batch_size", "loss", "record_every", "seed")


@dataclass(frozen=True)
class Config(_Config):
    """What the "Priors and posteriors" view computes."""

    alpha: float = spec(2.0, lo=0.05, hi=1e6, log=True, soft=(0.1, 1000.0), doc="alpha of the InvGamma scale prior")
    beta: float = spec(2.0, lo=0.05, hi=1e6, log=True, soft=(0.1, 1000.0), doc="beta of the InvGamma scale prior")
    eps: float = spec(0.01, lo=1e-8, hi=10.0, log=True, soft=(1e-4, 1.0), doc="noise variance eps added to the kernel")
    model: MLPConfig = group(
        MLPConfig(in_dim=2, width=256, depth=1, parametrization="ntk", base_width=1, bias_std=0.0, bias=False),
        fixed=("in_dim", "out_dim", "parametrization", "base_width", "bias_std", "bias", "zero_readout"),
        limits={"weight_std": dict(lo=0.1, hi=4.0)},
        doc="network (the kernels' depth, activation and sigma_w; the ensemble's width)",
    )
    n_train: int = spec(4, lo=2, hi=64, doc="noisy training points, angles in [-1.2, 1.2]")
    noise: float = spec(0.1, lo=0.0, hi=2.0, doc="std of the label noise")
    outlier: bool = spec(False, doc="add an outlier at angle 0, y = 4")
    members: int = spec(64, lo=0, hi=4096, log=True, doc="ensemble members (0: no ensemble)")
    train: TrainConfig = group(
        TrainConfig(lr=1.0, steps=400),
        fixed=UNUSED,
        limits={"steps": dict(hi=100_000, why="every member's step is traced in one vmapped call: (members, steps)")},
        doc="the ensemble's full-batch GD (per member lr / sigma^2)",
    )
    x_star: float = spec(2.0, lo=-3.14, hi=3.14, doc="angle of the ensemble histogram")
    kurtosis_depths: tuple[int, ...] = spec((1, 3), lo=1, hi=64, doc="depths L of the kurtosis check")
    kurtosis_widths: tuple[int, ...] = spec((10, 100), lo=2, hi=4096, log=True, doc="widths n of the check")
    networks: int = spec(
        2000, lo=0, hi=1_000_000, log=True, soft=(0, 20_000), doc="random networks per (L, n) (0: no check)"
    )
    seed: int = SEED(0)


class Stage(TypedDict):
    """Metrics of the view's stage records: the posterior first, each later stage adds its own (NotRequired)."""

    grid: np.ndarray  # (G,) angles of the bands
    x_train: np.ndarray  # (N,) training inputs (the outlier last when present)
    y_train: np.ndarray  # (N,)
    mean: np.ndarray  # (G,) posterior mean mu* (GP and t alike)
    gp_lo: np.ndarray  # (G,) 95% band of the NNGP posterior
    gp_hi: np.ndarray
    t_lo: np.ndarray  # (G,) 95% band of the t-process posterior
    t_hi: np.ndarray
    t_lo_clean: np.ndarray  # (G,) the t band without the outlier (equal to t_lo without one)
    t_hi_clean: np.ndarray
    df: float  # 2 alpha + n
    q: float  # y^T K~^-1 y
    ood_gp: float  # GP band width at angle pi over its width at angle 0
    ood_t: float  # the same for the t-process
    t_over_gp: float  # t band width over GP band width at angle pi
    loglik_t: float  # log MVT marginal likelihood
    loglik_gp: float  # log N(y; 0, K~)
    prior_heavy: NotRequired[np.ndarray]  # (S, G) prior samples, alpha = beta = 1/2
    prior_light: NotRequired[np.ndarray]  # (S, G) alpha = beta = 2
    ens_span: NotRequired[np.ndarray]  # (H,) outputs where the densities are given (1st to 99th percentile)
    pdf_none: NotRequired[np.ndarray]  # (H,) predicted t density at initialisation
    pdf_last: NotRequired[np.ndarray]  # (H,) after GD of the last layer
    pdf_all: NotRequired[np.ndarray]  # (H,) after GD of all layers
    ens_none: NotRequired[np.ndarray]  # (M,) ensemble outputs at x_star: initialisation
    ens_last: NotRequired[np.ndarray]  # (M,) after GD of the last layer
    ens_all: NotRequired[np.ndarray]  # (M,) after GD of all layers
    law_none: NotRequired[np.ndarray]  # (3,) predicted t law (df, loc, scale)
    law_last: NotRequired[np.ndarray]
    law_all: NotRequired[np.ndarray]
    ks_none: NotRequired[float]  # Kolmogorov-Smirnov p-value against the predicted law
    ks_last: NotRequired[float]
    ks_all: NotRequired[float]
    kurt_ratio: NotRequired[np.ndarray]  # (P,) L / n of each pair
    kurt_depth: NotRequired[np.ndarray]  # (P,)
    kurt_width: NotRequired[np.ndarray]  # (P,)
    kurt_mc: NotRequired[np.ndarray]  # (P,) Monte Carlo excess kurtosis, 3 E[Q^2] / E[Q]^2 - 3 over the networks
    kurt_se: NotRequired[np.ndarray]  # (P,) its standard error (Q: output variance given the last hidden layer)
    kurt_theory: NotRequired[np.ndarray]  # (P,) 3 V / (n K^2)
    kurt_line: NotRequired[np.ndarray]  # (2,) theory slope per L/n at the largest depth over L/n in [0, max]


METRICS = {"stage": Stage}


def embed(theta) -> np.ndarray:
    """Angles as points sqrt(2) (cos theta, sin theta) on the circle (x.x / d = 1 at d = 2)."""
    theta = np.asarray(theta, float).reshape(-1)
    return (math.sqrt(2.0) * np.stack([np.cos(theta), np.sin(theta)], 1)).astype(np.float32)


def data(config: Config) -> tuple[np.ndarray, np.ndarray]:
    """Training angles evenly spaced in [-1.2, 1.2], y = sin(3 theta) + noise (and the outlier when asked)."""
    rng = np.random.default_rng(config.seed)
    x = np.linspace(-SPAN, SPAN, config.n_train)
    y = np.sin(3 * x) + config.noise * rng.standard_normal(config.n_train)
    if config.outlier:
        x, y = np.append(x, OUTLIER[0]), np.append(y, OUTLIER[1])
    return x, y


def nngp(config: Config, x1, x2=None) -> np.ndarray:
    """The NNGP K (float64) of the configured bias-free MLP between embedded inputs."""
    k = mlp_kernels(embed(x1), None if x2 is None else embed(x2), **network(config))
    return np.asarray(k.nngp, float)


def network(config: Config) -> dict:
    """Keyword arguments of `mlp_kernels` for the configured network."""
    m = config.model
    return dict(depth=m.depth, activation=m.activation, weight_std=m.weight_std, bias_std=None)


def posterior(config: Config) -> dict:
    """GP and t-process predictive bands (with the t band without the outlier for comparison), OOD ratios."""
    x, y = data(config)
    k_all = nngp(config, np.concatenate([x, GRID]))
    n = len(x)
    kxx, ksx, kss = k_all[:n, :n], k_all[n:, :n], k_all[n:, n:]
    post = sm.t_posterior(kxx, ksx, kss, y, config.alpha, config.beta, config.eps)
    (gp_lo, gp_hi), (t_lo, t_hi) = sm.gp_band(post.gp), sm.t_band(post)
    clean = n - 1 if config.outlier else n
    base = sm.t_posterior(kxx[:clean, :clean], ksx[:, :clean], kss, y[:clean], config.alpha, config.beta, config.eps)
    far, near = np.argmin(np.abs(GRID - OOD_X)), np.argmin(np.abs(GRID - NEAR_X))
    gp_w, t_w = gp_hi - gp_lo, t_hi - t_lo
    gp = post.gp
    return {
        "grid": GRID,
        "x_train": x,
        "y_train": y,
        "mean": post.mean,
        "gp_lo": gp_lo,
        "gp_hi": gp_hi,
        "t_lo": t_lo,
        "t_hi": t_hi,
        **dict(zip(("t_lo_clean", "t_hi_clean"), sm.t_band(base))),
        "df": post.df,
        "q": gp.q,
        "ood_gp": float(gp_w[far] / gp_w[near]),
        "ood_t": float(t_w[far] / t_w[near]),
        "t_over_gp": float(t_w[far] / gp_w[far]),
        "loglik_t": sm.mvt_log_likelihood(kxx, y, config.alpha, config.beta, config.eps),
        "loglik_gp": float(-0.5 * gp.q - 0.5 * gp.logdet - 0.5 * n * math.log(2 * math.pi)),
    }


def prior(config: Config, samples: int = 5) -> dict:
    """Prior function samples of the t-process on the grid, heavy and light tails (same Gaussian draws)."""
    k = nngp(config, GRID)
    return {
        f"prior_{name}": sm.sample_prior(k, a, a, samples, np.random.default_rng(config.seed))
        for name, a in (("heavy", HEAVY), ("light", LIGHT))
    }


# ---------------------------------------------------------------- ensembles of finite networks


def ensemble_config(config: Config, in_dim: int = 2) -> MLPConfig:
    """The members' MLP: NTK parametrization at base width 1, no biases (as the kernels' bias_std=None)."""
    return config.model.replace(in_dim=in_dim)


@functools.lru_cache(maxsize=16)
def _init(mc: MLPConfig):
    """jit(vmap over keys) of a fresh MLP's Param state."""
    return jax.jit(jax.vmap(lambda k: nnx.split(MLP(mc, rngs=nnx.Rngs(params=k)), nnx.Param)[1]))


def init_members(mc: MLPConfig, members: int, seed: int):
    """Graph and stacked Param state of `members` independently initialised MLPs (one vmapped call)."""
    graphdef = nnx.split(MLP(mc, rngs=nnx.Rngs(params=0)), nnx.Param)[0]
    return graphdef, _init(mc)(jax.random.split(jax.random.key(seed), members))


@functools.lru_cache(maxsize=16)
def _outputs(graphdef):
    """jit(vmap over members) of the output at one input."""
    return jax.jit(jax.vmap(lambda p, x: nnx.merge(graphdef, p)(x)[0, 0], in_axes=(0, None)))


def train_members(mc: MLPConfig, x_train, y, x_star, sigma2, *, steps: int, lr: float, seed: int = 0) -> dict:
    """Outputs at x_star of the members f = sigma g (sigma^2 given per member) at initialisation, after `steps` GD
    steps on the last layer only and on all layers (module docstring: g trains at lr on the targets y / sigma)."""
    sigma = np.sqrt(np.asarray(sigma2, float))
    members = len(sigma)
    size = f"{members} members x {n_params(mc):,} parameters"
    require(4.0 * TRAINING_COPIES * 2 * members * n_params(mc), "members", size, "use fewer members or a smaller width")
    graphdef, params = init_members(mc, members, seed)
    x = jnp.asarray(x_train, jnp.float32)
    xs = jnp.asarray(x_star, jnp.float32).reshape(1, -1)
    targets = jnp.asarray(np.asarray(y, float)[None, :, None] / sigma[:, None, None], jnp.float32)
    xs_train = jnp.broadcast_to(x, (members,) + x.shape)
    last, final = (
        jax.tree.map(
            lambda a: a[:, 0],
            runs(Program(graphdef, mc, trained=roles), steps, params, {"lr": [lr]}, xs_train, targets)[0],
        )
        for roles in (("output",), None)
    )
    trained = (("none", params), ("last", last), ("all", final))
    return {name: sigma * np.asarray(_outputs(graphdef)(p, xs), float) for name, p in trained}


def member_laws(mc: MLPConfig, x_train, y, x_star, alpha: float, beta: float, *, steps: int, lr: float) -> dict:
    """The predicted t laws of `train_members`' three outputs (`scale_mixture.ensemble_law`): prior, readout-only GD
    (tangent kernel = last features' kernel K / weight_std^2) and all-layer GD (the engine's NTK, `limit_kernels`)."""
    x_all = np.concatenate([np.asarray(x_train, np.float32), np.asarray(x_star, np.float32).reshape(1, -1)])
    k = limit_kernels(mc, x_all)
    n = len(x_train)
    nngp_, ntk = np.asarray(k.nngp, float), np.asarray(k.ntk, float)
    readout = nngp_ / mc.weight_std**2
    split = lambda a: (a[:n, :n], a[n:, :n])  # noqa: E731
    kss = nngp_[n:, n:]
    laws = {}
    for name, tangent, t in (("none", ntk, 0), ("last", readout, steps), ("all", ntk, steps)):
        (kt, kst), (nt, nst) = split(nngp_), split(tangent)
        laws[name] = sm.ensemble_law(Kernels(kt, nt), Kernels(kst, nst), kss, y, alpha, beta, t, lr)
    return laws


def ensemble(config: Config) -> dict:
    """Stage 3: the members' outputs at x_star, the predicted t laws and KS p-values."""
    if not config.members:
        return {}
    x, y = data(config)
    mc = ensemble_config(config)
    sigma2 = sm.sample_invgamma(np.random.default_rng(config.seed + 1), config.alpha, config.beta, config.members)
    outs = train_members(mc, embed(x), y, embed([config.x_star]), sigma2, steps=config.train.steps, lr=config.train.lr)
    laws = member_laws(
        mc, embed(x), y, embed([config.x_star]), config.alpha, config.beta, steps=config.train.steps, lr=config.train.lr
    )
    lo, hi = np.percentile(np.concatenate(list(outs.values())), [1, 99])
    span = np.linspace(lo, hi, 200)
    metrics: dict = {"ens_span": span}
    for name, law in laws.items():
        metrics[f"ens_{name}"] = outs[name]
        metrics[f"law_{name}"] = np.array(law)
        metrics[f"pdf_{name}"] = law.pdf(span)
        metrics[f"ks_{name}"] = float(stats.kstest(outs[name], law.cdf).pvalue)
    return metrics


# ---------------------------------------------------------------- finite-width kurtosis


def criticality(activation: str) -> tuple[float, float]:
    """(C_W, C_b) at criticality (RYH ch. 5, `criticality.critical_init`), or (1, 0) outside both classes."""
    init = critical_init(activation)
    return (init.C_W, init.C_b) if init else (1.0, 0.0)


def kurtosis(config: Config) -> dict:
    """Stage 4: Monte Carlo excess kurtosis of random critical Flax MLPs for every (L, n) (conditional estimator),
    with the theory."""
    if not config.networks:
        return {}
    c = config
    return _kurtosis(c.model.activation, c.kurtosis_depths, c.kurtosis_widths, c.networks, c.seed)


@functools.lru_cache(maxsize=8)
def _kurtosis(activation: str, depths: tuple, widths: tuple, networks: int, seed: int) -> dict:
    """`kurtosis`, cached: it does not depend on the regression's settings (alpha, beta, eps, outlier, ...)."""
    C_W, C_b = criticality(activation)
    pairs = sorted(((L, n) for L in depths for n in widths), key=lambda p: p[0] / p[1])
    x = np.ones((1, 2))
    mc, se, th = [], [], []
    for L, n in pairs:
        # two networks at least (one gives no standard error); the conditional estimator 3 E[Q^2] / E[Q]^2 - 3, since
        # the raw m4 / m2^2 of the outputs is too heavy-tailed to be useful at L / n ~ 0.25
        sample = fw.sample_networks(fw.network_config(activation, L, n, C_W, C_b), x, max(networks, 2), seed)
        k, s = fw.conditional_kurtosis(sample.variances[:, 0])
        mc.append(k)
        se.append(s)
        th.append(fw.excess_kurtosis_theory(activation, L, n, C_W, C_b))
    ratio = np.array([L / n for L, n in pairs])
    deepest = max(depths)
    slope = fw.excess_kurtosis_theory(activation, deepest, 1, C_W, C_b) / deepest
    return {
        "kurt_ratio": ratio,
        "kurt_depth": np.array([p[0] for p in pairs]),
        "kurt_width": np.array([p[1] for p in pairs]),
        "kurt_mc": np.array(mc),
        "kurt_se": np.array(se),
        "kurt_theory": np.array(th),
        "kurt_line": np.array([0.0, slope * ratio.max()]),
    }


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """The four stages of the module docstring (the ensemble and kurtosis stages only when asked)."""
    parts = [lambda: posterior(config), lambda: prior(config)]
    parts += [lambda: ensemble(config)] if config.members else []
    parts += [lambda: kurtosis(config)] if config.networks else []
    return stages(parts, stop)
