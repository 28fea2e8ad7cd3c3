"""LiveFigure: an ipympl figure for live updates (artists changed with set_data, throttled draw_idle).

    live = LiveFigure(1, 2, alt="Loss against step (left), learned function (right)")
    line, = live.axes[0].plot([], [])
    line.set_data(steps, losses); live.draw()      # at most one draw_idle per `min_interval` seconds
    live.flush()                                    # draw what is pending (end of a run)

The throttle adapts: redraws are spaced by at least `render_share`^-1 times the last measured render
time (the Agg render that the front end's draw request costs the kernel), so live plotting takes at
most about `render_share` (default 15%) of the time, but never fewer than one redraw per `max_interval`
(1.5 s) so that a slow machine still sees the run move.

The figure is a bare `matplotlib.figure.Figure` given an ipympl canvas under `plt.ioff()`: it is never
displayed automatically, never registered with pyplot (so panels leak no pyplot figures), and its
canvas widget sits in the panel's layout. It works with any pyplot backend (no `%matplotlib widget`
needed). Colours: a white figure face with the Okabe-Ito palette, readable in light and dark themes.
`alt` is the figure's text alternative: a caption under the canvas and the Description of exported files.
"""

from __future__ import annotations

import io
import threading
import time

import ipywidgets as w
import matplotlib.pyplot as plt
from cycler import cycler
from ipympl.backend_nbagg import new_figure_manager_given_figure
from matplotlib.figure import Figure

# Okabe & Ito (2008) colour-blind-safe palette, on a white figure in light and dark JupyterLab themes.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
THEME = {"axes.prop_cycle": cycler(color=PALETTE), "figure.facecolor": "white", "axes.facecolor": "white",
         "savefig.facecolor": "white", "text.color": "black", "axes.labelcolor": "black",
         "xtick.color": "black", "ytick.color": "black", "axes.edgecolor": "#333333",
         "font.size": 9, "axes.titlesize": 9, "legend.fontsize": 8, "legend.frameon": False}


class LiveFigure:
    """A grid of axes on an ipympl canvas, redrawn at most once per `min_interval` seconds."""

    def __init__(self, nrows: int = 1, ncols: int = 1, *, figsize=(9.0, 3.0), alt: str = "",
                 min_interval: float = 0.1, render_share: float = 0.15, max_interval: float = 1.5):
        with plt.ioff(), plt.rc_context(THEME):
            self.fig = Figure(figsize=figsize, layout="constrained")
            new_figure_manager_given_figure(id(self), self.fig)
            self.axes = list(self.fig.subplots(nrows, ncols, squeeze=False).ravel())
        canvas = self.fig.canvas
        canvas.header_visible = False
        canvas.footer_visible = False
        canvas.toolbar_position = "right"
        canvas.resizable = False
        self.caption = w.HTML()
        self.min_interval, self.render_share, self.render_seconds = min_interval, render_share, 0.0
        self.max_interval = max_interval
        self._last, self._pending, self._lock = 0.0, False, threading.Lock()
        self.draws = 0
        render = canvas.draw

        def timed_render(*args, **kwargs):  # ipympl renders through canvas.draw when the front end asks
            t = time.perf_counter()
            render(*args, **kwargs)
            self.render_seconds = time.perf_counter() - t

        canvas.draw = timed_render
        self.widget = w.VBox([canvas, self.caption])
        self.alt = alt

    @property
    def canvas(self):
        return self.fig.canvas

    @property
    def alt(self) -> str:
        return self._alt

    @alt.setter
    def alt(self, text: str) -> None:
        self._alt = text  # not canvas.tooltip: ipympl 0.10's front end fails to render a canvas that has one
        self.caption.value = f'<div role="note" style="font-size:85%;opacity:0.8">{text}</div>'

    @property
    def interval(self) -> float:
        """Seconds between redraws: `min_interval`, or more when rendering is slow (at most `max_interval`)."""
        return max(self.min_interval, min(self.max_interval, self.render_seconds / self.render_share))

    def due(self) -> bool:
        """Would `draw()` redraw now?"""
        return time.monotonic() - self._last >= self.interval

    def draw(self, force: bool = False) -> bool:
        """Ask the front end to redraw, unless the last request is younger than `interval`; True if asked."""
        with self._lock:
            now = time.monotonic()
            if not force and now - self._last < self.interval:
                self._pending = True
                return False
            self._last, self._pending = now, False
            self.draws += 1
        self.fig.canvas.draw_idle()
        return True

    def flush(self) -> None:
        """Draw now if an update is waiting behind the throttle."""
        if self._pending:
            self.draw(force=True)

    def render(self) -> None:
        """Render the figure synchronously with Agg (what the front end's draw request costs)."""
        self.fig.canvas.draw()

    def to_bytes(self, fmt: str = "png") -> bytes:
        """The figure as PNG or SVG bytes, with its alt text in the file's metadata."""
        buf = io.BytesIO()
        self.fig.savefig(buf, format=fmt, dpi=150, metadata={"Description": self.alt} if self.alt else None)
        return buf.getvalue()

    def close(self) -> None:
        """Close the canvas widget and drop the figure's artists."""
        self.fig.canvas.close()
        self.fig.clear()
