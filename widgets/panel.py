"""Panels: a panel is an experiment (Config + run) and a draw(record) callback, in a standard dashboard.

How to make a panel (see widgets/README.md for a complete example):

    from widgets.panel import LivePanel
    from workbench.experiments import grokking

    class GrokkingPanel(LivePanel[grokking.Config]):
        title = "Grokking"
        experiment = grokking                        # module with Config and run(config, stop)
        form_options = dict(exclude=("seed",))
        figure_options = dict(nrows=1, ncols=2, figsize=(6, 3))
        alt = "Train and test accuracy against step (left), weight norm (right)"
        help = Help(what="...", try_="...", theory="...")

        def setup(self, axes):                       # create empty artists once
            self.train, = axes[0].plot([], [], label="train")
        def draw(self, record):                      # called from the run thread: set_data only
            self.train.set_data(*self.history("train_acc"))
            self.rescale(self.live.axes[0])
        def clear(self):                             # Reset: empty the artists
            self.train.set_data([], [])

and one line in `widgets/panels/__init__.py`'s `PANELS`. `LivePanel` adds Run / Stop / Reset and past
runs; a `Panel` is a view recomputed in the background on every control change (debounced, one
computation in flight, stale results dropped, a spinner meanwhile). Every panel gets controls generated
from the Config's `spec` metadata (tooltips from the fields' docs), a help toggle, a share box (config as
a short code or JSON, pasted back to restore), export buttons (figure PNG/SVG, records CSV/JSON, offered
as download links, which work in JupyterLab and in Voila) and an error line. Errors are shown in the
panel, never raised.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
import re
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

import ipywidgets as w
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import Collection, PathCollection
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from widgets.controls import ConfigForm
from widgets.live import LiveFigure
from widgets.runner import RunController, close_all
from workbench.core.config import Config, get_path, leaves
from workbench.core.experiment import Experiment, Record, schema_errors
from workbench.runs.rundb import RunDB, RunDBError
from workbench.runs.runfile import read_run
from workbench.runs.store import as_declared, plain, record_dict


def records_table(records: list[Record]) -> tuple[list[str], list[list[Any]]]:
    """CSV columns: progress (done, total, unit), kind, status, elapsed, every scalar metric and every short
    vector metric as name[i]."""
    rows, columns = [], ["done", "total", "unit", "kind", "status", "elapsed"]
    for r in records:
        row = {
            "done": r.done,
            "total": r.total,
            "unit": r.unit,
            "kind": r.kind,
            "status": r.status,
            "elapsed": round(r.elapsed, 4),
        }
        for name, value in r.metrics.items():
            a = np.asarray(value)
            if a.ndim == 0 and a.dtype.kind in "fiub":
                row[name] = a.item()
            elif a.ndim == 1 and a.size <= 16 and a.dtype.kind in "fiub":
                row.update({f"{name}[{i}]": v for i, v in enumerate(a.tolist())})
        columns += [c for c in row if c not in columns]
        rows.append(row)
    return columns, [[row.get(c, "") for c in columns] for row in rows]


def records_csv(records: list[Record]) -> str:
    columns, rows = records_table(records)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue()


def records_json(records: list[Record], config: Config | None = None, latest: tuple[str, ...] = ()) -> str:
    """The JSON export of a run: its config and records (arrays tagged with dtype and shape, floats at float32:
    `workbench.runs.store`). The metrics named in `latest` (what the figure draws from the latest record only) are
    kept in the last record that holds them and left out of the others, so the file grows with what is drawn."""
    last = {name: max((i for i, r in enumerate(records) if name in r.metrics), default=-1) for name in latest}
    kept = [
        replace(r, metrics={k: v for k, v in r.metrics.items() if last.get(k, i) == i}) if latest else r
        for i, r in enumerate(records)
    ]
    body = {"config": config.to_dict() if config is not None else None, "records": [record_dict(r) for r in kept]}
    return json.dumps(plain(body), separators=(",", ":"))


def read_run_file(path: str) -> str:
    """The text of an exported run's file, its size checked with `os.stat` before anything is read."""
    path = os.path.expanduser(path)
    try:
        info = os.stat(path)
    except OSError as err:
        raise ValueError(f"run file: cannot open {path!r} ({err.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"run file: {path!r} is not a file")
    if info.st_size > MAX_LOAD_BYTES:
        raise ValueError(
            f"run file: {path!r} is {info.st_size / 2**20:.1f} MB; the share box loads exported runs of at most "
            f"{MAX_LOAD_BYTES / 2**20:g} MB: {BIGGER_RUNS}"
        )
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read(MAX_LOAD_BYTES + 1)  # the file may have grown since os.stat
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"run file: cannot read {path!r} ({err})") from None
    if len(text) > MAX_LOAD_BYTES:
        raise ValueError(f"run file: {path!r} holds more than {MAX_LOAD_BYTES / 2**20:g} MB: {BIGGER_RUNS}")
    return text.strip()


