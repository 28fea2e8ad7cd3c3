"""Intrinsic dimension panel (Li, Farkhoor, Liu & Yosinski 2018): accuracy against the subspace dimension d for an
MLP and a small CNN on the digits at two widths, the 90% line and d_int90 marked
(`workbench.experiments.intrinsic_dimension`)."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from widgets.live import PALETTE
from widgets.panel import Help, LivePanel
from workbench.core.experiment import Record
from workbench.experiments import intrinsic_dimension

ALT = (
    "One plot per architecture (MLP, CNN): accuracy against the subspace dimension d (log scale), one colour per "
    "width: seed means with their spread, the full network's accuracy times 0.9 (dashed, the 90% line) and d_int90 "
    "(a vertical line with its bootstrap error bar). Widths of one architecture cross the line at about the same d; "
    "the CNN crosses at a smaller d than the MLP."
)

HELP = Help(
    what="Each network is trained only in a random d-dimensional subspace of its parameters, theta = theta_0 + P "
    "theta_d (Li, Farkhoor, Liu & Yosinski 2018). The accuracy climbs with d; d_int90 is the smallest d reaching "
    "90% of the full network's accuracy (dashed line per width), with a bootstrap error bar over seeds.",
    try_="Compare the two widths: their d_int90 agree although D differs several-fold. Switch the projection "
    "between dense, sparse and fastfood: d_int90 stays within its error bar. Shuffle the labels: memorising them "
    "needs a far larger d (raise d_max).",
    theory="d_int90 measures the problem, not the network: extra width adds parameters (D) but not intrinsic "
    "dimension, so d_int90 / D falls as width grows (their MNIST FC: about 750 at every width); convolutions' "
    "built-in invariances lower it (LeNet 290); random labels raise it (memorising is a harder problem).",
)


class IntrinsicDimensionPanel(LivePanel[intrinsic_dimension.Config]):
    title = "Intrinsic dimension"
    help = HELP
    quick = dict(arch="mlp", widths=(8, 12), d_min=4, d_max=32, points=2, refine=0, seeds=2, steps=5)
    experiment = intrinsic_dimension
    form_options = dict(advanced=("d", "d_min", "points", "refine", "lr", "full_lr", "layout"))
    figure_options = dict(nrows=1, ncols=2, figsize=(8.0, 3.2))
    alt = ALT

    def setup(self, axes: list[Axes]) -> None:
        for ax, arch in zip(axes, intrinsic_dimension.ARCHS):
            ax.set(xscale="log", xlabel="subspace dimension d", ylabel="accuracy", title=arch.upper())
        self.artists: list = []

    def clear(self) -> None:
        for artist in self.artists:
            artist.remove()
        self.artists = []
        config = self.running_config or self.config
        for ax, arch in zip(self.live.axes, intrinsic_dimension.ARCHS):
            ax.set_title(arch.upper() + ("" if arch in config.archs else " (not run)"), fontsize=9)

    def draw(self, record: Record) -> None:
        config = self.running_config or self.config
        for artist in self.artists:
            artist.remove()
        self.artists = []
        for m in self.points():
            ax = self.live.axes[intrinsic_dimension.ARCHS.index(m["arch"])]
            color = PALETTE[list(config.widths).index(m["width"]) % len(PALETTE)]
            acc = np.asarray(m["acc"], float)
            mean, spread = acc.mean(1), acc.std(1)
            label = f"width {m['width']} (D = {m['n_params']:,})"
            self.artists.append(ax.errorbar(m["dims"], mean, yerr=spread, fmt="o-", ms=3, capsize=2, color=color,
                                            label=label))  # fmt: skip
            self.artists.append(ax.axhline(0.9 * np.mean(m["full_acc"]), color=color, ls="--", lw=1))
            if np.isfinite(m["d_int90"]):
                d, err = m["d_int90"], m["d_int90_err"]
                self.artists.append(ax.axvline(d, color=color, lw=1, alpha=0.6))
                bar = [[err if np.isfinite(err) else 0.0]] * 2
                label = f"d_int90 = {d:.0f} +- {err:.0f}"
                line = 0.9 * np.mean(m["full_acc"])
                self.artists.append(ax.errorbar([d], [line], xerr=bar, fmt="*", ms=10, color=color, label=label))
        for ax in self.live.axes:
            if ax.get_legend_handles_labels()[0]:
                self.artists.append(ax.legend(fontsize=6, loc="best"))
            self.rescale(ax)
            ax.set_ylim(0, 1.02)
