"""Coordinate-check panel (TP V Fig. 5, microsoft/mup's coord check): mean |h_l| against width at the
first and last step, the change of h_l against width, and the fitted log-log slope per layer
(`workbench.experiments.coord_check`)."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from widgets.live import PALETTE, log2_axis
from widgets.panel import Help, LivePanel
from workbench.core.experiment import Record
from workbench.experiments import coord_check

ALT = (
    "Top: mean absolute pre-activation of every layer against width (log-log) at initialisation (left) and "
    "after the last step (right), one line per layer. Bottom left: RMS change of each layer's pre-activation "
    "against width after the last step. Bottom right: fitted log-log slope of that change per layer "
    "(0 = width-independent, the muP target)."
)

HELP = Help(
    what="The size of each layer's activations, and of their change, after a few optimizer steps, against width, "
    "as microsoft/mup's coordinate check draws it (Yang et al. 2022, Fig. 5); the bottom-right plot shows the "
    "fitted log-log slope of each layer's change against width.",
    try_="Compare sp, ntk, mup and mf at the same learning rate; switch SGD to Adam.",
    theory="Under muP and mean field every curve is flat (slope 0); under the standard parametrization with a fixed "
    "learning rate the last layers blow up with width; under NTK parametrization updates shrink like "
    "$n^{-1/2}$.",
)


class CoordCheckPanel(LivePanel[coord_check.Config]):
    title = "Coordinate check"
    help = HELP
    quick = dict(widths=(16, 32), base_width=16, depth=2, steps=2, seeds=1, n_samples=8)
    experiment = coord_check
    figure_options = dict(nrows=2, ncols=2, figsize=(5.0, 4.8))
    alt = ALT

    def setup(self, axes: list[Axes]) -> None:
        titles = ("mean |h_l| at step 0", "mean |h_l| after the last step", "RMS change of h_l", "slope per layer")
        for ax, title in zip(axes, titles):
            ax.set_title(title)
        for ax in axes[:3]:
            ax.set(xscale="log", yscale="log", xlabel="width", ylabel="size")
        axes[3].axhline(0, color="#999999", lw=0.8)
        axes[3].set(xlabel="layer (last = readout)", ylabel="d log / d log width", ylim=(-1.5, 2.5))
        self.lines: list[Line2D] = []
        self.slopes = axes[3].plot([], [], "o-", color=PALETTE[0])[0]
        self.pending = axes[3].text(0, 0, "")

    def clear(self) -> None:
        config = self.running_config or self.config
        for artist in self.lines + [self.pending]:
            artist.remove()
        n = config.model.depth + 1
        labels = [f"h_{l + 1}" for l in range(config.model.depth)] + ["readout"]
        groups = [
            [ax.plot([], [], "o-", ms=3, color=PALETTE[l % len(PALETTE)], label=labels[l])[0] for l in range(n)]
            for ax in self.live.axes[:3]
        ]
        self.lines = [line for group in groups for line in group]
        self.live.axes[3].legend(handles=self.lines[:n], fontsize=7, loc="upper right", ncols=2)
        for ax in self.live.axes[:3]:
            log2_axis(ax, config.widths)
        self.slopes.set_data([], [])
        self.live.axes[3].set_xlim(0.5, n + 0.5)
        self.pending = self.live.axes[3].text(
            0.5,
            0.5,
            "fitted when the run finishes",
            ha="center",
            va="center",
            transform=self.live.axes[3].transAxes,
            color="#777777",
        )

    def draw(self, record: Record) -> None:
        m = record.metrics
        rows = self.points()
        if rows:
            widths = np.array([r["width"] for r in rows], float)
            act = np.stack([r["act_mean_abs"] for r in rows])  # (W, steps + 1, L + 1)
            delta = np.stack([r["delta_rms"] for r in rows])
            n = act.shape[-1]
            panels = (act[:, 0], act[:, -1], delta[:, -1])
            for k, values in enumerate(panels):
                for l in range(n):
                    self.lines[k * n + l].set_data(widths, np.maximum(values[:, l], 1e-12))
                self.rescale(self.live.axes[k])
        if record.status in ("diverged", "stopped", "error") and "slopes" not in m:
            self.pending.set_text(f"not fitted: the run {record.status} before its last width")
        if "slopes" in m:
            self.pending.set_visible(False)
            self.slopes.set_data(np.arange(1, len(m["slopes"]) + 1), m["slopes"])
            self.live.axes[3].set_xlim(0.5, len(m["slopes"]) + 0.5)
