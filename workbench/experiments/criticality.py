"""Finite deep networks against the signal-propagation theory (Poole et al. 2016, Fig. 3; Schoenholz et al.
2017, Figs. 2 and 5): correlation between two inputs and gradient norm through depth, below, at and
above the order-to-chaos line.

For each sigma_w2 in `sigma_w2s` (at `sigma_b2`), `seeds` SP networks of the given width and depth with
W ~ N(0, sigma_w2 / fan_in), b ~ N(0, sigma_b2) see two inputs with |x|^2 / d = q0 and correlation c0.
Metrics per record (one per sigma_w2), arrays over layers l = 1..depth: `q` (mean |h_l|^2 / n of the two
inputs), `c` (cosine of h_l(x1), h_l(x2)), `grad2` (||df(x1)/dh_l||^2);
seed means with standard errors `*_sem`; `q_theory`, `c_theory`, `grad2_theory` from
`workbench.theory.criticality.depth_profile`; scalars `sigma_w2`, `chi_1` and `phase` ("ordered" for
chi_1 < 1, "critical", "chaotic").
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TypedDict

import numpy as np

from workbench.core.config import Config as _Config
from workbench.core.config import spec
from workbench.core.experiment import experiment_run, sweep
from workbench.core.fields import ACTIVATION, DEPTH, SEEDS, WIDTH
from workbench.theory.criticality_finite import measure

__all__ = ["Config", "METRICS", "run"]


@dataclass(frozen=True)
class Config(_Config):
    """Deep SP networks at several sigma_w2 around the critical line."""

    activation: str = ACTIVATION("tanh", doc="nonlinearity")
    sigma_w2s: tuple[float, ...] = spec((1.2, 1.76, 2.5), lo=0.01, hi=20.0, doc="weight variances sigma_w^2 to compare")
    sigma_b2: float = spec(0.05, lo=0.0, hi=5.0, doc="bias variance sigma_b^2")
    width: int = WIDTH(512, doc="hidden width n")
    depth: int = DEPTH(30, soft=(1, 100), doc="hidden layers")
    seeds: int = SEEDS(8, doc="networks sampled")
    in_dim: int = spec(64, lo=2, hi=4096, doc="input dimension d")
    q0: float = spec(1.0, lo=0.01, lo_open=False, hi=100.0, soft=(0.01, 10.0), doc="input length |x|^2 / d")
    c0: float = spec(0.5, lo=-1.0, hi=1.0, doc="input correlation")


class Point(TypedDict):
    """One sigma_w2: arrays over layers l = 1..depth (seed means, `*_sem` standard errors)."""

    sigma_w2: float
    chi_1: float
    phase: str  # ordered, critical or chaotic
    layers: np.ndarray  # (depth,)
    q: np.ndarray
    q_sem: np.ndarray
    c: np.ndarray
    c_sem: np.ndarray
    grad2: np.ndarray
    grad2_sem: np.ndarray
    q_theory: np.ndarray
    c_theory: np.ndarray
    grad2_theory: np.ndarray


class Summary(TypedDict):
    sigma_w2s: np.ndarray
    chi_1: np.ndarray
    phases: list


METRICS = {"point": Point, "summary": Summary}


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """Yield one point per sigma_w2, then a summary listing chi_1 and the phases."""

    def summary(points):
        return {
            "sigma_w2s": np.array(config.sigma_w2s),
            "chi_1": np.array([p["chi_1"] for p in points]),
            "phases": [p["phase"] for p in points],
        }

    return sweep(config.sigma_w2s, lambda sigma_w2: measure(config, sigma_w2), stop, summary=summary)
