"""SELU's moment map (Klambauer et al. 2017, Eqs. 4-5 and Fig. 2): the displacement field of the map of
(mean, variance) of a layer's activations, and the trajectory from a chosen start towards the fixed point
(0, 1) at omega = 0, tau = 1, elsewhere for other weights. One stage: `mu[G, G]`, `nu[G, G]` (a grid spanning
[-1, 1] x [0.2, 3] and the path), `d_mu`, `d_nu` (one layer's change), `path[steps + 1, 2]` and, where the map
iterated from (0, 1) settles, its `fixed_point[2]`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import numpy as np

from workbench.core.config import Config as _Config
from workbench.core.config import spec
from workbench.core.experiment import experiment_run, stages
from workbench.core.fields import ACTIVATION
from workbench.theory import criticality as C

__all__ = ["Config", "METRICS", "run"]

OWN_RANGES = {  # fields named like a shared field (workbench.core.fields) whose range differs, and why
    "steps": "iterations of the length-and-correlation map, one per layer",
}


@dataclass(frozen=True)
class Config(_Config):
    """SELU's moment map for weights with sum omega and sum of squares tau."""

    activation: str = ACTIVATION("selu", doc="nonlinearity (selu is self-normalising)")
    omega: float = spec(0.0, lo=-0.5, hi=0.5, doc="omega = sum of a unit's weights")
    tau: float = spec(1.0, lo=0.5, hi=2.0, doc="tau = sum of squares of a unit's weights")
    mu0: float = spec(0.5, lo=-2.0, hi=2.0, doc="start: mean of the inputs")
    nu0: float = spec(2.0, lo=0.05, hi=4.0, doc="start: variance of the inputs")
    steps: int = spec(20, lo=1, hi=200, doc="layers")


class Stage(TypedDict):
    mu: np.ndarray  # (G, G)
    nu: np.ndarray  # (G, G)
    d_mu: np.ndarray  # (G, G) one layer's change of the mean
    d_nu: np.ndarray  # (G, G)
    path: np.ndarray  # (steps + 1, 2) (mean, variance) per layer
    fixed_point: NotRequired[np.ndarray]  # (2,) where the map settles within FIXED_POINT_STEPS layers


METRICS = {"stage": Stage}


FIXED_POINT_STEPS = 1000  # layers of the map from (0, 1) within which a fixed point must settle (to 1e-9)


def view(config: Config, grid: int = 15) -> dict:
    """Displacement field of the moment map on a (mu, nu) grid covering the trajectory from (mu0, nu0), the
    trajectory, and the fixed point the map settles at from (0, 1) (Klambauer et al. 2017, Theorem 1)."""
    kw: dict[str, Any] = dict(omega=config.omega, tau=config.tau, activation=config.activation)
    path = np.asarray(C.selu_flow(config.mu0, config.nu0, config.steps, **kw))
    settle = np.asarray(C.selu_flow(0.0, 1.0, FIXED_POINT_STEPS, **kw))
    if not (np.all(np.isfinite(path)) and np.all(np.isfinite(settle))):
        raise ValueError(
            f"activation: the moment map of {config.activation!r} is not finite along the path "
            f"from (mu0, nu0) = ({config.mu0}, {config.nu0}); choose a milder nonlinearity"
        )
    settled = bool(np.max(np.abs(settle[-1] - settle[-2])) < 1e-9)
    points = np.vstack([path, settle[-1:]]) if settled else path
    mu_lo, mu_hi = min(-1.0, points[:, 0].min()), max(1.0, points[:, 0].max())
    nu_lo, nu_hi = min(0.2, points[:, 1].min()), max(3.0, points[:, 1].max())
    mu, nu = np.meshgrid(np.linspace(mu_lo, mu_hi, grid), np.linspace(max(nu_lo, 1e-3), nu_hi, grid))
    new_mu, new_nu = C.selu_moment_map(mu, nu, **kw)
    out = {"mu": mu, "nu": nu, "d_mu": new_mu - mu, "d_nu": new_nu - nu, "path": path}
    return {**out, "fixed_point": settle[-1]} if settled else out


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    return stages([lambda: view(config)], stop)
