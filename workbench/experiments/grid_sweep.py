"""A sweep as an experiment: the Sweeps panel's Config (experiment, grid as text, seeds, cluster) and its run,
`workbench.runs.sweep.run` on a Dask client with the points streamed into the run database.

The default is the muP transfer picture of Yang et al. 2022 (TP V, Fig. 1) built from single runs: `teacher_fit`
at widths 64..512 and base learning rates 2^-11..2^-4, 2 seeds; the panel plots the final training loss against
the learning rate, one line per width.

A Config is checked at construction (every control change and every Load of the Sweeps tab, in the kernel's
thread), so the checks are bounded before anything is parsed deeply: the texts' length, the points counted clause
by clause while the grid is read (a grid of more than `sweep.MAX_POINTS` points is refused before its other
clauses are read), the distinct activations (each typed expression is parsed and traced), then each value alone on
the base config and, for two or more fields, each combination (not each seed: seeds are checked once) when there
are at most `CHECKED_POINTS` of them; a bigger grid's combinations are checked when the sweep starts (in the run's
thread, before any task: `sweep.grid_configs`). A Config costs about 50 us to build, more with a typed activation.
"""

from __future__ import annotations

import itertools
import math
import threading
from dataclasses import dataclass

from workbench import experiments as registry
from workbench.core.config import Config as _Config
from workbench.core.config import leaves, spec
from workbench.core.experiment import experiment_run
from workbench.core.runtime import available_cpus
from workbench.runs import sweep

__all__ = ["Config", "METRICS", "run"]

SWEEPABLE = False  # a sweep of other experiments
MAX_TEXT = 65_536  # characters of the grid and of the fixed fields (a share code inflates to at most this)
MAX_ACTIVATIONS = 32  # distinct activations of one sweep: a typed expression costs 1-12 ms to check
CHECKED_POINTS = 2_000  # combinations of grid values checked at construction (the rest when the sweep starts)
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
    workers: int = spec(0, lo=0, hi=1024, soft=(0, 16), doc="local cluster's worker processes (0: one per CPU)")
    processes: bool = spec(True, doc="local workers as processes (else threads of this kernel)")
    metric: str = spec("train_loss", doc="scalar metric of a point's last record to plot")

    def validate(self):
        """The checks of `sweep.grid_configs`, bounded (see the module docstring); a ValueError names the field."""
        base = self.base_config()
        grid = self.parsed_grid()
        names = {path for path, *_ in leaves(type(base))}
        for name, values in grid.items():
            if base.resolve(name) not in names:
                raise ValueError(f"grid: {type(base).__name__} has no field {name!r}; fields: {sorted(names)}")
            if not values:
                raise ValueError(f"grid: {name} must be a non-empty list of values, got {values!r}")
        activations = {path for path, _, _, meta in leaves(type(base)) if meta.get("check") == "activation"}
        for name in (n for n in grid if base.resolve(n) in activations):
            distinct = len(set(map(str, grid[name])))
            if distinct > MAX_ACTIVATIONS:
                raise ValueError(
                    f"grid: {name} has {distinct} distinct values; a sweep takes at most {MAX_ACTIVATIONS} activations "
                    "(each typed expression is parsed and checked): split the sweep"
                )
        grid = {name: list(dict.fromkeys(values)) for name, values in grid.items()}  # a repeated value is one check
        for name, values in grid.items():
            for value in values:
                try:
                    base.replace(**{name: value})
                except (ValueError, TypeError) as err:
                    raise ValueError(f"grid: {name}={value!r} refused: {err}") from None
        if self.seeds and "seed" not in names:
            raise ValueError(f"seeds: {type(base).__name__} has no seed field; set seeds to 0")
        combinations = math.prod(map(len, grid.values()))  # no experiment checks a seed against another field
        if len(grid) > 1 and combinations <= CHECKED_POINTS:
            for combo in itertools.product(*grid.values()):
                changes = dict(zip(grid, combo))
                try:
                    base.replace(**changes)
                except (ValueError, TypeError) as err:
                    raise ValueError(f"grid: the point {changes} refused: {err}") from None

    def parsed_grid(self) -> dict[str, list]:
        """The grid's fields and values (`sweep.parse_grid`), read clause by clause: a field given twice, or values
        that make more than `sweep.MAX_POINTS` points (times the seeds), are refused before the rest is read."""
        per_point = max(1, self.seeds)
        grid: dict[str, list] = {}
        for name, values in _clauses("grid", self.grid):
            grid[name] = values
            n = math.prod(map(len, grid.values())) * per_point
            if n > sweep.MAX_POINTS:
                more = " or more" if len(grid) < len(_split(self.grid)) else ""
                raise ValueError(
                    f"grid: {n} points{more}; a sweep holds at most {sweep.MAX_POINTS} (split it, or use fewer values)"
                )
        return grid

    def base_config(self):
        """The swept experiment's Config with the fixed fields of `base`."""
        module = sweep.experiment_module(self.experiment)
        fixed = {}
        for name, values in _clauses("base", self.base):
            if len(values) != 1:
                raise ValueError(f"base: {name} must have one value, got {values if len(values) <= 8 else values[:8]}")
            fixed[name] = values[0]
        try:
            return module.Config().replace(**fixed)
        except (TypeError, ValueError) as err:
            raise ValueError(f"base: {err}") from None

    def points(self) -> list:
        """Every point's config, validated (a bad field or value raises ValueError naming it)."""
        return sweep.grid_configs(self.base_config(), self.parsed_grid(), self.seed_list())

    def seed_list(self) -> list[int] | None:
        return list(range(self.seeds)) if self.seeds else None


def _split(text: str) -> list[str]:
    """The clauses of a grid or base text (as `sweep.parse_grid` splits them)."""
    return [c.strip() for c in text.replace("\n", ";").split(";") if c.strip()]


def _clauses(field: str, text: str):
    """(name, values) of each clause of a grid or base text, parsed one at a time (so a caller can stop early); a
    name given twice is refused (`sweep.parse_grid` would keep the last silently)."""
    if len(text) > MAX_TEXT:
        raise ValueError(f"{field}: at most {MAX_TEXT} characters, got {len(text)}")
    seen = set()
    for clause in _split(text):
        try:
            ((name, values),) = sweep.parse_grid(clause).items()
        except ValueError as err:
            raise ValueError(f"{field}: {str(err).removeprefix('grid: ')}") from None
        if name in seen:
            raise ValueError(f"{field}: {name} is given twice")
        seen.add(name)
        yield name, values


METRICS = sweep.METRICS


@experiment_run(Config)
def run(config: Config, stop: threading.Event | None = None):
    """The sweep of `config`: a "point" record per point as it ends, then a "summary" (see workbench.runs.sweep)."""
    client = config.scheduler or sweep.local_client(config.workers or available_cpus(), config.processes)
    return sweep.run(
        config.experiment, config.base_config(), config.parsed_grid(), config.seed_list(), client=client,
        stop=stop,
    )  # fmt: skip
