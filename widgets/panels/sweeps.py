"""Sweeps panel: a grid over any experiment's fields run on a Dask cluster, points plotted and tabled as they
arrive (`workbench.experiments.grid_sweep`); and Compare runs: any runs of the run database on the same axes
(`workbench.experiments.compare_runs`)."""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Iterable
from typing import Any

import ipywidgets as w
import numpy as np
from matplotlib.axes import Axes

from widgets.live import PALETTE, log2_axis
from widgets.panel import Help, LivePanel, Panel
from workbench.core.experiment import Record
from workbench.experiments import compare_runs, grid_sweep
from workbench.runs.rundb import RunDB, RunDBError
from workbench.runs.sweep import parse_grid

SWEEP_ALT = (
    "Left: the chosen metric of each point's last record against the last grid field (log scale when its values "
    "are geometric), one line per value of the other fields, seed mean with each seed as a dot. Right: the value of "
    "the last grid field with the lowest mean metric, per value of the first field."
)

SWEEP_HELP = Help(
    what="A sweep: every combination of the grid's values (times the seeds) runs as its own task on a Dask cluster "
    "(a local one of worker processes by default, or a scheduler address), and each point is saved in the run "
    "database as it ends. The default sweeps widths and base learning rates of one MLP trained with Adam under muP.",
    try_="Run the default, then Run again: every point is already in the database and is skipped. Change "
    "'parametrization = sp' in the fixed fields and compare where the optimum sits across widths. Open the "
    "dashboard link to watch the workers.",
    theory="Tensor Programs V (Yang et al. 2022): under muP the learning rate with the lowest loss is the same at "
    "every width (the right plot is flat); under SP with Adam it moves to smaller values as the width grows.",
)

COMPARE_ALT = "A metric of each chosen run of the run database against its progress (steps or jobs), one line per run."

COMPARE_HELP = Help(
    what="Runs saved in the run database (training panels, sweeps, scripts) overlaid on the same axes.",
    try_="Run the training-dynamics tab at two widths, then pick both runs here (Refresh lists the newest runs).",
    theory="Nothing new is computed: the curves are the records each run saved as it ran.",
)


TEXT_FIELDS = ("grid", "base", "scheduler")  # free-text fields of a sweep, longer than a form row shows


def _geometric(values: Iterable[object]) -> bool:
    """Positive numbers spanning a factor of 4 or more: drawn on a log axis."""
    v = np.asarray([x for x in values if isinstance(x, (int, float))], float)
    return len(v) > 2 and bool(np.all(v > 0)) and v.max() / v.min() >= 4


