"""Per-neuron Fourier concentration (`workbench.theory.fourier.neuron_concentration`) over Z_p, per embedding table:
pure waves, a two-frequency mixture, the random-Gaussian baseline, and a short grokking run of the pair MLP.
Expectations are built from the waves and from the harmonic-number formula, not from the function under test."""

import math

import numpy as np
import pytest

from workbench.experiments import grokking as G
from workbench.theory.fourier import neuron_concentration


def harmonic_share(m: int) -> float:
    """H_m / m: expected max/sum of m i.i.d. exponentials (the folded DFT powers of a Gaussian column, odd p)."""
    return sum(1.0 / j for j in range(1, m + 1)) / m


def waves(p: int, freqs, phases, amps: float | np.ndarray = 1.0) -> np.ndarray:
    """(p, d) columns amps * cos(2 pi k a / p + phase)."""
    a = np.arange(p)[:, None]
    return amps * np.cos(2 * np.pi * np.asarray(freqs) * a / p + np.asarray(phases))


@pytest.mark.parametrize("p", [59, 60])
def test_pure_waves_in_both_tables_read_one_only_over_z_p(p):
    rng = np.random.default_rng(0)
    d = 64
    k = rng.integers(1, p // 2 + 1, d)  # includes the real frequency p/2 when p is even
    e_a = waves(p, k, rng.uniform(0, 2 * np.pi, d), rng.uniform(0.5, 2.0, d))
    e_b = waves(p, k, rng.uniform(0, 2 * np.pi, d), rng.uniform(0.5, 2.0, d))
    stacked = np.concatenate([e_a, e_b])  # (2p, d) like PairMLP.embeddings()
    assert neuron_concentration(stacked, p) == pytest.approx(1.0, abs=1e-9)
    assert neuron_concentration(e_a) == pytest.approx(1.0, abs=1e-9)  # one table: p defaults to the rows
    # The old bug: one DFT over the 2p stacked rows (Z_2p) spreads a pure wave over many frequencies.
    assert neuron_concentration(stacked) < 0.9


def test_tables_are_averaged_and_a_two_wave_neuron_reads_its_power_share():
    p, rng = 31, np.random.default_rng(1)
    # E_a: cos(3a) + c cos(7a) -> top share 1 / (1 + c^2) (equal-length waves, orthogonal over Z_p); E_b: pure.
    c = np.array([0.0, 0.5, 1.0, 2.0])
    e_a = waves(p, 3, 0.2) + waves(p, 7, rng.uniform(0, 2 * np.pi, 4), c)
    e_b = waves(p, 5, rng.uniform(0, 2 * np.pi, 4))
    expected = np.mean(np.concatenate([np.maximum(1, c**2) / (1 + c**2), np.ones(4)]))
    assert neuron_concentration(np.concatenate([e_a, e_b]), p) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="p: the 62 embedding rows"):
        neuron_concentration(np.concatenate([e_a, e_b]), 30)


# Sampling tolerance: the per-neuron shares of independent Gaussian columns are i.i.d. with standard
# deviation 0.036 at p = 59 and 0.035 at p = 60 (measured over 20,000 columns), so the mean over
# 2 tables x 4096 neurons has standard error 0.036 / sqrt(8192) = 4.0e-4; we allow 4 of them (1.6e-3).
# The former docstring value 2 log(p) / (p - 1) = 0.1406 at p = 59 lies 10 standard errors away.
TOL = 4 * 0.036 / math.sqrt(2 * 4096)


def test_random_gaussian_embeddings_give_the_harmonic_baseline_for_odd_p():
    p = 59
    e = np.random.default_rng(2).normal(size=(2 * p, 4096))
    assert neuron_concentration(e, p) == pytest.approx(harmonic_share((p - 1) // 2), abs=TOL)  # 0.1366
    assert abs(2 * math.log(p) / (p - 1) - harmonic_share((p - 1) // 2)) > 2 * TOL


def test_random_gaussian_embeddings_for_even_p_lie_between_the_harmonic_bounds():
    p = 60  # the real term k = p/2 carries half the expected power of the others
    value = neuron_concentration(np.random.default_rng(3).normal(size=(2 * p, 4096)), p)
    assert harmonic_share(p // 2) - TOL < value < harmonic_share(p // 2 - 1) + TOL  # 0.1332 .. 0.1366


def test_grokking_mlp_neurons_rise_from_the_random_baseline_to_single_frequencies():
    cfg = G.Config().replace(p=31, train_fraction=0.6, width=128, steps=1000, record_every=500)
    recs = [r.metrics for r in G.run(cfg) if r.metrics]
    baseline = harmonic_share(15)  # 0.221
    # At init E_a, E_b are i.i.d. Gaussian: 256 neuron-tables, share sd 0.059 at p = 31 -> standard error
    # 0.0037; 4 of them. The stacked Z_62 DFT of the old call read about half of this.
    assert recs[0]["fourier_neuron_share"] == pytest.approx(baseline, abs=4 * 0.059 / math.sqrt(256))
    assert recs[-1]["test_acc"] > 0.2 and recs[-1]["fourier_neuron_share"] > 0.5  # 0.71 measured, > 2x baseline
