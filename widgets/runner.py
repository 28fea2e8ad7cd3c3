"""RunController: Run / Stop / Reset buttons, a status line and a progress bar around a background run.

    controller = RunController(lambda stop: experiment.run(config, stop=stop), on_record=draw,
                               total=lambda: config.steps)

Run starts `run(stop)` in a `threading.Thread`; the loop hands every Record (params dropped) to
`on_record` in that thread, which sets artist data and asks for a throttled redraw. Stop sets the
`threading.Event` the experiment checks between jitted chunks. The status line reads "compiling...",
"running step k", "stopped at step k", "diverged at step k", "finished in X s" or "error: ...";
`state` holds the bare word. Exceptions end the run with their message in the status line: they are
never raised into the notebook (no traceback stream) and never printed from the thread.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Callable, Iterable

import ipywidgets as w

from workbench.training import Record

_COLOURS = {"diverged": "#D55E00", "error": "#D55E00", "finished": "#009E73"}


class RunController:
    """Runs one experiment at a time in a background thread; see the module docstring."""

    def __init__(self, run: Callable[[threading.Event], Iterable[Record]], *,
                 on_record: Callable[[Record], None], on_reset: Callable[[], None] | None = None,
                 on_end: Callable[[], None] | None = None, total: Callable[[], int] | None = None):
        self._run, self.on_record, self.on_reset, self.on_end, self.total = run, on_record, on_reset, on_end, total
        self.records: list[Record] = []
        self.thread: threading.Thread | None = None
        self.stop_event = threading.Event()
        self.state, self.error = "ready", None
        self.run_button = w.Button(description="Run", button_style="success", icon="play",
                                   tooltip="train in the background", layout=w.Layout(width="90px"))
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop", disabled=True,
                                    tooltip="stop after the current chunk", layout=w.Layout(width="90px"))
        self.reset_button = w.Button(description="Reset", icon="undo", tooltip="stop and clear the plots (the run stays under past runs)",
                                     layout=w.Layout(width="90px"))
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.reset_button.on_click(lambda _: self.reset())
        self.progress = w.FloatProgress(value=0.0, min=0.0, max=1.0, layout=w.Layout(width="160px"))
        self.status = w.HTML()
        self.status.add_class("wb-status")
        self.show("ready", "ready")
        self.widget = w.HBox([self.run_button, self.stop_button, self.reset_button, self.progress, self.status],
                             layout=w.Layout(align_items="center", flex_flow="row wrap"))

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def show(self, state: str, text: str) -> None:
        """Set the status line (and `state`, its bare word)."""
        self.state = state
        colour = _COLOURS.get(state)
        style = f' style="color:{colour};font-weight:bold"' if colour else ""
        self.status.value = f'<span class="wb-status-text" data-state="{state}"{style}>{html.escape(text)}</span>'

    def start(self) -> None:
        """Start a run in a background thread (ignored while one is running)."""
        if self.running:
            return
        self.records.clear()
        self.error = None
        self.stop_event = threading.Event()
        self.progress.value = 0.0
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.show("starting", "starting...")
        self.thread = threading.Thread(target=self._loop, args=(self.stop_event,), name="workbench-run", daemon=True)
        self.thread.start()

    def stop(self, wait: bool = False, timeout: float | None = 30.0) -> None:
        """Ask the run to stop after its current chunk; with `wait`, join the thread."""
        self.stop_event.set()
        if wait and self.thread is not None:
            self.thread.join(timeout)

    def reset(self) -> None:
        """Stop the run, forget its records and clear the plots."""
        self.stop(wait=True)
        self.records.clear()
        self.progress.value = 0.0
        self.show("ready", "ready")
        if self.on_reset is not None:
            self.on_reset()

    def _loop(self, stop: threading.Event) -> None:
        start, last = time.perf_counter(), None
        try:
            stream = iter(self._run(stop))
            total = self.total() if self.total else None
            for record in stream:
                if record.status == "compiling":
                    self.show("compiling", "compiling...")
                    continue
                record.params = None
                last = record
                self.records.append(record)
                self.on_record(record)
                if total:
                    self.progress.value = min(1.0, record.step / total)
                if record.status == "running" and not stop.is_set():
                    self.show("running", f"running step {record.step}")
            status = last.status if last is not None and last.status != "running" else (
                "stopped" if stop.is_set() else "finished")
            step = last.step if last is not None else 0
            final = (status, {"stopped": f"stopped at step {step}",
                              "diverged": f"diverged at step {step} (loss is not finite): lower the learning rate",
                              "finished": f"finished in {time.perf_counter() - start:.1f} s"}[status])
        except Exception as err:  # shown in the panel, never raised into the notebook
            self.error = err
            final = ("error", f"error: {err}" if isinstance(err, ValueError) else f"error: {type(err).__name__}: {err}")
        if self.on_end is not None:
            try:
                self.on_end()
            except Exception as err:
                final = ("error", f"error while drawing: {type(err).__name__}: {err}")
        self.run_button.disabled, self.stop_button.disabled = False, True  # before the final status
        self.show(*final)
