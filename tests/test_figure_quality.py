"""Issue 23, item 7: every panel's figure after its quick run, measured with matplotlib's own renderer (headless, no
browser): no two text artists overlap (titles, axis labels, tick labels, legend texts, annotations, colour-bar labels),
every text inside the figure, no legend over more than `LEGEND_COVER` of its axes' data, and every colour bar's texts
clear of the neighbouring axes. The checker and its own tests live here; tests/test_panels.py applies it to every
panel of `widgets.panels.PANELS` after the quick run it checks anyway, so a new panel is covered without a test edit."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.text import Text
from matplotlib.transforms import Bbox

LEGEND_COVER = 0.05  # a legend may hide at most this share of its axes' data points (lines sampled every STEP px)
STEP = 4.0  # px between the points sampled along a drawn line segment
CLEARANCE = 3.0  # px a colour bar's texts keep from every other text
SLACK = 1.0  # px two boxes may share (anti-aliased edges) before they count as overlapping


# ---- the measurements


def _corners(text: Text, renderer) -> np.ndarray:
    """The 4 display-space corners of a text's (possibly rotated) box: its axis-aligned extent shares its centre with
    the rotated box, whose sides are the unrotated extent's."""
    box = text.get_window_extent(renderer)
    angle = text.get_rotation() % 180
    if angle % 90 == 0:
        return np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]])
    text.set_rotation(0)
    try:
        flat = text.get_window_extent(renderer)
    finally:
        text.set_rotation(angle)
    w, h, a = flat.width / 2, flat.height / 2, math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    local = np.array([[-w, -h], [w, -h], [w, h], [-w, h]])
    centre = np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2])
    return local @ rot.T + centre


def _apart(a: np.ndarray, b: np.ndarray, slack: float = SLACK) -> bool:
    """Separating axis test of two convex quadrilaterals, `slack` px of overlap allowed."""
    for poly in (a, b):
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            normal = np.array([-edge[1], edge[0]])
            norm = np.hypot(*normal)
            if norm == 0:
                continue
            normal /= norm
            pa, pb = a @ normal, b @ normal
            if pa.max() <= pb.min() + slack or pb.max() <= pa.min() + slack:
                return True
    return False


def _is_colorbar(ax: Axes) -> bool:
    return getattr(ax, "_colorbar", None) is not None


def _ticks(ax: Axes) -> list[Text]:
    labels = []
    for axis in (ax.xaxis, ax.yaxis):
        if not axis.get_visible():
            continue
        for tick in axis._update_ticks():  # pyright: ignore[reportAttributeAccessIssue]  # the ticks the last draw drew (inside the view interval)
            labels += [t for t in (tick.label1, tick.label2) if t.get_visible()]
    return labels


def texts(fig: Figure) -> list[tuple[str, Text]]:
    """(what, artist) of every visible, non-empty text the figure draws."""
    found: list[tuple[str, Text]] = []
    for n, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        name = "colour bar" if _is_colorbar(ax) else f"axes {n} ({ax.get_title()[:30]!r})"
        titles = [ax.title, getattr(ax, "_left_title", None), getattr(ax, "_right_title", None)]
        found += [(f"{name} title", t) for t in titles if t is not None]
        if ax.axison:  # `ax.axis("off")` hides labels and ticks without hiding the axis objects
            found += [(f"{name} x label", ax.xaxis.label), (f"{name} y label", ax.yaxis.label)]
            found += [(f"{name} tick label", t) for t in _ticks(ax)]
            found += [(f"{name} offset text", a.offsetText) for a in (ax.xaxis, ax.yaxis)]
        found += [(f"{name} text", t) for t in ax.texts]
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            found += [(f"{name} legend", t) for t in legend.get_texts()]
            found += [(f"{name} legend title", legend.get_title())]
    found += [("figure text", t) for t in fig.texts]
    for legend in fig.legends:
        found += [("figure legend", t) for t in legend.get_texts()]
    return [(what, t) for what, t in found if t.get_visible() and t.get_text().strip()]


def overlapping_texts(fig: Figure, renderer) -> list[str]:
    items = [(what, t, _corners(t, renderer)) for what, t in texts(fig)]
    problems = []
    for i, (wa, ta, ca) in enumerate(items):
        for wb, tb, cb in items[i + 1 :]:
            if not _apart(ca, cb):
                problems.append(f"{wa} {ta.get_text()!r} overlaps {wb} {tb.get_text()!r}")
    return problems


def texts_outside(fig: Figure, renderer) -> list[str]:
    box = fig.bbox
    problems = []
    for what, t in texts(fig):
        e = t.get_window_extent(renderer)
        if e.x0 < box.x0 - SLACK or e.x1 > box.x1 + SLACK or e.y0 < box.y0 - SLACK or e.y1 > box.y1 + SLACK:
            problems.append(f"{what} {t.get_text()!r} leaves the figure ({e.bounds} vs {box.bounds})")
    return problems


def data_points(ax: Axes) -> np.ndarray:
    """Display coordinates of the axes' data: line vertices (drawn segments sampled every STEP px) and scatter points,
    those inside the axes' box only."""
    pieces = []
    for line in ax.lines:
        if not line.get_visible():
            continue
        xy = np.asarray(line.get_xydata(), float)
        if not len(xy):
            continue
        xy = line.get_transform().transform(xy)
        xy = xy[np.all(np.isfinite(xy), axis=1)]
        if line.get_linestyle() not in ("None", "none", " ", "") and len(xy) > 1:
            dense = [xy[:1]]
            for p, q in zip(xy[:-1], xy[1:]):
                n = max(1, int(np.hypot(*(q - p)) / STEP))
                dense.append(p + (q - p) * (np.arange(1, n + 1)[:, None] / n))
            xy = np.concatenate(dense)
        pieces.append(xy)
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and coll.get_visible():
            offsets = np.asarray(coll.get_offsets(), float)
            if len(offsets):
                xy = coll.get_offset_transform().transform(offsets)
                pieces.append(xy[np.all(np.isfinite(xy), axis=1)])
    if not pieces:
        return np.zeros((0, 2))
    xy = np.concatenate(pieces)
    box = ax.bbox
    inside = (xy[:, 0] >= box.x0) & (xy[:, 0] <= box.x1) & (xy[:, 1] >= box.y0) & (xy[:, 1] <= box.y1)
    return xy[inside]


