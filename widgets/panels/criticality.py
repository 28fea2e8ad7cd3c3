"""Criticality panels (Poole et al. 2016; Schoenholz et al. 2017; Klambauer et al. 2017): the phase diagram
over (sigma_w^2, sigma_b^2) whose clicked point shows its depth profile (theory and sampled finite networks),
and SELU's moment-map flow (`workbench.experiments.phase_diagram`, `workbench.experiments.selu_flow`)."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backend_bases import MouseEvent

from widgets.live import PALETTE
from widgets.panel import C, Help, Panel
from workbench.core.experiment import Record
from workbench.experiments import phase_diagram, selu_flow

PHASE_ALT = (
    "Left: log chi_1 over sigma_w^2 (x) and sigma_b^2 (y), blue ordered, red chaotic, white where q* "
    "diverges; black line chi_1 = 1 (order to chaos); the cross is the selected point (click to move it). "
    "Middle: correlation of two inputs against layer, theory (line) and sampled finite networks (dots). "
    "Right: squared gradient norm with respect to each layer's pre-activations, theory and networks."
)
SELU_ALT = (
    "Arrows: a third of one layer's change of (mean, variance) of the activations under the moment map; orange path: "
    "the trajectory from the selected start (click to move it); black diamond: the fixed point the map settles at "
    "((0, 1) for omega = 0, tau = 1)."
)


def _click(panel: Panel[C], ax: Axes, fields: tuple[str, str]) -> None:
    """Move two fields of the panel's config to a click inside `ax`."""

    def on_press(event: MouseEvent) -> None:
        if event.inaxes is ax and event.xdata is not None:
            x, y = (float(f"{v:.3g}") for v in (event.xdata, event.ydata))  # what a user would type
            panel.form.set_config(panel.config.replace(**{fields[0]: x, fields[1]: y}))

    panel.live.canvas.mpl_connect("button_press_event", on_press)


PHASE_HELP = Help(
    what="Where a deep network keeps two inputs apart: log chi_1 over the weight and bias variances (blue "
    "ordered, red chaotic); the black line is the edge of chaos. Click a point to see how two inputs' "
    "correlation and the gradient norm evolve through its layers, in theory and in sampled networks.",
    try_="Click in the blue region (correlation goes to 1: inputs become indistinguishable), then in the red "
    "(gradients explode), then on the line (both survive for many layers).",
    theory="chi_1 = 1 separates order from chaos; the depth scales xi_c and xi_q diverge on the line, so "
    "only near it can deep networks train (Schoenholz et al. 2017).",
)


class PhaseDiagramPanel(Panel[phase_diagram.Config]):
    title = "Phase diagram"
    quick = dict(grid=8, depth=5, width=16, seeds=2)
    experiment = phase_diagram
    help = PHASE_HELP
    figure_options = dict(nrows=1, ncols=3, figsize=(8.0, 3.0))
    alt = PHASE_ALT

    def __init__(self, config: phase_diagram.Config | None = None) -> None:
        super().__init__(config)
        _click(self, self.live.axes[0], ("sigma_w2", "sigma_b2"))

    def setup(self, axes: list[Axes]) -> None:
        self.image = axes[0].imshow(np.zeros((2, 2)), origin="lower", aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1)
        self.live.fig.colorbar(self.image, ax=axes[0], label="log chi_1", shrink=0.85)
        (self.line,) = axes[0].plot([], [], color="black", lw=1.5, label="chi_1 = 1")
        (self.point,) = axes[0].plot([], [], "x", color="black", ms=10, mew=2)
        axes[0].set(xlabel="sigma_w^2", ylabel="sigma_b^2", title="order (blue) to chaos (red)")
        (self.c_theory,) = axes[1].plot([], [], color=PALETTE[0], label="theory")
        (self.c_net,) = axes[1].plot([], [], "o", ms=3, color=PALETTE[1], label="finite networks")
        axes[1].set(xlabel="layer", ylabel="correlation c_l", ylim=(-0.05, 1.05), title="correlation of two inputs")
        axes[1].legend(fontsize=7)
        (self.g_theory,) = axes[2].plot([], [], color=PALETTE[0], label="theory")
        (self.g_net,) = axes[2].plot([], [], "o", ms=3, color=PALETTE[1], label="finite networks")
        axes[2].set(xlabel="layer", ylabel="||df/dh_l||^2", yscale="log", title="gradient norm")

    def draw(self, record: Record) -> None:
        m, config = record.metrics, self.running_config
        assert config is not None  # a record is drawn under the config of its run
        w2, b2 = m["sigma_w2_grid"], m["sigma_b2_grid"]
        self.image.set_data(m["log_chi_1"])
        self.image.set_extent((w2[0], w2[-1], b2[0], b2[-1]))
        self.line.set_data(m["critical_w2"], b2)
        self.point.set_data([config.sigma_w2], [config.sigma_b2])
        profile = "c" in m
        self.c_theory.set_data(m["layers"], m["c_theory"]) if profile else self.c_theory.set_data([], [])
        self.c_net.set_data(m["layers"], m["c"]) if profile else self.c_net.set_data([], [])
        self.g_theory.set_data(m["layers"], m["grad2_theory"]) if profile else self.g_theory.set_data([], [])
        self.g_net.set_data(m["layers"], m["grad2"]) if profile else self.g_net.set_data([], [])
        if profile:
            for ax in self.live.axes[1:]:
                self.rescale(ax)
            self.live.axes[1].set_ylim(min(-0.05, float(np.nanmin(m["c"])) - 0.05), 1.05)
        self.show_message(
            f"selected point: {m['phase']}, chi_1 = {m['chi_1']:.4g}, q* = {m['q_star']:.3g}, "
            f"c* = {m['c_star']:.3g}, xi_q = {m['xi_q']:.3g}, xi_c = {m['xi_c']:.3g} layers",
            error=False,
        )


