"""Finite deep tanh networks against the signal-propagation theory (issue 6; Poole et al. 2016 Fig. 3,
Schoenholz et al. 2017 Fig. 5): below, at and above the order-to-chaos line at sigma_b^2 = 0.05."""

import numpy as np
import pytest

from workbench.experiments import criticality as E
from workbench.theory import criticality_finite as F

CONFIG = E.Config(activation="tanh", sigma_w2s=(1.2, 1.76, 2.5), sigma_b2=0.05, width=256, depth=20, seeds=16)


@pytest.fixture(scope="module")
def records():
    return list(E.run(CONFIG))


def test_phases(records):
    assert records[-1].status == "finished"
    assert records[-1].metrics["phases"] == ["ordered", "critical", "chaotic"]


def _within_sampling_error(m, name, allowance):
    """|measured - theory| <= 4 standard errors over 16 networks + an allowance for the finite width."""
    err = np.abs(m[name] - m[f"{name}_theory"])
    bound = 4 * m[f"{name}_sem"] + allowance * np.abs(m[f"{name}_theory"])
    assert np.all(err <= bound), (name, m["sigma_w2"], err / bound)


def test_correlations_and_lengths_follow_the_maps_within_sampling_error(records):
    for r in records[:-1]:
        _within_sampling_error(r.metrics, "c", 1.0 / CONFIG.width)
        _within_sampling_error(r.metrics, "q", 2.0 / CONFIG.width)


def test_gradient_norm_through_depth(records):
    ordered, critical, chaotic = (r.metrics for r in records[:-1])
    for m in (ordered, critical, chaotic):  # gradient independence: corrections O(depth / width)
        _within_sampling_error(m, "grad2", CONFIG.depth / CONFIG.width)
    # vanishing towards the input in the ordered phase, exploding in the chaotic one, flat at criticality
    assert ordered["grad2"][0] < 0.05 * ordered["grad2"][-1]
    assert chaotic["grad2"][0] > 3 * chaotic["grad2"][-1]
    assert 0.3 < critical["grad2"][0] / critical["grad2"][-1] < 3


def test_input_correlation_and_config_errors():
    x = np.asarray(F.inputs(CONFIG))
    assert np.dot(x[0], x[1]) / np.linalg.norm(x[0]) / np.linalg.norm(x[1]) == pytest.approx(CONFIG.c0, abs=1e-6)
    with pytest.raises(ValueError, match="sigma_w2s"):
        E.Config(sigma_w2s=(0.0, 1.0))


def test_phase_diagram_panel_click_moves_the_point_and_the_profile():
    from matplotlib.backend_bases import MouseButton, MouseEvent

    from widgets.panels.criticality import PhaseDiagramPanel, SeluFlowPanel

    panel = PhaseDiagramPanel(PhaseDiagramPanel.experiment.Config(grid=8, depth=5, width=16, seeds=2))
    assert panel.wait(120)
    assert "chi_1 = " in panel.message.value and len(np.asarray(panel.c_theory.get_xdata())) == 5
    ax = panel.live.axes[0]
    x, y = ax.transData.transform((2.5, 0.05))
    panel.live.canvas.callbacks.process(
        "button_press_event", MouseEvent("button_press_event", panel.live.canvas, x, y, MouseButton.LEFT)
    )
    assert panel.wait(120)
    assert panel.config.sigma_w2 == 2.5 and list(np.asarray(panel.point.get_xdata())) == [2.5]
    assert "chaotic" in panel.message.value
    panel.close()
    selu = SeluFlowPanel(SeluFlowPanel.experiment.Config(steps=5))
    assert selu.wait(60)
    assert len(np.asarray(selu.path.get_xdata())) == 6 and "variance" in selu.message.value
    selu.close()


def test_networks_are_sampled_in_chunks_that_fit_memory(monkeypatch):
    assert F.seed_chunk(CONFIG) == 16  # 16 x 256-wide, 20-deep networks: 80 MB of weights, one call
    assert F.seed_chunk(CONFIG.replace(width=1024, depth=50)) == 1  # 200 MB each
    assert F.seed_chunk(CONFIG.replace(width=512, depth=40, seeds=12)) == 6  # a divisor: no recompilation
    small = CONFIG.replace(width=32, depth=6, seeds=4)
    whole = F.measure(small, 1.76)
    monkeypatch.setattr(F, "CHUNK_BYTES", 1)
    assert F.seed_chunk(small) == 1
    chunked = F.measure(small, 1.76)
    for name in ("q", "c", "grad2", "c_sem"):
        np.testing.assert_allclose(chunked[name], whole[name], rtol=1e-5, err_msg=name)


def test_relu_above_the_edge_is_exploding_not_chaotic_with_a_nan():
    """Issue 23, item 6: a ReLU point with sigma_w^2 > 2 was called "chaotic, chi_1 = nan". Its lengths have no
    fixed point (q* = inf) and, ReLU being scale-invariant, chi_1 = sigma_w^2 E[phi'^2] = sigma_w^2 / 2 at any q."""
    from workbench.experiments import phase_diagram as P

    t = P.theory(P.Config(activation="relu", sigma_w2=2.5, sigma_b2=0.05, grid=8))
    assert t["phase"] == "exploding" and t["q_star"] == float("inf")
    assert t["chi_1"] == pytest.approx(1.25)
    below = P.theory(P.Config(activation="relu", sigma_w2=1.0, sigma_b2=0.05, grid=8))
    assert below["phase"] == "ordered" and below["chi_1"] == pytest.approx(0.5, rel=1e-4)