def legends_over_data(fig: Figure, renderer) -> list[str]:
    problems = []
    for n, ax in enumerate(fig.axes):
        legend = ax.get_legend()
        if legend is None or not legend.get_visible():
            continue
        xy = data_points(ax)
        if not len(xy):
            continue
        share = covered(legend, xy, renderer)
        if share > LEGEND_COVER:
            problems.append(f"axes {n} ({ax.get_title()[:30]!r}): its legend covers {share:.0%} of the data")
    return problems


def covered(legend: Legend, xy: np.ndarray, renderer) -> float:
    b: Bbox = legend.get_window_extent(renderer)
    inside = (xy[:, 0] >= b.x0) & (xy[:, 0] <= b.x1) & (xy[:, 1] >= b.y0) & (xy[:, 1] <= b.y1)
    return float(inside.mean())


def colorbars_crowded(fig: Figure, renderer) -> list[str]:
    """A colour bar's label and tick labels clear of every other axes' box (the neighbour's frame) and at least
    CLEARANCE px from every other text (the neighbour's y label)."""
    problems = []
    for cax in fig.axes:
        if not _is_colorbar(cax) or not cax.get_visible():
            continue
        own = [cax.yaxis.label, cax.xaxis.label] + _ticks(cax)
        for t in own:
            if not t.get_visible() or not t.get_text().strip():
                continue
            corners = _corners(t, renderer)
            for what, other in texts(fig):
                if other not in own and not _apart(corners, _corners(other, renderer), slack=-CLEARANCE):
                    problems.append(
                        f"colour bar text {t.get_text()!r} within {CLEARANCE} px of {what} {other.get_text()!r}"
                    )
            for n, ax in enumerate(fig.axes):
                if ax is cax or _is_colorbar(ax) or not ax.get_visible():
                    continue
                b = ax.bbox
                frame = np.array([[b.x0, b.y0], [b.x1, b.y0], [b.x1, b.y1], [b.x0, b.y1]])
                if not _apart(corners, frame):
                    problems.append(f"colour bar text {t.get_text()!r} over axes {n} ({ax.get_title()[:30]!r})")
    return problems


def figure_problems(fig: Figure) -> list[str]:
    """Everything this module checks, as readable lines (empty: the figure is clean)."""
    fig.canvas.draw()
    fig.canvas.draw()  # constrained layout settles on the second pass
    renderer = fig.canvas.get_renderer()  # pyright: ignore[reportAttributeAccessIssue]  # Agg-based canvases
    return (
        overlapping_texts(fig, renderer)
        + texts_outside(fig, renderer)
        + legends_over_data(fig, renderer)
        + colorbars_crowded(fig, renderer)
    )


# ---- the checker finds what it should


def _figure() -> Figure:
    fig = Figure(figsize=(4, 3), layout="constrained")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    return fig


def test_the_checker_finds_overlapping_texts_and_passes_apart_ones():
    fig = _figure()
    ax = fig.subplots()
    ax.text(0.5, 0.5, "first label", transform=ax.transAxes)
    ax.text(0.52, 0.5, "second label", transform=ax.transAxes)
    assert any("overlaps" in p for p in figure_problems(fig))
    ax.texts[1].set_position((0.5, 0.2))
    assert figure_problems(fig) == []


def test_the_checker_sees_rotated_tick_labels_as_rotated_boxes():
    """45-degree tick labels side by side have overlapping axis-aligned boxes but do not touch; crammed ones do."""
    fig = _figure()
    ax = fig.subplots()
    ax.set_xticks(range(6), [f"{2**k}" for k in range(6)], rotation=45, ha="right")
    assert figure_problems(fig) == []
    ax.set_xticks(np.arange(40) / 8, [f"label {k}" for k in range(40)], rotation=45, ha="right")
    assert any("tick label" in p and "overlaps" in p for p in figure_problems(fig))


def test_the_checker_finds_a_legend_over_data():
    fig = _figure()
    ax = fig.subplots()
    x = np.linspace(0, 1, 200)
    ax.plot(x, np.ones_like(x), label="a flat line under the legend")
    ax.plot(x, x, label="a rising line")
    ax.set_ylim(0, 2)
    ax.legend(loc="center")
    assert any("legend covers" in p for p in figure_problems(fig))
    ax.legend(loc="upper left")
    assert figure_problems(fig) == []


def test_the_checker_finds_a_colour_bar_label_on_its_neighbour():
    fig = _figure()
    fig.set_layout_engine("none")
    left, right = fig.add_axes((0.1, 0.1, 0.35, 0.8)), fig.add_axes((0.55, 0.1, 0.35, 0.8))
    image = left.imshow(np.arange(16.0).reshape(4, 4))
    bar = fig.colorbar(image, ax=left, fraction=0.05, pad=0.01)
    bar.set_label("a long colour bar label")
    right.set_ylabel("the neighbour's y label")
    problems = figure_problems(fig)
    assert any("colour bar" in p for p in problems), problems


# ---- every panel after its quick run
