"""Learning-rate transfer panel (TP V Fig. 1): training loss after T steps against log2(lr), one curve per
width, and the best learning rate against width (`workbench.experiments.lr_transfer`)."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from widgets.live import PALETTE, log2_axis
from widgets.panel import Help, LivePanel
from workbench.core.experiment import Record
from workbench.experiments import lr_transfer

ALT = (
    "Left: training loss after T steps (log scale) against log2 of the base learning rate, one curve per "
    "width, the minimum of each marked. Right: log2 of the best learning rate against width; a flat line "
    "means the learning rate transfers across widths."
)

HELP = Help(
    what="Training loss after T steps against log2(learning rate), one curve per width (all learning rates of a "
    "width in one vectorised call), and the best learning rate against width.",
    try_="Run under mup, then under sp with Adam, and compare the optimum-against-width lines.",
    theory="Tensor Programs V: under muP the optimal learning rate found at a small width is optimal at every width "
    "(muTransfer: a flat line); under SP with Adam it shifts to smaller values as the width grows.",
)


class LRTransferPanel(LivePanel[lr_transfer.Config]):
    title = "LR transfer"
    help = HELP
    quick = dict(widths=(16, 32), base_width=16, depth=1, steps=3, n_samples=8, n_lrs=3, seeds=1)
    experiment = lr_transfer
    figure_options = dict(nrows=1, ncols=2, figsize=(5.0, 3.0))
    alt = ALT

    def setup(self, axes: list[Axes]) -> None:
        axes[0].set(yscale="log", xlabel="log2 learning rate", ylabel="train loss after T steps", title="loss vs lr")
        axes[1].set(xscale="log", xlabel="width", ylabel="best log2 lr", title="optimum vs width")
        self.curves, self.best = [], axes[1].plot([], [], "o-", color="black")[0]
        self.marks = axes[0].plot([], [], "*", color="black", ms=9)[0]

    def clear(self) -> None:
        config = self.running_config or self.config
        for line in self.curves:
            line.remove()
        self.curves = [
            self.live.axes[0].plot([], [], "o-", ms=3, color=PALETTE[i % len(PALETTE)], label=f"n={w}")[0]
            for i, w in enumerate(config.widths)
        ]
        self.live.axes[0].legend(fontsize=7)
        log2_axis(self.live.axes[1], config.widths)
        # the whole lr grid: a shift of one grid step looks as small as it is
        self.live.axes[1].set_ylim(config.log2_lr_min - 0.5, config.log2_lr_max + 0.5)
        self.best.set_data([], [])
        self.marks.set_data([], [])

    def draw(self, record: Record) -> None:
        rows = self.points()
        for line, m in zip(self.curves, rows):
            line.set_data(m["log2_lrs"], np.where(np.isfinite(m["loss"]), m["loss"], np.nan))
        if rows:
            best = [
                (m["optimum_log2_lr"], float(np.nanmin(np.where(np.isfinite(m["loss"]), m["loss"], np.nan))))
                for m in rows
                if np.isfinite(m["loss"]).any()
            ]
            if best:
                self.marks.set_data(*zip(*best))
            self.best.set_data([m["width"] for m in rows], [m["optimum_log2_lr"] for m in rows])
            self.rescale(self.live.axes[0])
