"""Headless test of the grokking panel: presets load into the form and a short run draws live."""

import numpy as np

from widgets.panels.grokking import GrokkingPanel
from workbench.experiments import grokking as G


def test_grokking_panel_presets_and_live_spectrum():
    panel = GrokkingPanel(G.Config().replace(p=11, train_fraction=0.5, width=16, steps=40, record_every=20))
    xor = next(name for name in G.PRESETS if "XOR" in name)
    panel.preset.value = xor
    assert panel.config == G.PRESETS[xor]
    panel.preset.value = "(custom)"
    panel.form.set_config(G.Config().replace(p=11, train_fraction=0.5, width=16, steps=40, record_every=20))
    panel.controller.start()
    assert panel.controller.thread is not None  # start() made it
    panel.controller.thread.join()
    assert panel.controller.state == "finished"
    steps, acc = map(np.asarray, panel.acc[0].get_data())
    assert list(steps) == [20, 40]  # step 0 is left off the log axis
    assert panel.bars is not None
    heights = [bar.get_height() for bar in panel.bars]
    assert len(heights) == 5 and np.isclose(sum(heights), 1.0)
    assert np.all(np.diff(heights) <= 1e-12)  # each neuron's shares sorted largest first, then averaged
    h5 = sum(1 / i for i in range(1, 6))  # random init: the j-th largest of 5 uniform spacings, (1/5) sum_{i>=j} 1/i
    assert np.allclose(panel.random.get_ydata(), [(h5 - sum(1 / i for i in range(1, j))) / 5 for j in range(1, 6)])
    panel.close()
