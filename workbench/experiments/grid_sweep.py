"""A sweep as an experiment: the Sweeps panel's Config (experiment, grid as text, seeds, cluster) and its run,
`workbench.runs.sweep.run` on a Dask client with the points streamed into the run database.

The default is the muP transfer picture of Yang et al. 2022 (TP V, Fig. 1) built from single runs: `teacher_fit`
at widths 64..512 and base learning rates 2^-11..2^-4, 2 seeds; the panel plots the final training loss against
the learning rate, one line per width.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from workbench import experiments as registry
from workbench.core.config import Config as _Config
from workbench.core.config import spec
from workbench.core.runtime import available_cpus
from workbench.runs import sweep

SWEEPABLE = False  # a sweep of other experiments
EXPERIMENTS = registry.sweepable(exclude=("grid_sweep",))  # every experiment with sweepable fields


OWN_RANGES = {  # fields named like a shared field (workbench.core.fields) whose range differs, and why
    "seeds": "0 means the swept experiment has no seed field",
}


@dataclass(frozen=True)
class Config(_Config):
    """What to sweep, over which values, on which cluster."""

    experiment: str = spec("teacher_fit", choices=EXPERIMENTS, doc="experiment swept (workbench.experiments)")
    grid: str = spec(
        "width = 64, 128, 256, 512; lr = 2**-11 .. 2**-4 / 8 log",
        doc="fields and values: 'name = a, b, c' or 'name = from .. to / n [log]', clauses split by ';'",
    )
    base: str = spec("steps = 30", doc="fixed fields: 'name = value; ...' (others keep their defaults)")
    seeds: int = spec(2, lo=0, hi=64, doc="seeds 0..n-1 of each point (0: the experiment has no seed field)")
    scheduler: str = spec("", doc="Dask scheduler address (tcp://host:8786); empty: a local cluster")
    workers: int = spec(0, lo=0, hi=1024, doc="local cluster's worker processes (0: one per CPU)")
    processes: bool = spec(True, doc="local workers as processes (else threads of this kernel)")
    metric: str = spec("train_loss", doc="scalar metric of a point's last record to plot")

    def validate(self):
        self.points()

    def base_config(self):
        """The swept experiment's Config with the fixed fields of `base`."""
        module = sweep.experiment_module(self.experiment)
        fixed = {}
        try:
            base = sweep.parse_grid(self.base)
        except ValueError as err:
            raise ValueError(f"base: {str(err).removeprefix('grid: ')}") from None
        for name, values in base.items():
            if len(values) != 1:
                raise ValueError(f"base: {name} must have one value, got {values}")
            fixed[name] = values[0]
        try:
            return module.Config(**fixed)
        except TypeError as err:
            raise ValueError(f"base: {err}") from None

    def points(self) -> list:
        """Every point's config, validated (a bad field or value raises ValueError naming it)."""
        return sweep.grid_configs(self.base_config(), sweep.parse_grid(self.grid), self.seed_list())

    def seed_list(self) -> list[int] | None:
        return list(range(self.seeds)) if self.seeds else None


METRICS = sweep.METRICS


def run(config: Config, stop: threading.Event | None = None):
    """The sweep of `config`: a "point" record per point as it ends, then a "summary" (see workbench.runs.sweep)."""
    client = config.scheduler or sweep.local_client(config.workers or available_cpus(), config.processes)
    return sweep.run(
        config.experiment, config.base_config(), sweep.parse_grid(config.grid), config.seed_list(), client=client,
        stop=stop,
    )  # fmt: skip
