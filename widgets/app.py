"""The app: `Workbench()` shows every panel of `widgets.panels.PANELS`, grouped by topic (JupyterLab and Voila alike).

Navigation is two short rows: the topics (`widgets.panels.TOPICS`: Kernels, Training, Depth, ...) as
toggle buttons, and the panels of the chosen topic as tabs. Neither row wraps at 1280 px with JupyterLab's file
browser open (15 titles in one tab bar took three rows and pushed the figures below the fold). A tab builds its
panel the first time it is shown, so opening the app costs one panel, not all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, overload

import ipywidgets as w

if TYPE_CHECKING:
    from widgets.panel import Panel

# Full tab titles (ipywidgets shrinks tabs to a fixed width and cuts their labels): tabs as wide as their titles; a
# thinner frame around the tab's panel (more width and height for the figures); captions that wrap instead of
# clipping; compact topic buttons. The selectors out-rank ipywidgets' own.
STYLE = """<style>
.jupyter-widgets.jupyter-widget-tab.wb-app > .lm-TabBar > .lm-TabBar-content { flex-wrap: wrap; }
.jupyter-widgets.jupyter-widget-tab.wb-app > .lm-TabBar .lm-TabBar-tab { flex: 0 0 auto; max-width: none; }
.jupyter-widgets.jupyter-widget-tab.wb-app > .lm-TabBar .lm-TabBar-tabLabel { overflow: visible; }
.jupyter-widgets.jupyter-widget-tab.wb-app > .widget-tab-contents { padding: 4px 6px; }
.wb-topics.widget-toggle-buttons .widget-toggle-button { width: auto; padding: 0 10px; }
.wb-topics.widget-toggle-buttons .widget-toggle-button:not(:last-child) { margin-right: 2px; }
.wb-panel .widget-html-content { white-space: normal; }
</style>"""

OTHER = "More"  # the topic of a panel that `widgets.panels.TOPICS` does not list


class Workbench:
    """Topic buttons over tabs holding the registered panels (or the given panel classes); built lazily.

    `panel(title)` selects a panel's topic and tab and returns the panel (built if needed); `open(index)` does the
    same by its index in `panel_classes`; `selected` is the index of the panel on show."""

    def __init__(self, panels: Iterable[type[Panel[Any]]] | None = None, selected: int = 0) -> None:
        from widgets.panels import PANELS, TOPICS

        self.panel_classes = list(PANELS if panels is None else panels)
        self.panels: dict[int, Panel[Any]] = {}
        topic_of = {cls: topic for topic, classes in TOPICS.items() for cls in classes}
        groups: dict[str, list[int]] = {}
        for index, cls in enumerate(self.panel_classes):
            groups.setdefault(topic_of.get(cls, OTHER), []).append(index)
        self.topic_names = list(groups)
        self.members = list(groups.values())  # per topic, the indices (into panel_classes) of its tabs
        self.slots = [w.VBox() for _ in self.panel_classes]  # a panel's place in its tab
        self.tabs = [
            w.Tab(children=[self.slots[i] for i in members], titles=[self.panel_classes[i].title for i in members])
            for members in self.members
        ]
        for topic, tab in enumerate(self.tabs):
            tab.add_class("wb-app")
            tab.observe(lambda change, topic=topic: self._tab_changed(topic, change["new"]), names="selected_index")
        self.topics = w.ToggleButtons(
            options=self.topic_names,
            tooltips=[", ".join(self.panel_classes[i].title for i in m) for m in self.members],
            style=dict(button_width="auto"),
        )
        self.topics.add_class("wb-topics")
        self.stack = w.Stack(children=self.tabs, selected_index=0)
        self.topics.observe(lambda change: self._topic_changed(change["new"]), names="index")
        self.topics.layout.display = "" if len(self.tabs) > 1 else "none"  # one topic: its tabs alone
        self.widget = w.VBox([w.HTML(STYLE), self.topics, self.stack])
        self.widget.add_class("wb-workbench")
        if self.panel_classes:
            self.open(selected)

    def _where(self, index: int) -> tuple[int, int]:
        """(topic, tab within the topic) of panel `index`."""
        return next((t, m.index(index)) for t, m in enumerate(self.members) if index in m)

    def _topic_changed(self, topic: int | None) -> None:
        if topic is not None:
            self.stack.selected_index = topic
            self.open(self.members[topic][self.tabs[topic].selected_index or 0])

    def _tab_changed(self, topic: int, tab: int | None) -> None:
        if tab is not None and self.topics.index == topic:
            self.open(self.members[topic][tab])

    @property
    def selected(self) -> int | None:
        """The index (into `panel_classes`) of the panel on show."""
        if not self.tabs:
            return None
        topic = self.topics.index or 0
        return self.members[topic][self.tabs[topic].selected_index or 0]

    @overload
    def open(self, index: int) -> Panel[Any]: ...
    @overload
    def open(self, index: None) -> None: ...

    def open(self, index: int | None) -> Panel[Any] | None:
        """Show the panel of `panel_classes[index]` (its topic, then its tab), built on first use."""
        if index is None:
            return None
        if index not in self.panels:
            panel = self.panel_classes[index]()
            self.panels[index] = panel
            self.slots[index].children = [panel.widget]
        topic, tab = self._where(index)
        if self.tabs[topic].selected_index != tab:
            self.tabs[topic].selected_index = tab
        if self.topics.index != topic:
            self.topics.index = topic
        self.stack.selected_index = topic
        return self.panels[index]

    def panel(self, title: str) -> Panel[Any]:
        """The panel with this title, shown (and built if needed)."""
        return self.open([cls.title for cls in self.panel_classes].index(title))

    def close(self) -> None:
        for panel in self.panels.values():
            panel.close()
        for tab in self.tabs:
            tab.close()
        self.topics.close()
        self.stack.close()
        self.widget.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        return self.widget._repr_mimebundle_(**kwargs)
