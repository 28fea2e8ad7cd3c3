"""Kernel explorer panel: infinite-width NNGP and NTK of an MLP, redrawn on every control change.

The analytic kernels are redrawn at once; the empirical NTK of finite networks follows from a background
thread (its own jit compilation may take a moment), so moving a slider never waits for it.

Plots: NNGP and NTK against the angle between two inputs with x.x/d = 1 (`kernel_vs_angle`), with
the empirical NTK of finite networks (mean +- std over seeds, `mc_empirical_ntk`) on the analytic
curve; the correlation map K(theta) / K(0) against cos(theta) (Poole et al. 2016); the normalized
NTK on a data set; and the eigenvalue spectra of both kernels on that data set.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

from widgets.app import register_panel
from widgets.live import round_limits
from widgets.panel import Panel
from workbench import data as D
from workbench.config import Config, spec
from workbench.kernels import kernel_eigenvalues, kernel_vs_angle, mc_empirical_ntk, mlp_kernels
from workbench.models import MLPConfig
from workbench.training import Record

DATASETS = ("circle", "spiral", "digits")
ANGLES = np.linspace(0.0, math.pi, 91)
EMPIRICAL_ANGLES = np.linspace(0.0, math.pi, 13)
BLAS = ThreadpoolController()
SPECTRUM_FLOOR = 1e-8  # eigenvalues / largest below this are float32 round-off
DEBOUNCE = 0.4  # seconds: lets the analytic redraw render first and skips settings passed while dragging


@dataclass(frozen=True)
class KernelConfig(Config):
    """What the kernel explorer shows."""

    activation: str = spec("relu", check="activation", doc="nonlinearity or expression in x")
    depth: int = spec(3, lo=1, hi=32, doc="hidden layers")
    weight_std: float = spec(1.4, lo=0.1, hi=4.0, doc="sigma_w")
    bias_std: float = spec(0.1, lo=0.0, hi=2.0, doc="sigma_b")
    parametrization: str = spec("ntk", choices=("ntk", "standard"), doc="neural-tangents convention")
    width: int = spec(256, lo=16, hi=4096, log=True, doc="width of the finite networks (and of 'standard')")
    seeds: int = spec(4, lo=0, hi=32, doc="finite networks averaged for the empirical NTK (0: none)")
    dataset: str = spec("circle", choices=DATASETS, doc="inputs of the spectrum and the kernel map")
    n_points: int = spec(200, lo=8, hi=2000, doc="points of the data set")


def inputs(config: KernelConfig) -> np.ndarray:
    """The data set's inputs, ordered along the circle / spiral / by class (so the kernel map has structure)."""
    n = config.n_points
    if config.dataset == "circle":
        a = np.linspace(0, 2 * math.pi, n, endpoint=False)
        return (math.sqrt(2.0) * np.stack([np.cos(a), np.sin(a)], 1)).astype(np.float32)
    if config.dataset == "spiral":
        d = D.playground("spiral", n=max(n, 4), noise=0.0, test_fraction=0.5, seed=0)
        x = np.concatenate([d.x_train, d.x_test])[:n]
        return x[np.argsort(np.arctan2(x[:, 1], x[:, 0]) + 10 * np.hypot(x[:, 0], x[:, 1]))]
    d = D.digits(seed=0)
    x, y = np.concatenate([d.x_train, d.x_test])[:n], np.concatenate([d.y_train, d.y_test])[:n]
    return x[np.argsort(y, kind="stable")].astype(np.float32)


def network(config: KernelConfig) -> dict:
    """Keyword arguments of `mlp_kernels` for this config."""
    return dict(depth=config.depth, activation=config.activation, weight_std=config.weight_std,
                bias_std=config.bias_std, parametrization=config.parametrization, width=config.width)


def finite_network(config: KernelConfig, in_dim: int) -> tuple[MLPConfig, str]:
    """The finite MLP whose empirical NTK converges to the analytic one, and the NTK scaling that does it.

    At base_width = width every parametrization is SP; "nt" scaling gives neural-tangents' "ntk"
    convention and "sgd" its "standard" one (see `workbench.kernels.empirical`)."""
    mlp = MLPConfig(in_dim=in_dim, width=config.width, depth=config.depth, out_dim=1, activation=config.activation,
                    parametrization="sp", base_width=config.width, weight_std=config.weight_std,
                    bias_std=config.bias_std)
    return mlp, "nt" if config.parametrization == "ntk" else "sgd"


def analytic(config: KernelConfig) -> dict:
    """The infinite-width curves, map and spectra the panel draws (arrays; exported as CSV/JSON)."""
    curve = kernel_vs_angle(ANGLES, dim=2, **network(config))
    x = inputs(config)
    k = mlp_kernels(x, **network(config))
    ntk = np.asarray(k.ntk, np.float64)
    scale = np.sqrt(np.clip(np.diag(ntk), 1e-30, None))
    with BLAS.limit(limits=1, user_api="blas"):  # 4-10x faster here: OpenBLAS threads contend with XLA's
        spectra = {"nngp_eigenvalues": kernel_eigenvalues(k.nngp), "ntk_eigenvalues": kernel_eigenvalues(ntk)}
    return {"angle": ANGLES, "nngp_angle": np.asarray(curve.nngp), "ntk_angle": np.asarray(curve.ntk),
            "ntk_map": ntk / scale[:, None] / scale[None, :], **spectra}


