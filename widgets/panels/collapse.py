"""Neural-collapse panel: NC1..NC4 and accuracies against step, per-layer NC1, the class-mean Gram
matrix beside the simplex ETF, class means and classifier rows in their top principal plane, and
||w_k|| against n_k with the general orthogonal frame predicted for the deep linear UFM
(`workbench.experiments.neural_collapse`)."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from widgets.live import PALETTE
from widgets.panel import Help, LivePanel
from workbench.core.experiment import Record
from workbench.experiments import neural_collapse

NC_NAMES = ("nc1", "nc2", "nc3", "nc4")
ALT = (
    "Top row: NC1 to NC4 against step on log axes; train (solid) and test (dashed) accuracy against step; "
    "NC1 of every hidden layer against step. Bottom row: cosines of the centred class means (below the "
    "diagonal) beside the simplex ETF value -1/(C-1) (above); class means (dots) and classifier rows "
    "(crosses) in the class means' top principal plane, unit Frobenius norm each; classifier row norms "
    "||w_k|| as bars against class size n_k, black diamonds the predicted frame (UFM)."
)

HELP = Help(
    what="Trained past zero training error, last-layer features collapse to their class means (NC1), the class "
    "means form a simplex equiangular tight frame (NC2), the classifier aligns with them (NC3) and the "
    "network decides like a nearest-class-centre rule (NC4) (Papyan, Han & Donoho 2020).",
    try_="Imbalanced class sizes with weight decay on the deep-linear model (ufm).",
    theory="The classifier-row norms follow the class sizes as the deep-linear theory predicts (black diamonds, "
    "Dang et al. 2023), and below a size threshold minority classes collapse onto each other.",
)


class CollapsePanel(LivePanel[neural_collapse.Config]):
    title = "Neural collapse"
    help = HELP
    quick = dict(dataset="ufm", class_sizes=(20, 10), dim=4, optimizer="sgd", lr=0.5, steps=80, record_every=20)
    experiment = neural_collapse
    form_options = dict(
        visible={
            "class_sizes": lambda c: c.dataset != "digits",
            "separation": lambda c: c.dataset == "gaussian",
            "width": lambda c: c.dataset != "ufm",
            "activation": lambda c: c.dataset != "ufm",
            "init_std": lambda c: c.dataset == "ufm",
        }
    )
    figure_options = dict(nrows=2, ncols=3, figsize=(8.0, 5.4), min_interval=0.25)
    alt = ALT

    def setup(self, axes: list[Axes]) -> None:
        self.nc = {name: axes[0].plot([], [], label=name, color=PALETTE[i])[0] for i, name in enumerate(NC_NAMES)}
        axes[0].set(yscale="log", xlabel="step", title="neural collapse metrics")
        axes[0].legend(loc="lower left")
        self.acc = [
            axes[1].plot([], [], label=name, ls=ls, color=PALETTE[0])[0]
            for name, ls in (("train", "-"), ("test", "--"))
        ]
        axes[1].set(xlabel="step", ylabel="accuracy", ylim=(0, 1.02), title="accuracy")
        axes[1].legend(loc="lower right")
        axes[2].set(yscale="log", xlabel="step", title="NC1 per hidden layer")
        self.gram = axes[3].imshow(np.zeros((2, 2)), cmap="RdBu_r", vmin=-1, vmax=1)
        self.live.fig.colorbar(self.gram, ax=axes[3], label="cosine", shrink=0.85)
        axes[3].set_title("class-mean cosines | simplex ETF")
        axes[4].set(aspect="equal", title="class means (o), classifier rows (x)")
        axes[4].axhline(0, color="#999999", lw=0.5)
        axes[4].axvline(0, color="#999999", lw=0.5)
        self.means = axes[4].scatter([], [], s=25, marker="o")
        self.rows = axes[4].scatter([], [], s=30, marker="x")
        axes[5].set(xlabel="class (size n_k)", ylabel="||w_k||", title="classifier norms")
        (self.prediction,) = axes[5].plot([], [], "D", color="black", ms=5, label="predicted frame")
        self.layers, self.bars = [], None

    def clear(self) -> None:
        config = self.running_config or self.config
        axes = self.live.axes
        for line in list(self.nc.values()) + self.acc + [self.prediction]:
            line.set_data([], [])
        for line in self.layers:
            line.remove()
        n_layers = config.model.depth
        self.layers = [
            axes[2].plot([], [], color=PALETTE[i % len(PALETTE)], label=f"layer {i + 1}")[0] for i in range(n_layers)
        ]
        axes[2].legend(loc="lower left")
        n_classes = 10 if config.dataset == "digits" else len(config.class_sizes)
        if self.bars is not None:
            self.bars.remove()
        self.bars = axes[5].bar(np.arange(n_classes), np.zeros(n_classes), color=PALETTE[2])
        axes[5].set_xlim(-0.6, n_classes - 0.4)
        colours = [PALETTE[i % len(PALETTE)] for i in range(n_classes)]
        self.means.set_offsets(np.zeros((0, 2)))
        self.rows.set_offsets(np.zeros((0, 2)))
        self.means.set_facecolor(colours)
        self.rows.set_color(colours)
        self.gram.set_data(np.zeros((n_classes, n_classes)))
        self.gram.set_extent((-0.5, n_classes - 0.5, n_classes - 0.5, -0.5))

    def draw(self, record: Record) -> None:
        m = record.metrics
        if "nc1" not in m:
            return
        axes = self.live.axes
        for name, line in self.nc.items():
            steps, values = self.history(name)
            line.set_data(steps, np.maximum(values, 1e-12))
        for line, name in zip(self.acc, ("train_acc", "test_acc")):
            line.set_data(*self.history(name))
        for i, line in enumerate(self.layers):
            steps, values = self.history("nc1_layers", i)
            line.set_data(steps, np.maximum(values, 1e-12))
        c = len(m["gram_M"])
        etf = np.where(np.eye(c), 1.0, -1.0 / (c - 1))
        self.gram.set_data(np.where(np.tril(np.ones((c, c))) > 0, m["gram_M"], etf))
        self.means.set_offsets(m["proj_M"][:, :2])
        self.rows.set_offsets(m["proj_W"][:, :2])
        assert self.bars is not None  # clear() made them for this run's classes
        for bar, height in zip(self.bars, m["w_norms"]):
            bar.set_height(height)
        sizes = m["class_sizes"].astype(int)
        axes[5].set_xticks(np.arange(c), [str(n) for n in sizes])
        if "gof_w_norms" in m:
            self.prediction.set_data(np.arange(c), m["gof_w_norms"])
        top = max(float(np.max(m["w_norms"])), float(np.max(m.get("gof_w_norms", 0.0)))) * 1.15 or 1.0
        axes[5].set_ylim(0, top)
        lim = 1.1 * max(float(np.abs(m["proj_M"][:, :2]).max()), float(np.abs(m["proj_W"][:, :2]).max()), 1e-6)
        axes[4].set(xlim=(-lim, lim), ylim=(-lim, lim))
        for ax in (axes[0], axes[1], axes[2]):
            self.rescale(ax)
        axes[1].set_ylim(0, 1.02)
