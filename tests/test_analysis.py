"""The shared fits of `workbench.core.analysis` against independent estimators (scipy's, closed forms)."""

import numpy as np
import pytest
from scipy import stats

from workbench.core.analysis import loglog_slope, sem


def test_sem_matches_scipy_along_the_first_axis_and_marks_a_single_sample():
    x = np.random.default_rng(0).normal(size=(7, 3, 2))
    np.testing.assert_allclose(sem(x), stats.sem(x, axis=0, ddof=1), rtol=1e-12)
    assert float(sem(x[:, 0, 0])) == pytest.approx(float(stats.sem(x[:, 0, 0])))
    np.testing.assert_array_equal(sem(x[:1]), np.zeros((3, 2)))  # one sample: no spread measured
    assert np.isnan(sem(x[:1], nan_if_single=True)).all()
    x[2, 1, 0] = np.nan
    assert np.isnan(sem(x)[1, 0]) and np.isfinite(np.delete(sem(x).ravel(), 2)).all()


def test_loglog_slope_is_the_least_squares_slope_in_log_space():
    w = np.array([16.0, 32.0, 64.0, 128.0])
    v = np.random.default_rng(1).uniform(0.5, 2.0, 4) * w**-0.5
    x, y = np.log(w), np.log(v)
    expected = np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2)  # cov(x, y) / var(x)
    assert float(loglog_slope(w, v)) == pytest.approx(expected, rel=1e-10)