def download_link(data: bytes, filename: str, mime: str) -> str:
    """An HTML link that downloads `data` (a data URL: needs no file server, so it works in Voila)."""
    url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
    return f'<a download="{html.escape(filename)}" href="{url}" target="_blank">save {html.escape(filename)}</a>'


EXPORTED_RUN = re.compile(r'^\{.*"records"\s*:', re.DOTALL)  # the JSON export of a run (a config has no "records")
# What the share box loads in the kernel's thread, refused by its size before anything is read or parsed: reading,
# checking, drawing and saving an exported run takes about 0.15 s per MB on 2 cores (a default run exports 0.2 MB).
MAX_LOAD_BYTES = 2 * 2**20
BIGGER_RUNS = "import a bigger run with `python -m workbench runs import RUN.json` and open it in Compare runs"
_MIME = {"png": "image/png", "svg": "image/svg+xml", "csv": "text/csv", "json": "application/json"}


@dataclass(frozen=True)
class Help:
    """A panel's plain-language help (shown by its "?" toggle and by the tour notebook: one source); `$...$`
    is LaTeX, rendered by the panel's HTMLMath and by Markdown."""

    what: str
    try_: str
    theory: str

    def html(self) -> str:
        rows = (("What am I looking at?", self.what), ("What to try", self.try_), ("What theory predicts", self.theory))
        return "".join(f"<p><b>{q}</b> {html.escape(a)}</p>" for q, a in rows)

    def markdown(self) -> str:
        return (
            f"**What am I looking at?** {self.what}\n\n**What to try.** {self.try_}\n\n"
            f"**What theory predicts.** {self.theory}"
        )


# The form's sections and "more settings" are accordions: ipywidgets pads their contents by 15 px a side, which
# clipped the 290 px controls of a 300 px column (a horizontal scrollbar, cut readouts). A <style> in a hidden HTML
# widget applies to the whole page, so a panel shown alone gets it as well as one in the app.
PANEL_CSS = """<style>
.wb-panel .jupyter-widget-Collapse-contents { padding: 4px 0 4px 2px; }
.wb-panel .jupyter-widget-Collapse-header { padding: 4px 6px; }
</style>"""
FORM_WIDTH = "300px"  # controls column: at 1280 px, file browser open, a figure <= 5 in wide fits beside it

C = TypeVar("C", bound=Config)  # a panel's experiment Config class: Panel[grokking.Config], ...


