"""Panels: a panel is a Config class + a run function + a draw(record) callback, in a standard frame.

How to make a panel (see widgets/README.md for a complete example):

    from widgets import LivePanel, register_panel
    from workbench.experiments import grokking

    @register_panel
    class GrokkingPanel(LivePanel):
        title = "Grokking"
        experiment = grokking                        # module with Config and run(config, stop)
        form_options = dict(exclude=("seed",), ranges={"p": dict(hi=113)})
        figure_options = dict(nrows=1, ncols=2, figsize=(9, 3))
        alt = "Train and test accuracy against step (left), weight norm (right)"

        def setup(self, axes):                       # create empty artists once
            self.train, = axes[0].plot([], [], label="train")
        def draw(self, record):                      # called from the run thread: set_data only
            self.train.set_data(*self.history("train_acc"))
            self.rescale(self.live.axes[0])
        def clear(self):                             # Reset: empty the artists
            self.train.set_data([], [])

`LivePanel` adds the Run / Stop / Reset controller; `Panel` alone suits fast computations that
redraw on every control change (override `update(config)`). Every panel gets controls generated from
the Config's `spec` metadata, a share box (config as a short code or JSON, pasted back to restore),
export buttons (figure PNG/SVG, records CSV/JSON, offered as download links, which work in
JupyterLab and in Voila) and an error line. Errors are shown in the panel, never raised.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import threading
import time
from typing import Any

import ipywidgets as w
import numpy as np

from widgets.controls import ConfigForm
from widgets.live import LiveFigure
from widgets.runner import RunController
from workbench.store import _plain
from workbench.training import Record


def records_table(records: list[Record]) -> tuple[list[str], list[list[Any]]]:
    """CSV columns: step, status, elapsed, every scalar metric and every short vector metric as name[i]."""
    rows, columns = [], ["step", "status", "elapsed"]
    for r in records:
        row = {"step": r.step, "status": r.status, "elapsed": round(r.elapsed, 4)}
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


def records_json(records: list[Record], config=None) -> str:
    body = {"config": config.to_dict() if config is not None else None,
            "records": [{"step": r.step, "status": r.status, "elapsed": r.elapsed, "metrics": r.metrics}
                        for r in records]}
    return json.dumps(_plain(body))


def download_link(data: bytes, filename: str, mime: str) -> str:
    """An HTML link that downloads `data` (a data URL: needs no file server, so it works in Voila)."""
    url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
    return f'<a download="{html.escape(filename)}" href="{url}" target="_blank">save {html.escape(filename)}</a>'


_MIME = {"png": "image/png", "svg": "image/svg+xml", "csv": "text/csv", "json": "application/json"}


class Panel:
    """Controls + LiveFigure + share box + export buttons for one Config class (see module docstring)."""

    title = "panel"
    config_cls: type | None = None
    form_options: dict = {}
    figure_options: dict = {}
    alt = ""

    def __init__(self, config=None):
        self.form = ConfigForm(self.config_cls, config, **self.form_options)
        self.live = LiveFigure(alt=self.alt, **self.figure_options)
        self.message = w.HTML()
        self._draw_lock, self._waiting = threading.Lock(), None
        self.setup(self.live.axes)
        self.form.observe(self._config_changed)
        self.widget = w.VBox([self.header(), w.HBox([self.form.widget, self.live.widget], layout=w.Layout(flex_flow="row wrap")),
                              self.message,
                              self._share_box(), self._export_box()])
        self.widget.add_class("wb-panel")

    # ---- hooks for subclasses
    def setup(self, axes) -> None:
        """Create the (empty) artists on the LiveFigure's axes."""

    def draw(self, record: Record) -> None:
        """Update the artists from a record (set_data; no new artists, no draw calls)."""

    def clear(self) -> None:
        """Empty the artists (Reset)."""

    def update(self, config) -> None:
        """Called after every valid control change."""

    def header(self) -> w.Widget:
        return w.HTML(f"<b>{html.escape(self.title)}</b>")

    @property
    def records(self) -> list[Record]:
        return []

    # ---- shared machinery
    @property
    def config(self):
        return self.form.config

    def show_message(self, text: str, error: bool = True) -> None:
        colour = "#D55E00" if error else "inherit"
        self.message.value = f'<span role="status" style="color:{colour}">{html.escape(text)}</span>' if text else ""

    def _config_changed(self, config) -> None:
        try:
            self.update(config)
        except Exception as err:  # shown in the panel, never raised
            self.show_message(f"error: {type(err).__name__}: {err}")

    def redraw(self, record: Record, force: bool = False) -> None:
        """draw(record) and a redraw request when the throttle allows (else the record waits for `flush`)."""
        if not force and not self.live.due():
            self._waiting = record
            return
        self._waiting = None
        with self._draw_lock:
            self.draw(record)
        self.live.draw(force=True)

    def flush(self) -> None:
        """Draw the last record that the throttle held back."""
        if self._waiting is not None:
            self.redraw(self._waiting, force=True)

    @staticmethod
    def rescale(ax) -> None:
        ax.relim(visible_only=True)
        ax.autoscale_view()

    def history(self, name: str, index=None):
        """(steps, values) of a metric over this run's records (values[:, index] if given)."""
        recs = [r for r in self.records if name in r.metrics]
        steps = np.array([r.step for r in recs], float)
        values = np.array([np.asarray(r.metrics[name], float) for r in recs])
        if index is not None and len(values):
            values = values[(slice(None),) + np.index_exp[index]]
        return steps, values

    def _share_box(self) -> w.Widget:
        self.share_text = w.Text(placeholder="config code or JSON", layout=w.Layout(width="420px"))
        copy = w.Button(description="Copy config", tooltip="show this config as a short code", icon="share")
        as_json = w.Button(description="as JSON", tooltip="show this config as JSON")
        load = w.Button(description="Load", tooltip="restore the config pasted in the box", icon="upload")
        copy.on_click(lambda _: setattr(self.share_text, "value", self.config.to_code()))
        as_json.on_click(lambda _: setattr(self.share_text, "value", self.config.to_json()))
        load.on_click(lambda _: self.load(self.share_text.value))
        return w.HBox([self.share_text, copy, as_json, load])

    def load(self, text: str) -> None:
        """Restore a config from a code or JSON string (errors go to the message line)."""
        text = text.strip()
        try:
            config = (self.config_cls.from_json(text) if text.startswith("{")
                      else self.config_cls.from_code(text))
        except ValueError as err:
            self.show_message(str(err))
            return
        self.show_message("")
        self.form.set_config(config)

    def export(self, fmt: str) -> bytes:
        """The figure (png, svg) or the records (csv, json) as bytes."""
        if fmt in ("png", "svg"):
            return self.live.to_bytes(fmt)
        if fmt == "csv":
            return records_csv(self.records).encode()
        if fmt == "json":
            return records_json(self.records, self.config).encode()
        raise ValueError(f"format: must be one of {', '.join(_MIME)}, got {fmt!r}")

    def _export_box(self) -> w.Widget:
        self.download = w.HTML()
        buttons = []
        for fmt in _MIME:
            button = w.Button(description=fmt.upper(), tooltip=f"export the {'figure' if fmt in ('png', 'svg') else 'records'} as {fmt.upper()}",
                              layout=w.Layout(width="70px"))
            button.on_click(lambda _, fmt=fmt: self._offer(fmt))
            buttons.append(button)
        return w.HBox([w.Label("export:")] + buttons + [self.download])

    def _offer(self, fmt: str) -> None:
        name = f"{self.title.lower().replace(' ', '_')}.{fmt}"
        self.download.value = download_link(self.export(fmt), name, _MIME[fmt])

    def close(self) -> None:
        """Release the figure and the widgets."""
        self.live.close()
        self.widget.close()


