"""Kernel explorer panel: infinite-width NNGP and NTK of an MLP, a CNN, a ResNet or a LayerNorm MLP
(`workbench.experiments.kernel_explorer`), recomputed in the background on every control change; the finite
networks' empirical NTK follows."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.axes import Axes

from widgets.live import round_limits
from widgets.panel import Help, Panel
from workbench.core.experiment import Record
from workbench.experiments import kernel_explorer
from workbench.experiments.kernel_explorer import SPECTRUM_FLOOR

HELP = Help(
    what="The infinite-width NNGP kernel $\\Sigma$ and neural tangent kernel $\\Theta$ of a deep network "
    "(Neal 1996; Lee et al. "
    "2018; Jacot et al. 2018) against the angle between two unit inputs, the correlation map that each layer "
    "applies, the normalized NTK on a data set and its eigenvalue spectrum. Black dots: the empirical NTK of "
    "finite networks of the chosen width: their mean over seeds with error bars of two standard errors (where "
    "the mean of 16 networks agrees with the curve), and short ticks at the mean plus and minus one network's "
    "spread. Architecture: an MLP; a CNN on the digits "
    "as 8x8 images (2x2 average pool, 3x3 convolutions, global average pool; the angle then runs between a 0 and "
    "a 1); a ResNet whose residual branches are scaled by 1/sqrt(depth); an MLP with LayerNorm after each Dense. "
    "The last three are `workbench.stax` descriptions: kernel_fn gives the curves, the same description's Flax "
    "network the dots.",
    try_="Raise the depth of a ReLU network from 1 to 10 and watch the correlation map turn flat. Switch to erf and "
    "raise sigma_w: the kernel decorrelates instead (the chaotic phase). Type your own activation, e.g. "
    "x * sigmoid(x): it is integrated by Gauss-Hermite quadrature. Lower the width to see the finite networks "
    "scatter around the curve. Pick the CNN with the digits: after the first eigenvalue its spectrum lies about "
    "ten times below the MLP's (global average pooling averages the kernel over pairs of pixel positions). At "
    "depth 10 the ResNet keeps the angle that the MLP forgets (K(pi/2)/K(0) about 0.45 against 0.88).",
    theory="Deep ReLU kernels forget the angle (every pair of inputs becomes correlated), which is why very deep "
    "ReLU networks are hard to train without care; the finite networks' NTK converges to the analytic curve "
    "with a spread that shrinks like $n^{-1/2}$.",
)


class KernelExplorerPanel(Panel[kernel_explorer.Config]):
    title = "Kernel explorer"
    quick = dict(n_points=24, seeds=2, width=64)
    experiment = kernel_explorer
    help = HELP
    figure_options = dict(nrows=2, ncols=2, figsize=(5.0, 4.6), min_interval=0.0)
    alt = (
        "Top left: NNGP and NTK against the angle between two inputs, with the empirical NTK of finite "
        "networks (mean over seeds with error bars of two standard errors, and ticks at the mean plus and minus one "
        "standard deviation over seeds). Top right: the "
        "correlation map K(theta)/K(0) against cos(theta). Bottom left: the normalized NTK on the data "
        "set. Bottom right: eigenvalues of both kernels on the data set relative to the largest, largest first, "
        "down to 1e-8."
    )

    def setup(self, axes: list[Axes]) -> None:
        a, c, m, s = axes
        (self.nngp,) = a.plot([], [], label="NNGP")
        (self.ntk,) = a.plot([], [], label="NTK")
        (self.emp,) = a.plot([], [], "o", ms=4, color="black", label="finite nets, 2 SE")
        self.emp_band = [a.plot([], [], "_", ms=8, color="black")[0] for _ in range(2)]
        (self.emp_err,) = a.plot([], [], color="black", lw=1.2)  # mean +- 2 standard errors, NaN-separated
        a.set(xlabel="angle theta between the inputs", ylabel="kernel value", title="kernel against angle")
        a.legend(loc="upper right", fontsize=7, handlelength=1.2)
        (self.nngp_c,) = c.plot([], [], label="NNGP")
        (self.ntk_c,) = c.plot([], [], label="NTK")
        c.plot([-1, 1], [-1, 1], ls=":", color="grey", lw=1)
        c.set(xlabel="cos theta (input)", ylabel="K(theta) / K(0)", title="correlation map", xlim=(-1, 1))
        c.legend(loc="lower right")  # below the diagonal at cos > 0: no activation's map goes there
        self.map = m.imshow(np.eye(2), cmap="viridis", vmin=-1, vmax=1, interpolation="nearest")
        m.set(title="normalized NTK on the data set", xticks=[], yticks=[])
        self.live.fig.colorbar(self.map, ax=m, shrink=0.8)
        (self.nngp_s,) = s.loglog([], [], label="NNGP")
        (self.ntk_s,) = s.loglog([], [], label="NTK")
        s.set(xlabel="rank", ylabel="eigenvalue / largest", title="spectrum on the data set")
        s.legend(loc="lower left")
        a.set_xlim(-0.05 * math.pi, 1.05 * math.pi)
        c.set_ylim(-1.05, 1.05)  # |K(theta)| <= K(0): the correlation map lies in the square
        s.set_ylim(SPECTRUM_FLOOR, 1.5)
        self.live.dynamic = [
            self.nngp,
            self.ntk,
            self.emp,
            *self.emp_band,
            self.emp_err,
            self.nngp_c,
            self.ntk_c,
            self.map,
            self.nngp_s,
            self.ntk_s,
        ]

    def draw(self, record: Record) -> None:
        m = record.metrics
        theta, cos = m["angle"], np.cos(m["angle"])
        self.nngp.set_data(theta, m["nngp_angle"])
        self.ntk.set_data(theta, m["ntk_angle"])
        self.nngp_c.set_data(cos, m["nngp_angle"] / m["nngp_angle"][0])
        self.ntk_c.set_data(cos, m["ntk_angle"] / m["ntk_angle"][0])
        if "empirical_ntk_mean" in m:
            mean, std = m["empirical_ntk_mean"], m["empirical_ntk_std"]
            self.emp.set_data(m["empirical_angle"], mean)
            for band, sign in zip(self.emp_band, (-1, 1)):
                band.set_data(m["empirical_angle"], mean + sign * std)
            seeds = (self.running_config or self.config).seeds
            se = std / np.sqrt(seeds - 1) if seeds > 1 else np.full_like(std, np.nan)  # std has ddof 0
            gap = np.full_like(mean, np.nan)
            self.emp_err.set_data(
                np.stack([m["empirical_angle"]] * 2 + [gap], 1).ravel(),
                np.stack([mean - 2 * se, mean + 2 * se, gap], 1).ravel(),
            )
        else:
            for line in [self.emp, self.emp_err] + self.emp_band:
                line.set_data([], [])
        self.map.set_data(m["ntk_map"])
        n = len(m["ntk_map"])
        self.map.set_extent((0, n, n, 0))
        for line, name in ((self.nngp_s, "nngp_eigenvalues"), (self.ntk_s, "ntk_eigenvalues")):
            ev = np.clip(m[name], 1e-12 * m[name][0], None)
            line.set_data(np.arange(1, len(ev) + 1), ev / ev[0])
        round_limits(self.live.axes[0], "y")  # the other limits are fixed: most changes keep every frame
        self.live.axes[3].set_xlim(0.8, 1.25 * n)
