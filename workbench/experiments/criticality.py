"""Finite deep networks against the signal-propagation theory (Poole et al. 2016, Fig. 3; Schoenholz et al.
2017, Figs. 2 and 5): correlation between two inputs and gradient norm through depth, below, at and
above the order-to-chaos line.

For each sigma_w2 in `sigma_w2s` (at `sigma_b2`), `seeds` SP networks of the given width and depth with
W ~ N(0, sigma_w2 / fan_in), b ~ N(0, sigma_b2) see two inputs with |x|^2 / d = q0 and correlation c0.
Metrics per record (one per sigma_w2), arrays over layers l = 1..depth: `q` (mean |h_l|^2 / n of the two
inputs), `c` (cosine of h_l(x1), h_l(x2)), `grad2` (||df(x1)/dh_l||^2, read off the bias gradients);
seed means with standard errors `*_sem`; `q_theory`, `c_theory`, `grad2_theory` from
`workbench.criticality.depth_profile`; scalars `sigma_w2`, `chi_1` and `phase` ("ordered" for
chi_1 < 1, "critical", "chaotic").
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from workbench import criticality as C
from workbench.config import Config as _Config, spec
from workbench.experiments.batched import stacked_params
from workbench.models import MLPConfig
from workbench.training import Record


@dataclass(frozen=True)
class Config(_Config):
    """Deep SP networks at several sigma_w2 around the critical line."""

    activation: str = spec("tanh", check="activation", doc="nonlinearity")
    sigma_w2s: tuple = spec((1.2, 1.76, 2.5), lo=0.01, hi=20.0, doc="weight variances sigma_w^2 to compare")
    sigma_b2: float = spec(0.05, lo=0.0, hi=5.0, doc="bias variance sigma_b^2")
    width: int = spec(512, lo=2, hi=8192, log=True, doc="hidden width n")
    depth: int = spec(30, lo=1, hi=200, doc="hidden layers")
    seeds: int = spec(8, lo=2, hi=64, doc="networks sampled")
    in_dim: int = spec(64, lo=2, hi=4096, doc="input dimension d")
    q0: float = spec(1.0, lo=0.01, lo_open=False, hi=100.0, doc="input length |x|^2 / d")
    c0: float = spec(0.5, lo=-1.0, hi=1.0, doc="input correlation")


def inputs(config: Config) -> jax.Array:
    """Two inputs with |x|^2 / d = q0 and cosine c0 (fixed, seed-independent)."""
    e1, e2 = np.eye(config.in_dim)[:2]
    x2 = config.c0 * e1 + math.sqrt(max(0.0, 1 - config.c0 ** 2)) * e2
    return jnp.asarray(np.stack([e1, x2]) * math.sqrt(config.q0 * config.in_dim), jnp.float32)


def model_config(config: Config, sigma_w2: float) -> MLPConfig:
    return MLPConfig(in_dim=config.in_dim, width=config.width, depth=config.depth, out_dim=1,
                     activation=config.activation, parametrization="sp", base_width=config.width,
                     weight_std=math.sqrt(sigma_w2), bias_std=math.sqrt(config.sigma_b2))


CHUNK_BYTES = 256 * 2**20  # weights sampled at once by `measure`


@functools.lru_cache(maxsize=16)
def compiled_measure(graphdef):
    """jit(vmap over seeds) of (q, c, grad2) per layer. An SP network at its base width has unit
    multipliers, so one graph serves every (sigma_w2, sigma_b2): only the sampled parameters differ."""
    def one(params, x):
        model = nnx.merge(graphdef, params)
        _, hidden = model(x, return_hidden=True)
        h = jnp.stack(hidden["preacts"])  # (depth, 2, n)
        q = jnp.mean(h ** 2, axis=-1)
        c = jnp.sum(h[:, 0] * h[:, 1], -1) / jnp.sqrt(jnp.sum(h[:, 0] ** 2, -1) * jnp.sum(h[:, 1] ** 2, -1))
        grads = nnx.grad(lambda m: m(x[:1])[0, 0])(model)
        grad2 = jnp.stack([jnp.sum(grads.biases[l][...] ** 2) for l in range(h.shape[0])])
        return q.mean(-1), c, grad2

    return jax.jit(jax.vmap(one, in_axes=(0, None)))


def seed_chunk(config: Config) -> int:
    """Networks sampled per vmapped call: the largest divisor of `seeds` whose float32 weights fit in
    CHUNK_BYTES (a 1024-wide, 50-deep MLP has 200 MB of them; 16 at once would not fit a 2 GB Binder)."""
    per_seed = 4 * config.width * (config.in_dim + (config.depth - 1) * config.width)
    cap = max(1, CHUNK_BYTES // per_seed)
    return max(k for k in range(1, config.seeds + 1) if config.seeds % k == 0 and k <= cap)


def measure(config: Config, sigma_w2: float) -> dict:
    """Seed means and standard errors of q, c, grad2 per layer at one sigma_w2, with the theory."""
    seeds, k, x = tuple(range(config.seeds)), seed_chunk(config), inputs(config)
    graphdef, _ = stacked_params(model_config(config, 1.0).replace(bias_std=0.0), seeds[:1])
    fn = compiled_measure(graphdef)
    parts = [fn(stacked_params(model_config(config, sigma_w2), seeds[i:i + k])[1], x)
             for i in range(0, len(seeds), k)]
    q, c, grad2 = (np.concatenate([np.asarray(p[j], float) for p in parts]) for j in range(3))
    q_th, c_th, chi = C.depth_profile(config.activation, sigma_w2, config.sigma_b2, config.depth,
                                      q0=config.q0, c0=config.c0)
    sem = lambda a: a.std(0, ddof=1) / math.sqrt(len(a))
    chi1 = float(C.chi_1(config.activation, sigma_w2, config.sigma_b2))
    phase = "critical" if abs(chi1 - 1) < 0.02 else ("ordered" if chi1 < 1 else "chaotic")
    return {"sigma_w2": sigma_w2, "chi_1": chi1, "phase": phase, "layers": np.arange(1, config.depth + 1),
            "q": q.mean(0), "q_sem": sem(q), "c": c.mean(0), "c_sem": sem(c),
            "grad2": grad2.mean(0), "grad2_sem": sem(grad2),
            "q_theory": q_th, "c_theory": c_th, "grad2_theory": np.cumprod(chi[::-1])[::-1]}


def run(config: Config, stop: threading.Event | None = None):
    """Yield one Record per sigma_w2, then a final one listing chi_1 and the phases."""
    stop = stop or threading.Event()
    chis, phases = [], []
    for i, sigma_w2 in enumerate(config.sigma_w2s):
        if stop.is_set():
            yield Record(i, {}, "stopped")
            return
        m = measure(config, sigma_w2)
        chis.append(m["chi_1"])
        phases.append(m["phase"])
        yield Record(i, m, "running")
    yield Record(len(config.sigma_w2s), {"sigma_w2s": np.array(config.sigma_w2s), "chi_1": np.array(chis),
                                         "phases": phases}, "finished")


@dataclass(frozen=True)
class PhaseConfig(_Config):
    """The (sigma_w2, sigma_b2) plane of one activation and a selected point's depth profile."""

    activation: str = spec("tanh", check="activation", doc="nonlinearity")
    sigma_w2_max: float = spec(4.0, lo=0.5, hi=20.0, doc="largest sigma_w^2 on the grid")
    sigma_b2_max: float = spec(0.3, lo=0.01, hi=5.0, doc="largest sigma_b^2 on the grid")
    grid: int = spec(32, lo=8, hi=96, doc="grid points per axis")
    sigma_w2: float = spec(1.76, lo=0.01, hi=20.0, doc="selected sigma_w^2 (click the diagram)")
    sigma_b2: float = spec(0.05, lo=0.0, hi=5.0, doc="selected sigma_b^2 (click the diagram)")
    depth: int = spec(30, lo=1, hi=200, doc="layers of the depth profile")
    width: int = spec(256, lo=2, hi=4096, log=True, doc="width of the sampled finite networks")
    seeds: int = spec(4, lo=2, hi=32, doc="finite networks sampled at the selected point")


