"""Lazy-versus-rich panel (TP IV Sec. 5; Chizat et al. 2019): relative feature movement, relative change of
the empirical NTK and the gap to the infinite-width NTK prediction against width, one line per
parametrization, with the n^-1/2 lazy reference (`workbench.experiments.lazy_rich`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes

from widgets.live import PALETTE, log2_axis
from widgets.panel import Help, LivePanel
from workbench.core import parametrizations as P
from workbench.core.experiment import Record
from workbench.experiments import lazy_rich

ALT = (
    "Three log-log plots against width, one line per parametrization: relative movement of the last hidden "
    "features, relative change of the empirical NTK, and the distance of the trained network from the "
    "infinite-width NTK prediction (sp and ntk; mup and mf have no fixed-kernel limit). "
    "Dashed grey: slope -1/2, the lazy rate of the features (the NTK's change falls between -1/2 and -1)."
)
METRICS = (("feature_movement", "feature movement"), ("ntk_change", "NTK change"), ("ntk_gap", "gap to NTK prediction"))

STYLES: dict[
    str, dict[str, Any]
] = {  # mup and mf move features alike, so their lines overlap: a marker and a dash tell them apart
    "sp": dict(marker="o", ms=3, ls="-"),
    "ntk": dict(marker="s", ms=3, ls="-"),
    "mup": dict(marker="o", ms=6, ls="-", mfc="none"),
    "mf": dict(marker="x", ms=5, ls="--"),
}

HELP = Help(
    what="Relative feature movement, relative change of the empirical NTK and the distance to the infinite-width "
    "NTK prediction after training, against width, one line per parametrization.",
    try_="Run all four parametrizations; raise the steps or the learning rate.",
    theory="Under ntk each feature moves by $O(n^{-1/2})$ (slope $-1/2$; lazy) and the NTK's relative change is "
    "at most $O(n^{-1/2})$ (Lee et al. 2019), in fact $O(1/n)$ (Dyer & Gur-Ari 2019: its time derivative is "
    "$O(1/n)$), so its fitted slope lies between $-1/2$ and $-1$ at these widths; under mup and mf both stay "
    "$\\Theta(1)$, slope 0 (rich: features learn at every width; Yang & Hu 2021).",
)


class LazyRichPanel(LivePanel[lazy_rich.Config]):
    title = "Lazy vs rich"
    help = HELP
    quick = dict(widths=(16, 32), base_width=16, parametrization="ntk", steps=3, seeds=1, n_train=4)
    experiment = lazy_rich
    figure_options = dict(nrows=1, ncols=3, figsize=(8.0, 3.0))
    alt = ALT

    def setup(self, axes: list[Axes]) -> None:
        self.lines = {}
        for ax, (key, title) in zip(axes, METRICS):
            ax.set(xscale="log", yscale="log", xlabel="width", ylabel="relative size", title=title)
            for i, p in enumerate(P.NAMES):
                self.lines[key, p] = ax.plot([], [], color=PALETTE[i], label=p, **STYLES[p])[0]
        self.refs = [ax.plot([], [], "--", color="#999999", lw=1, label="slope -1/2 (lazy)")[0] for ax in axes]

    def clear(self) -> None:
        config = self.running_config or self.config
        for line in list(self.lines.values()) + self.refs:
            line.set_data([], [])
        for ax in self.live.axes:
            log2_axis(ax, config.widths)
        shown = [self.lines["feature_movement", p] for p in config.parametrizations]  # only what this run trains
        self.live.axes[0].legend(handles=shown + self.refs[:1], fontsize=7, loc="best")  # placed clear of the lines

    def draw(self, record: Record) -> None:
        rows = self.points()
        for (key, p), line in self.lines.items():
            mine = [(m["width"], m[key]) for m in rows if m["parametrization"] == p and np.isfinite(m[key])]
            line.set_data(*(zip(*mine) if mine else ([], [])))
        widths = sorted({m["width"] for m in rows})
        for ref, (key, _) in zip(self.refs, METRICS):
            first = [m[key] for m in rows if m["width"] == widths[0] and np.isfinite(m[key])] if widths else []
            if first and len(widths) > 1:
                w = np.array(widths, float)
                ref.set_data(w, max(first) * (w / w[0]) ** -0.5)
        for ax in self.live.axes:
            ax.relim(visible_only=True)
            ax.autoscale_view(scalex=False)
