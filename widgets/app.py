"""The app: `Workbench()` shows every panel of `widgets.panels.PANELS` in a tab (JupyterLab and Voila alike).

A tab builds its panel the first time it is selected, so opening the app costs one panel, not all of them.
"""

from __future__ import annotations

import ipywidgets as w

# Full tab titles (JupyterLab truncates tabs to a fixed width) and captions that wrap instead of clipping.
STYLE = """<style>
.wb-app > .lm-TabBar .lm-TabBar-tab, .wb-app > .p-TabBar .p-TabBar-tab { flex: 0 0 auto; max-width: none; min-width: 0; }
.wb-panel .widget-html-content { white-space: normal; }
</style>"""


class Workbench:
    """Tabs holding the registered panels (or the given panel classes); built lazily on selection."""

    def __init__(self, panels=None, selected: int = 0):
        if panels is None:
            from widgets.panels import PANELS as panels
        self.panel_classes = list(panels)
        self.panels: dict[int, object] = {}
        self.tabs = w.Tab(children=[w.VBox() for _ in self.panel_classes],
                          titles=[cls.title for cls in self.panel_classes])
        self.tabs.add_class("wb-app")
        self.tabs.observe(lambda change: self.open(change["new"]), names="selected_index")
        self.widget = w.VBox([w.HTML(STYLE), self.tabs])
        if self.panel_classes:
            self.tabs.selected_index = selected
            self.open(selected)

    def open(self, index: int | None):
        """The panel in tab `index`, built on first use."""
        if index is None:
            return None
        if index not in self.panels:
            panel = self.panel_classes[index]()
            self.panels[index] = panel
            self.tabs.children[index].children = [panel.widget]
        return self.panels[index]

    def panel(self, title: str):
        """The panel with this title (built if needed)."""
        index = [cls.title for cls in self.panel_classes].index(title)
        self.tabs.selected_index = index
        return self.open(index)

    def close(self) -> None:
        for panel in self.panels.values():
            panel.close()
        self.tabs.close()
        self.widget.close()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
