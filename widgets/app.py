"""The app: `Workbench()` shows every panel of `widgets.panels.PANELS` in a tab (JupyterLab and Voila alike).

A tab builds its panel the first time it is selected, so opening the app costs one panel, not all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, overload

import ipywidgets as w

if TYPE_CHECKING:
    from widgets.panel import Panel

# Full tab titles (ipywidgets shrinks tabs to a fixed width and cuts their labels): tabs as wide as their
# titles, wrapping onto a second row when the notebook is narrow; a thinner frame around the tab's panel
# (more width for the figures); captions that wrap instead of clipping. The selectors out-rank ipywidgets' own.
STYLE = """<style>
.jupyter-widgets.jupyter-widget-tab.wb-app > .lm-TabBar > .lm-TabBar-content { flex-wrap: wrap; }
.jupyter-widgets.jupyter-widget-tab.wb-app > .lm-TabBar .lm-TabBar-tab { flex: 0 0 auto; max-width: none; }
.jupyter-widgets.jupyter-widget-tab.wb-app > .lm-TabBar .lm-TabBar-tabLabel { overflow: visible; }
.jupyter-widgets.jupyter-widget-tab.wb-app > .widget-tab-contents { padding: 6px; }
.wb-panel .widget-html-content { white-space: normal; }
</style>"""


class Workbench:
    """Tabs holding the registered panels (or the given panel classes); built lazily on selection."""

    def __init__(self, panels: Iterable[type[Panel[Any]]] | None = None, selected: int = 0) -> None:
        if panels is None:
            from widgets.panels import PANELS as panels
        self.panel_classes = list(panels)
        self.panels: dict[int, Panel[Any]] = {}
        self.tabs = w.Tab(
            children=[w.VBox() for _ in self.panel_classes], titles=[cls.title for cls in self.panel_classes]
        )
        self.tabs.add_class("wb-app")
        self.tabs.observe(lambda change: self.open(change["new"]), names="selected_index")
        self.widget = w.VBox([w.HTML(STYLE), self.tabs])
        if self.panel_classes:
            self.tabs.selected_index = selected
            self.open(selected)

    @overload
    def open(self, index: int) -> Panel[Any]: ...
    @overload
    def open(self, index: None) -> None: ...

    def open(self, index: int | None) -> Panel[Any] | None:
        """The panel in tab `index`, built on first use."""
        if index is None:
            return None
        if index not in self.panels:
            panel = self.panel_classes[index]()
            self.panels[index] = panel
            self.tabs.children[index].children = [panel.widget]
        return self.panels[index]

    def panel(self, title: str) -> Panel[Any]:
        """The panel with this title (built if needed)."""
        index = [cls.title for cls in self.panel_classes].index(title)
        self.tabs.selected_index = index
        return self.open(index)

    def close(self) -> None:
        for panel in self.panels.values():
            panel.close()
        self.tabs.close()
        self.widget.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        return self.widget._repr_mimebundle_(**kwargs)
