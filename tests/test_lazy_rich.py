"""Lazy versus rich (issue 6; TP IV Sec. 5): feature movement and NTK change against width fall like
n^-1/2 under the NTK parametrization and stay Theta(1) under muP; the finite NTK-parametrized network
approaches the infinite-width NTK gradient-flow prediction as the width grows."""

import numpy as np
import pytest

from workbench.experiments import lazy_rich as L

WIDTHS = (64, 256, 1024)


@pytest.fixture(scope="module")
def final():
    out = {}
    for p in ("ntk", "mup"):
        records = list(L.run(L.Config().replace(widths=WIDTHS, parametrization=p, seeds=3)))
        assert records[-1].status == "finished" and len(records) == len(WIDTHS) + 1
        out[p] = records
    return out


def test_ntk_parametrization_is_lazy(final):
    m = final["ntk"][-1].metrics
    assert abs(m["feature_movement_slope"][0] + 0.5) < 0.15, m["feature_movement_slope"]
    # the NTK's relative change: at most O(n^-1/2) (Lee et al. 2019), its rate O(1/n) (Dyer & Gur-Ari 2019)
    assert -1.2 < m["ntk_change_slope"][0] < -0.35, m["ntk_change_slope"]
    assert m["ntk_gap_slope"][0] < -0.3 and m["ntk_gap"][0, -1] < 0.1  # converges to the kernel prediction


def test_mup_learns_features_at_every_width(final):
    m = final["mup"][-1].metrics
    assert abs(m["feature_movement_slope"][0]) < 0.15, m["feature_movement_slope"]
    assert abs(m["ntk_change_slope"][0]) < 0.3 and np.all(m["ntk_change"] > 0.05)
    assert np.all(np.isnan(m["ntk_gap"]))  # no fixed-kernel limit for muP


def test_records_and_base_width_agreement(final):
    ntk, mup = final["ntk"][0].metrics, final["mup"][0].metrics
    assert ntk["feature_curve"].shape == (L.Config().train.steps + 1,) and ntk["feature_curve"][0] == 0
    assert ntk["feature_movement"] == pytest.approx(mup["feature_movement"], rel=1e-5)  # SP at the base width
    assert final["ntk"][-1].metrics["feature_movement"].shape == (1, len(WIDTHS))


def test_config_parametrizations():
    assert L.Config().parametrizations == ("sp", "ntk", "mup", "mf")
    with pytest.raises(ValueError, match="parametrization"):
        L.Config().replace(parametrization="muP")


def test_panel_runs_headless():
    from widgets.panels.lazy_rich import LazyRichPanel

    panel = LazyRichPanel(
        L.Config().replace(widths=(16, 32), base_width=16, parametrization="ntk", steps=3, seeds=1, n_train=4)
    )
    panel.controller.start()
    assert panel.controller.thread is not None  # start() made it
    panel.controller.thread.join()
    assert panel.controller.state == "finished", panel.controller.state
    assert len(panel.lines["feature_movement", "ntk"].get_xdata()) == 2
    assert len(panel.lines["feature_movement", "mup"].get_xdata()) == 0
    panel.close()


def test_the_legend_lists_what_ran_and_tells_mup_from_mf():
    """Issue 23, item 6: the legend listed all four parametrizations when one ran, and mf's line hid mup's."""
    from widgets.panels.lazy_rich import LazyRichPanel

    panel = LazyRichPanel(L.Config().replace(parametrization="ntk"))
    try:
        legend = panel.live.axes[0].get_legend()
        assert legend is not None and [t.get_text() for t in legend.get_texts()] == ["ntk", "slope -1/2 (lazy)"]
        panel.form.set_config(L.Config())
        panel.clear()
        legend = panel.live.axes[0].get_legend()
        assert legend is not None
        assert [t.get_text() for t in legend.get_texts()] == ["sp", "ntk", "mup", "mf", "slope -1/2 (lazy)"]
        mup, mf = panel.lines["ntk_change", "mup"], panel.lines["ntk_change", "mf"]
        assert (mup.get_marker(), mup.get_linestyle()) != (mf.get_marker(), mf.get_linestyle())
    finally:
        panel.close()
