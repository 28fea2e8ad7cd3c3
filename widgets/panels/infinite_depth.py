"""Infinite-depth panel (Radhakrishnan, Belkin & Uhler, PNAS 2023): an activation's normalized dual and its
cobweb, the regime its infinitely deep network falls into, and its classifiers against depth and data
(`workbench.experiments.infinite_depth`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes

from widgets.live import PALETTE, log2_axis
from widgets.panel import Help, Panel
from workbench.core.experiment import Record
from workbench.experiments import infinite_depth

ALT = (
    "Top left: the normalized dual k(rho) (blue) against the identity (grey), the cobweb of rho_{l+1} = k(rho_l) "
    "(orange) and the fixed points (black). Top middle: log K_L against log(1 - rho) for several depths; a slope of "
    "-alpha emerges for singular duals. Top right: decision regions of the NNGP classifier (colour) with the Bayes "
    "boundary (black) and the training points. Bottom left: test accuracy of the NNGP and NTK classifiers and the "
    "NNGP's agreement with 1-NN, majority vote and the limit classifier against depth. Bottom middle: test error "
    "against the number of training points, Bayes error dashed. Bottom right: test accuracies at the chosen depth."
)

HELP = Help(
    what="An infinitely wide network's kernel on the sphere iterates its activation's normalized dual k(rho) once "
    "per layer. As the depth grows the classifier it implements tends to one of three: majority vote (when "
    "k(0) > 0), 1-nearest neighbour (when k(0) = k'(0) = 0) or a singular kernel classifier with exponent alpha "
    "= ln(1/k'(0)) / ln k'(1) (Radhakrishnan, Belkin & Uhler 2023).",
    try_="Compare relu (majority vote), h2 (1-NN) and erf or 3d_opt (singular); on the Dirichlet tasks pick the "
    "d-opt dual of the task's dimension and raise the depth: its accuracy approaches the Bayes line as n grows.",
    theory="A singular limit with 2 alpha = d - 1 on S^(d-1) is a Hilbert-kernel estimate and is consistent "
    "(Bayes optimal as n grows); majority vote and 1-NN are not. The NTK converges to its limit more slowly "
    "than the NNGP.",
)

CLASSIFIERS = (
    ("nngp_acc", "NNGP"),
    ("ntk_acc", "NTK"),
    ("nn_acc", "1-NN"),
    ("majority_acc", "majority"),
    ("hilbert_acc", "Hilbert"),
    ("limit_acc", "limit"),
    ("bayes_acc", "Bayes"),
)


class InfiniteDepthPanel(Panel[infinite_depth.Config]):
    title = "Infinite depth"
    experiment = infinite_depth
    help = HELP
    quick = dict(task="gauss", depth=30, n_train=40, n_test=40, grid=12)
    form_options = dict(
        visible={
            "expression": lambda c: c.activation == "typed",
            "alpha": lambda c: c.activation == "designed",
            "noise": lambda c: not c.task.startswith("dirichlet"),
        }
    )
    figure_options = dict(nrows=2, ncols=3, figsize=(8.0, 5.4))
    alt = ALT

    def setup(self, axes: list[Axes]) -> None:
        d, s, r, a, n, b = axes
        (self.k,) = d.plot([], [], color=PALETTE[0], label="k(rho)")
        d.plot([-1, 1], [-1, 1], ls=":", color="grey", lw=1, label="identity")
        (self.cobweb,) = d.plot([], [], color=PALETTE[1], lw=0.8, label="cobweb")
        (self.fixed,) = d.plot([], [], "o", color="black", ms=4, label="fixed points")
        d.set(xlabel="rho", ylabel="k(rho)", xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), title="normalized dual")
        d.legend(fontsize=7, loc="upper left")
        s.set(xscale="log", xlabel="1 - rho", ylabel="log K_L (relative)", title="scaling near rho = 1")
        self.scaling: list = []
        self.region = r.imshow(np.zeros((2, 2)), cmap="RdBu", vmin=-1.5, vmax=1.5, origin="lower", aspect="auto")
        self.train = r.scatter([], [], s=6, edgecolors="black", linewidths=0.3)
        self.boundary = None
        r.set(xlabel="x_1", ylabel="x_2", title="NNGP decision regions")
        self.acc_depth = {
            key: a.plot([], [], ls=ls, color=PALETTE[i], label=label)[0]
            for i, (key, ls, label) in enumerate(
                (
                    ("nngp_acc_depth", "-", "NNGP accuracy"),
                    ("ntk_acc_depth", "-", "NTK accuracy"),
                    ("nngp_agree_nn", "--", "agrees with 1-NN"),
                    ("nngp_agree_majority", "--", "agrees with majority"),
                    ("nngp_agree_limit", "--", "agrees with limit"),
                )
            )
        }
        a.set(xscale="log", xlabel="depth L", ylabel="share of test points", ylim=(0, 1.02), title="against depth")
        a.legend(fontsize=6, loc="best")
        self.err_n = {
            key: n.plot([], [], "o-", ms=3, color=PALETTE[i], label=label)[0]
            for i, (key, label) in enumerate(
                (
                    ("err_nngp", "NNGP"),
                    ("err_nn", "1-NN"),
                    ("err_majority", "majority"),
                    ("err_hilbert", "Hilbert"),
                    ("err_limit", "limit"),
                )
            )
        }
        self.bayes_line = n.axhline(np.nan, ls="--", color="black", lw=1, label="Bayes")
        n.set(xscale="log", xlabel="training points n", ylabel="test error", title="against data")
        n.legend(fontsize=6, loc="best")
        self.bars = b.bar(range(len(CLASSIFIERS)), np.zeros(len(CLASSIFIERS)), color=PALETTE[: len(CLASSIFIERS)])
        b.set_xticks(range(len(CLASSIFIERS)), [label for _, label in CLASSIFIERS], rotation=45, ha="right")
        b.set(ylabel="test accuracy", ylim=(0, 1), title="at the chosen depth")

    def draw(self, record: Record) -> None:
        m = record.metrics
        axes = self.live.axes
        self.k.set_data(m["rho"], m["k"])
        self.cobweb.set_data(m["cobweb"][:, 0], m["cobweb"][:, 1])
        fixed = np.asarray(m["fixed_points"]).reshape(-1, 2)
        self.fixed.set_data(fixed[:, 0], fixed[:, 0])
        axes[0].set_title(m["badge"], fontsize=8)
        if "log_nngp" in m:
            self._draw_scaling(m)
        if "nngp_region" in m:
            self._draw_region(m)
        elif record.status == "finished":
            self.region.set_data(np.full((2, 2), np.nan))
            axes[2].set_title("decision regions: 2-D tasks only")
        if "nngp_acc" in m:
            for bar, (key, _) in zip(self.bars, CLASSIFIERS):
                bar.set_height(m[key] if np.isfinite(m[key]) else 0.0)
        if "depths" in m:
            for key, line in self.acc_depth.items():
                line.set_data(m["depths"], m[key])
            axes[3].set_xlim(m["depths"][0] * 0.8, m["depths"][-1] * 1.25)
        if "n_values" in m:
            for key, line in self.err_n.items():
                line.set_data(m["n_values"], m[key])
            self.bayes_line.set_ydata([m["bayes_error"]] * 2)
            self.rescale(axes[4])
            log2_axis(axes[4], m["n_values"])

    def _draw_scaling(self, m: dict[str, Any]) -> None:
        ax = self.live.axes[1]
        for line in self.scaling:
            line.remove()
        self.scaling = []
        for i, depth in enumerate(m["scaling_depths"]):
            label = "L = inf" if not np.isfinite(depth) else f"L = {depth:g}"
            self.scaling += ax.plot(m["one_minus_rho"], m["log_nngp"][i], color=PALETTE[i % len(PALETTE)], label=label)
        ax.legend(handles=self.scaling, fontsize=6, loc="upper right")
        self.rescale(ax)

    def _draw_region(self, m: dict[str, Any]) -> None:
        ax = self.live.axes[2]
        x, y = m["plane_x"], m["plane_y"]
        ax.set_title("NNGP decision regions")
        self.region.set_data(np.ma.masked_invalid(m["nngp_region"]))
        self.region.set_extent((x[0], x[-1], y[0], y[-1]))
        self.train.set_offsets(m["train_xy"])
        self.train.set_facecolor([PALETTE[0] if y > 0 else PALETTE[1] for y in np.ravel(m["train_y"])])
        if self.boundary is not None:
            self.boundary.remove()
            self.boundary = None
        bayes = np.asarray(m["bayes_region"], float)
        if np.nanmin(bayes) < 0 < np.nanmax(bayes):
            self.boundary = ax.contour(x, y, np.nan_to_num(bayes), levels=[0.0], colors="black", linewidths=1)
        ax.set(xlim=(x[0], x[-1]), ylim=(y[0], y[-1]))
