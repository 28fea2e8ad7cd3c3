"""RunController: a status line and a progress bar around an experiment that runs in a background thread.

    controller = RunController(lambda stop: experiment.run(config, stop=stop), on_record=draw)

Two ways to start a run:
- a training panel shows Run / Stop / Reset: Run starts `run(stop)` in a `threading.Thread`, Stop sets
  the `threading.Event` the experiment checks between jitted chunks or jobs;
- a view panel (`auto=True`) calls `request()` on every control change: one worker thread computes
  the latest settings after a short debounce; a newer request stops the computation in flight, whose
  records are then dropped, so at most one computation runs and the plot never shows stale settings
  as current. The caller's thread (the kernel's) only sets a flag: a control change never blocks it.

Records go to `on_record` (params dropped) in the worker thread. The progress bar and the status text
come from the record itself (`Record.fraction`, `workbench.core.experiment.progress_text`): "compiling...",
"running: step 1200 of 4000", "stopped at job 3 of 20", "diverged at step k of n", "finished: 20 jobs
in X s" or "error: ...". Exceptions end the run with their message in the status line: they are never
raised into the notebook and never printed from the thread.

Every widget change the worker makes happens inside `touching()`, which says whether the controller is still
open (and, for a view, whether its computation is still the latest). `close()` therefore returns at once (within
`CLOSE_WAIT`): it stops the computation, waits for a widget update in progress to end, and leaves a worker that is
still computing (inside a compilation, or a stage of a view) to end on its own at its next stop check, touching no
widget.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import ipywidgets as w

from workbench.core.experiment import Record, progress_text

_COLOURS = {"diverged": "#D55E00", "error": "#D55E00", "finished": "#009E73"}
DEBOUNCE = 0.02  # seconds a view waits for a newer control change (stale results are dropped anyway)
CLOSE_WAIT = 0.5  # seconds close() waits for the worker to end; a worker still computing then ends detached


def final_text(record: Record | None, stop: threading.Event, seconds: float) -> tuple[str, str]:
    """(state, status text) of an ended run, from its last record."""
    if record is None:
        return ("stopped", "stopped before the first result") if stop.is_set() else ("finished", "finished")
    status = record.status if record.status != "running" else ("stopped" if stop.is_set() else "finished")
    where = progress_text(record)
    if status == "finished":
        unit = record.unit if record.total != 1 else record.unit[:-1]
        return status, f"finished: {record.total} {unit} in {seconds:.1f} s"
    if status == "diverged":
        return status, f"diverged at {where} (a loss or metric is not finite): lower the learning rate"
    return status, f"stopped at {where}"


class RunController:
    """Runs one experiment at a time in a background thread; see the module docstring."""

    def __init__(
        self,
        run: Callable[[threading.Event], Iterable[Record]],
        *,
        on_record: Callable[[Record], None],
        on_reset: Callable[[], None] | None = None,
        on_end: Callable[[], None] | None = None,
        auto: bool = False,
        debounce: float = DEBOUNCE,
    ) -> None:
        self._run, self.on_record, self.on_reset, self.on_end = run, on_record, on_reset, on_end
        self.auto, self.debounce = auto, debounce
        self.records: list[Record] = []
        self.thread: threading.Thread | None = None
        self.stop_event = threading.Event()
        self.state = "ready"
        self.error: Exception | None = None
        self._wake = threading.Condition()
        self._guard = threading.RLock()  # held by the worker while it changes widgets (see `touching`)
        self._requested = self._served = 0
        self._closed = False
        self.run_button = w.Button(
            description="Run",
            button_style="success",
            icon="play",
            tooltip="train in the background",
            layout=w.Layout(width="80px"),
        )
        self.stop_button = w.Button(
            description="Stop",
            button_style="danger",
            icon="stop",
            disabled=True,
            tooltip="stop after the current chunk or job",
            layout=w.Layout(width="80px"),
        )
        self.reset_button = w.Button(
            description="Reset",
            icon="undo",
            tooltip="stop and clear the plots (the run stays under past runs)",
            layout=w.Layout(width="80px"),
        )
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.reset_button.on_click(lambda _: self.reset())
        self.progress = w.FloatProgress(value=0.0, min=0.0, max=1.0, layout=w.Layout(width="110px"))
        self.status = w.HTML()
        self.status.add_class("wb-status")
        self.show("ready", "ready")
        buttons = [] if auto else [self.run_button, self.stop_button, self.reset_button]
        self.widget = w.HBox(
            buttons + [self.progress, self.status], layout=w.Layout(align_items="center", flex_flow="row wrap")
        )

    @property
    def running(self) -> bool:
        """A computation is in flight or waiting to start."""
        if self.auto:
            return self._served < self._requested or self.state in ("starting", "compiling", "running")
        return self.thread is not None and self.thread.is_alive()

    @contextmanager
    def touching(self, generation: int | None = None) -> Iterator[bool]:
        """Hold the widget guard: yields True while the controller is open (and, with a view's `generation`, that
        computation is the latest). A worker changes widgets only inside it, and only when it yields True; `close`
        takes the guard after marking the controller closed, so no widget is changed once close() returned."""
        with self._guard:
            yield self._current(generation)

    def show(self, state: str, text: str) -> None:
        """Set the status line (and `state`, its bare word)."""
        self.state = state
        colour = _COLOURS.get(state)
        style = f' style="color:{colour};font-weight:bold"' if colour else ""
        spin = '<i class="fa fa-spinner fa-spin"></i> ' if state in ("starting", "compiling", "running") else ""
        self.status.value = f'<span class="wb-status-text" data-state="{state}"{style}>{spin}{html.escape(text)}</span>'

    # ---- training panels: Run / Stop / Reset
    def start(self) -> None:
        """Start a run in a background thread (ignored while one is running)."""
        if self.running:
            return
        self.stop_event = threading.Event()
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.thread = threading.Thread(
            target=self._loop, args=(self.stop_event, None), name="workbench-run", daemon=True
        )
        self.thread.start()

    def stop(self, wait: bool = False, timeout: float | None = 30.0) -> None:
        """Ask the run to stop after its current chunk or job; with `wait`, join the thread."""
        self.stop_event.set()
        if wait:
            self.wait(timeout)

    def reset(self) -> None:
        """Stop the run, forget its records and clear the plots."""
        self.stop(wait=True)
        self.records.clear()
        self.progress.value = 0.0
        self.show("ready", "ready")
        if self.on_reset is not None:
            self.on_reset()

    def wait(self, timeout: float | None = 120.0) -> bool:
        """Block until nothing is running or requested (tests, benchmarks, notebooks); True if idle."""
        end = None if timeout is None else time.monotonic() + timeout
        if not self.auto:
            if self.thread is not None:
                self.thread.join(timeout)
            return not self.running
        with self._wake:
            while self.running and not self._closed:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._wake.wait(0.05 if left is None else min(left, 0.05))
        return True

    # ---- view panels: recompute on every control change
    def request(self) -> None:
        """Compute the current settings in the background, superseding any computation in flight."""
        with self._wake:
            self._requested += 1
            self.stop_event.set()
            self._wake.notify_all()
            if self.thread is None:
                self.thread = threading.Thread(target=self._serve, name="workbench-view", daemon=True)
                self.thread.start()
        self.show("starting", "updating for the new settings...")

    def _serve(self) -> None:
        while True:
            with self._wake:
                while self._served == self._requested and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                target = self._requested
            time.sleep(self.debounce)  # settings passed while a slider is dragged are skipped
            with self._wake:
                if self._closed:
                    return
                if self._requested != target:
                    continue
                self.stop_event = stop = threading.Event()
            self._loop(stop, target)
            with self._wake:
                self._served = max(self._served, target)
                self._wake.notify_all()

    def _current(self, generation: int | None) -> bool:
        return not self._closed and (generation is None or generation == self._requested)

    # ---- the loop shared by both
    def _loop(self, stop: threading.Event, generation: int | None) -> None:
        start, last = time.perf_counter(), None
        with self.touching(generation) as current:
            if current:
                self.records.clear()
                self.progress.value = 0.0
                self.show("starting", "starting..." if generation is None else "updating for the new settings...")
        self.error = None
        try:
            for record in self._run(stop):
                with self.touching(generation) as current:
                    if not current:
                        return  # superseded (a newer request redraws) or closed
                    if record.status == "compiling":
                        self.show("compiling", "compiling...")
                        continue
                    record.params = None
                    last = record
                    self.records.append(record)
                    self.on_record(record)
                    self.progress.value = record.fraction
                    if record.status == "running" and not stop.is_set():
                        self.show("running", f"running: {progress_text(record)}")
            final = final_text(last, stop, time.perf_counter() - start)
        except Exception as err:  # shown in the panel, never raised into the notebook
            self.error = err
            final = ("error", f"error: {err}" if isinstance(err, ValueError) else f"error: {type(err).__name__}: {err}")
        if not self._current(generation):
            return
        if self.on_end is not None:  # outside the guard: it may save to the run database; it guards its widgets
            try:
                self.on_end()
            except Exception as err:
                final = ("error", f"error while drawing: {type(err).__name__}: {err}")
        with self.touching(generation) as current:
            if current:
                self.run_button.disabled, self.stop_button.disabled = False, True  # before the final status
                self.show(*final)

    def close(self, timeout: float | None = CLOSE_WAIT) -> None:
        """Stop whatever runs and close the widgets, returning within about `timeout` seconds (None: wait for the
        worker thread to end). A worker still computing after that ends on its own at its next stop check (the
        next chunk, job, seed or stage) and changes no widget: it draws no record and ends no run (a run's `on_end`
        that had begun when close() came changes widgets only inside `touching`)."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._wake:
            self._closed = True
            self.stop_event.set()
            self._wake.notify_all()
        if self._guard.acquire(timeout=-1 if end is None else max(0.0, end - time.monotonic())):
            self._guard.release()  # a widget update in progress has ended; every later one sees `_closed`
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(None if end is None else max(0.0, end - time.monotonic()))
        close_all(self.run_button, self.stop_button, self.reset_button, self.progress, self.status, self.widget)


def walk(widget: w.Widget, seen: set[int] | None = None) -> Iterator[w.Widget]:
    """A widget and every widget model it holds in a synced trait (children, accordion pages, layout, style, a
    canvas's toolbar), depth first, each once."""
    seen = set() if seen is None else seen
    if id(widget) in seen:
        return
    seen.add(id(widget))
    yield widget
    for name in widget.keys:
        value = getattr(widget, name, None)
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(item, w.Widget):
                yield from walk(item, seen)


def close_all(*widgets: w.Widget) -> None:
    """Close every widget model that `walk` reaches from `widgets` (ipywidgets' `close` leaves a widget's
    layout, style and children open)."""
    seen: set[int] = set()
    for widget in widgets:
        for model in list(walk(widget, seen)):
            model.close()
