"""Deep kernel machine panel: learned Grams against the NNGP's as nu varies (Yang et al., ICML 2023,
`workbench.experiments.deep_kernel_machine`)."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.image import AxesImage

from widgets.live import PALETTE
from widgets.panel import Help, Panel
from workbench.core.experiment import Record
from workbench.experiments import deep_kernel_machine as dkm_experiment

HELP = Help(
    what="A deep kernel machine (Yang et al. 2023) learns one Gram matrix per layer over inducing points, "
    "trading the likelihood of the labels against nu times the KL divergence of each Gram from the kernel"
    " map of the layer below (the NNGP's prior). Top: the last layer's learned Gram at the chosen nu "
    "beside the NNGP's and their difference. Bottom: the objective and its likelihood and KL terms over "
    "the gradient-descent steps; test accuracy (or NLL) against nu with the NNGP's as a line; the Grams' "
    "distance from the NNGP's against nu.",
    try_="Slide nu up to 1e6: the learned Grams become the NNGP's and the distance falls as 1/nu (slope -1 in "
    "the title). Slide it down to 1e-2: the KL barely counts, the Grams move to fit the labels. On the "
    "two-sines toy compare the best nu's accuracy with the NNGP's line; try task 'sine' for the Gaussian "
    "likelihood (NLL).",
    theory="With nu -> infinity the objective's maximum is the NNGP (each G_l = K(G_{l-1}), at distance "
    "O(1/nu)); finite nu is representation learning: the Bayesian representation limit of a deep network "
    "or deep GP whose widths N_l = nu_l N grow with N while the likelihood keeps its weight (nu_l is a "
    "width ratio).",
)


class DeepKernelMachinePanel(Panel[dkm_experiment.Config]):
    title = "Deep kernel machine"
    experiment = dkm_experiment
    help = HELP
    quick = dict(n_train=40, n_test=40, inducing=8, layers=1, steps=20, nus=2, seeds=2, samples=4)
    form_options = dict(
        visible={"noise": lambda c: c.task == "sine"},
        advanced=("bias_std", "samples", "optimizer", "lr", "seed"),
    )
    figure_options = dict(nrows=2, ncols=3, figsize=(8.0, 5.4))
    alt = (
        "Top left: the learned Gram matrix of the last layer at the chosen nu over the inducing points; top middle: "
        "the NNGP's Gram at the same points (each on its own colour scale, its range in the title: at small nu the "
        "learned Gram's scale can be several times smaller); top right: their difference. Bottom left: the objective "
        "per training point over the gradient-descent steps with its expected log-likelihood and KL terms. Bottom "
        "middle: test accuracy (or NLL) against nu with standard-error bars, the NNGP's as a dashed line. Bottom "
        "right: the relative Frobenius distance of each layer's learned Gram from the NNGP's against nu (log-log), "
        "with a 1/nu guide."
    )

    def setup(self, axes: list[Axes]) -> None:
        learned, nngp, diff, trace, score, dist = axes
        self.images: dict[str, AxesImage] = {}
        for ax, name in ((learned, "learned"), (nngp, "NNGP"), (diff, "learned - NNGP")):
            self.images[name] = ax.imshow(
                np.zeros((2, 2)), cmap="RdBu_r" if name.startswith("learned -") else "viridis"
            )
            ax.set(title=f"{name} Gram", xticks=[], yticks=[])
        (self.objective,) = trace.plot([], [], color="black", label="objective / n")
        (self.ll,) = trace.plot([], [], color=PALETTE[0], label="log-likelihood / n")
        (self.kl,) = trace.plot([], [], color=PALETTE[1], label="- KL terms / n")
        trace.set(xlabel="gradient-descent step", ylabel="per training point", title="objective's terms")
        self.bars = None
        self.nngp_line = score.axhline(np.nan, color="grey", ls="--", label="NNGP")
        self.nu_now = score.axvline(np.nan, color="grey", lw=0.8)
        score.set(xscale="log", xlabel="nu", title="test score against nu")
        self.dist_lines: list = []
        (self.guide,) = dist.plot([], [], color="grey", ls=":", label="1/nu")
        dist.set(xscale="log", yscale="log", xlabel="nu", ylabel="||G - G_NNGP||_F / ||G_NNGP||_F", title="distance")

    def clear(self) -> None:
        for line in (self.objective, self.ll, self.kl, self.guide, *self.dist_lines):
            line.set_data([], [])
        self.nngp_line.set_ydata([np.nan] * 2)
        if self.bars is not None:
            self.bars.remove()
            self.bars = None

    def draw(self, record: Record) -> None:
        learned, nngp, diff, trace, score, dist = self.live.axes
        points = self.points()
        chosen = next((p for p in points if "grams" in p), None)
        if chosen is not None:
            g, k = np.asarray(chosen["grams"])[-1], np.asarray(chosen["nngp_grams"])[-1]
            self._image("learned", g, g.min(), g.max())  # each on its own scale, named in its title: the learned
            self._image("NNGP", k, k.min(), k.max())  # Gram's scale can be several times smaller than the NNGP's
            spread = max(np.abs(g - k).max(), 1e-12)
            self._image("learned - NNGP", g - k, -spread, spread)
            steps = np.arange(len(chosen["trace_objective"]))
            self.objective.set_data(steps, chosen["trace_objective"])
            self.ll.set_data(steps, chosen["trace_ll"])
            self.kl.set_data(steps, -np.asarray(chosen["trace_kl"]))
            trace.set_title(f"objective's terms at nu = {chosen['nu']:.3g}", fontsize=8)
            self.rescale(trace)
            trace.legend(fontsize=6, loc="best")  # the terms rise or fall with nu: placed where the lines are not
        self._scores(score, points)
        self._distances(dist, points, record)

    def _image(self, name: str, values: np.ndarray, low: float, high: float) -> None:
        image = self.images[name]
        image.set_data(values)
        image.set_extent((-0.5, values.shape[1] - 0.5, values.shape[0] - 0.5, -0.5))
        image.set_clim(low, high)
        image.axes.set_title(f"{name} Gram\n[{low:.2g}, {high:.2g}]", fontsize=9)

    def _scores(self, ax: Axes, points: list[dict]) -> None:
        """Test accuracy (classification) or NLL against nu, the NNGP's as a line."""
        key = "test_acc" if points and "test_acc" in points[0] else "test_nll"
        nngp = [p for p in points if p["nu"] >= dkm_experiment.NNGP_NU]
        dkms = sorted((p for p in points if p["nu"] < dkm_experiment.NNGP_NU), key=lambda p: p["nu"])
        if nngp:
            self.nngp_line.set_ydata([nngp[0][key]] * 2)
        if self.bars is not None:
            self.bars.remove()
            self.bars = None
        if dkms:
            nu, value, sem = (np.array([p[k] for p in dkms]) for k in ("nu", key, f"{key}_sem"))
            self.bars = ax.errorbar(nu, value, yerr=sem, color=PALETTE[0], marker="o", ms=4, capsize=2, label="DKM")
        config = self.running_config
        if config is not None:
            self.nu_now.set_xdata([config.nu] * 2)
        ax.set_ylabel("test accuracy" if key == "test_acc" else "test NLL per point")
        ax.legend(fontsize=6, loc="best")
        ax.set_xlim(*dkm_experiment.NU_GRID)
        values = [p[key] for p in points]
        if values:
            low, high = min(values), max(values)
            pad = 0.1 * max(high - low, 1e-3)
            ax.set_ylim(low - 2 * pad, high + 2 * pad)

    def _distances(self, ax: Axes, points: list[dict], record: Record) -> None:
        """Each layer's relative Frobenius distance from the NNGP against nu, and the fitted slope."""
        dkms = sorted((p for p in points if p["nu"] < dkm_experiment.NNGP_NU), key=lambda p: p["nu"])
        if not dkms:
            return
        nu = np.array([p["nu"] for p in dkms])
        dist = np.array([np.asarray(p["distance"]) for p in dkms])
        while len(self.dist_lines) < dist.shape[1]:
            i = len(self.dist_lines)
            self.dist_lines += ax.plot(
                [], [], marker="o", ms=3, color=PALETTE[i % len(PALETTE)], label=f"layer {i + 1}"
            )
        for i, line in enumerate(self.dist_lines):
            line.set_data(nu, dist[:, i] if i < dist.shape[1] else [])
        tail = nu >= dkm_experiment.SLOPE_FROM
        self.guide.set_data(nu[tail], dist[-1].mean() * nu[-1] / nu[tail])
        if record.kind == "summary":
            slope = np.asarray(record.metrics["slope"])
            ax.set_title("distance; slope " + ", ".join(f"{s:.2f}" for s in slope), fontsize=8)
        ax.legend(fontsize=6, loc="lower left")
        ax.set_xlim(*dkm_experiment.NU_GRID)
        positive = dist[dist > 0]
        if positive.size:
            ax.set_ylim(0.3 * positive.min(), 3 * positive.max())
