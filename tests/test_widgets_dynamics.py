"""Training-dynamics experiment (headless) and its panel: NTK prediction, laziness with width, statuses."""

import threading
from typing import Any

import numpy as np
import pytest

from widgets.panels.training_dynamics import TrainingDynamicsPanel
from workbench.experiments import training_dynamics as T

SMALL: dict[str, Any] = dict(
    widths=(32, 512), steps=100, record_every=50, n_train=12, grid=16, ntk_points=8, base_width=32, depth=2
)


@pytest.fixture(scope="module")
def ntk_run():
    return [r for r in T.run(T.Config().replace(**SMALL)) if r.status != "compiling"]


def test_records_and_metric_shapes(ntk_run):
    first, last = ntk_run[0], ntk_run[-1]
    assert [r.step for r in ntk_run] == [0, 50, 100] and last.status == "finished"
    assert first.metrics["grid"].shape == (16, 1) and list(first.metrics["widths"]) == [32, 512]
    m = last.metrics
    assert m["t"] == pytest.approx(100 * 0.02)
    assert m["train_loss"].shape == (2,) and m["f_grid"].shape == (2, 16) and m["ntk_f_grid"].shape == (2, 16)
    assert m["feature_movement"].shape == (2, 2)


def test_prediction_starts_at_each_network_and_tracks_the_training_loss(ntk_run):
    m0, m = ntk_run[0].metrics, ntk_run[-1].metrics
    np.testing.assert_allclose(m0["ntk_train_loss"], m0["train_loss"], rtol=1e-5)
    np.testing.assert_allclose(m0["ntk_distance"], 0.0, atol=1e-6)
    assert np.all(m["train_loss"] < m0["train_loss"]) and m["train_loss"][1] < 0.1 * m0["train_loss"][1]
    np.testing.assert_allclose(m["ntk_train_loss"][1], m["train_loss"][1], rtol=0.25)


def test_ntk_parametrization_is_lazier_when_wider(ntk_run):
    m = ntk_run[-1].metrics
    ratio = m["ntk_change"][1] / m["ntk_change"][0]
    assert 0.1 < ratio < 0.5  # (32 / 512) ** 0.5 = 0.25 (Jacot et al. 2018; Chizat et al. 2019)
    assert m["ntk_distance"][1] < m["ntk_distance"][0]
    assert m["feature_movement"][1, 0] < m["feature_movement"][0, 0]


def test_mup_stays_rich_when_wider():
    m = list(T.run(T.Config().replace(**SMALL, parametrization="mup")))[-1].metrics
    assert m["ntk_change"][1] / m["ntk_change"][0] > 0.6


def test_same_config_same_numbers(ntk_run):
    again = [r for r in T.run(T.Config().replace(**SMALL)) if r.status != "compiling"]
    for a, b in zip(ntk_run, again):
        for name in ("train_loss", "f_grid", "ntk_change", "ntk_f_grid"):
            np.testing.assert_array_equal(a.metrics[name], b.metrics[name])


def test_no_prediction_for_adam_and_stop_event():
    stop = threading.Event()
    records = []
    for r in T.run(
        T.Config().replace(**{**SMALL, "widths": (32,), "steps": 1000}, optimizer="adam", lr=0.01), stop=stop
    ):
        records.append(r)
        if r.status == "running" and r.step >= 50:
            stop.set()
    assert records[-1].status == "stopped" and records[-1].step < 1000
    assert np.isnan(records[-1].metrics["ntk_train_loss"]).all()


def test_two_d_task_draws_a_decision_surface():
    panel = TrainingDynamicsPanel(T.Config().replace(**{**SMALL, "widths": (32,), "task": "xor", "steps": 50}))
    try:
        panel.controller.start()
        assert panel.controller.thread is not None  # start() made it
        panel.controller.thread.join(120)
        assert panel.controller.state == "finished", panel.controller.status.value
        surface = panel.surfaces[0]
        image = surface.get_array()
        assert surface.get_visible() and image is not None and image.shape == (16, 16)
        np.testing.assert_allclose(image.ravel(), panel.records[-1].metrics["f_grid"][0], rtol=1e-6)
        assert np.shape(panel.data_points[0].get_offsets()) == (12, 2)
        assert len(panel.lines["train"]) == 1 and np.asarray(panel.lines["train"][0].get_xdata())[-1] == 50
        live = panel.live
        live.canvas.syncing_data_url = False
        contours = [c for c in panel.contours if c is not None]
        assert contours and all(c in live.dynamic for c in contours)  # drawn over the cached frame, not in it
        live.render()
        full, cached = live.full_renders, np.asarray(live.canvas.get_renderer().buffer_rgba()).copy()
        panel.draw(panel.records[-1])  # redraws the contours (new artists) without moving any limits
        live.render()
        assert live.full_renders == full
        np.testing.assert_array_equal(np.asarray(live.canvas.get_renderer().buffer_rgba()), cached)
    finally:
        panel.close()


def test_panel_diverges_with_a_huge_learning_rate():
    panel = TrainingDynamicsPanel(T.Config().replace(**{**SMALL, "widths": (32,)}))
    try:
        panel.form.controls["train.lr"].value = 10.0
        panel.controller.start()
        assert panel.controller.thread is not None  # start() made it
        panel.controller.thread.join(120)
        assert panel.controller.state == "diverged" and "diverged at step" in panel.controller.status.value
    finally:
        panel.close()
