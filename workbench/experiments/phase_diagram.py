"""Phase diagram of signal propagation (Poole et al. 2016, Fig. 4; Schoenholz et al. 2017, Fig. 1): log chi_1
over the (sigma_w^2, sigma_b^2) plane with the order-to-chaos line, and a selected point's depth scales and
depth profile, theory against sampled finite networks (`workbench.theory.criticality_finite.measure`).

A view in two stages: the diagram and the point's theory first (milliseconds once the grid is cached),
then the finite networks. Stage metrics: `sigma_w2_grid[G]`, `sigma_b2_grid[G]`, `log_chi_1[G, G]` (rows:
sigma_b^2), `critical_w2[G]` (chi_1 = 1 at each sigma_b^2), the point's `chi_1`, `q_star`, `c_star`, `xi_q`,
`xi_c`, `phase`; then the profile of `criticality_finite.measure` (`layers`, `c`, `c_theory`, `grad2`,
`grad2_theory`, ...).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import numpy as np

from workbench.core.config import Config as _Config
from workbench.core.config import spec
from workbench.core.experiment import experiment_run, stages
from workbench.core.fields import ACTIVATION, DEPTH, SEEDS, WIDTH
from workbench.theory import criticality as C
from workbench.theory.criticality_finite import SampledNetworks, measure

__all__ = ["Config", "METRICS", "run"]


@dataclass(frozen=True)
class Config(_Config):
    """The (sigma_w2, sigma_b2) plane of one activation and a selected point's depth profile."""

    activation: str = ACTIVATION("tanh", doc="nonlinearity")
    sigma_w2_max: float = spec(4.0, lo=0.5, hi=20.0, doc="largest sigma_w^2 on the grid")
    sigma_b2_max: float = spec(0.3, lo=0.01, hi=5.0, doc="largest sigma_b^2 on the grid")
    grid: int = spec(32, lo=8, hi=96, doc="grid points per axis")
    sigma_w2: float = spec(1.76, lo=0.01, hi=20.0, doc="selected sigma_w^2 (click the diagram)")
    sigma_b2: float = spec(0.05, lo=0.0, hi=5.0, doc="selected sigma_b^2 (click the diagram)")
    depth: int = DEPTH(30, soft=(1, 100))
    width: int = WIDTH(256, doc="width of the sampled finite networks")
    seeds: int = SEEDS(4, doc="finite networks sampled at the selected point")


class Stage(TypedDict):
    """The diagram and the point's theory, then (stage 2) the profile of `criticality.Point`."""

    sigma_w2_grid: np.ndarray  # (G,)
    sigma_b2_grid: np.ndarray  # (G,)
    log_chi_1: np.ndarray  # (G, G) rows: sigma_b2
    critical_w2: np.ndarray  # (G,)
    chi_1: float
    q_star: float
    c_star: float
    xi_q: float
    xi_c: float
    phase: str  # ordered, critical, chaotic, or exploding (no fixed point q*: the length grows with depth)
    sigma_w2: NotRequired[float]
    layers: NotRequired[np.ndarray]
    q: NotRequired[np.ndarray]
    q_sem: NotRequired[np.ndarray]
    c: NotRequired[np.ndarray]
    c_sem: NotRequired[np.ndarray]
    grad2: NotRequired[np.ndarray]
    grad2_sem: NotRequired[np.ndarray]
    q_theory: NotRequired[np.ndarray]
    c_theory: NotRequired[np.ndarray]
    grad2_theory: NotRequired[np.ndarray]


METRICS = {"stage": Stage}


@functools.lru_cache(maxsize=8)
def phase_grid(activation: str, sigma_w2_max: float, sigma_b2_max: float, grid: int) -> C.PhaseDiagram:
    """`criticality.phase_diagram` on a grid starting near 0 (cached: clicking does not recompute it)."""
    return C.phase_diagram(
        activation, np.linspace(sigma_w2_max / grid, sigma_w2_max, grid), np.linspace(0.0, sigma_b2_max, grid)
    )


def theory(config: Config) -> dict:
    """The diagram and the selected point's fixed points and depth scales."""
    d = phase_grid(config.activation, config.sigma_w2_max, config.sigma_b2_max, config.grid)
    s = C.depth_scales(config.activation, config.sigma_w2, config.sigma_b2)
    chi, phase = float(s.chi_1), "critical" if abs(s.chi_1 - 1) < 0.02 else ("ordered" if s.chi_1 < 1 else "chaotic")
    if not np.isfinite(s.q_star):  # no fixed length: |h|^2 grows layer by layer (ReLU above sigma_w^2 = 2)
        init = C.critical_init(config.activation)
        scale_free = init is not None and init.universality == "scale-invariant"
        chi = config.sigma_w2 / init.C_W if scale_free and init is not None else float("nan")  # chi_1 for any q
        phase = "exploding"
    with np.errstate(divide="ignore", invalid="ignore"):
        log_chi = np.log(np.asarray(d.chi_1, float))
    return {
        "sigma_w2_grid": np.asarray(d.sigma_w2),
        "sigma_b2_grid": np.asarray(d.sigma_b2),
        "log_chi_1": log_chi,
        "critical_w2": np.asarray(d.critical_w2),
        "chi_1": chi,
        "q_star": float(s.q_star),
        "c_star": float(s.c_star),
        "xi_q": float(s.xi_q),
        "xi_c": float(s.xi_c),
        "phase": phase,
    }


def profile(config: Config) -> dict:
    """Depth profile at the selected point: sampled finite networks and their theory."""
    finite = SampledNetworks(
        activation=config.activation,
        sigma_b2=config.sigma_b2,
        width=config.width,
        depth=config.depth,
        seeds=config.seeds,
    )
    return measure(finite, config.sigma_w2)


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """Stage 1: the diagram and the point's theory; stage 2: its depth profile."""
    return stages([lambda: theory(config), lambda: profile(config)], stop)
