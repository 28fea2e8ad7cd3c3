"""Learning-curve panels: random-feature ridge regression against k, n and the ridge (Simon et al. 2023,
`workbench.experiments.learning_curves`), and double descent in training time of a linear student (Advani, Saxe &
Sompolinsky 2020, `workbench.experiments.double_descent`)."""

from __future__ import annotations

from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm
from matplotlib.container import ErrorbarContainer
from numpy.typing import ArrayLike

from widgets.live import PALETTE
from widgets.panel import Help, Panel
from workbench.core.experiment import Record
from workbench.experiments import double_descent, learning_curves

STUDENT = "2-layer tanh student (engine, nonlinear)"

CURVES_HELP = Help(
    what="Test error of ridge regression on k random features of a kernel, trained on n samples, predicted from the "
    "kernel's eigenvalues (lines; Simon, Karkada, Ghosh & Belkin 2023) beside simulations (dots with standard "
    "errors). Task: a power law $\\lambda_i = i^{-a}$, $v_i^2 = i^{-b}$ with Gaussian features, or the digits with "
    "ReLU features (theory from the depth-1 ReLU NNGP's eigensystem on the digits).",
    try_="Lower the ridge to 1e-4: the peak at k = n grows; raise it and the peak flattens. The dashed envelope "
    "(optimal ridge at each k) only falls as k grows. Set b above a: the optimal fitting ratio drops to 0 (the "
    "optimal ridge is zero or negative). Tick 'negative' with k > n: the ridge becomes -|delta|, accepted down to "
    "where the theory holds (kappa > 0; the panel names the bound beyond it); where k <= n no negative ridge is "
    "valid and the curves leave a gap.",
    theory="At the optimal ridge the test error never increases with k or n (more is better; infinite width is "
    "optimal); near zero ridge it peaks at k = n. For a noise-free power law the optimal train/test ratio is "
    "$R^* = ((a - b)/(b(a - 1)))^2$ when b < a and 0 (interpolation) when b >= a.",
)

DYNAMICS_HELP = Help(
    what="Generalization error $E_g(t)$ and training error of a linear student trained by gradient flow on P = aN "
    "noisy examples of a linear teacher (Advani, Saxe & Sompolinsky 2020): theory (lines) beside simulations at "
    "N inputs (dots). Middle: $E_g$ against the load a at t = infinity, at the optimal stopping time and at the "
    "optimal ridge. Right: the Marchenko-Pastur eigenvalue density of $X^T X$, each mode coloured by its learning "
    "time 1/l, faint where 1/l is longer than the chosen time t (not yet learned).",
    try_="Move a through 1: $E_g(\\infty)$ diverges, early stopping and the optimal ridge do not. Lower the SNR: "
    "the stopping time moves earlier. Tick 'student' to train a nonlinear two-layer network with the engine.",
    theory="Small eigenvalues near the MP edge (1 - sqrt a)^2 learn last and amplify noise by 1/l: the late rise "
    "of $E_g(t)$ (double descent in time). The optimal ridge is 1/SNR; at a = 1 the edge touches 0.",
)


def _errorbars(
    ax: Axes, old: ErrorbarContainer | None, x: ArrayLike, y: ArrayLike, sem: ArrayLike, **style: Any
) -> ErrorbarContainer:
    """Replace an errorbar container (None at first)."""
    if old is not None:
        old.remove()
    return ax.errorbar(x, y, yerr=3 * np.asarray(sem), fmt="o", ms=3, capsize=2, **style)


