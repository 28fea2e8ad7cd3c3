"""Learning-rate transfer (issue 6; TP V Fig. 1): with Adam the best base learning rate stays within one
grid step across 4 widths under muP and moves by at least 2 grid steps (to smaller lrs) under SP."""

from typing import Any

import numpy as np
import pytest

from workbench.experiments import lr_transfer as lt

SMALL: dict[str, Any] = dict(
    widths=(32, 64, 128, 256),
    base_width=32,
    depth=3,
    steps=50,
    n_samples=128,
    seeds=3,
    log2_lr_min=-11,
    log2_lr_max=-4,
    optimizer="adam",
)


@pytest.fixture(scope="module")
def finals():
    return {p: list(lt.run(lt.Config().replace(parametrization=p, **SMALL))) for p in ("mup", "sp")}


def test_mup_optimum_transfers_across_widths(finals):
    last = finals["mup"][-1]
    assert last.status == "finished"
    optima = last.metrics["optima"]
    assert optima.max() - optima.min() <= 1.0, optima  # grid step is 1 in log2
    assert SMALL["log2_lr_min"] < optima.mean() < SMALL["log2_lr_max"]  # an interior optimum


def test_sp_optimum_moves_to_smaller_lrs(finals):
    assert finals["sp"][-1].metrics["shift"] <= -2, finals["sp"][-1].metrics["optima"]


def test_records_and_base_width_agreement(finals):
    mup, sp = finals["mup"][0].metrics, finals["sp"][0].metrics
    assert mup["loss"].shape == (8,) and mup["curves"].shape == (8, SMALL["steps"])
    np.testing.assert_allclose(mup["log2_lrs"], np.arange(-11, -3))
    np.testing.assert_allclose(mup["loss"], sp["loss"], rtol=1e-5)  # both are SP at the base width
    # loss curves start from the same zero-readout init, and lr grows -> faster descent at small lr
    assert np.allclose(mup["curves"][:, 0], mup["curves"][0, 0])
    assert mup["loss"][1] < mup["loss"][0]


def test_config_validation():
    with pytest.raises(ValueError, match="log2_lr_max"):
        lt.Config().replace(log2_lr_min=-3, log2_lr_max=-5)
    with pytest.raises(ValueError, match="n_lrs"):
        lt.Config().replace(n_lrs=1)


def test_panel_runs_headless():
    from widgets.panels.lr_transfer import LRTransferPanel

    panel = LRTransferPanel(
        lt.Config().replace(widths=(16, 32), base_width=16, depth=1, steps=3, n_samples=8, n_lrs=3, seeds=1)
    )
    panel.controller.start()
    assert panel.controller.thread is not None  # start() made it
    panel.controller.thread.join()
    assert panel.controller.state == "finished", panel.controller.state
    assert [len(np.asarray(line.get_xdata())) for line in panel.curves] == [3, 3]
    assert len(np.asarray(panel.best.get_xdata())) == 2
    panel.close()
