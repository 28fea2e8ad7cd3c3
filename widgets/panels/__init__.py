"""Every panel of the app, by topic and in tab order (`TOPICS`; `PANELS` lists them all): the one registry that
`Workbench`, the headless tests and the browser test read. A new panel is one experiment module, one panel module
and one entry in `TOPICS`."""

from widgets.panels.bayesian_wide import BayesianWidePanel
from widgets.panels.collapse import CollapsePanel
from widgets.panels.coord_check import CoordCheckPanel
from widgets.panels.criticality import PhaseDiagramPanel, SeluFlowPanel
from widgets.panels.deep_kernel_machine import DeepKernelMachinePanel
from widgets.panels.grokking import GrokkingPanel
from widgets.panels.infinite_depth import InfiniteDepthPanel
from widgets.panels.intrinsic_dimension import IntrinsicDimensionPanel
from widgets.panels.kernel_explorer import KernelExplorerPanel
from widgets.panels.lazy_rich import LazyRichPanel
from widgets.panels.learning_curves import DoubleDescentPanel, LearningCurvesPanel
from widgets.panels.locality import LocalityPanel
from widgets.panels.lr_transfer import LRTransferPanel
from widgets.panels.model_lab import ModelLabPanel
from widgets.panels.permutations import PermutationsPanel
from widgets.panels.scaling import ScalingPanel
from widgets.panels.sweeps import CompareRunsPanel, SweepsPanel
from widgets.panels.training_dynamics import TrainingDynamicsPanel

TOPICS = {  # the app's navigation: a row of topics, then the tabs of the chosen topic (each fits one row)
    "Kernels": (KernelExplorerPanel, TrainingDynamicsPanel, LazyRichPanel),
    "Training": (CoordCheckPanel, LRTransferPanel, CollapsePanel, GrokkingPanel),
    "Depth": (PhaseDiagramPanel, SeluFlowPanel, InfiniteDepthPanel),
    "Bayes & learning curves": (BayesianWidePanel, LearningCurvesPanel, DoubleDescentPanel, LocalityPanel),
    "Your model": (ModelLabPanel,),
    "How much": (IntrinsicDimensionPanel, ScalingPanel),
    "Beyond kernels": (DeepKernelMachinePanel, PermutationsPanel),
    "Runs": (SweepsPanel, CompareRunsPanel),
}

PANELS = tuple(cls for classes in TOPICS.values() for cls in classes)
