"""Locality panel: learning-curve exponents of local, convolutional and deep hierarchical CNN kernels in
teacher-student kernel regression (Favero, Cagnetta & Wyart 2021; Cagnetta, Favero & Wyart 2023;
`workbench.experiments.locality`)."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from widgets.live import PALETTE
from widgets.panel import Help, Panel
from workbench.core.experiment import Record
from workbench.experiments import locality

HELP = Help(
    what="Kernel regression of a Gaussian random target whose covariance is a teacher kernel (local or "
    "convolutional, filter t; or a deep CNN reading one meta-patch or the whole input) by a student kernel (fully "
    "connected, local or convolutional with filter s, or a deep CNN with filter = stride s). Left: the test error "
    "against n (dots: mean with 3 standard errors over trials) with its fitted power law, the papers' slope and the "
    "eigenlearning prediction from the student's spectrum (dashed). Middle: the student's eigenvalues and the "
    "target's power in each eigenmode; for a deep student its leading eigenvalues coloured by the layer of the "
    "meta-patches their eigenfunctions live on. Right: the fitted exponent beta against d for each student, or "
    "against the effective dimension of the meta-patch the target reads (deep student), with the predictions (lines).",
    try_="Switch the student to fc: beta falls to about 1/d, and falls further as d grows (right). Raise s to 3: "
    "beta drops to about 1/3 at every d. Choose student deep and teacher deep, then level 1 or 2: a target on one "
    "meta-patch is learnt much faster than the whole input (level 0). With a deep student the middle plot groups "
    "the spectrum: the largest eigenvalues belong to single patches (layer 1), then to pairs of neighbours.",
    theory="Local or convolutional student with s >= t: beta = alpha_t / s, independent of d (2106.08619); fully "
    "connected: alpha_t / d; Laplace kernels and the ReLU NTK have alpha = 1. A deep CNN student learns a target on "
    "a meta-patch of effective dimension d_eff = (s - 1) s^(l-1) at beta = alpha_t / d_eff (2208.01003): adapting "
    "to the target's scale, but cursed (beta ~ 1/d) for a target of the whole input.",
)


class LocalityPanel(Panel[locality.Config]):
    title = "Locality"
    experiment = locality
    help = HELP
    quick = dict(n_min=16, n_max=64, sizes=3, trials=2, test=64, points=256, d_values="6,8")
    form_options = dict(
        visible={
            "t": lambda c: True,
            "depth": lambda c: c.student == "deep" or c.teacher == "deep",
            "level": lambda c: c.teacher == "deep",
            "base": lambda c: c.student != "deep" or c.teacher != "deep",
            "d_values": lambda c: c.sweep and c.student != "deep",
        },
        advanced=("ridge", "test", "points", "seed"),
    )
    figure_options = dict(nrows=1, ncols=3, figsize=(8.0, 3.0))
    alt = (
        "Left: test MSE against training set size n on log-log axes: simulated means with error bars, the fitted power "
        "law (solid), the eigenlearning prediction (dashed) and a line of the predicted slope (dotted). Middle: the "
        "student's eigenvalues and the target's power per eigenmode against rank (a deep student's eigenvalues as dots "
        "coloured by the layer of the meta-patches their eigenfunctions live on). Right: fitted beta with error bars "
        "against d for the fc, lc and cn students (or against the effective dimension of the target's meta-patch "
        "for a deep student), with the predicted beta as lines."
    )

    def setup(self, axes: list[Axes]) -> None:
        c, s, b = axes
        self.sim = None
        (self.fit,) = c.plot([], [], color=PALETTE[0], label="fit")
        (self.theory,) = c.plot([], [], color="grey", ls=":", label="predicted slope")
        (self.eigen,) = c.plot([], [], color=PALETTE[1], ls="--", label="eigenlearning")
        c.set(xscale="log", yscale="log", xlabel="training set n", ylabel="test MSE", title="learning curve")
        (self.lam,) = s.plot([], [], color=PALETTE[0], label="eigenvalue $\\lambda_i$")
        (self.power,) = s.plot([], [], ".", ms=2, color=PALETTE[1], label="target power $v_i^2$")
        s.set(xscale="log", yscale="log", xlabel="rank i", title="student spectrum")
        self.bars: list = []
        self.groups: list = []
        b.set(xlabel="d", ylabel="fitted beta", title="beta against the dimension")

    def draw(self, record: Record) -> None:
        m = record.metrics
        c, s, b = self.live.axes
        n = np.asarray(m["n"])
        if self.sim is not None:
            self.sim.remove()
        self.sim = c.errorbar(n, m["test"], yerr=3 * np.asarray(m["test_sem"]), fmt="o", ms=3, color="black",
                              label="simulation")  # fmt: skip
        mid = np.exp(np.mean(np.log(m["test"])))
        center = np.exp(np.mean(np.log(n)))
        self.fit.set_data(n, mid * (n / center) ** -m["beta"])
        self.theory.set_data(n, 0.6 * mid * (n / center) ** -m["beta_theory"])
        c.set_title(f"beta = {m['beta']:.2f} $\\pm$ {m['beta_err']:.2f} (predicted {m['beta_theory']:.2f})", fontsize=8)
        if "eigen_test" in m:
            self.eigen.set_data(n, m["eigen_test"])
            self.eigen.set_label(f"eigenlearning (slope {m['eigen_beta']:.2f})")
            rank = np.arange(1, len(m["eigenvalues"]) + 1)
            self.lam.set_data(rank, m["eigenvalues"])
            self.power.set_data(rank, np.maximum(m["power"], 1e-30))
            self._groups(s, m)
            self.rescale(s)
            s.legend(fontsize=6)
        c.legend(fontsize=6)
        self.rescale(c)
        if "sweep_beta" in m:
            self._sweep(b, m)

    def _groups(self, ax: Axes, m: dict) -> None:
        """A deep student's leading eigenvalues coloured by the layer of the meta-patches they live on."""
        for artist in self.groups:
            artist.remove()
        self.groups = []
        grouped = "mode_levels" in m
        self.lam.set_visible(not grouped)
        if not grouped:
            ax.set_title("student spectrum")
            return
        levels, lam = np.asarray(m["mode_levels"]), np.asarray(m["mode_eigenvalues"])
        rank = np.arange(1, len(lam) + 1)
        s = self.running_config.s if self.running_config is not None else 2
        for level in np.unique(levels):
            name = "constant" if level == 0 else f"layer {level} ($d_{{eff}}$ = {(s - 1) * s ** (level - 1)})"
            pick = levels == level
            color = "grey" if level == 0 else PALETTE[(level + 1) % len(PALETTE)]
            self.groups += ax.plot(rank[pick], lam[pick], "o", ms=3, color=color, label=name)
        ax.set_title("spectrum by meta-patch", fontsize=8)

    def _sweep(self, ax: Axes, m: dict) -> None:
        for artist in self.bars:
            artist.remove()
        self.bars = []
        x = np.asarray(m["sweep_x"])
        config = self.running_config or self.config  # a stored run is drawn with its own config
        deep = config.student == "deep"
        names = ["deep student"] if deep else ["fc", "lc", "cn"][: len(m["sweep_beta"])]
        for i, (name, beta, err, theory) in enumerate(zip(names, m["sweep_beta"], m["sweep_err"], m["sweep_theory"])):
            color = PALETTE[i % len(PALETTE)]
            self.bars.append(ax.errorbar(x, beta, yerr=err, fmt="o", ms=4, capsize=2, color=color, label=name))
            self.bars += ax.plot(x, theory, color=color, lw=1)
        ax.set_xlabel("effective dimension of the target's meta-patch" if deep else "input dimension d")
        ax.legend(fontsize=6)
        self.rescale(ax)
