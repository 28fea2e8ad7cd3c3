"""Every panel of the app, in tab order: the one registry that `Workbench`, the headless tests and the
browser test read. A new panel is one experiment module, one panel module and one line here."""

from widgets.panels.bayesian_wide import BayesianWidePanel
from widgets.panels.collapse import CollapsePanel
from widgets.panels.coord_check import CoordCheckPanel
from widgets.panels.criticality import PhaseDiagramPanel, SeluFlowPanel
from widgets.panels.grokking import GrokkingPanel
from widgets.panels.infinite_depth import InfiniteDepthPanel
from widgets.panels.kernel_explorer import KernelExplorerPanel
from widgets.panels.lazy_rich import LazyRichPanel
from widgets.panels.learning_curves import DoubleDescentPanel, LearningCurvesPanel
from widgets.panels.lr_transfer import LRTransferPanel
from widgets.panels.sweeps import CompareRunsPanel, SweepsPanel
from widgets.panels.training_dynamics import TrainingDynamicsPanel

PANELS = (
    KernelExplorerPanel,
    TrainingDynamicsPanel,
    CoordCheckPanel,
    LRTransferPanel,
    LazyRichPanel,
    PhaseDiagramPanel,
    SeluFlowPanel,
    CollapsePanel,
    GrokkingPanel,
    InfiniteDepthPanel,
    BayesianWidePanel,
    LearningCurvesPanel,
    DoubleDescentPanel,
    SweepsPanel,
    CompareRunsPanel,
)
