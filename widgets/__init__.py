"""ipywidgets + ipympl front end: controls from Config specs, live figures, run controllers, panels, the app.

See widgets/README.md for how to make a panel; `widgets.panels.PANELS` lists them in tab order.
"""

from widgets.app import Workbench
from widgets.controls import ConfigForm, make_control
from widgets.live import PALETTE, LiveFigure
from widgets.panel import Help, LivePanel, Panel
from widgets.runner import RunController

__all__ = [
    "Workbench",
    "ConfigForm",
    "make_control",
    "PALETTE",
    "LiveFigure",
    "Help",
    "LivePanel",
    "Panel",
    "RunController",
]