def empirical(config: KernelConfig) -> dict:
    """Mean and std over `seeds` finite networks of the empirical NTK at the angles of `EMPIRICAL_ANGLES`."""
    if not config.seeds:
        return {}
    r = math.sqrt(2.0)
    x1 = np.array([[r, 0.0]], np.float32)
    x2 = (r * np.stack([np.cos(EMPIRICAL_ANGLES), np.sin(EMPIRICAL_ANGLES)], 1)).astype(np.float32)
    mlp, scaling = finite_network(config, 2)
    mean, std = mc_empirical_ntk(mlp, x1, x2, seeds=range(config.seeds), scaling=scaling)
    return {"empirical_angle": EMPIRICAL_ANGLES, "empirical_ntk_mean": np.asarray(mean[0]),
            "empirical_ntk_std": np.asarray(std[0])}


@register_panel
class KernelExplorerPanel(Panel):
    title = "Kernel explorer"
    config_cls = KernelConfig
    figure_options = dict(nrows=2, ncols=2, figsize=(7.8, 5.4), min_interval=0.0)
    alt = ("Top left: NNGP and NTK against the angle between two inputs, with the empirical NTK of finite "
           "networks (mean, and mean plus and minus one standard deviation over seeds). Top right: the "
           "correlation map K(theta)/K(0) against cos(theta). Bottom left: the normalized NTK on the data "
           "set. Bottom right: eigenvalues of both kernels on the data set relative to the largest, largest first, "
           "down to 1e-8.")

    def __init__(self, config=None):
        self._records: list[Record] = []
        self._generation, self._worker = 0, None
        super().__init__(config)
        self._config_changed(self.config)

    @property
    def records(self) -> list[Record]:
        return self._records

    def setup(self, axes):
        a, c, m, s = axes
        (self.nngp,) = a.plot([], [], label="NNGP")
        (self.ntk,) = a.plot([], [], label="NTK")
        (self.emp,) = a.plot([], [], "o", ms=4, color="black", label="empirical NTK")
        self.emp_band = [a.plot([], [], "_", ms=8, color="black")[0] for _ in range(2)]
        a.set(xlabel="angle theta", title="kernel against angle")
        a.legend(loc="upper right")
        (self.nngp_c,) = c.plot([], [], label="NNGP")
        (self.ntk_c,) = c.plot([], [], label="NTK")
        c.plot([-1, 1], [-1, 1], ls=":", color="grey", lw=1)
        c.set(xlabel="cos theta (input)", ylabel="K(theta) / K(0)", title="correlation map", xlim=(-1, 1))
        c.legend(loc="upper left")
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
        self.live.dynamic = [self.nngp, self.ntk, self.emp, *self.emp_band, self.nngp_c, self.ntk_c, self.map,
                             self.nngp_s, self.ntk_s]

    def update(self, config):
        """Analytic kernels now (milliseconds); the finite networks' empirical NTK in a background thread."""
        self._generation += 1
        record = Record(0, analytic(config), "finished")
        self._records[:] = [record]
        self.redraw(record, force=True)
        self.show_message("finite networks: computing..." if config.seeds else "", error=False)
        if config.seeds:
            self._worker = threading.Timer(DEBOUNCE, self._add_empirical, args=(config, record, self._generation))
            self._worker.daemon = True
            self._worker.start()

    def _add_empirical(self, config, record, generation):
        if generation != self._generation:  # a newer control change came within DEBOUNCE seconds
            return
        try:
            extra = empirical(config)
        except Exception as err:  # shown in the panel, never raised
            self.show_message(f"empirical NTK: {type(err).__name__}: {err}")
            return
        if generation == self._generation:  # no newer control change since
            record.metrics.update(extra)
            self.redraw(record, force=True)
            self.show_message("")

    def wait(self, timeout: float | None = 120.0) -> None:
        """Wait for the empirical NTK of the current settings (tests, benchmarks)."""
        if self._worker is not None:
            self._worker.join(timeout)

    def draw(self, record):
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
        else:
            for line in [self.emp] + self.emp_band:
                line.set_data([], [])
        self.map.set_data(m["ntk_map"])
        n = len(m["ntk_map"])
        self.map.set_extent((0, n, n, 0))
        for line, name in ((self.nngp_s, "nngp_eigenvalues"), (self.ntk_s, "ntk_eigenvalues")):
            ev = np.clip(m[name], 1e-12 * m[name][0], None)
            line.set_data(np.arange(1, len(ev) + 1), ev / ev[0])
        round_limits(self.live.axes[0], "y")  # the other limits are fixed: most changes keep every frame
        self.live.axes[3].set_xlim(0.8, 1.25 * n)