@functools.lru_cache(maxsize=8)
def phase_grid(activation: str, sigma_w2_max: float, sigma_b2_max: float, grid: int) -> C.PhaseDiagram:
    """`criticality.phase_diagram` on a grid starting near 0 (cached: clicking does not recompute it)."""
    return C.phase_diagram(activation, np.linspace(sigma_w2_max / grid, sigma_w2_max, grid),
                           np.linspace(0.0, sigma_b2_max, grid))


def phase_view(config: PhaseConfig, *, finite: bool = True) -> dict:
    """The phase diagram, the selected point's depth scales and its depth profile (theory and, if
    `finite`, the finite networks of `measure`)."""
    diagram = phase_grid(config.activation, config.sigma_w2_max, config.sigma_b2_max, config.grid)
    scales = C.depth_scales(config.activation, config.sigma_w2, config.sigma_b2)
    out = {"diagram": diagram, "scales": scales}
    if finite:
        finite_config = Config(activation=config.activation, sigma_w2s=(config.sigma_w2,), sigma_b2=config.sigma_b2,
                               width=config.width, depth=config.depth, seeds=config.seeds)
        out["profile"] = measure(finite_config, config.sigma_w2)
    return out


@dataclass(frozen=True)
class SeluConfig(_Config):
    """SELU's moment map (Klambauer et al. 2017) for weights with sum omega and sum of squares tau."""

    activation: str = spec("selu", check="activation", doc="nonlinearity (selu is self-normalising)")
    omega: float = spec(0.0, lo=-0.5, hi=0.5, doc="omega = sum of a unit's weights")
    tau: float = spec(1.0, lo=0.5, hi=2.0, doc="tau = sum of squares of a unit's weights")
    mu0: float = spec(0.5, lo=-2.0, hi=2.0, doc="start: mean of the inputs")
    nu0: float = spec(2.0, lo=0.05, hi=4.0, doc="start: variance of the inputs")
    steps: int = spec(20, lo=1, hi=200, doc="layers")


def selu_view(config: SeluConfig, grid: int = 15) -> dict:
    """Displacement field of the moment map on a (mu, nu) grid and the trajectory from (mu0, nu0)."""
    mu, nu = np.meshgrid(np.linspace(-1.0, 1.0, grid), np.linspace(0.2, 3.0, grid))
    kw = dict(omega=config.omega, tau=config.tau, activation=config.activation)
    new_mu, new_nu = C.selu_moment_map(mu, nu, **kw)
    return {"mu": mu, "nu": nu, "d_mu": new_mu - mu, "d_nu": new_nu - nu,
            "path": C.selu_flow(config.mu0, config.nu0, config.steps, **kw)}