class LearningCurvesPanel(Panel[learning_curves.Config]):
    title = "Learning curves"
    experiment = learning_curves
    help = CURVES_HELP
    quick = dict(modes=200, n=32, k=64, trials=2, sim_max=32)
    form_options = dict(
        visible={
            "a": lambda c: c.task == "power_law",
            "b": lambda c: c.task == "power_law",
            "noise": lambda c: c.task == "power_law",
            "modes": lambda c: c.task == "power_law",
            "points": lambda c: c.task == "digits",
            "depth": lambda c: c.task == "digits",
        }
    )
    figure_options = dict(nrows=2, ncols=2, figsize=(8.0, 6.0))
    alt = (
        "Top left: test MSE against the number of features k at n samples: theory (blue), train MSE (thin), optimal-"
        "ridge envelope (dashed), kernel limit (dotted), simulated means with 3-standard-error bars (dots), k = n "
        "(grey). Top right: predicted test MSE over (n, k) with the chosen point and the line k = n. Bottom left: "
        "simulated test MSE over a coarse (n, k) grid. Bottom right: test MSE against the fitting ratio train/test "
        "over ridges (negative ridges dashed, where k > n allows them) with the optimum (dot) and R* (dashed)."
    )

    def setup(self, axes: list[Axes]) -> None:
        c, m, s, r = axes
        (self.test,) = c.plot([], [], color=PALETTE[0], label="test (theory)")
        (self.train,) = c.plot([], [], color=PALETTE[0], lw=0.8, ls=":", label="train (theory)")
        (self.best,) = c.plot([], [], color=PALETTE[1], ls="--", label="optimal ridge")
        self.krr = c.axhline(np.nan, color="grey", ls=":", lw=1, label="k = inf (KRR)")
        self.kn = c.axvline(np.nan, color="grey", lw=0.8)
        self.sim = None
        c.set(xscale="log", yscale="log", xlabel="random features k", ylabel="test MSE", title="against k")
        self.maps: dict = {}
        m.set(xscale="log", yscale="log", xlabel="features k", ylabel="samples n", title="theory over (n, k)")
        s.set(xscale="log", yscale="log", xlabel="features k", ylabel="samples n", title="simulation over (n, k)")
        (self.ratio,) = r.plot([], [], color=PALETTE[0], marker=".", ms=3, label="ridge > 0")
        (self.ratio_negative,) = r.plot([], [], color=PALETTE[0], ls="--", marker=".", ms=3, label="ridge < 0")
        (self.ratio_best,) = r.plot([], [], "o", color=PALETTE[1], label="optimum")
        self.ratio_star = r.axvline(np.nan, color=PALETTE[2], ls="--", label="R* (noise-free theory)")
        r.set(xlabel="fitting ratio R = train / test", ylabel="test MSE", yscale="log", title="against R over ridges")

    def draw(self, record: Record) -> None:
        m = record.metrics
        c, mp, sm, r = self.live.axes
        config = self.running_config
        self.test.set_data(m["ks"], m["test_k"])
        self.train.set_data(m["ks"], np.maximum(m["train_k"], 1e-6))
        self.best.set_data(m["ks"], m["optimal_k"])
        self.krr.set_ydata([m["krr_test"]] * 2)
        if config is not None:
            self.kn.set_xdata([config.n] * 2)
        if "sim_ks" in m:
            self.sim = _errorbars(c, self.sim, m["sim_ks"], m["sim_test"], m["sim_test_sem"], color="black")
            self.sim.set_label("simulation (3 SEM)")
        elif self.sim is not None:
            self.sim.remove()
            self.sim = None
        c.legend(fontsize=6, loc="upper right")
        c.set_xlim(m["ks"][0], m["ks"][-1])
        top = np.nanmax(np.concatenate([m["test_k"], m["optimal_k"], m.get("sim_test", [])]))
        c.set_ylim(0.5 * np.nanmin(m["optimal_k"]), 1.5 * top)
        ok = m["theory_map"][np.isfinite(m["theory_map"]) & (m["theory_map"] > 0)]
        low = np.percentile(ok, 2)
        norm = LogNorm(vmin=low, vmax=min(np.percentile(ok, 99), 30 * low))  # shared by theory and simulation
        self._map(mp, "theory", m["map_k"], m["map_n"], m["theory_map"], config, norm)
        if "sim_map" in m:
            self._map(sm, "sim", m["sim_map_k"], m["sim_map_n"], m["sim_map"], config, norm)
        title = f"a = {m['exponent_a']:.2f}, b = {m['exponent_b']:.2f}"
        if "ntk_a" in m:
            title += f" (NNGP; NTK {m['ntk_a']:.2f}, {m['ntk_b']:.2f})"
        r.set_title(f"against R over ridges; {title}", fontsize=7)
        ratio, test, ridges = (np.asarray(m[key]) for key in ("ratio", "ratio_test", "ratio_ridges"))
        self.ratio.set_data(ratio[ridges >= 0], test[ridges >= 0])
        self.ratio_negative.set_data(ratio[ridges < 0], test[ridges < 0])
        self.ratio_best.set_data([m["ratio_best"]], [m["ratio_best_test"]])
        self.ratio_star.set_xdata([m["ratio_star"]] * 2)
        r.legend(fontsize=6, loc="best")  # negative ridges rise at small R, the optimum dips mid-way
        r.set_xlim(-0.03, 1.03)
        self.rescale(r)
        r.set_xlim(-0.03, 1.03)

    def _map(
        self,
        ax: Axes,
        name: str,
        ks: np.ndarray,
        ns: np.ndarray,
        values: np.ndarray,
        config: learning_curves.Config | None,
        norm: LogNorm,
    ) -> None:
        """A log-log heat map of test MSE (log colour scale `norm`) with the chosen (k, n) and the line k = n."""
        for artist in self.maps.pop(name, []):
            artist.remove()
        mesh = ax.pcolormesh(ks, ns, values, norm=norm, cmap="viridis", shading="nearest")
        lo, hi = max(ks[0], ns[0]), min(ks[-1], ns[-1])
        artists = [mesh, *ax.plot([lo, hi], [lo, hi], color="white", lw=0.8, ls="--")]
        if config is not None:
            artists += ax.plot([config.k], [config.n], "*", color=PALETTE[1], ms=9)
        if name not in self.maps and not getattr(ax, "_has_colorbar", False):
            self.live.fig.colorbar(mesh, ax=ax, shrink=0.8, label="test MSE")
            ax._has_colorbar = True  # pyright: ignore[reportAttributeAccessIssue]
        ax.set(xlim=(ks[0], ks[-1]), ylim=(ns[0], ns[-1]))
        self.maps[name] = artists


