"""Scaling panel: L(n) = a n^-alpha + c fitted to a sweep of the run database (a metric against data size or width)
or to the eigenlearning theory's learning curve, with its bootstrap interval band and Hestness et al.'s three regions
(`workbench.experiments.scaling_law`)."""

from __future__ import annotations

import html
import math
from typing import Any

import ipywidgets as w
import numpy as np
from matplotlib.axes import Axes
from matplotlib.container import ErrorbarContainer

from widgets.live import PALETTE
from widgets.panel import Help, Panel
from workbench.core.experiment import Record
from workbench.experiments import scaling_law
from workbench.runs.rundb import RunDB, RunDBError, default_path
from workbench.runs.scaling import held

HELP = Help(
    what="A scaling law $L(n) = a\\,n^{-\\alpha} + c$ fitted by least squares in log space to a metric against "
    "data size or model size: the runs of a sweep in the run database (each seed a dot, the mean with "
    "2-standard-error bars), or the eigenlearning learning curve of kernel regression on the power law "
    "$\\lambda_i = i^{-a}$, $v_i^2 = i^{-b}$. The band is the pointwise interval (level, 95% by default) "
    "of residual-bootstrap refits; the shading marks the three regions of Hestness et al. 2017: small "
    "data (the fit above the best-guess error), power law, and irreducible error (the power-law term "
    "below c).",
    try_="Run a sweep over n_train (python -m benchmarks.bench_scaling, or the Sweeps tab with grid 'n_train ="
    " 64, 128, 256, 512, 1024, 2048' and 3 seeds), press Refresh and pick it; give the best-guess error "
    "(a regression's 0.5 Var(y); a classifier's error rate 1 - 1/classes, its cross-entropy log(classes))"
    " to locate the small-data region. On the theory, raise b: alpha follows b - 1 until it saturates at "
    "2a. `python -m workbench runs fit` prints the same fit and stores it with the sweep.",
    theory="Hestness et al. (arXiv 1712.00409) found the generalization error of deep networks falls as a power "
    "law of the training-set size between a small-data region and an irreducible floor. For noise-free "
    "kernel regression the exponent is known: the modes beyond n are not learned, so $L \\sim n^{-\\min(b -"
    " 1, 2a)}$.",
)

THEORY = -1  # the picker's entry for the theory (no sweep id; the config's sweep 0 means the newest sweep)
REGIONS = (("small data", "#BBBBBB"), ("power law", "#FFFFFF"), ("irreducible", "#E69F00"))


