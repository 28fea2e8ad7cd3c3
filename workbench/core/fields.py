"""Field specs shared by every config: one range per concept (width, depth, learning rate, ...).

    width: int = WIDTH(128)
    widths: tuple[int, ...] = WIDTH((64, 256), doc="widths to compare")

A shared field may reword its one-line doc for its experiment, never its range: the control a panel
shows and the value the code accepts come from the same declaration. `soft` is the slider's span, what a
demo needs (a use may choose another); a value beyond it is typed into the control's entry.
"""

from __future__ import annotations

from typing import Any

from workbench.core import parametrizations as P
from workbench.core.config import spec
from workbench.core.declare import Given, Text, declare

__all__ = ["ACTIVATION", "BASE_WIDTH", "DEPTH", "LR", "OPTIMIZER", "PARAMETRIZATION", "SEED", "SEEDS", "STEPS", "WIDTH"]


def shared(**meta: Any):
    """A field factory with a fixed range; `doc` may be reworded per use."""

    @declare(
        finite=False,
        default=Given(any_value=True, why="checked against the range when the Config is built", example=1),
        doc=Text(max_len=500, none_ok=True),
        soft=Given(why="spec checks it against the range", none_ok=True, example=None),
    )
    def field(default: Any, *, doc: str | None = None, soft: tuple[float, float] | None = None) -> Any:
        return spec(default, **{**meta, "doc": doc or meta["doc"], "soft": soft or meta.get("soft")})

    return field


WIDTH = shared(lo=1, hi=65_536, log=True, soft=(4, 4096), doc="hidden width n")
BASE_WIDTH = shared(lo=1, hi=65_536, log=True, soft=(4, 1024), doc="base width n0: every parametrization is SP there")
DEPTH = shared(lo=1, hi=256, soft=(1, 16), doc="hidden layers")
ACTIVATION = shared(check="activation", doc="nonlinearity: a name or an expression in x")
PARAMETRIZATION = shared(choices=P.NAMES, doc="abc-parametrization (TP IV/V)")
OPTIMIZER = shared(choices=tuple(P.OPTIMIZER_FAMILY), doc="optax optimizer")
LR = shared(lo=0.0, lo_open=True, hi=1e4, log=True, soft=(1e-4, 10.0), doc="base learning rate at the base width")
STEPS = shared(lo=1, hi=10_000_000, log=True, soft=(1, 10_000), doc="optimizer steps")
SEED = shared(lo=0, hi=2**31 - 1, doc="seed of the data and the weights")
SEEDS = shared(lo=1, hi=64, soft=(1, 16), doc="networks (seeds) averaged")
