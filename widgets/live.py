"""LiveFigure: an ipympl figure for live updates (artists changed with set_data, throttled draw_idle).

    live = LiveFigure(1, 2, alt="Loss against step (left), learned function (right)")
    line, = live.axes[0].plot([], [])
    line.set_data(steps, losses); live.draw()      # at most one draw_idle per `min_interval` seconds
    live.flush()                                    # draw what is pending (end of a run)

The throttle adapts: redraws are spaced by at least `render_share`^-1 times the last measured render
time (the Agg render that the front end's draw request costs the kernel), so live plotting takes at
most about `render_share` (default 15%) of the time, but never fewer than one redraw per `max_interval`
(1.5 s) so that a slow machine still sees the run move.

Artists listed in `dynamic` (opt-in) are redrawn over a cached background: while no axes' limits,
position, title or labels changed since the last full render, a render restores the cached pixels
(frames, ticks, legends) and draws only those artists, skipping the layout and the text. Any such
change, a resize or a new dpi gives a full render, which refreshes the cache.

The figure is a bare `matplotlib.figure.Figure` given an ipympl canvas under `plt.ioff()`: it is never
displayed automatically, never registered with pyplot (so panels leak no pyplot figures), and its
canvas widget sits in the panel's layout. It works with any pyplot backend (no `%matplotlib widget`
needed). Colours: a white figure face with the Okabe-Ito palette; under a dark JupyterLab or Voila theme the
canvas is shown with its lightness inverted and its line colours' hues about kept (`DARK_CSS`, a CSS filter that
follows the theme as it changes; a diverging colour map's two hues shift, red/blue to brown/green), while exported
figures stay white.
`alt` is the figure's text alternative: a caption under the canvas and the Description of exported files.
"""

from __future__ import annotations

import io
import math
import threading
import time
from collections.abc import Iterable
from typing import Any, cast

import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np
from cycler import cycler
from ipympl.backend_nbagg import (
    Canvas,
    new_figure_manager_given_figure,  # pyright: ignore[reportAttributeAccessIssue]  # added by _Backend.export
)
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.axis import Axis, XAxis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import LogFormatterSciNotation, NullLocator
from matplotlib.typing import RcKeyType

# Okabe & Ito (2008) colour-blind-safe palette, on a white figure in light and dark JupyterLab themes.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
THEME: dict[RcKeyType, Any] = {
    "axes.prop_cycle": cycler(color=PALETTE),
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "text.color": "black",
    "axes.labelcolor": "black",
    "xtick.color": "black",
    "ytick.color": "black",
    "axes.edgecolor": "#333333",
    "font.size": 9,
    "axes.titlesize": 9,
    "legend.fontsize": 8,
    "legend.frameon": False,
}
TOOLBAR_BAND = 34  # px above the canvas for ipympl's toolbar (one row of 28 px buttons)


