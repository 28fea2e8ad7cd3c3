"""Linear-student dynamics (Advani, Saxe & Sompolinsky 2020, arXiv 1710.03667): the issue's reproduction numbers,
the Marchenko-Pastur density by scipy quadrature and against sampled spectra, the closed-form t -> infinity limits,
the optimal ridge 1/SNR, and theory against a float64 Monte Carlo of the gradient flow at N = 400."""

import numpy as np
import pytest
import scipy.integrate

from workbench.theory import linear_dynamics as L

TIMES = np.array([0.5, 2.0, 10.0, 100.0, 1000.0])


def test_reproduction_a2_snr4():
    eg = L.generalization_error([2.0, np.inf], 2.0, 4.0, 0.0)
    assert round(float(eg[0]), 4) == 0.4322
    np.testing.assert_allclose(eg[1], 0.5, rtol=1e-9)


@pytest.mark.parametrize("a", [0.3, 0.5, 1.0, 2.0, 5.0])
def test_mp_density_integrates_to_min_1_a(a):
    lo, hi = L.mp_edges(a)
    mass = scipy.integrate.quad(lambda l: L.mp_density(l, a), lo, hi, limit=200)[0]
    np.testing.assert_allclose(mass, min(1.0, a), rtol=1e-7)
    np.testing.assert_allclose(L.mp_quadrature(a)[1].sum(), min(1.0, a), rtol=1e-8)


def test_mp_density_matches_sampled_spectrum():
    rng = np.random.default_rng(0)
    n, a = 400, 0.5
    x = rng.normal(size=(int(a * n), n)) / np.sqrt(n)
    eig = np.linalg.eigvalsh(x.T @ x)
    lo, hi = L.mp_edges(a)
    assert np.mean(eig < 1e-9) == pytest.approx(1 - a, abs=1e-9)
    for cut in (0.3, 1.0, 2.0):
        predicted = scipy.integrate.quad(lambda l: L.mp_density(l, a), lo, cut)[0] + (1 - a)
        assert abs(np.mean(eig <= cut) - predicted) < 0.02


@pytest.mark.parametrize("a, sigma0", [(0.5, 0.0), (0.5, 0.7), (2.0, 0.7), (4.0, 0.0)])
def test_infinite_time_limits(a, sigma0):
    snr = 2.0
    noise = 1 / snr
    expect = noise * a / (a - 1) if a > 1 else (1 - a) * (1 + sigma0**2) + noise / (1 - a)
    np.testing.assert_allclose(L.generalization_error(np.inf, a, snr, sigma0), expect, rtol=1e-8)
    np.testing.assert_allclose(L.generalization_error(1e7, a, snr, sigma0), expect, rtol=1e-6)
    assert np.isinf(L.generalization_error(np.inf, 1.0, snr, sigma0))
    # training error: noise (1 - 1/a) left above a = 1, zero below; all of it at t = 0
    np.testing.assert_allclose(L.training_error(1e7, a, snr, sigma0), max(0.0, 1 - 1 / a) * noise, atol=1e-10)
    np.testing.assert_allclose(L.training_error(0.0, a, snr, sigma0), 1 + sigma0**2 + noise, rtol=1e-10)


@pytest.mark.parametrize("a, snr", [(0.5, 4.0), (1.0, 4.0), (2.0, 0.5), (3.0, 10.0)])
def test_optimal_ridge_is_one_over_snr(a, snr):
    assert abs(L.optimal_ridge(a, snr) - 1 / snr) < 1e-3
    t_star, e_star = L.optimal_stopping(a, snr)
    assert e_star <= L.generalization_error(np.geomspace(1e-2, 1e5, 200), a, snr).min() + 1e-12
    assert L.ridge_error(1 / snr, a, snr) <= e_star + 1e-12  # the optimal ridge beats early stopping


@pytest.mark.parametrize("a", [0.5, 1.0, 2.0])
def test_theory_matches_simulation_within_three_standard_errors(a):
    """N = 400, 10 trials, SNR 4 and 0.5 sharing each sample, t from 0.5 to 1000."""
    snrs = np.array([4.0, 0.5])
    eg, et = L.simulate(TIMES, 400, a, snrs, 0.0, trials=10, seed=1)
    for i, snr in enumerate(snrs):
        pairs = ((eg[:, i], L.generalization_error(TIMES, a, snr)), (et[:, i], L.training_error(TIMES, a, snr)))
        for sim, theory in pairs:
            sem = sim.std(0, ddof=1) / np.sqrt(len(sim))
            # 1e-9: below a = 1 the training error reaches round-off, where the SEM itself is round-off
            assert np.all(np.abs(sim.mean(0) - theory) <= 3 * sem + 1e-9), (a, snr, sim.mean(0), theory, sem)


def test_out_of_range_names_the_field():
    with pytest.raises(ValueError, match="a: must be in"):
        L.generalization_error(1.0, 0.0, 4.0)
    with pytest.raises(ValueError, match="snr: must be in"):
        L.simulate(TIMES, 20, 1.0, -1.0)
    with pytest.raises(ValueError, match="sigma0: must be in"):
        L.training_error(1.0, 1.0, 4.0, -0.1)