class ScalingPanel(Panel[scaling_law.Config]):
    title = "Scaling"
    experiment = scaling_law
    help = HELP
    quick = dict(resamples=200)
    form_options = dict(
        visible={
            "sweep": lambda c: c.source == "sweep",
            "metric": lambda c: c.source == "sweep",
            "axis": lambda c: c.source == "sweep",
            "a": lambda c: c.source == "theory",
            "b": lambda c: c.source == "theory",
            "modes": lambda c: c.source == "theory",
            "n_min": lambda c: c.source == "theory",
            "n_max": lambda c: c.source == "theory",
        },
        advanced=("level", "resamples", "seed"),
    )
    figure_options = dict(nrows=1, ncols=1, figsize=(5.6, 3.8))
    alt = (
        "A metric against size on log-log axes: each run as a small dot, the mean of each size with 2-standard-error "
        "bars, the fitted curve a n^-alpha + c (line) inside its bootstrap interval band, the floor c (dotted), and "
        "the small-data (grey) and irreducible (orange) regions shaded; the title gives alpha and its interval."
    )

    def __init__(self, config: scaling_law.Config | None = None) -> None:
        self.sweeps = w.Dropdown(options=[], description="sweep", layout=w.Layout(width="420px"))
        self.metrics = w.Dropdown(options=[], description="metric", layout=w.Layout(width="260px"))
        self.fields = w.Dropdown(options=[], description="axis", layout=w.Layout(width="260px"))
        refresh = w.Button(description="Refresh", icon="refresh", tooltip="list the sweeps of the run database")
        refresh.on_click(lambda _: self.refresh())
        self.sweeps.observe(self._pick_sweep, names="value")
        self.metrics.observe(lambda c: self._set("metric", c["new"]), names="value")
        self.fields.observe(lambda c: self._set("axis", c["new"]), names="value")
        self.where = w.HTML()
        self.picker = w.VBox([w.HBox([self.sweeps, refresh]), w.HBox([self.metrics, self.fields]), self.where])
        super().__init__(config)
        self.refresh()

    def header(self) -> w.Widget:
        return w.VBox([super().header(), self.picker])

    def refresh(self) -> None:
        """List the sweeps of the run database in the picker (newest first)."""
        path = default_path()
        try:  # read only: showing the tab creates no database file
            sweeps = RunDB(path, readonly=True).sweeps() if path.exists() else []
        except RunDBError as err:
            self.show_message(str(err))
            return
        self.where.value = f"<small>run database: <code>{html.escape(str(path))}</code> ($WORKBENCH_DB)</small>"
        names = [(f"{s['id']}: {s['experiment'].rsplit('.', 1)[-1]} {s['runs']} runs {list(s['grid'])}", s["id"])
                 for s in sweeps]  # fmt: skip
        self.sweeps.options = [("theory (eigenlearning)", THEORY), *names]
        if self.sweeps.value is None and self.form.controls["source"].value == "theory":
            self.sweeps.value = THEORY  # the picker names what the figure shows

    def _set(self, name: str, value: Any) -> None:
        if value is not None and self.form.controls[name].value != value:
            self.form.controls[name].value = value

    def _pick_sweep(self, change: dict[str, Any]) -> None:
        """A sweep chosen: offer its metrics and varying fields, and fit it (THEORY: back to the theory)."""
        sweep_id = change["new"]
        if sweep_id is None:
            return
        if sweep_id == THEORY:
            self._set("source", "theory")
            return
        try:
            _, metrics, fields = held(None, sweep_id)
        except (ValueError, RunDBError) as err:
            self.show_message(str(err))
            return
        self.metrics.options, self.fields.options = metrics, fields
        metric = self.form.controls["metric"].value
        self.metrics.value = metric if metric in metrics else ("test_loss" if "test_loss" in metrics else None)
        self.fields.value = fields[0] if len(fields) == 1 else None
        self._set("sweep", sweep_id)
        self._set("source", "sweep")

    def setup(self, axes: list[Axes]) -> None:
        ax = axes[0]
        self.spans = [ax.axvspan(1, 1, color=colour, alpha=0.35, lw=0, label=name) for name, colour in REGIONS]
        (self.dots,) = ax.plot([], [], ".", color=PALETTE[0], alpha=0.35, ms=4, label="points")
        (self.curve,) = ax.plot([], [], "-", color=PALETTE[1], label="fit")
        (self.floor,) = ax.plot([], [], ":", color=PALETTE[1], lw=1, label="c")
        (self.guess,) = ax.plot([], [], "--", color="grey", lw=1, label="best guess")
        self.band = None
        self.bars: ErrorbarContainer | None = None
        ax.set(xscale="log", yscale="log")

    def clear(self) -> None:
        for artist in (self.dots, self.curve, self.floor, self.guess):
            artist.set_data([], [])
        for span in self.spans:
            span.set_visible(False)
        for old in (self.band, self.bars):
            if old is not None:
                old.remove()
        self.band = self.bars = None

    def draw(self, record: Record) -> None:
        m = record.metrics
        ax = self.live.axes[0]
        self.clear()
        self.dots.set_data(m["n"], m["y"])
        self.bars = ax.errorbar(
            m["sizes"], m["mean"], yerr=2 * m["sem"], fmt="o", ms=4, capsize=2, color=PALETTE[0], label="mean"
        )
        self.band = ax.fill_between(m["grid"], m["band_lo"], m["band_hi"], color=PALETTE[1], alpha=0.2, lw=0)
        self.curve.set_data(m["grid"], m["curve"])
        a, alpha, c = m["params"]
        if c > 0:
            self.floor.set_data(m["grid"][[0, -1]], [c, c])
        lo, hi = m["grid"][0], m["grid"][-1]
        self.guess.set_data([lo, hi], [m["guess"], m["guess"]])
        edges = [lo, min(max(m["n_small"], lo), hi), min(max(m["n_irreducible"], lo), hi), hi]
        for span, x0, x1 in zip(self.spans, edges[:-1], edges[1:]):
            span.set_x(x0)
            span.set_width(x1 - x0)
            span.set_visible(x1 > x0 and span is not self.spans[1])
        a_lo, a_hi = m["intervals"][1]
        expected = f"; theory {m['expected_alpha']:.3g}" if "expected_alpha" in m else ""
        ax.set_title(
            f"alpha = {alpha:.3g} [{a_lo:.3g}, {a_hi:.3g}]{expected}\na = {a:.3g}, c = {c:.3g}  ({m['source']})",
            fontsize=8,
        )
        ax.set(xlabel=m["axis"], ylabel=m["metric"], xlim=(lo, hi))
        values = np.concatenate([m["y"], m["band_lo"], m["band_hi"], [m["guess"]]])  # a NaN guess: left out below
        values = values[np.isfinite(values) & (values > 0)]
        ax.set_ylim(values.min() / 1.3, values.max() * 1.3)
        handles = [self.dots, self.bars, self.curve] + ([self.guess] if math.isfinite(m["guess"]) else [])
        handles += [s for s in self.spans if s.get_visible()]
        ax.legend(handles=handles, fontsize=7, loc="lower left")
        if not math.isfinite(m["n_irreducible"]):
            self.floor.set_data([], [])
