"""Kernel explorer panel (headless): controls -> analytic and empirical kernels -> artist data."""

import numpy as np
import pytest

from widgets.panels.kernel_explorer import KernelExplorerPanel
from workbench.experiments.kernel_explorer import Config as KernelConfig
from workbench.theory.kernels import kernel_vs_angle


@pytest.fixture(scope="module")
def panel():
    p = KernelExplorerPanel(KernelConfig(n_points=24, seeds=2, width=512))
    p.wait()
    yield p
    p.close()


def test_control_change_updates_config_and_artists(panel):
    draws = panel.live.draws
    panel.form.controls["depth"].value = 2
    assert panel.wait()
    assert panel.config.depth == 2 and panel.live.draws > draws
    expected = kernel_vs_angle(
        np.linspace(0, np.pi, 91),
        dim=2,
        depth=2,
        activation="relu",
        weight_std=1.4,
        bias_std=0.1,
        parametrization="ntk",
        width=512,
    )
    np.testing.assert_allclose(panel.ntk.get_ydata(), expected.ntk, rtol=1e-6)
    np.testing.assert_allclose(panel.nngp_c.get_ydata()[0], 1.0)
    assert panel.map.get_array().shape == (24, 24)
    ev = panel.ntk_s.get_ydata()
    assert ev[0] == 1.0 and np.all(np.diff(ev) <= 1e-12)


def test_empirical_ntk_sits_on_the_analytic_curve(panel):
    panel.wait()
    m = panel.records[-1].metrics
    analytic = np.interp(m["empirical_angle"], m["angle"], m["ntk_angle"])
    np.testing.assert_allclose(m["empirical_ntk_mean"], analytic, rtol=0.25)
    assert np.all(m["empirical_ntk_std"] > 0)
    np.testing.assert_allclose(panel.emp.get_ydata(), m["empirical_ntk_mean"])


def test_bad_expression_is_an_inline_error_and_a_good_one_redraws(panel):
    before = panel.ntk.get_ydata().copy()
    panel.form.controls["activation"].value = "x * sigmoid(x"
    assert "activation: cannot parse" in panel.form.errors["activation"].value
    np.testing.assert_array_equal(panel.ntk.get_ydata(), before)
    panel.form.controls["activation"].value = "erf"
    assert panel.wait()
    assert panel.form.errors["activation"].value == ""
    assert not np.allclose(panel.ntk.get_ydata(), before)


def test_standard_parametrization_and_no_seeds(panel):
    panel.load(KernelConfig(n_points=24, seeds=0, parametrization="standard", width=64).to_code())
    panel.wait()
    assert panel.config.parametrization == "standard" and panel.message.value == ""
    assert len(panel.emp.get_xdata()) == 0
    assert "ntk_eigenvalues" in panel.export("json").decode()


def test_small_changes_redraw_the_curves_over_cached_frames(panel):
    panel.live.canvas.syncing_data_url = False
    panel.live.render()
    full, ylim = panel.live.full_renders, panel.live.axes[0].get_ylim()
    panel.form.controls["bias_std"].value = panel.config.bias_std + 0.01
    assert panel.wait()
    panel.live.render()
    assert panel.live.axes[0].get_ylim() == ylim and panel.live.full_renders == full
    lo, hi = ylim
    assert lo <= panel.ntk.get_ydata().min() and panel.ntk.get_ydata().max() <= hi <= 2.2 * panel.ntk.get_ydata().max()
    assert panel.map in panel.live.dynamic and panel.live.axes[1].get_ylim() == (-1.05, 1.05)