class Panel(Generic[C]):
    """A view: controls beside a LiveFigure, recomputed in the background on every control change.

    A panel is generic in its experiment's Config class (`class GrokkingPanel(LivePanel[grokking.Config])`),
    so `self.config` and `self.running_config` have the experiment's fields."""

    title = "panel"
    experiment: Experiment[C]  # a module (or object) with Config, run(config, stop=None) and METRICS
    form_options: dict[str, Any] = {}  # keyword arguments of ConfigForm (include, exclude, advanced, visible)
    figure_options: dict[str, Any] = {}  # keyword arguments of LiveFigure (nrows, ncols, figsize, ...)
    alt = ""
    help: Help | None = None
    auto = True
    quick: dict[str, Any] = {}  # settings small enough for a smoke run of the panel (tests, CI), e.g. dict(steps=40)
    export_latest: tuple[str, ...] = ()  # big metrics drawn from the last record only: the JSON export keeps them there

    def __init__(self, config: C | None = None) -> None:
        self.config_cls = self.experiment.Config
        self.form = ConfigForm(self.config_cls, config, **self.form_options)
        self.live = LiveFigure(alt=self.alt, **self.figure_options)
        self.message = w.HTML()
        self.running_config: C | None = None
        self._waiting: Record | None = None
        self._placeholders: list[Text] = []  # "press Run" on the empty axes of a run not yet started
        self.controller = RunController(
            self._start, on_record=self.redraw, on_reset=self._reset, on_end=self._end, auto=self.auto
        )
        self.setup(self.live.axes)
        if not self.auto:
            self.clear()  # the artists and limits of an empty run, so the figure renders before the first Run
            self._place()
        self.form.observe(self._config_changed)
        self.form.widget.layout.width = FORM_WIDTH
        # Controls on the left, the figure beside them where both fit; where they do not (a figure wider than the
        # room beside the controls: 8 in at 1280 px with the file browser open), the figure's line wraps ABOVE
        # the controls' (wrap-reverse; align_items "flex-end" is then the top), so the figure is in view after Run.
        self.main = w.HBox(
            [self.form.widget, self.live.widget],
            layout=w.Layout(flex_flow="row wrap-reverse", align_items="flex-end"),
        )
        self.main.add_class("wb-main")
        self.tools = w.Accordion(
            children=[w.VBox([self._share_box(), self._export_box()])],
            titles=("share and export",),
            selected_index=None,
        )
        self.tools.add_class("wb-tools")
        self.widget = w.VBox([self.header(), self.message, self.main, *self.footer(), self.tools])
        self.widget.add_class("wb-panel")
        if self.auto:
            self.controller.request()

    # ---- hooks for subclasses
    def setup(self, axes: list[Axes]) -> None:
        """Create the (empty) artists on the LiveFigure's axes."""

    def draw(self, record: Record) -> None:
        """Update the artists from a record (set_data; no new artists, no draw calls)."""

    def clear(self) -> None:
        """Empty the artists (Reset)."""

    def header(self) -> w.Widget:
        title = w.HTML(f"<b>{html.escape(self.title)}</b>")
        if self.help is None:
            return self.title_row(title)
        text = w.HTMLMath(self.help.html(), layout=w.Layout(display="none", max_width="760px"))
        toggle = w.ToggleButton(
            description="?",
            tooltip="what am I looking at, what to try, what theory predicts",
            layout=w.Layout(width="36px"),
        )
        toggle.observe(lambda change: setattr(text.layout, "display", "" if change["new"] else "none"), names="value")
        return w.VBox([self.title_row(title, toggle), text])

    def title_row(self, *widgets: w.Widget) -> w.Widget:
        """The title (and help toggle) with Run / Stop / Reset, the progress bar and the status in one line."""
        row = w.HBox(
            [*widgets, self.controller.widget, w.HTML(PANEL_CSS, layout=w.Layout(display="none"))],
            layout=w.Layout(align_items="center", flex_flow="row wrap"),
        )
        row.add_class("wb-title-row")
        return row

    def footer(self) -> list[w.Widget]:
        """Widgets under the figure, above the collapsed share and export box (a live panel's past runs)."""
        return []

    @property
    def records(self) -> list[Record]:
        return self.controller.records

    # ---- shared machinery
    @property
    def config(self) -> C:
        return self.form.config

    def show_message(self, text: str, error: bool = True) -> None:
        colour = "#D55E00" if error else "inherit"
        self.message.value = f'<span role="status" style="color:{colour}">{html.escape(text)}</span>' if text else ""

    def _config_changed(self, config: C) -> None:
        self.show_message("")
        if self.auto:
            self.controller.request()

    def run(self, config: C, stop: threading.Event) -> Iterator[Record]:
        """The stream of records for `config` (default: the experiment's run)."""
        return self.experiment.run(config, stop=stop)

    def _start(self, stop: threading.Event) -> Iterator[Record]:
        config = self.config
        self.running_config = config  # before clear(), which lays the figure out for the run about to start
        if not self.auto:
            with self.controller.touching() as open_:  # the worker's thread: a closed panel's figure is left alone
                if open_:
                    self._waiting = None
                    with self.live.lock:
                        self._unplace()
                        self.clear()
        return self.run(config, stop)

    def _place(self) -> None:
        """'press Run' on each axes that holds no data yet (bare -0.05..0.05 axes look broken)."""
        self._unplace()
        for ax in self.live.axes if not self.auto else []:  # a view computes at once: nothing to press
            if not ax.texts and not any(_has_data(a) for a in (*ax.lines, *ax.collections, *ax.images, *ax.patches)):
                note = ax.text(0.5, 0.5, "press Run", transform=ax.transAxes, ha="center", va="center")
                note.set(color="#777777", fontstyle="italic")
                self._placeholders.append(note)

    def _unplace(self) -> None:
        """Remove the 'press Run' notes (a run, a shown or loaded run draws there now)."""
        for note in self._placeholders:
            if note.axes is not None and note in note.axes.texts:  # a panel's clear() may have cleared its axes
                note.remove()
        self._placeholders.clear()

    def _reset(self) -> None:
        self._waiting = None
        with self.live.lock:
            self.clear()
            for ax in self.live.axes:  # an empty run's limits, not the last run's (a set_xlim ended autoscaling)
                ax.set_autoscale_on(True)
                ax.relim(visible_only=True)
                for axis, limits in ((ax.xaxis, ax.dataLim.intervalx), (ax.yaxis, ax.dataLim.intervaly)):
                    if not np.all(np.isfinite(limits)):  # no data: autoscale_view would keep the old limits
                        axis.set_view_interval(*axis.get_major_locator().nonsingular(-np.inf, np.inf), ignore=True)
                ax.autoscale_view()
            self._place()
        self.live.draw(force=True)

    def _end(self) -> None:
        self.flush()

    def wait(self, timeout: float | None = 120.0) -> bool:
        """Block until the current computation ended (tests, benchmarks, notebooks)."""
        return self.controller.wait(timeout)

    def redraw(self, record: Record, force: bool = False) -> None:
        """draw(record) and a redraw request when the throttle allows (else the record waits for `flush`)."""
        force = force or self.auto or record.kind in ("summary", "point")
        if not force and not self.live.due():
            self._waiting = record
            return
        with self.controller.touching() as open_:  # the worker's thread too: never a closed panel's figure
            if not open_:
                return
            self._waiting = None
            with self.live.lock:
                self._unplace()
                self.draw(record)
            self.live.draw(force=True)

    def flush(self) -> None:
        """Draw the last record that the throttle held back."""
        if self._waiting is not None:
            self.redraw(self._waiting, force=True)

    @staticmethod
    def rescale(ax: Axes) -> None:
        ax.relim(visible_only=True)
        ax.autoscale_view()

    def points(self) -> list[dict]:
        """Metrics of the current run's "point" records (one per job of a sweep), in order."""
        return [r.metrics for r in self.records if r.kind == "point"]

    def history(self, name: str, index: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of a metric over this run's training records (values[:, index] if given)."""
        recs = [r for r in self.records if r.kind == "step" and name in r.metrics]
        steps = np.array([r.done for r in recs], float)
        values = np.array([np.asarray(r.metrics[name], float) for r in recs])
        if index is not None and len(values):
            values = values[(slice(None),) + np.index_exp[index]]
        return steps, values

    def _share_box(self) -> w.Widget:
        self.share_text = w.Text(
            placeholder="config code or JSON, an exported run or its .json file's path", layout=w.Layout(width="420px")
        )
        copy = w.Button(description="Copy config", tooltip="show this config as a short code", icon="share")
        as_json = w.Button(description="as JSON", tooltip="show this config as JSON")
        load = w.Button(
            description="Load",
            tooltip="restore the config or run pasted in the box, or the run file it names",
            icon="upload",
        )
        copy.on_click(lambda _: setattr(self.share_text, "value", self.config.to_code()))
        as_json.on_click(lambda _: setattr(self.share_text, "value", self.config.to_json()))
        load.on_click(lambda _: self.load(self.share_text.value))
        self.share_buttons = (copy, as_json, load)
        return w.HBox([self.share_text, copy, as_json, load])

    def load(self, text: str) -> None:
        """Restore a config from a code or JSON string, or a whole run from the text of the JSON export
        (`workbench.runs.runfile.read_run`) or the path of its file: everything is validated first (the config, every
        record against the experiment's METRICS), then applied at once; any failure is a message in the panel and
        changes nothing. A text or file over `MAX_LOAD_BYTES` is refused by its size, before it is read or parsed."""
        records = None
        try:
            if len(text) > MAX_LOAD_BYTES:
                raise ValueError(
                    f"the text is {len(text) / 2**20:.1f} MB; the share box loads a config or an exported run of at "
                    f"most {MAX_LOAD_BYTES / 2**20:g} MB: {BIGGER_RUNS}"
                )
            text = text.strip()
            if text.lower().endswith(".json") and not text.startswith("{") and "\n" not in text:
                text = read_run_file(text)
            if EXPORTED_RUN.match(text):
                fields, records = read_run(text)
                records = [as_declared(r, self.experiment.METRICS) for r in records]  # an export of nested lists
                config = self.config_cls.from_dict(fields)
                self._check_records(records)
            else:
                config = self.config_cls.from_json(text) if text.startswith("{") else self.config_cls.from_code(text)
        except (ValueError, TypeError) as err:
            self.show_message(str(err))
            return
        if records is not None:
            self.load_run(config, records)
            return
        self.form.set_config(config)
        self.show_message("")

    def _check_records(self, records: list[Record]) -> None:
        """A ValueError unless every record's metrics match the experiment's METRICS and one has metrics (the
        metrics of `export_latest` may be missing: the export keeps them in the last record only)."""
        exported = {f"missing {name}" for name in self.export_latest}
        for i, record in enumerate(records):
            errors = [e for e in schema_errors(record, self.experiment.METRICS) if e not in exported]
            if errors:
                raise ValueError(f"run: record {i} is not a record of {self.title} ({'; '.join(errors[:3])})")
        if not any(r.metrics for r in records):
            raise ValueError("run: no record with metrics")

    def load_run(self, config: C, records: list[Record]) -> None:
        """Apply a validated exported run: a view takes its config and computes it again."""
        self.form.set_config(config)
        self.show_message("loaded the run's settings; the view computes them again", error=False)

    def export(self, fmt: str) -> bytes:
        """The figure (png, svg) or the records (csv, json) as bytes."""
        if fmt in ("png", "svg"):
            return self.live.to_bytes(fmt)
        if fmt == "csv":
            return records_csv(self.records).encode()
        if fmt == "json":
            return records_json(self.records, self.config, self.export_latest).encode()
        raise ValueError(f"format: must be one of {', '.join(_MIME)}, got {fmt!r}")

    def _export_box(self) -> w.Widget:
        self.download = w.HTML()
        buttons = []
        for fmt in _MIME:
            button = w.Button(
                description=fmt.upper(),
                tooltip=f"export the {'figure' if fmt in ('png', 'svg') else 'records'} as {fmt.upper()}",
                layout=w.Layout(width="70px"),
            )
            button.on_click(lambda _, fmt=fmt: self._offer(fmt))
            buttons.append(button)
        return w.HBox([w.Label("export:")] + buttons + [self.download])

    def _offer(self, fmt: str) -> None:
        name = f"{self.title.lower().replace(' ', '_')}.{fmt}"
        self.download.value = download_link(self.export(fmt), name, _MIME[fmt])

    def close(self) -> None:
        """Stop the run, then release the figure and every widget model of the panel: the layout, its children and
        their layouts, styles and toolbars. Returns at once (`RunController.close`): a computation that cannot stop
        before its next chunk, seed or stage ends on its own and touches nothing of the closed panel."""
        self.controller.close()
        self.live.close()
        close_all(self.widget)


PAST_RUNS = 12  # finished or stopped runs a panel keeps under "past runs" (the oldest is dropped first)


class LivePanel(Panel[C]):
    """A panel whose experiment trains in the background: Run / Stop / Reset, records drawn live.

    Every run that ends (finished, stopped, diverged) is kept under "past runs" with its config and
    records, so Reset or a new Run loses nothing: Show restores the settings and the plots."""

    auto = False

    def __init__(self, config: C | None = None) -> None:
        self.past_runs: list[tuple[str, C, list[Record] | int]] = []  # records, or a run id not yet read
        self.past = w.Dropdown(options=[], description="past runs", layout=w.Layout(width="460px"))
        self.show_button = w.Button(
            description="Show", icon="history", disabled=True, tooltip="restore the selected run's settings and plots"
        )
        self.show_button.on_click(self._show_selected)
        super().__init__(config)
        self._restore_past()

    @property
    def experiment_name(self) -> str:
        """The experiment's name in the run database: its module, or the class of an experiment object."""
        e = self.experiment
        return getattr(e, "__name__", None) or f"{type(e).__module__}.{type(e).__qualname__}"

    def _restore_past(self) -> None:
        """List this experiment's latest panel runs from the run database (so they survive a kernel restart);
        their records are read when shown."""
        try:
            db = RunDB()
            infos = [i for i in db.runs(experiment=self.experiment_name, limit=10 * PAST_RUNS) if i["label"]]
        except RunDBError as err:
            self.show_message(f"past runs not loaded: {err}")
            return
        if db.skipped:
            self.show_message(f"{len(db.skipped)} unreadable past run(s) skipped: {'; '.join(db.skipped[:3])}")
        for info in reversed(infos[:PAST_RUNS]):
            try:
                config = self.config_cls.from_dict(info["config"])
            except (ValueError, TypeError):  # saved by another version of the experiment
                continue
            self.past_runs.append((info["label"], config, info["id"]))
        self._list_past()

    def _list_past(self) -> None:
        self.past.options = [(text, i) for i, (text, _, _) in enumerate(self.past_runs)]
        if self.past_runs:
            self.past.value = len(self.past_runs) - 1
        self.show_button.disabled = not self.past_runs

    def footer(self) -> list[w.Widget]:
        return [w.HBox([self.past, self.show_button], layout=w.Layout(align_items="center"))]

    def _end(self) -> None:
        self.flush()
        if self.running_config is not None:  # set by _start before the run yields anything
            self._archive(self.running_config, list(self.controller.records))

    def _archive(self, config: C, records: list[Record]) -> None:
        """Keep an ended run under "past runs", labelled by its time, progress and non-default settings."""
        if not any(r.metrics for r in records):
            return
        default = type(config)()
        paths = [path for path, *_ in leaves(type(config)) if get_path(config, path) != get_path(default, path)]
        changed = ", ".join(f"{p.rsplit('.', 1)[-1]}={short(get_path(config, p))}" for p in paths) or "defaults"
        last, err = records[-1], self.controller.error
        progress = f"{last.unit[:-1]} {last.done}/{last.total}"
        label = f"{time.strftime('%H:%M:%S')}  {'error at ' if err else ''}{progress}  {changed}"
        meta = {"status": "error", "error": f"{type(err).__name__}: {err}"} if err else {}
        problem = None
        try:  # the run database keeps it across kernel restarts (no widget held meanwhile: close() is not kept waiting)
            RunDB().save_run(self.experiment_name, config, records, label=label[:120], **meta)
        except RunDBError as err:
            problem = f"run kept in this session only: {err}"
        with self.controller.touching() as open_:  # called from the worker's thread at the end of a run
            if not open_:
                return
            if problem:
                self.show_message(problem)
            self.past_runs = (self.past_runs + [(label[:120], config, records)])[-PAST_RUNS:]
            self._list_past()

    def _show_selected(self, _button: w.Button) -> None:
        index = self.past.value
        assert index is not None  # Show is enabled once a run is listed, and the dropdown then selects one
        self.show_run(index)

    def load_run(self, config: C, records: list[Record]) -> None:
        """Apply a validated exported run: listed under past runs, shown, then saved in the run database; a run
        whose records cannot be drawn is taken back and the panel stays as it was."""
        if self.controller.running:
            self.show_message("stop the current run before loading one")
            return
        before = (self.config, self.running_config, list(self.controller.records), list(self.past_runs))
        last = records[-1]
        label = f"{time.strftime('%H:%M:%S')}  loaded  {last.unit[:-1]} {last.done}/{last.total}"
        self.past_runs = (self.past_runs + [(label, config, records)])[-PAST_RUNS:]
        self._list_past()
        try:
            self.show_run(len(self.past_runs) - 1)
        except Exception as err:  # names and kinds right, values not drawable (shapes)
            config, self.running_config, self.controller.records[:], self.past_runs = before
            self._list_past()
            self.form.set_config(config)
            with self.live.lock:
                self.clear()
            shown = [r for r in self.controller.records if r.metrics]
            if shown:
                self.redraw(shown[-1], force=True)
            self.show_message(f"run: its records cannot be drawn ({type(err).__name__}: {err})")
            return
        try:  # kept across kernel restarts and offered in Compare runs, like a run computed here
            RunDB().save_run(self.experiment_name, config, records, label=label)
        except RunDBError as err:
            self.show_message(f"loaded run kept in this session only: {err}")
            return
        self.show_message("")

    def show_run(self, index: int) -> None:
        """Restore past run `index`: its config in the controls, its records in the plots and exports."""
        if self.controller.running:
            self.show_message("stop the current run before showing a past one")
            return
        label, config, records = self.past_runs[index]
        if isinstance(records, int):  # listed from the run database: read its records now
            try:
                records = RunDB().records(records)
            except RunDBError as err:
                self.show_message(str(err))
                return
            self.past_runs[index] = (label, config, records)
        self.form.set_config(config)
        self.running_config, self._waiting = config, None
        self.controller.records[:] = records
        with self.live.lock:
            self._unplace()  # before clear(), which may add artists (their names count the axes' children)
            self.clear()
        self.redraw(next(r for r in reversed(records) if r.metrics), force=True)
        self.controller.show("ready", f"showing the run of {label.split()[0]}")


def _has_data(artist: Artist) -> bool:
    """Does an artist draw data: a line in data coordinates (not an axhline), points, segments, a bar of some
    height, an image that is not uniform? (A run's artists are made empty until it draws.)"""
    if isinstance(artist, Line2D):
        ax = artist.axes
        return ax is not None and artist.get_transform() == ax.transData and np.size(artist.get_xdata()) > 0
    if isinstance(artist, PathCollection):
        return np.size(artist.get_offsets()) > 0
    if isinstance(artist, Collection):
        return any(np.size(path.vertices) for path in artist.get_paths())
    if isinstance(artist, Rectangle):
        return artist.get_width() * artist.get_height() != 0
    if isinstance(artist, AxesImage):
        values = np.ma.masked_invalid(np.ma.asarray(artist.get_array(), dtype=float))
        return values.count() > 0 and float(values.max() - values.min()) > 0
    return artist.get_visible()


def short(value: object) -> str:
    """A setting as a past-run label shows it: floats to 3 significant digits, lists joined by '/'."""
    if isinstance(value, (list, tuple)):
        return "/".join(short(v) for v in value)
    return f"{value:.3g}" if isinstance(value, float) else str(value)