def nice_ceil(v: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is >= v > 0."""
    e = 10.0 ** math.floor(math.log10(v))
    return next(m * e for m in (1, 2, 5, 10) if m * e >= v)


def round_limits(ax: Axes, axis: str = "xy") -> None:
    """Autoscale to the visible data with zero included and the far ends rounded out to 1, 2 or 5 times a
    power of ten (whole decades on log axes): limits that move only when the data crosses such a step, so
    most redraws reuse the cached frame (`LiveFigure.dynamic`)."""
    ax.relim(visible_only=True)
    for name in axis:
        lo, hi = getattr(ax.dataLim, f"interval{name}")
        if not (np.isfinite(lo) and np.isfinite(hi)):
            continue
        if getattr(ax, f"get_{name}scale")() == "log":
            if lo <= 0:
                continue
            lim = 10.0 ** math.floor(math.log10(lo)), 10.0 ** (math.floor(math.log10(hi)) + 1)
        else:
            lo, hi = (-nice_ceil(-lo) if lo < 0 else 0.0), (nice_ceil(hi) if hi > 0 else 0.0)
            hi = hi if hi > lo else 1.0
            pad = 0.03 * (hi - lo)
            lim = lo - pad, hi + pad
        getattr(ax, f"set_{name}lim")(*lim)


def log2_axis(ax: Axes, values: Iterable[float]) -> None:
    """A log2 x axis labelled at exactly the given values (widths, sample sizes; no crowded minor labels)."""
    widths = sorted({int(v) for v in values})
    ax.set_xscale("log", base=2)
    crowded = len(widths) > 3
    ax.set_xticks(widths, [str(v) for v in widths], rotation=45 if crowded else 0, ha="right" if crowded else "center")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(widths[0] / 1.3, widths[-1] * 1.3)


class RoomyLogFormatter(LogFormatterSciNotation):
    """A log axis's minor tick labels, as many as the axis has room for. Where an axis spans about a decade,
    matplotlib labels 2, 3, 4, 6 x 10^k whatever the axis's length, and on a small subplot they run into each other
    (and into the other axis's label at the corner); this keeps the first of those sets that fits: matplotlib's
    choice, then 2 and 5, then 3, then the decades alone."""

    CHOICES = ({1.0, 2.0, 5.0}, {1.0, 3.0}, {1.0})
    EMS = {"x": 3.6, "y": 1.8}  # room one "4 x 10^-1" label needs along the axis, in font sizes (with the gap)

    def __init__(self, base: float = 10.0, **kwargs: Any) -> None:
        super().__init__(base=base, **kwargs)
        self.log_base = float(base)

    def set_locs(self, locs: Any = None) -> None:
        super().set_locs(locs)
        axis, sublabels = cast(Axis | None, self.axis), self._sublabels
        if axis is None or not sublabels or sublabels == {1} or locs is None or axis.axes is None:
            return
        name = "x" if isinstance(axis, XAxis) else "y"
        lo, hi = sorted(axis.get_view_interval())
        shown = np.asarray([v for v in np.asarray(locs, float) if lo <= v <= hi and v > 0])
        if not len(shown):
            return
        size = axis.get_tick_params(which="minor").get(
            "labelsize", plt.rcParams["xtick.labelsize" if name == "x" else "ytick.labelsize"]
        )
        per_label = FontProperties(size=size).get_size_in_points() * axis.axes.figure.dpi / 72 * self.EMS[name]
        box = axis.axes.bbox
        room = box.width if name == "x" else box.height
        log_b = np.log(self.log_base)
        exponent = np.floor(np.log(shown) / log_b + 1e-9)
        coeff = np.round(shown / self.log_base**exponent)
        decades = max(1, int(np.floor(np.log(hi) / log_b) - np.ceil(np.log(lo) / log_b)) + 1)
        for choice in (sublabels, *self.CHOICES):
            if (np.isin(coeff, list(choice)).sum() + decades) * per_label <= room:
                self._sublabels = set(choice)
                return
        self._sublabels = {1}


def roomy_log_labels(ax: Axes) -> None:
    """Give each log axis of `ax` that still has matplotlib's default minor formatter a `RoomyLogFormatter`."""
    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "log" and type(axis.get_minor_formatter()) is LogFormatterSciNotation:
            base = getattr(axis.get_transform(), "base", 10.0)
            axis.set_minor_formatter(RoomyLogFormatter(base=base, labelOnlyBase=False))


DARK_CSS = (  # JupyterLab and Voila mark the body with data-jp-theme-light; only the figure's pixels are filtered
    "<style>body[data-jp-theme-light='false'] .wb-figure canvas {filter: invert(0.88) hue-rotate(180deg);}</style>"
)


class LiveFigure:
    """A grid of axes on an ipympl canvas, redrawn at most once per `min_interval` seconds."""

    def __init__(
        self,
        nrows: int = 1,
        ncols: int = 1,
        *,
        figsize: tuple[float, float] = (9.0, 3.0),
        alt: str = "",
        min_interval: float = 0.1,
        render_share: float = 0.15,
        max_interval: float = 1.5,
    ) -> None:
        with plt.ioff(), plt.rc_context(THEME):
            self.fig = Figure(figsize=figsize, layout="constrained")
            new_figure_manager_given_figure(id(self), self.fig)
            self.axes: list[Axes] = list(self.fig.subplots(nrows, ncols, squeeze=False).ravel())
        canvas = self.canvas
        canvas.header_visible = False
        canvas.footer_visible = False
        # The toolbar (absolutely placed by ipympl, shown on hover) sits in a band of its own above the figure:
        # at "right" or "left" it would cover the outer axes' titles and ticks, and width is the scarce side.
        canvas.toolbar_position = "top"
        canvas.layout.padding = f"{TOOLBAR_BAND}px 0 0 0"
        canvas.resizable = False
        canvas.add_class("wb-figure")
        self.caption = w.HTML()
        self.min_interval, self.render_share, self.render_seconds = min_interval, render_share, 0.0
        self.max_interval = max_interval
        self._last, self._pending, self._lock = 0.0, False, threading.Lock()
        self.draws = self.full_renders = 0
        self._dynamic: list[Artist] = []
        self._background: Any = None  # the Agg renderer's saved region (`copy_from_bbox`)
        self._frame: tuple | None = None
        self.lock = threading.RLock()  # held by a render and by a panel while it changes artists
        render = canvas.draw

        def timed_render(*args: Any, **kwargs: Any) -> None:  # ipympl renders via canvas.draw when asked to
            with self.lock:  # never a figure half-updated by a panel's draw in its worker thread
                t = time.perf_counter()
                self.theme_text()
                self._render() if self.dynamic else render(*args, **kwargs)
                self.render_seconds = time.perf_counter() - t

        canvas.draw = timed_render
        # As wide as the figure (min-content: the canvas is the widest child), so the caption wraps under it
        # and a panel's flex-wrap row sees the figure's true width.
        self.widget = w.VBox([canvas, self.caption], layout=w.Layout(width="min-content"))
        self.alt = alt

    @property
    def dynamic(self) -> list[Artist]:
        """Artists redrawn over the cached background (empty: every render is a full render)."""
        return self._dynamic

    @dynamic.setter
    def dynamic(self, artists: Iterable[Artist]) -> None:
        # a new list redraws everything; artists that come and go between full renders (a contour redrawn each
        # time) may be appended to and removed from the list in place
        self._dynamic, self._frame = list(artists), None

    def _frame_key(self) -> tuple:
        """What the cached background depends on, besides the artists' styles."""
        return (self.fig.bbox.bounds,) + tuple(
            (tuple(ax.viewLim.bounds), ax.get_position().bounds, ax.get_title(), ax.get_xlabel(), ax.get_ylabel())
            for ax in self.fig.axes
        )

    def _render(self) -> None:
        """Agg render of the `dynamic` artists over the cached background (a full render first if it is stale)."""
        canvas = self.canvas
        if self._frame != self._frame_key():
            for artist in self.dynamic:
                artist.set_animated(True)
            try:
                FigureCanvasAgg.draw(canvas)  # layout, frames, ticks, legends: everything but `dynamic`
            finally:
                for artist in self.dynamic:
                    artist.set_animated(False)
            self._background, self._frame = canvas.copy_from_bbox(self.fig.bbox), self._frame_key()
            self.full_renders += 1
        else:
            canvas.get_renderer().restore_region(self._background)
        for artist in self.dynamic:
            self.fig.draw_artist(artist)
        canvas.blit()  # webagg: send the new frame (a diff image) to the front end

    def theme_text(self) -> None:
        """Titles and legends at THEME's sizes, titles wrapped where they would cross the figure's edge, log axes'
        minor labels only where they fit (`RoomyLogFormatter`).
        `set_title` and `legend` read the global rcParams when a panel calls them (after the figure's rc_context,
        often in a worker thread), so texts they left at the global default size get THEME's; sizes a panel
        chose (`fontsize=7`) stay. Called before every render (constrained layout then makes room)."""
        defaults = [
            (FontProperties(size=plt.rcParams[key]).get_size_in_points(), THEME[key])
            for key in ("axes.titlesize", "legend.fontsize")
        ]
        for ax in self.fig.axes:
            roomy_log_labels(ax)
            titles = [
                t
                for t in (ax.title, getattr(ax, "_left_title", None), getattr(ax, "_right_title", None))
                if t is not None
            ]
            for title in titles:
                title.set_wrap(True)
            legend = ax.get_legend()
            for texts, (default, size) in zip((titles, legend.get_texts() if legend is not None else ()), defaults):
                for text in texts:
                    if text.get_fontsize() == default != size:
                        text.set_fontsize(size)

    @property
    def canvas(self) -> Canvas:
        """The figure's ipympl canvas widget (matplotlib types `Figure.canvas` as the base class)."""
        return cast(Canvas, self.fig.canvas)

    @property
    def alt(self) -> str:
        return self._alt

    @alt.setter
    def alt(self, text: str) -> None:
        self._alt = text  # not canvas.tooltip: ipympl 0.10's front end fails to render a canvas that has one
        self.caption.value = DARK_CSS + (
            f'<div role="note" style="font-size:85%;opacity:0.8;white-space:normal;line-height:1.35">{text}</div>'
        )

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
        with self.lock:
            self.theme_text()
            self.fig.savefig(buf, format=fmt, dpi=150, metadata={"Description": self.alt} if self.alt else None)
        return buf.getvalue()

    def close(self) -> None:
        """Close the canvas widget and drop the figure's artists."""
        self.canvas.close()
        self.fig.clear()
