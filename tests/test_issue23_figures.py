"""Issue 23, items 6 and 7: figures that show what their help promises, and text fields shown in full. The
per-neuron Fourier spectrum that makes grokking's concentration visible (against pure waves and the uniform-spacings
formula, written out here), the t-process band over the GP band split into its scale and quantile factors (Lee et al.
2022, Sec. 3, with scipy's quantiles), the kernel explorer's default finite networks agreeing with the NTK curve
within their error bars, and the Sweeps text fields and Compare runs list not clipped."""

import html
import math

import numpy as np
import pytest
from scipy import stats

from workbench.experiments import bayesian_wide as B
from workbench.experiments import kernel_explorer as K
from workbench.theory.fourier import neuron_spectrum, random_spectrum
from workbench.theory.kernels import empirical_ntk


def spacings_mean(m: int) -> np.ndarray:
    """E of the j-th largest of m uniform spacings, j = 1..m: (1/m) sum_{i=j}^m 1/i."""
    return np.array([sum(1.0 / i for i in range(j, m + 1)) / m for j in range(1, m + 1)])


def test_neuron_spectrum_of_waves_and_of_a_two_wave_neuron():
    p, a = 31, np.arange(31)[:, None]
    one = np.cos(2 * np.pi * np.array([3, 7, 11]) * a / p + np.array([0.1, 1.0, 2.0]))
    assert neuron_spectrum(one) == pytest.approx(np.r_[1.0, np.zeros(14)], abs=1e-12)
    two = np.cos(2 * np.pi * 2 * a / p) + math.sqrt(1 / 3) * np.sin(2 * np.pi * 5 * a / p)  # powers 3 : 1
    assert neuron_spectrum(two)[:3] == pytest.approx([0.75, 0.25, 0.0], abs=1e-12)


@pytest.mark.parametrize("p", [59, 113])
def test_random_gaussian_embeddings_follow_the_uniform_spacings(p):
    m = (p - 1) // 2
    e = np.random.default_rng(p).standard_normal((2 * p, 3000))
    measured = neuron_spectrum(e, p)
    assert random_spectrum(m) == pytest.approx(spacings_mean(m), rel=1e-12)
    assert measured.sum() == pytest.approx(1.0)
    # each entry is a mean over 6000 columns of a share whose std is below its mean: 4 standard errors
    assert np.all(np.abs(measured - spacings_mean(m)) < 4 * spacings_mean(m) / math.sqrt(6000))


@pytest.mark.parametrize("changes", [{}, dict(outlier=True), dict(eps=0.1, alpha=5.0, beta=0.5)])
def test_t_band_over_gp_band_is_the_scale_times_the_quantile(changes):
    config = B.Config().replace(**changes)
    m = B.posterior(config)
    n = len(m["x_train"])
    assert m["df"] == 2 * config.alpha + n
    scale = math.sqrt((2 * config.beta + m["q"]) / (2 * config.alpha + n))
    quantile = float(stats.t.ppf(0.975, m["df"]) / stats.norm.ppf(0.975))
    assert m["t_over_gp"] == pytest.approx(scale * quantile, rel=1e-6)
    if not changes:  # the numbers the panel's help quotes
        assert (round(m["q"]), round(scale, 1), round(quantile, 2), round(m["t_over_gp"], 1)) == (78, 3.2, 1.18, 3.8)


def test_kernel_explorer_default_networks_agree_with_the_ntk_within_two_standard_errors():
    config = K.Config()
    m = K.analytic(config.replace(n_points=8))  # the curve against the angle does not depend on the data set
    x1, x2 = K.angle_path(config, K.EMPIRICAL_ANGLES)
    mlp, scaling = K.finite_network(config, 2)
    ks = np.array([np.asarray(empirical_ntk(K.build_mlp(mlp, s), x1, x2, scaling=scaling))[0] for s in range(16)])
    assert config.seeds == len(ks)
    theory = np.interp(K.EMPIRICAL_ANGLES, m["angle"], m["ntk_angle"])
    se = ks.std(0, ddof=1) / math.sqrt(len(ks))
    assert np.all(np.abs(ks.mean(0) - theory) < 2 * se)
    four = np.abs(ks[:4].mean(0) - theory) / (ks[:4].std(0, ddof=1) / 2)
    assert np.all(four[:3] > 2)  # the old default of 4 seeds: its mean off the curve at small angles


def test_sweeps_text_fields_show_in_full_in_their_tooltip_and_under_the_form():
    from widgets.panels.sweeps import CompareRunsPanel, SweepsPanel

    panel = SweepsPanel()
    grid = panel._text("grid")
    long = "width = 64, 128, 256, 512, 1024, 2048; lr = 2**-12 .. 2**-3 / 10 log; depth = 1, 2, 3"
    grid.value = long
    assert long in grid.tooltip and html.escape(long) in panel.echo.value
    assert "fields and values" in grid.tooltip  # the field's doc stays
    panel.close()
    compare = CompareRunsPanel()
    assert compare.choices.layout.width == "100%" and int(compare.choices.layout.max_width[:-2]) >= 7 * 100
    compare.close()
