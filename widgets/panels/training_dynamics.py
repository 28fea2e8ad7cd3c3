"""Training dynamics panel: finite MLPs of several widths train live beside the infinite-width NTK
prediction (`workbench.experiments.training_dynamics`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.contour import QuadContourSet
from matplotlib.lines import Line2D

from widgets.live import PALETTE, round_limits
from widgets.panel import Help, LivePanel
from workbench.core.experiment import Record
from workbench.experiments import training_dynamics

ALT = (
    "Top row: train (solid) and test (dashed) loss against step per width, with the NTK prediction "
    "(dotted); the learned function of the narrowest width (1-D: every width, solid, and its NTK "
    "prediction, dashed; 2-D: decision margin, NTK decision boundary in black); RMS distance between "
    "the network and its NTK prediction. Bottom row: relative change of the empirical NTK against "
    "step; relative feature movement per hidden layer; 1-D: network minus NTK prediction, 2-D: the "
    "widest network's decision margin."
)

HELP = Help(
    what="Finite MLPs of several widths train side by side on a 1-D or 2-D task, with the infinite-width NTK "
    "prediction at the same step overlaid (Lee et al. 2019: the linearised network started from this "
    "network's own initial outputs f_0): losses, the learned function, the distance to the prediction, how "
    "much the tangent kernel and the features move.",
    try_="Widths 64 and 1024 under the ntk parametrization, then switch to mup; try a 2-D task (xor, spiral) for "
    "decision surfaces. Raise the depth to 2: ReLU networks with two or more hidden layers on the sine need "
    "far larger widths to follow their prediction.",
    theory="Under ntk the wider network follows its kernel prediction more closely and its tangent kernel changes "
    "less (relative change $O(n^{-1/2})$, lazy training, Chizat et al. 2019); under mup the kernel and "
    "the features keep moving by $\\Theta(1)$ at every width (feature learning).",
)


class TrainingDynamicsPanel(LivePanel[training_dynamics.Config]):
    title = "Training dynamics"
    help = HELP
    quick = dict(widths=(16, 32), steps=100, record_every=25, n_train=8, grid=16, ntk_points=4)
    experiment = training_dynamics
    export_latest = ("f_grid", "ntk_f_grid")  # the learned function is drawn at the latest step only
    form_options = dict(
        exclude=("ntk_points",),
        advanced=("noise", "base_width", "weight_std", "bias_std", "record_every", "grid", "seed"),
    )
    figure_options = dict(nrows=2, ncols=3, figsize=(8.0, 5.0), min_interval=0.25)
    alt = ALT

    def setup(self, axes: list[Axes]) -> None:
        self.lines: dict[str, list] = {}
        self.static: dict = {}
        titles = [
            "loss",
            "learned function",
            "RMS f - f_NTK (own f_0)",
            "NTK change",
            "feature movement at the last step",
            "f - f_NTK",
        ]
        for ax, title in zip(axes, titles):
            ax.set_title(title)
        for ax in (axes[0], axes[2], axes[3]):
            ax.set_xlabel("step")
        axes[0].set(yscale="log", ylabel="0.5 mean (f - y)^2")
        axes[2].set_ylabel("RMS on the plotting grid")
        axes[3].set_ylabel("||K_t - K_0|| / ||K_0||")
        axes[4].set(xlabel="hidden layer", ylabel="||x_l(t) - x_l(0)|| / ||x_l(0)||")
        empty = np.zeros((2, 2))
        self.surfaces = [
            ax.imshow(empty, cmap="RdBu", origin="lower", vmin=-1, vmax=1, visible=False, aspect="auto")
            for ax in (axes[1], axes[5])
        ]
        self.data_points = [ax.scatter([], [], s=10, edgecolors="black", linewidths=0.4) for ax in (axes[1], axes[5])]
        self.contours: list[QuadContourSet | None] = [None, None]
        self.colorbars: list = []

    def clear(self) -> None:
        config = self.running_config or self.config
        for artists in self.lines.values():
            for artist in artists:
                artist.remove()
        axes = self.live.axes
        self.lines, self.static = {}, {}
        for ax in axes:
            leg = ax.get_legend()
            if leg is not None:
                leg.remove()
        colours = [PALETTE[i % len(PALETTE)] for i in range(len(config.widths))]
        one_d = config.task == "sine"

        def per_width(ax: Axes, **kw: Any) -> list[Line2D]:
            return [ax.plot([], [], color=c, **kw)[0] for c in colours]

        self.lines["train"] = per_width(axes[0], lw=1.5)
        for line, width in zip(self.lines["train"], config.widths):
            line.set_label(f"n={width}")
        self.lines["test"] = per_width(axes[0], ls="--", lw=1)
        self.lines["ntk_train"] = per_width(axes[0], ls=":", lw=1)
        self.lines["distance"] = per_width(axes[2], marker=".")
        self.lines["ntk_change"] = per_width(axes[3], marker=".")
        self.lines["movement"] = per_width(axes[4], marker="o")
        self.lines["f"] = per_width(axes[1], lw=1.5) if one_d else []
        self.lines["f_ntk"] = per_width(axes[1], ls="--", lw=1) if one_d else []
        self.lines["residual"] = per_width(axes[5], lw=1) if one_d else []
        styles = [
            Line2D([], [], color="#555555", ls=ls, lw=1, label=label)
            for ls, label in (("-", "train"), ("--", "test"), (":", "NTK prediction"))
        ]
        axes[0].legend(handles=self.lines["train"] + styles, loc="upper right", fontsize=7)
        if one_d:
            axes[1].legend(
                handles=[
                    Line2D([], [], color="#555555", lw=1.5, label="network"),
                    Line2D([], [], color="#555555", ls="--", lw=1, label="NTK prediction"),
                    Line2D([], [], color="black", marker=".", ls="", label="training data"),
                ],
                loc="best",
                fontsize=7,
            )
        axes[1].set(xlabel="x" if one_d else "x_1", ylabel="f(x)" if one_d else "x_2")
        axes[5].set(xlabel="x" if one_d else "x_1", ylabel="f - f_NTK" if one_d else "x_2")
        for colorbar in self.colorbars:
            colorbar.remove()
        self.colorbars = (
            []
            if one_d
            else [self.live.fig.colorbar(s, ax=s.axes, label="margin f_1 - f_0", shrink=0.85) for s in self.surfaces]
        )
        for surface in self.surfaces:
            surface.set_visible(False)
        for points in self.data_points:
            points.set_offsets(np.zeros((0, 2)))
        self._remove_contours()
        axes[1].set_title("learned function" if one_d else f"n={config.widths[0]}: margin f_1 - f_0")
        axes[5].set_title("f - f_NTK" if one_d else f"n={config.widths[-1]}: margin f_1 - f_0")
        self.live.dynamic = [
            *self.surfaces,
            *(line for lines in self.lines.values() for line in lines),
            *self.data_points,
        ]

    def _remove_contours(self) -> None:
        for i, contour in enumerate(self.contours):
            if contour is not None:
                contour.remove()
                self.live.dynamic.remove(contour)
                self.contours[i] = None

    def draw(self, record: Record) -> None:
        m = record.metrics
        first = next((r.metrics for r in self.records if "grid" in r.metrics), None)
        if first is None or "f_grid" not in m:
            return
        if not self.static:
            self.static = {k: np.asarray(first[k]) for k in ("grid", "x_train", "y_train", "widths")}
            self._draw_data()
        axes = self.live.axes
        for name, lines in (
            ("train_loss", "train"),
            ("test_loss", "test"),
            ("ntk_train_loss", "ntk_train"),
            ("ntk_distance", "distance"),
            ("ntk_change", "ntk_change"),
        ):
            steps, values = self.history(name)
            for i, line in enumerate(self.lines[lines]):
                line.set_data(steps, values[:, i])
        layers = np.arange(1, m["feature_movement"].shape[1] + 1)
        for i, line in enumerate(self.lines["movement"]):
            line.set_data(layers, m["feature_movement"][i])
        grid = self.static["grid"]
        if grid.shape[1] == 1:
            for i, (f, g, r) in enumerate(zip(self.lines["f"], self.lines["f_ntk"], self.lines["residual"])):
                f.set_data(grid[:, 0], m["f_grid"][i])
                g.set_data(grid[:, 0], m["ntk_f_grid"][i])
                r.set_data(grid[:, 0], m["f_grid"][i] - m["ntk_f_grid"][i])
        else:
            self._draw_surfaces(m)
        for ax in axes if grid.shape[1] == 1 else (axes[0], axes[2], axes[3], axes[4]):
            round_limits(ax)
        axes[4].set_xlim(0.5, len(layers) + 0.5)  # one tick per hidden layer
        axes[4].set_xticks(layers)

    def _draw_data(self) -> None:
        grid, x, y = self.static["grid"], self.static["x_train"], self.static["y_train"]
        if grid.shape[1] == 1:
            self.data_points[0].set_offsets(np.c_[x[:, 0], y[:, 0]])
            self.data_points[0].set_facecolor("black")
            return
        colours = [PALETTE[0] if label == 1 else PALETTE[1] for label in y.astype(int).ravel()]
        lim = float(np.abs(grid).max())
        for surface, points in zip(self.surfaces, self.data_points):
            surface.set_extent((-lim, lim, -lim, lim))
            surface.axes.set(xlim=(-lim, lim), ylim=(-lim, lim))  # not the union with the placeholder's extent
            surface.set_visible(True)
            points.set_offsets(x)
            points.set_facecolor(colours)

    def _draw_surfaces(self, m: dict[str, Any]) -> None:
        side = int(round(np.sqrt(len(self.static["grid"]))))
        lim = float(np.abs(self.static["grid"]).max())
        self._remove_contours()
        for k, (i, ax) in enumerate(((0, self.live.axes[1]), (-1, self.live.axes[5]))):
            margin = m["f_grid"][i].reshape(side, side)
            scale = float(np.nanmax(np.abs(margin))) or 1.0
            self.surfaces[k].set_data(margin)
            self.surfaces[k].set_clim(-scale, scale)
            ntk = m["ntk_f_grid"][i].reshape(side, side)
            if np.isfinite(ntk).all() and ntk.min() < 0 < ntk.max():
                contour = ax.contour(
                    np.linspace(-lim, lim, side),
                    np.linspace(-lim, lim, side),
                    ntk,
                    levels=[0.0],
                    colors="black",
                    linewidths=1.2,
                )
                self.contours[k] = contour
                self.live.dynamic.append(contour)
