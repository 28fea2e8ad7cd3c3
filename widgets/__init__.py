"""ipywidgets + ipympl front end: controls from Config specs, live figures, run controllers, panels, the app.

See widgets/README.md for how to make a panel and register it with `Workbench`.
"""

from widgets.app import PANELS, Workbench, register_panel
from widgets.controls import ConfigForm, make_control
from widgets.live import PALETTE, LiveFigure
from widgets.panel import LivePanel, Panel
from widgets.runner import RunController
# Importing a panel module registers its panel; this order is the order of the app's tabs.
from widgets import kernel_explorer, training_dynamics  # noqa: F401,E402
from widgets.panels import (coord_check, lr_transfer, lazy_rich, criticality, collapse,  # noqa: F401,E402
                            grokking)

__all__ = ["PANELS", "Workbench", "register_panel", "ConfigForm", "make_control", "PALETTE", "LiveFigure",
           "LivePanel", "Panel", "RunController"]
