"""Permutations panel (Giapitzakis, Back de Luca & Fountoulakis 2025, arXiv 2502.16763): the accuracy of an ensemble
of wide two-layer ReLU networks against its size, and the models needed for accuracy >= 1 - delta against k, beside
the repository's counts and the paper's k log k and k^2 rates (`workbench.experiments.permutations`)."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from widgets.live import PALETTE
from widgets.panel import Help, LivePanel
from workbench.core.experiment import Record
from workbench.experiments import permutations
from workbench.theory.permutations import REPOSITORY

ALT = (
    "Left: accuracy on the test inputs with two ones against the number of networks averaged, one line per trial at "
    "the largest k, the target 1 - delta dashed. Right: networks needed for that accuracy against k (mean and sd "
    "over trials), the repository's counts (crosses) and the paper's rates c k log k and c k^2 fitted to the means."
)

HELP = Help(
    what="Two-layer ReLU networks trained on the k basis vectors e_i -> P e_i are averaged and the average "
    "thresholded at 0; a test input with two ones is right when all k outputs are. Width 0 draws every member from "
    "its infinite-width law (a Gaussian process), so an ensemble of any size costs one sample per member.",
    try_="Compare sp (the repository's training) with ntk (the paper's parametrization); set a width to train "
    "finite networks; lower delta; raise weight_std (the members' noise grows, their mean does not).",
    theory="The mean member has the right sign on every output, so the ensemble learns P exactly as it grows. "
    "Ensemble complexity: O(k log k) for one test input, O(k^2) for all inputs at once (Giapitzakis et al. 2025).",
)


class PermutationsPanel(LivePanel[permutations.Config]):
    title = "Permutations"
    help = HELP
    quick = dict(k=10, seeds=2, max_models=400)
    experiment = permutations
    figure_options = dict(nrows=1, ncols=2, figsize=(8.0, 3.2))
    alt = ALT

    def setup(self, axes: list[Axes]) -> None:
        acc, need = axes
        acc.set(xlabel="networks averaged M", ylabel="test accuracy", ylim=(0, 1.02), title="accuracy vs ensemble")
        self.target = acc.axhline(0.9, ls="--", color="#999999", lw=1, label="1 - delta")
        self.curves: list = []
        need.set(xlabel="k", ylabel="networks needed", title="networks needed vs k")
        self.needed = need.errorbar([], [], yerr=[], fmt="o-", color=PALETTE[0], ms=4, label="this run")
        (self.repo,) = need.plot([], [], "x", color="black", label="repository (1 trial)")
        (self.klogk,) = need.plot([], [], "--", color=PALETTE[1], lw=1, label="c k log k (one input)")
        (self.k2,) = need.plot([], [], ":", color=PALETTE[2], lw=1, label="c k^2 (all inputs)")
        need.legend(fontsize=7, loc="upper left")

    def clear(self) -> None:
        config = self.running_config or self.config
        self.target.set_ydata([1 - config.delta] * 2)
        for line in self.curves:
            line.remove()
        self.curves = []
        for line in (self.repo, self.klogk, self.k2):
            line.set_data([], [])
        self._errorbars([], [], [])

    def _errorbars(self, ks, mean, sd) -> None:
        """Move the error-bar artist to the points (ks, mean +- sd)."""
        line, _, (bars,) = self.needed.lines
        line.set_data(ks, mean)
        bars.set_segments([[(k, m - s), (k, m + s)] for k, m, s in zip(ks, mean, np.nan_to_num(sd))])

    def draw(self, record: Record) -> None:
        rows = self.points()
        if not rows:
            return
        acc, need = self.live.axes
        last = rows[-1]
        for line in self.curves:
            line.remove()
        self.curves = [
            acc.plot(np.arange(1, a.size + 1), a, color=PALETTE[0], lw=0.8, alpha=0.6)[0] for a in last["accuracy"]
        ]
        acc.set_title(f"accuracy vs ensemble, k = {last['k']}", fontsize=9)
        ks = [p["k"] for p in rows]
        self._errorbars(ks, [p["needed_mean"] for p in rows], [p["needed_sd"] for p in rows])
        shown = [k for k in sorted(REPOSITORY) if k <= max(ks)]
        self.repo.set_data(shown, [REPOSITORY[k] for k in shown])
        if record.kind == "summary":
            self.klogk.set_data(record.metrics["ks"], record.metrics["rate_k_log_k"])
            self.k2.set_data(record.metrics["ks"], record.metrics["rate_k2"])
        for ax in (acc, need):
            ax.relim(visible_only=True)
            ax.autoscale_view()
        acc.set_ylim(0, 1.02)
