"""Priors and posteriors panel: GP versus Student-t process bands with an outlier, heavy and light prior samples, a
gradient-descent ensemble against its predicted t law, and the excess kurtosis of finite networks against L / n
(`workbench.experiments.bayesian_wide`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes

from widgets.live import PALETTE
from widgets.panel import Help, Panel
from workbench.core.experiment import Record
from workbench.experiments import bayesian_wide

ALT = (
    "Top left: NNGP (GP) posterior mean and 95% band against the input angle, training points in black. Top middle: "
    "the Student-t process band with the same mean; dashed, its band without the outlier. Top right: prior function "
    "samples of the t-process, heavy tails (alpha = beta = 1/2) and light (2). Bottom left: histograms of the "
    "ensemble's outputs at one input at initialisation, after training the last layer and after training all "
    "layers, each with its predicted t density. Bottom middle: excess kurtosis of random critical networks against "
    "depth over width, Monte Carlo with 3 standard errors, theory as crosses and a line. Bottom right: band ratios "
    "and test results in text."
)

HELP = Help(
    what="A prior sigma^2 ~ InvGamma(alpha, beta) on the variance of the last layer turns an infinitely wide network "
    "into a Student-t process (Lee, Yun, Yang & Lee 2022). Its posterior has the NNGP's mean but error bars scaled "
    "by (2 beta + q) / (2 alpha + n), q = y^T K^-1 y: they depend on the data. Below: an ensemble of finite "
    "networks trained by gradient descent, each with its own last-layer scale, and the excess kurtosis of random "
    "networks at finite width (Roberts, Yaida & Hanin).",
    try_="Tick 'outlier': the t bands widen, the GP bands do not move. Lower alpha and beta towards 1/2 for heavier "
    "tails; raise both to 1000: the t-process becomes the GP. Switch the activation to tanh and compare the "
    "kurtosis slopes. With the outlier the trained ensemble (width 256) drifts off its t law: large targets take "
    "a narrow network out of the lazy regime; raise the width.",
    theory="Prior variance beta / (alpha - 1) K(x, x); the ensemble follows t_{2 alpha}(mu_NTK, (beta / alpha) "
    "Sigma_NTK) at infinite width. At width n the output's excess kurtosis is 3 V / (n K^2), of order L / n: "
    "15 L / n for ReLU at criticality, about 2 L / n for tanh; higher orders bend the ReLU points upwards "
    "beyond L / n of about 0.1 (exactly 3 ((1 + 5/n)^L - 1)). Why the t band is wider than the GP band even "
    "without an outlier (3.8 times at the defaults): the GP fixes the output scale sigma^2 = 1, the t-process "
    "learns it from the data. Here q = y^T K^-1 y = 78 for n = 4 points: the targets sin(3 theta) vary far more "
    "than the NNGP prior expects, so the scale factor is sqrt((2 beta + q) / (2 alpha + n)) = 3.2, times 1.18 "
    "for the t_8 quantile against the Gaussian's (2.31 / 1.96); the text box splits the ratio the same way. "
    "With eps = 0.1 (q = 19) the ratio falls to 2.0.",
)

TRAINED = (("none", "initial"), ("last", "last layer"), ("all", "all layers"))


class BayesianWidePanel(Panel[bayesian_wide.Config]):
    title = "Priors and posteriors"
    experiment = bayesian_wide
    help = HELP
    quick = dict(members=8, width=32, steps=20, networks=200, kurtosis_depths=(1,), kurtosis_widths=(10,))
    form_options = dict(
        advanced=("weight_std", "n_train", "noise", "width", "steps", "lr", "kurtosis_depths", "kurtosis_widths")
    )
    figure_options = dict(nrows=2, ncols=3, figsize=(8.0, 5.2))
    alt = ALT

    def setup(self, axes: list[Axes]) -> None:
        g, t, p, h, k, txt = axes
        self.bands = {}
        for ax, name, color in ((g, "gp", PALETTE[0]), (t, "t", PALETTE[1])):
            (mean,) = ax.plot([], [], color=color, lw=1.2)
            (lo,) = ax.plot([], [], color=color, lw=0.8)
            (hi,) = ax.plot([], [], color=color, lw=0.8)
            (pts,) = ax.plot([], [], "o", color="black", ms=3)
            self.bands[name] = (mean, lo, hi, pts)
            ax.set(xlabel="input angle", ylabel="f", xlim=(-np.pi, np.pi))
        g.set_title("GP (NNGP) posterior")
        t.set_title("t-process posterior")
        self.clean = [t.plot([], [], ls="--", color="grey", lw=0.8)[0] for _ in range(2)]
        self.prior = {
            name: [p.plot([], [], color=c, lw=0.8, alpha=0.8)[0] for _ in range(5)]
            for name, c in (("heavy", PALETTE[3]), ("light", PALETTE[2]))
        }
        p.plot([], [], color=PALETTE[3], label="heavy: alpha = beta = 1/2")
        p.plot([], [], color=PALETTE[2], label="light: alpha = beta = 2")
        p.set(xlabel="input angle", ylabel="f", title="prior samples", xlim=(-np.pi, np.pi))
        p.legend(fontsize=7, loc="upper left")
        h.set(xlabel="f(x*)", ylabel="density", title="ensemble at x*")
        k.set(xlabel="L / n", ylabel="excess kurtosis", title="excess kurtosis at width n")
        txt.axis("off")
        self.text = txt.text(0.0, 1.0, "", va="top", ha="left", fontsize=7, family="monospace", transform=txt.transAxes)

    def clear(self) -> None:
        for lines in list(self.bands.values()) + list(self.prior.values()) + [self.clean]:
            for line in lines:
                line.set_data([], [])
        for ax in self.live.axes[3:5]:
            ax.cla()
        self.text.set_text("")

    def draw(self, record: Record) -> None:
        m = record.metrics
        g, t, p, h, k, _ = self.live.axes
        for name in ("gp", "t"):
            mean, lo, hi, pts = self.bands[name]
            mean.set_data(m["grid"], m["mean"])
            lo.set_data(m["grid"], m[f"{name}_lo"])
            hi.set_data(m["grid"], m[f"{name}_hi"])
            pts.set_data(m["x_train"], m["y_train"])
        for line, key in zip(self.clean, ("t_lo_clean", "t_hi_clean")):
            line.set_data(m["grid"], m[key])
        top = max(np.max(np.abs(m["t_hi"])), np.max(np.abs(m["t_lo"])), np.max(np.abs(m["y_train"])))
        for ax in (g, t):
            ax.set_ylim(-1.05 * top, 1.05 * top)  # the same scale: the widths compare by eye
        if "prior_heavy" in m:
            for name in ("heavy", "light"):
                for line, sample in zip(self.prior[name], m[f"prior_{name}"]):
                    line.set_data(m["grid"], sample)
            spread = np.percentile(np.abs(m["prior_light"]), 99)
            p.set_ylim(-3 * spread, 3 * spread)
        config = self.running_config or self.config
        scale = np.sqrt((2 * config.beta + m["q"]) / m["df"])  # the t posterior's scale factor (help, theory)
        lines = [
            "95% band widths",
            f"  t / GP at angle pi: {m['t_over_gp']:.2f}",
            f"  = scale {scale:.2f} x quantile {m['t_over_gp'] / scale:.2f}",
            f"  far / near: GP {m['ood_gp']:.2f}, t {m['ood_t']:.2f}",
            f"q = y^T K^-1 y = {m['q']:.3g}, df = {m['df']:.0f}",
            f"log lik: t {m['loglik_t']:.2f}, GP {m['loglik_gp']:.2f}",
        ]
        if "ens_all" in m:
            self._histograms(h, m)
            lines += ["KS p-value against the t law:"] + [f"  {label}: {m[f'ks_{key}']:.2g}" for key, label in TRAINED]
        if "kurt_mc" in m:
            self._kurtosis(k, m)
            z = np.abs(m["kurt_mc"] - m["kurt_theory"]) / m["kurt_se"]
            lines.append(f"kurtosis within 3 SE: {int(np.sum(z < 3))} of {len(z)}")
        self.text.set_text("\n".join(lines))

    @staticmethod
    def _histograms(ax: Axes, m: dict[str, Any]) -> None:
        ax.cla()
        span = m["ens_span"]
        for i, (key, label) in enumerate(TRAINED):
            ax.hist(m[f"ens_{key}"], bins=24, range=(span[0], span[-1]), density=True, alpha=0.35, color=PALETTE[i])
            ax.plot(span, m[f"pdf_{key}"], color=PALETTE[i], lw=1.2, label=label)
        ax.set(xlabel="f(x*)", ylabel="density", title="ensemble at x* and its t law")
        ax.legend(fontsize=7)

    @staticmethod
    def _kurtosis(ax: Axes, m: dict[str, Any]) -> None:
        ax.cla()
        ax.errorbar(m["kurt_ratio"], m["kurt_mc"], yerr=3 * m["kurt_se"], fmt="o", ms=4, color=PALETTE[0], label="MC")
        ax.plot(m["kurt_ratio"], m["kurt_theory"], "x", color="black", label="3 V / (n K^2)")
        ax.plot([0.0, m["kurt_ratio"].max()], m["kurt_line"], color="grey", lw=1, label="slope at max depth")
        ax.set(xlabel="L / n", ylabel="excess kurtosis", title="excess kurtosis at width n")
        ax.legend(fontsize=7)