SELU_HELP = Help(
    what="How the mean and variance of a layer's activations change from one layer to the next in a SELU "
    "network: grey arrows (a third of one layer's step), the path from the chosen start (orange), "
    "and the fixed point the map settles at (black diamond; (0, 1) for omega = 0, tau = 1).",
    try_="Click anywhere to start a path there; change omega and tau away from (0, 1) to see the fixed "
    "point move; type another activation.",
    theory="For SELU with omega = 0 and tau = 1 the map contracts to (0, 1) from a wide basin: activations "
    "normalise themselves with depth (Klambauer et al. 2017, Theorem 1).",
)


class SeluFlowPanel(Panel[selu_flow.Config]):
    title = "SELU flow"
    quick = dict(steps=5)
    experiment = selu_flow
    help = SELU_HELP
    figure_options = dict(nrows=1, ncols=1, figsize=(5.0, 3.8))
    alt = SELU_ALT

    def __init__(self, config: selu_flow.Config | None = None) -> None:
        super().__init__(config)
        _click(self, self.live.axes[0], ("mu0", "nu0"))

    def setup(self, axes: list[Axes]) -> None:
        self.arrows = None
        (self.path,) = axes[0].plot([], [], "o-", ms=3, color=PALETTE[1], label="path from the start")
        (self.fixed,) = axes[0].plot([], [], "D", color="black", ms=6, label="fixed point")
        axes[0].set(xlabel="mean mu", ylabel="variance nu", title="moment map")

    def draw(self, record: Record) -> None:
        m, config = record.metrics, self.running_config
        assert config is not None  # a record is drawn under the config of its run
        ax = self.live.axes[0]
        if self.arrows is not None:
            self.arrows.remove()  # the grid follows the path, so the field is drawn anew
        self.arrows = ax.quiver(m["mu"], m["nu"], m["d_mu"], m["d_nu"], color="#777777", angles="xy",
                                scale_units="xy", scale=3.0, width=0.004)  # fmt: skip
        self.path.set_data(m["path"][:, 0], m["path"][:, 1])
        fixed = m.get("fixed_point")
        self.fixed.set_data(*(([fixed[0]], [fixed[1]]) if fixed is not None else ([], [])))
        self.fixed.set_label(f"fixed point ({fixed[0]:.3g}, {fixed[1]:.3g})" if fixed is not None else "no fixed point")
        mu, nu = m["mu"], m["nu"]
        pad_mu, pad_nu = 0.05 * np.ptp(mu), 0.05 * np.ptp(nu)
        ax.set(xlim=(mu.min() - pad_mu, mu.max() + pad_mu), ylim=(nu.min() - pad_nu, nu.max() + pad_nu))
        ax.legend(loc="upper right", fontsize=7)
        end = m["path"][-1]
        where = f"; fixed point ({fixed[0]:.4f}, {fixed[1]:.4f})" if fixed is not None else "; no fixed point reached"
        self.show_message(f"after {config.steps} layers: mean {end[0]:.4f}, variance {end[1]:.4f}{where}", error=False)