class DoubleDescentPanel(Panel[double_descent.Config]):
    title = "Double descent in time"
    experiment = double_descent
    help = DYNAMICS_HELP
    quick = dict(inputs=20, trials=2)
    form_options = dict(visible={"width": lambda c: c.student})
    figure_options = dict(nrows=1, ncols=3, figsize=(8.0, 3.0))
    alt = (
        "Left: generalization error (blue) and training error (orange) against training time, theory lines and "
        "simulated means with 3-standard-error bars; the optimal stopping time (dashed), the chosen time (dotted), "
        "E_g at infinite time (grey dashed) and, when trained, the nonlinear two-layer student (green). Middle: E_g "
        "against the load a at t = infinity, at the optimal stopping time and at the optimal ridge. Right: the "
        "Marchenko-Pastur density of the eigenvalues of X^T X, coloured by each mode's learning time 1/l, faint for "
        "the modes not yet learned at the chosen time."
    )

    def setup(self, axes: list[Axes]) -> None:
        t, a, d = axes
        (self.eg,) = t.plot([], [], color=PALETTE[0], label="E_g theory")
        (self.et,) = t.plot([], [], color=PALETTE[1], label="E_train theory")
        (self.student,) = t.plot([], [], color=PALETTE[2], lw=1, label=STUDENT)
        self.t_star = t.axvline(np.nan, color="black", ls="--", lw=1, label="optimal stopping t*")
        self.t_now = t.axvline(np.nan, color="grey", ls=":", lw=1)
        self.eg_inf = t.axhline(np.nan, color="grey", ls="--", lw=0.8)
        self.sims: list = [None, None]
        t.set(xscale="log", yscale="log", xlabel="training time t", ylabel="error", title="against time")
        self.loads = {
            key: a.plot([], [], ls=ls, color=PALETTE[i], label=label)[0]
            for i, (key, ls, label) in enumerate(
                (("eg_inf_a", "-", "t = inf"), ("eg_star_a", "--", "t = t*"), ("eg_ridge_a", ":", "optimal ridge"))
            )
        }
        self.a_now = a.axvline(np.nan, color="grey", lw=0.8)
        a.set(xscale="log", yscale="log", xlabel="load a = P / N", ylabel="E_g", title="against load")
        a.legend(fontsize=6, loc="lower left")  # E_g falls with the load: clear of the a = 1 spike
        self.bars = None
        self.norm = LogNorm(1e-1, 1e3)
        sm = ScalarMappable(norm=self.norm, cmap="plasma")
        self.live.fig.colorbar(sm, ax=d, shrink=0.8, label="learning time 1/l")
        d.set(xlabel="eigenvalue l of X^T X", ylabel="rho_MP(l)", title="Marchenko-Pastur density")

    def draw(self, record: Record) -> None:
        m = record.metrics
        t, a, d = self.live.axes
        config = self.running_config
        self.eg.set_data(m["times"], m["eg"])
        self.et.set_data(m["times"], np.maximum(m["etrain"], 1e-6))
        self.t_star.set_xdata([m["t_star"]] * 2)
        self.eg_inf.set_ydata([m["eg_inf"] if np.isfinite(m["eg_inf"]) else np.nan] * 2)
        if config is not None:
            self.t_now.set_xdata([config.time] * 2)
            self.a_now.set_xdata([config.a] * 2)
        for i, (key, colour) in enumerate((("eg", PALETTE[0]), ("etrain", PALETTE[1]))):
            if f"sim_{key}" in m:
                self.sims[i] = _errorbars(
                    t, self.sims[i], m["sim_times"], m[f"sim_{key}"], m[f"sim_{key}_sem"], color=colour, mfc="white"
                )
            elif self.sims[i] is not None:
                self.sims[i].remove()
                self.sims[i] = None
        trained = "student_test" in m
        self.student.set_data(*((m["student_times"][1:], m["student_test"][1:]) if trained else ([], [])))
        self.student.set_label(STUDENT if trained else "_untrained")  # no legend entry without a line
        t.set_title(f"t* = {m['t_star']:.3g}, E_g(t*) = {m['eg_star']:.3g}, E_g(t) = {m['eg_time']:.3g}", fontsize=7)
        t.legend(fontsize=5, loc="lower left")
        t.set_xlim(m["times"][0], m["times"][-1])
        low = max(1e-4, 0.1 * np.nanmin(np.maximum(m["etrain"], 1e-3)))
        t.set_ylim(low, 3.0 * max(np.nanmax(m["eg"]), m["eg"][0]))
        for key, line in self.loads.items():
            line.set_data(m["loads"], m[key])
        a.set_xlim(m["loads"][0], m["loads"][-1])
        a.set_ylim(0.5 * np.nanmin(m["eg_ridge_a"]), 4.0 * np.nanmax(m["eg_star_a"]))
        if self.bars is not None:
            self.bars.remove()
        l, rho = m["mp_l"], m["mp_rho"]
        width = np.gradient(l)
        colours = mpl.colormaps["plasma"](self.norm(1.0 / l))
        if config is not None:
            colours[:, 3] = np.where(l * config.time >= 1.0, 1.0, 0.3)  # faint: modes not yet learned at t
        self.bars = d.bar(l, rho, width=width, color=colours, linewidth=0)
        frozen = m["frozen"]
        d.set_title(
            "Marchenko-Pastur density" + (f"; frozen atom {frozen:.2f} at l = 0" if frozen > 0 else ""), fontsize=8
        )
        d.set_xlim(0, l[-1] * 1.05)
        d.set_ylim(0, min(np.nanmax(rho), 5.0) * 1.1)
