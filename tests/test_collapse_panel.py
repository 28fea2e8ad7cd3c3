"""Headless test of the neural-collapse panel: a short run draws every artist."""

import numpy as np

from widgets.panels.collapse import CollapsePanel
from workbench.experiments import neural_collapse as NC


def test_collapse_panel_draws_metrics_gram_projection_and_predicted_frame():
    panel = CollapsePanel(
        NC.Config().replace(
            dataset="ufm",
            class_sizes=(60, 30, 10),
            dim=8,
            optimizer="sgd",
            lr=0.5,
            weight_decay=0.004,
            steps=256,
            record_every=128,
        )
    )
    panel.controller.start()
    assert panel.controller.thread is not None  # start() made it
    panel.controller.thread.join()
    assert panel.controller.state == "finished" and len(panel.records) == 3
    steps, nc1 = map(np.asarray, panel.nc["nc1"].get_data())
    assert list(steps) == [0, 128, 256] and nc1[-1] < nc1[0]
    assert panel.bars is not None
    assert len(panel.layers) == 2 and len(panel.bars) == 3  # features H and W_1 H of the depth-2 UFM
    np.testing.assert_allclose(np.asarray(panel.prediction.get_data()[1]), panel.records[-1].metrics["gof_w_norms"])
    gram = panel.gram.get_array()
    assert gram is not None and gram.shape == (3, 3) and gram[0, 1] == -0.5  # ETF half above the diagonal
    assert panel.export("png")[:4] == b"\x89PNG"
    panel.close()