PAST_RUNS = 12  # finished or stopped runs a panel keeps under "past runs" (the oldest is dropped first)


class LivePanel(Panel):
    """A panel whose experiment trains in the background: `experiment.run(config, stop)` records are drawn live.

    Every run that ends (finished, stopped, diverged) is kept under "past runs" with its config and
    records, so Reset or a new Run loses nothing: Show restores the settings and the plots."""

    experiment = None  # a module with Config and run(config, stop=None)

    def __init__(self, config=None):
        if self.config_cls is None:
            self.config_cls = self.experiment.Config
        self.controller = RunController(self._start, on_record=self.redraw, on_reset=self._reset,
                                        on_end=self._end,
                                        total=lambda: getattr(self._running_config, "steps", 0))
        self._running_config = None
        self.past_runs: list[tuple[str, Any, list[Record]]] = []
        self.past = w.Dropdown(options=[], description="past runs", layout=w.Layout(width="460px"))
        self.show_button = w.Button(description="Show", icon="history", disabled=True,
                                    tooltip="restore the selected run's settings and plots")
        self.show_button.on_click(lambda _: self.show_run(self.past.value))
        super().__init__(config)

    def header(self) -> w.Widget:
        return w.VBox([super().header(), self.controller.widget, w.HBox([self.past, self.show_button])])

    @property
    def records(self) -> list[Record]:
        return self.controller.records

    def run(self, config, stop: threading.Event):
        """The stream of records for `config` (default: the experiment module's run)."""
        return self.experiment.run(config, stop=stop)

    def _start(self, stop):
        self._running_config, self._waiting = self.config, None
        with self._draw_lock:
            self.clear()
        return self.run(self._running_config, stop)

    def _reset(self) -> None:
        self._waiting = None
        with self._draw_lock:
            self.clear()
        self.live.draw(force=True)

    def _end(self) -> None:
        self.flush()
        self._archive(self._running_config, list(self.controller.records))

    def _archive(self, config, records: list[Record]) -> None:
        """Keep an ended run under "past runs", labelled by its time, last step and non-default settings."""
        if not any(r.metrics for r in records):
            return
        defaults = type(config)().to_dict()
        changed = ", ".join(f"{k}={v}" for k, v in config.to_dict().items() if v != defaults[k]) or "defaults"
        label = f"{time.strftime('%H:%M:%S')}  step {records[-1].step}  {changed}"
        self.past_runs = (self.past_runs + [(label[:120], config, records)])[-PAST_RUNS:]
        self.past.options = [(text, i) for i, (text, _, _) in enumerate(self.past_runs)]
        self.past.value = len(self.past_runs) - 1
        self.show_button.disabled = False

    def show_run(self, index: int) -> None:
        """Restore past run `index`: its config in the controls, its records in the plots and exports."""
        if self.controller.running:
            self.show_message("stop the current run before showing a past one")
            return
        label, config, records = self.past_runs[index]
        self.form.set_config(config)
        self._running_config, self._waiting = config, None
        self.controller.records[:] = records
        with self._draw_lock:
            self.clear()
        self.redraw(next(r for r in reversed(records) if r.metrics), force=True)
        self.controller.show("ready", f"showing the run of {label.split()[0]}")

    def close(self) -> None:
        self.controller.stop(wait=True)
        super().close()
