"""Criticality panels (Poole et al. 2016; Schoenholz et al. 2017; Klambauer et al. 2017): the phase diagram
over (sigma_w^2, sigma_b^2) whose clicked point shows its depth profile (theory and sampled finite networks),
and SELU's moment-map flow (`workbench.criticality`, `workbench.experiments.criticality`)."""

from __future__ import annotations

import numpy as np

from widgets.app import register_panel
from widgets.live import PALETTE
from widgets.panel import Panel
from workbench.experiments import criticality

PHASE_ALT = ("Left: log chi_1 over sigma_w^2 (x) and sigma_b^2 (y), blue ordered, red chaotic, white where q* "
             "diverges; black line chi_1 = 1 (order to chaos); the cross is the selected point (click to move it). "
             "Middle: correlation of two inputs against layer, theory (line) and sampled finite networks (dots). "
             "Right: squared gradient norm with respect to each layer's pre-activations, theory and networks.")
SELU_ALT = ("Arrows: a third of one layer's change of (mean, variance) of the activations under the moment map; orange path: "
            "the trajectory from the selected start (click to move it); black diamond: the fixed point (0, 1).")


def _click(panel, ax, fields):
    """Move two fields of the panel's config to a click inside `ax`."""
    def on_press(event):
        if event.inaxes is ax and event.xdata is not None:
            panel.form.set_config(panel.config.replace(**{fields[0]: float(event.xdata), fields[1]: float(event.ydata)}))
    panel.live.canvas.mpl_connect("button_press_event", on_press)


@register_panel
class PhaseDiagramPanel(Panel):
    title = "Phase diagram"
    config_cls = criticality.PhaseConfig
    figure_options = dict(nrows=1, ncols=3, figsize=(11, 3.5))
    alt = PHASE_ALT

    def __init__(self, config=None):
        super().__init__(config)
        _click(self, self.live.axes[0], ("sigma_w2", "sigma_b2"))
        self._config_changed(self.config)

    def setup(self, axes):
        self.image = axes[0].imshow(np.zeros((2, 2)), origin="lower", aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1)
        self.line, = axes[0].plot([], [], color="black", lw=1.5)
        self.point, = axes[0].plot([], [], "x", color="black", ms=10, mew=2)
        axes[0].set(xlabel="sigma_w^2", ylabel="sigma_b^2", title="log chi_1")
        self.c_theory, = axes[1].plot([], [], color=PALETTE[0], label="theory")
        self.c_net, = axes[1].plot([], [], "o", ms=3, color=PALETTE[1], label="finite networks")
        axes[1].set(xlabel="layer", ylabel="c_l", ylim=(-0.05, 1.05), title="correlation")
        axes[1].legend(fontsize=7)
        self.g_theory, = axes[2].plot([], [], color=PALETTE[0])
        self.g_net, = axes[2].plot([], [], "o", ms=3, color=PALETTE[1])
        axes[2].set(xlabel="layer", yscale="log", title="||df/dh_l||^2")

    def update(self, config):
        view = criticality.phase_view(config)
        d, s, p = view["diagram"], view["scales"], view["profile"]
        self.image.set_data(np.log(d.chi_1))
        self.image.set_extent((d.sigma_w2[0], d.sigma_w2[-1], d.sigma_b2[0], d.sigma_b2[-1]))
        self.line.set_data(d.critical_w2, d.sigma_b2)
        self.point.set_data([config.sigma_w2], [config.sigma_b2])
        self.c_theory.set_data(p["layers"], p["c_theory"])
        self.c_net.set_data(p["layers"], p["c"])
        self.g_theory.set_data(p["layers"], p["grad2_theory"])
        self.g_net.set_data(p["layers"], p["grad2"])
        for ax in self.live.axes[1:]:
            self.rescale(ax)
        self.live.axes[1].set_ylim(min(-0.05, float(np.nanmin(p["c"])) - 0.05), 1.05)
        self.live.axes[0].set_title(f"log chi_1   (selected: chi_1={s.chi_1:.3f}, {p['phase']})")
        self.show_message(f"q* = {s.q_star:.3g}, c* = {s.c_star:.3g}, chi_1 = {s.chi_1:.4g}, "
                          f"xi_q = {s.xi_q:.3g}, xi_c = {s.xi_c:.3g} layers", error=False)
        self.live.draw(force=True)


@register_panel
class SeluFlowPanel(Panel):
    title = "SELU flow"
    config_cls = criticality.SeluConfig
    figure_options = dict(nrows=1, ncols=1, figsize=(5.5, 4))
    alt = SELU_ALT

    def __init__(self, config=None):
        super().__init__(config)
        _click(self, self.live.axes[0], ("mu0", "nu0"))
        self._config_changed(self.config)

    def setup(self, axes):
        view = criticality.selu_view(self.config)
        self.arrows = axes[0].quiver(view["mu"], view["nu"], view["d_mu"], view["d_nu"], color="#777777",
                                     angles="xy", scale_units="xy", scale=3.0, width=0.004)
        self.path, = axes[0].plot([], [], "o-", ms=3, color=PALETTE[1])
        axes[0].plot([0.0], [1.0], "D", color="black", ms=6)
        axes[0].set(xlabel="mean mu", ylabel="variance nu", xlim=(-1.1, 1.1), ylim=(0.1, 3.1), title="moment map")

    def update(self, config):
        view = criticality.selu_view(config)
        self.arrows.set_UVC(view["d_mu"], view["d_nu"])
        self.path.set_data(view["path"][:, 0], view["path"][:, 1])
        end = view["path"][-1]
        self.show_message(f"after {config.steps} layers: mean {end[0]:.4f}, variance {end[1]:.4f}", error=False)
        self.live.draw(force=True)
