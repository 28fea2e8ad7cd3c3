"""Your model panel (`workbench.experiments.model_lab`): coordinate check, learning-rate transfer across width or
depth, and lazy vs rich on any Flax NNX factory and data source; `ModelLab(make_model, data=(x, y))` opens it on
your own."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from widgets.live import PALETTE, log2_axis
from widgets.panel import Help, LivePanel
from workbench.core.experiment import Record
from workbench.data import sources
from workbench.experiments import model_lab
from workbench.nets import own

ALT = (
    "Coordinate check: left, RMS change of every module's output against width after the last step (log-log, "
    "one line per module); right, its fitted log-log slope per module with the band |slope| <= 0.1. LR transfer: "
    "left, training loss against log2 learning rate, one line per width or depth; right, the best learning rate "
    "against width or depth. Lazy vs rich: left, relative change of the empirical NTK against width per "
    "parametrization; right, relative change of each module's output at the widest width."
)

HELP = Help(
    what="microsoft/mup's checks on any Flax NNX model: each parameter's role is inferred from its shapes at two "
    "widths (as mup's set_base_shapes does), then the abc table sets its init and learning rate without touching "
    "the forward pass. Pick a study, a model of the zoo (or your own, with ModelLab(make_model, data=(x, y))) "
    "and a data source.",
    try_="Coordinate check under mup, then sp. LR transfer with several depths and depth scaling sqrt (depth-muP) "
    "or none. Lazy vs rich compares ntk with mup at the same learning rate.",
    theory="Under muP every module's change is O(1) in width (slope 0, TP V Fig. 5) and the best learning rate "
    "stays put as the width grows (TP V Fig. 1); with residual branches scaled by 1/sqrt(L) it also stays put in "
    "depth for one-layer blocks (TP VI; Bordelon et al. 2024). Under NTK parametrization the NTK barely moves at "
    "large width (lazy); under muP it keeps changing (rich). The slope-0 statement is about small steps: at a "
    "learning rate that moves the outputs by several units in 5 steps (Adam at 0.01 on the resmlp; the default "
    "is 0.003), higher-order terms make even muP's slopes drift to ~0.2 over widths 64-1024 (an independent "
    "implementation gives the same).",
)


class ModelLabPanel(LivePanel[model_lab.Config]):
    title = "Your model"
    help = HELP
    quick = dict(widths=(16, 32), base_width=16, seeds=1, n_samples=16, steps=2, n_lrs=3, probe=4)
    experiment = model_lab
    figure_options = dict(nrows=1, ncols=2, figsize=(6.4, 2.9))
    alt = ALT

    def setup(self, axes: list[Axes]) -> None:
        self.lines: list[Line2D] = []
        self.right: list[Line2D] = []

    def clear(self) -> None:
        config = self.running_config or self.config
        left, right = self.live.axes
        for ax in (left, right):
            ax.clear()
        self.lines, self.right = [], []
        if config.study == "coord_check":
            left.set(yscale="log", xlabel="width", ylabel="RMS change", title="module outputs' change")
            log2_axis(left, config.widths)  # labelled at the widths (minor log labels collided)
            right.axhspan(-0.1, 0.1, color="#dddddd")
            right.set(xlabel="module", ylabel="d log / d log width", title="slope per module (0: muP)")
            self.right = [right.plot([], [], "o", color=PALETTE[0])[0]]
        elif config.study == "lr_transfer":
            axis = config.axis
            left.set(xlabel="log2 learning rate", ylabel="training loss", yscale="log", title=f"loss per {axis}")
            sizes = config.depths if axis == "depth" else config.widths
            self.lines = [
                left.plot([], [], "o-", ms=3, color=PALETTE[i % len(PALETTE)], label=f"{axis} {s}")[0]
                for i, s in enumerate(sizes)
            ]
            left.legend(fontsize=7, loc="best")
            right.set(xscale="log", xlabel=axis, ylabel="best log2 lr", title="optimum (flat: transfer)")
            self.right = [right.plot([], [], "o-", color=PALETTE[0])[0]]
        else:
            left.set(yscale="log", xlabel="width", ylabel="||K_T - K_0|| / ||K_0||", title="NTK change")
            log2_axis(left, config.widths)
            self.lines = [
                left.plot([], [], "o-", color=PALETTE[i], label=name)[0] for i, name in enumerate(config.pair)
            ]
            left.legend(fontsize=7, loc="best")
            right.set(yscale="log", xlabel="module", ylabel="relative change", title="module outputs, widest")
            self.right = [
                right.plot([], [], "o", color=PALETTE[i], label=name)[0] for i, name in enumerate(config.pair)
            ]

    def draw(self, record: Record) -> None:
        config = self.running_config or self.config
        rows = self.points()
        left, right = self.live.axes
        if config.study == "coord_check" and rows:
            widths = np.array([r["width"] for r in rows], float)
            delta = np.stack([r["delta"][-1] for r in rows])  # (W, M)
            while len(self.lines) < delta.shape[1]:
                self.lines.append(left.plot([], [], "o-", ms=2, lw=1, color=PALETTE[len(self.lines) % 8])[0])
            for line, values in zip(self.lines, delta.T):
                line.set_data(widths, np.maximum(values, 1e-12))
            self.rescale(left)
        elif config.study == "lr_transfer":
            for line, r in zip(self.lines, rows):
                line.set_data(r["log2_lrs"], np.where(np.isfinite(r["loss"]), r["loss"], np.nan))
            self.rescale(left)
        elif rows:
            widths = np.array([r["width"] for r in rows], float)
            changes = np.stack([r["ntk_change"] for r in rows])  # (W, P)
            for line, values in zip(self.lines, changes.T):
                line.set_data(widths, values)
            for line, values in zip(self.right, rows[-1]["movement"]):
                line.set_data(np.arange(len(values)), values)
            for ax in (left, right):
                self.rescale(ax)
        m = record.metrics
        if "slopes" in m:
            names = m["modules"].split(",")
            self.right[0].set_data(np.arange(len(names)), m["slopes"])
            right.set_xticks(np.arange(len(names)), names, rotation=90, fontsize=6)
            right.set_ylim(min(-0.5, float(np.min(m["slopes"])) - 0.1), max(0.5, float(np.max(m["slopes"])) + 0.1))
            right.set_xlim(-0.5, len(names) - 0.5)
        if "optima" in m:
            self.right[0].set_data(m["sizes"], m["optima"])
            self.rescale(right)
        if "modules" in m and config.study == "lazy_rich":
            names = m["modules"].split(",")
            right.set_xticks(np.arange(len(names)), names, rotation=90, fontsize=6)


def ModelLab(make_model: Any = None, data: Any = None, **settings: Any) -> ModelLabPanel:  # noqa: N802 (a panel)
    """The Your-model panel on your own factory `make_model(width, rngs, **options)` and data `(x, y)` (arrays;
    or any source name), with further Config settings."""
    if make_model is not None:
        settings["model"] = own.register(getattr(make_model, "__name__", "mine").strip("<>") or "mine", make_model)
    if data is not None:
        settings["data"] = data if isinstance(data, str) else sources.register("mine", *data)
    return ModelLabPanel(model_lab.Config().replace(**settings))
