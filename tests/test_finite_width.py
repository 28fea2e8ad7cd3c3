"""Four-point vertex recursion (Roberts, Yaida & Hanin ch. 4-5) against independent numbers: the NNGP diagonal of
`mlp_kernels`, the book's critical slopes, the exact ReLU moment formula and Monte Carlo over random Flax networks.
The full set of (L, n) pairs (L/n from 0.01 to 0.3, both activations) is in benchmarks/bench_bayesian_wide.py."""

import math

import numpy as np
import pytest
from scipy import stats

from workbench.theory import finite_width as fw
from workbench.theory.kernels import mlp_kernels

X = np.array([[1.0, 1.0]])  # x.x / d = 1


def test_kernel_recursion_matches_the_nngp_diagonal():
    v = fw.vertex_recursion("tanh", 3, 1.5, 0.1)
    k = mlp_kernels(X, depth=3, activation="tanh", weight_std=math.sqrt(1.5), bias_std=math.sqrt(0.1))
    assert v.K[-1] == pytest.approx(float(k.nngp[0, 0]), rel=1e-5)


@pytest.mark.parametrize("depth", [1, 3, 10])
def test_critical_relu_slope_is_fifteen(depth):
    """chi_par = 1 and V = 5 (l - 1) K*^2: excess kurtosis 15 L / n, the 1/n term of 3 ((1 + 5/n)^L - 1)."""
    v = fw.vertex_recursion("relu", depth, 2.0)
    assert np.allclose(v.chi_par, 1.0, atol=1e-5)
    assert fw.excess_kurtosis_theory("relu", depth, 1000, 2.0) * 1000 / depth == pytest.approx(15.0, rel=1e-5)
    n = 1e6
    assert fw.relu_exact_kurtosis(depth, int(n)) * n / depth == pytest.approx(15.0, rel=1e-4)


def test_tanh_approaches_two_thirds_per_layer():
    """K* = 0 class: V / (n K^2) -> (2/3) l / n, excess kurtosis slope 2 L / n at large depth (RYH Sec. 5.4)."""
    slope = fw.excess_kurtosis_theory("tanh", 300, 1, 1.0) / 300
    assert slope == pytest.approx(2.0, rel=0.02)


def test_kurtosis_estimator_against_student_t():
    """Delta-method SE: a t_12 sample's kurtosis 6 / (nu - 4) = 0.75 within 3 SE; Gaussian's 0 within 3 SE."""
    rng = np.random.default_rng(0)
    k, se = fw.excess_kurtosis(stats.t.rvs(12, size=200_000, random_state=rng))
    assert abs(k - 0.75) < 3 * se and se < 0.1
    k, se = fw.excess_kurtosis(rng.standard_normal(200_000))
    assert abs(k) < 3 * se


@pytest.mark.parametrize(
    "activation,C_W,depth,width,exact",
    [
        ("relu", 2.0, 1, 100, False),  # L/n = 0.01
        ("relu", 2.0, 2, 16, False),  # 0.125
        ("relu", 2.0, 3, 10, True),  # 0.3: leading order is 4.5, the exact moment 7.1
        ("tanh", 1.0, 1, 30, False),  # 0.033
        ("tanh", 1.0, 3, 10, False),  # 0.3
    ],
)
def test_monte_carlo_flax_networks_match_theory(activation, C_W, depth, width, exact):
    f = fw.random_outputs(fw.network_config(activation, depth, width, C_W, 0.0), X, 20_000, seed=3)[:, 0]
    k, se = fw.excess_kurtosis(f)
    theory = fw.relu_exact_kurtosis(depth, width) if exact else fw.excess_kurtosis_theory(activation, depth, width, C_W)
    assert abs(k - theory) < 3 * se, (k, se, theory)
    assert se < 0.35 * max(theory, 0.5)  # the check has power