class SweepsPanel(LivePanel[grid_sweep.Config]):
    title = "Sweeps"
    help = SWEEP_HELP
    experiment = grid_sweep
    quick = dict(
        grid="lr = 0.01, 0.02, 0.04", base="width = 8; depth = 1; steps = 4; record_every = 2; n_train = 32", seeds=1,
        processes=False, workers=1,
    )  # fmt: skip
    form_options = dict(advanced=("workers", "processes"))
    figure_options = dict(nrows=1, ncols=2, figsize=(5.0, 3.0))
    alt = SWEEP_ALT

    def __init__(self, config: grid_sweep.Config | None = None) -> None:
        self.table = w.HTML(layout=w.Layout(max_height="260px", overflow="auto"))
        self.link = w.HTML()
        self.echo = w.HTML(layout=w.Layout(max_width="760px"))  # the text fields in full: they outgrow their boxes
        super().__init__(config)
        self.widget.children = (
            *self.widget.children[:3],
            w.VBox([self.echo, self.link, self.table]),
            *self.widget.children[3:],
        )
        self._docs = {name: self._text(name).tooltip or "" for name in TEXT_FIELDS}
        for name in TEXT_FIELDS:
            self.form.controls[name].observe(lambda _: self._show_text(), names="value")
        self._show_text()

    def _text(self, name: str) -> w.Text:
        control = self.form.controls[name]
        assert isinstance(control, w.Text)  # a str field's control (widgets.controls.make_control)
        return control

    def _show_text(self) -> None:
        """Each text field's whole value in its tooltip and, wrapped, under the form."""
        rows = []
        for name in TEXT_FIELDS:
            value = str(self._text(name).value)
            self._text(name).tooltip = f"{value}\n({self._docs[name]})" if value else self._docs[name]
            if value:
                rows.append(f"<b>{name}</b>: <code>{html.escape(value)}</code>")
        self.echo.value = f'<div style="font-size:85%;white-space:normal">{" &nbsp; ".join(rows)}</div>'

    def setup(self, axes: list[Axes]) -> None:
        self.lines, self.dots = [], []
        self.best = axes[1].plot([], [], "o-", color="black")[0]
        self.marks = axes[0].plot([], [], "*", color="black", ms=9)[0]

    def clear(self) -> None:
        config = self.running_config or self.config
        grid = parse_grid(config.grid)
        names = list(grid)
        self.x_name, self.group_names = names[-1], names[:-1]
        groups = list(itertools.product(*(grid[n] for n in self.group_names)))  # [()] for a one-field grid
        ax, right = self.live.axes
        for artist in self.lines + self.dots:
            artist.remove()
        self.groups = groups
        self.lines = [ax.plot([], [], "-", color=PALETTE[i % len(PALETTE)], label=self._group_label(g))[0]
                      for i, g in enumerate(groups)]  # fmt: skip
        self.dots = [ax.plot([], [], ".", color=PALETTE[i % len(PALETTE)], alpha=0.5, ms=4)[0]
                     for i, _ in enumerate(groups)]  # fmt: skip
        ax.set(xscale="log" if _geometric(grid[self.x_name]) else "linear", xlabel=self.x_name, ylabel=config.metric)
        ax.set_title(f"{config.metric} after each run")
        legend = ax.get_legend()
        if len(groups) > 1:
            ax.legend(fontsize=7)
        elif legend is not None:  # the previous grid's groups
            legend.remove()
        first = self.group_names[0] if self.group_names else ""
        right.set(xlabel=first, ylabel=f"best {self.x_name}", title=f"best {self.x_name} per {first or 'sweep'}")
        groups_x = grid[first] if first else []
        if _geometric(groups_x) and all(isinstance(v, int) for v in groups_x):
            log2_axis(right, groups_x)  # widths: labelled at exactly the swept values
        else:
            right.set_xscale("log" if _geometric(groups_x) else "linear")
        right.set_yscale(ax.get_xscale())
        xs = [v for v in grid[self.x_name] if isinstance(v, (int, float))]
        if xs:  # the whole swept range: a one-step shift of the optimum looks as small as it is
            pad = (max(xs) / min(xs)) ** 0.05 if ax.get_xscale() == "log" and min(xs) > 0 else 1.0
            right.set_ylim(min(xs) / pad, max(xs) * pad)
        self.best.set_data([], [])
        self.marks.set_data([], [])
        self.table.value = ""
        self.link.value = ""

    def _group_label(self, group: tuple[object, ...]) -> str:
        return " ".join(f"{n}={v}" for n, v in zip(self.group_names, group)) or "all"

    def draw(self, record: Record) -> None:
        config = self.running_config or self.config
        points = [p for p in self.points() if math.isfinite(float(p["result"].get(config.metric, math.nan)))]
        best, marks = [], []
        for i, group in enumerate(self.groups):
            mine = [p for p in points if tuple(p["fields"][n] for n in self.group_names) == group]
            xs = sorted({p["fields"][self.x_name] for p in mine})
            means = [np.mean([p["result"][config.metric] for p in mine if p["fields"][self.x_name] == x]) for x in xs]
            self.lines[i].set_data(xs, means)
            self.dots[i].set_data([p["fields"][self.x_name] for p in mine], [p["result"][config.metric] for p in mine])
            if xs:
                k = int(np.argmin(means))
                marks.append((xs[k], means[k]))
                best.extend([(group[0], xs[k])] if group else [])
        self.best.set_data(*(zip(*best) if best else ([], [])))
        self.marks.set_data(*(zip(*marks) if marks else ([], [])))
        values = [p["result"][config.metric] for p in points]
        spread = values and min(values) > 0 and max(values) / min(values) > 10
        self.live.axes[0].set_yscale("log" if spread else "linear")
        self.rescale(self.live.axes[0])
        self._tabulate(record)

    def _tabulate(self, record: Record) -> None:
        config = self.running_config or self.config
        rows = self.points()
        if not rows:
            return
        last = rows[-1]
        running = len(rows) < record.total and math.isfinite(last["eta"])
        eta = f", about {last['eta']:.0f} s left" if running else ""
        failed = f", {last['failed']} failed" if last["failed"] else ""
        dashboard = last["dashboard"]
        link = f' &middot; <a href="{html.escape(dashboard)}" target="_blank">Dask dashboard</a>' if dashboard else ""
        self.link.value = f"<small>{len(rows)} of {record.total} points{failed}{eta}{link}</small>"
        names = list(rows[0]["fields"])
        head = "".join(f"<th>{html.escape(n)}</th>" for n in [*names, config.metric, "outcome", "run"])
        body = []
        for p in rows[-200:][::-1]:
            value = p["result"].get(config.metric)
            cells = [*(p["fields"][n] for n in names), f"{value:.4g}" if isinstance(value, float) else value]
            outcome = "in database" if p["skipped"] else p["outcome"]
            cells += [outcome + (f": {p['error']}" if p.get("error") else ""), p["run_id"]]
            body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
        self.table.value = f'<table style="font-size:80%"><tr>{head}</tr>{"".join(body)}</table>'


class CompareRunsPanel(Panel[compare_runs.Config]):
    title = "Compare runs"
    help = COMPARE_HELP
    experiment = compare_runs
    quick = dict(latest=2)
    figure_options = dict(nrows=1, ncols=1, figsize=(5.0, 3.0))
    alt = COMPARE_ALT

    def __init__(self, config: compare_runs.Config | None = None) -> None:
        self.choices = w.SelectMultiple(  # as wide as a label (compare_runs.label: at most 100 characters)
            options=[],
            rows=8,
            tooltip="ctrl- or shift-click to choose several runs",
            layout=w.Layout(width="100%", max_width="760px"),
        )
        refresh = w.Button(description="Refresh", icon="refresh", tooltip="list the newest runs of the database")
        refresh.on_click(lambda _: self.refresh())
        self.choices.observe(self._chosen, names="value")
        self.where = w.HTML(layout=w.Layout(max_width="760px"))
        self.held = w.Dropdown(
            options=[],
            description="metric",
            tooltip="the metrics the chosen runs hold (numbers, or one number per width)",
            layout=w.Layout(width="300px"),
        )
        self.held.observe(self._pick_metric, names="value")
        self.picker = w.VBox([w.HBox([w.Label("runs in the database"), refresh]), self.where, self.choices, self.held])
        super().__init__(config)
        self.refresh()

    def header(self) -> w.Widget:
        return w.VBox([super().header(), self.picker])

    def refresh(self) -> None:
        """List the newest 200 runs of the database under the picker."""
        try:
            db = RunDB()
            infos = db.runs(limit=200)
        except RunDBError as err:
            self.show_message(str(err))
            return
        self.where.value = f"<small>run database: <code>{html.escape(str(db.path))}</code> ($WORKBENCH_DB)</small>"
        self.choices.options = [(compare_runs.label(i) + f" ({i['status']})", i["id"]) for i in infos]

    def _chosen(self, change: dict[str, Any]) -> None:
        ids = sorted(change["new"])
        if ids:
            self._offer_metrics(ids)
            self.form.controls["runs"].value = ", ".join(map(str, ids))

    def _offer_metrics(self, ids: list[int]) -> None:
        """List the metrics the chosen runs hold; keep the metric asked for when one of them holds it, else ask for
        the first they hold (train_loss, or the first name)."""
        try:
            names = compare_runs.metric_names(ids)
        except RunDBError as err:
            self.show_message(str(err))
            return
        self.held.options = names
        metric = self.form.controls["metric"]
        if names and metric.value not in names:
            metric.value = "train_loss" if "train_loss" in names else names[0]
        self.held.value = metric.value if metric.value in names else None

    def _pick_metric(self, change: dict[str, Any]) -> None:
        if change["new"] is not None:
            self.form.controls["metric"].value = change["new"]

    def setup(self, axes: list[Axes]) -> None:
        self.lines = []

    def clear(self) -> None:
        for line in self.lines:
            line.remove()
        self.lines = []
        legend = self.live.axes[0].get_legend()
        if legend is not None:
            legend.remove()

    def _end(self) -> None:
        """A view that could not be drawn (no chosen run holds the metric): empty axes under the error, not the
        previous runs' lines and legend."""
        super()._end()
        err = self.controller.error
        if err is None:
            return
        with self.controller.touching() as open_:
            if not open_:
                return
            with self.live.lock:
                self.clear()
                self.live.axes[0].set_title(str(err).removeprefix("metric: "), fontsize=8, color="#D55E00")
            self.live.draw(force=True)

    def draw(self, record: Record) -> None:
        m = record.metrics
        ax = self.live.axes[0]
        self.clear()
        self.lines = [ax.plot(x, y, "-", color=PALETTE[i % len(PALETTE)], label=label)[0]
                      for i, (x, y, label) in enumerate(zip(m["x"], m["y"], m["labels"]))]  # fmt: skip
        positive = all(np.all(np.asarray(y) > 0) for y in m["y"] if len(y))
        ax.set(yscale="log" if positive and m["y"] else "linear", xlabel="progress (steps or jobs)")
        metric = self.running_config.metric if self.running_config else ""
        ax.set_ylabel(metric)
        ax.set_title("" if self.lines else "no runs in the database yet", fontsize=8, color="black")
        if self.lines:
            ax.legend(fontsize=6, loc="best")
        self.rescale(ax)
