"""Signal-propagation theory (issue 6): order-to-chaos line, chi_1, fixed points, universality classes,
SELU moment map (Poole et al. 2016; Schoenholz et al. 2017; Roberts, Yaida & Hanin 2022; Klambauer et al. 2017)."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from workbench.theory import criticality as C


def test_tanh_critical_line_through_published_points():
    # Poole et al. 2016 Fig. 2 / Schoenholz et al. 2017 Fig. 1: (sigma_b^2, sigma_w^2) on chi_1 = 1
    got = C.critical_line("tanh", [0.0, 0.05, 0.1])
    np.testing.assert_allclose(got, [1.00, 1.76, 1.99], rtol=0.01)


def test_chi_1_is_one_on_the_line_and_splits_the_phases():
    w2 = float(C.critical_line("tanh", 0.05))
    assert abs(float(C.chi_1("tanh", w2, 0.05)) - 1) < 2e-3  # iterated q* agrees with the parametric line
    pd = C.phase_diagram("tanh", [1.2, 2.5], [0.05])
    assert pd.chi_1[0, 0] < 1 < pd.chi_1[0, 1]
    np.testing.assert_allclose(pd.critical_w2, [w2])
    # an expression parsed from text is the same activation as the registered name
    assert float(C.chi_1("tanh(x)", 2.5, 0.05)) == pytest.approx(float(pd.chi_1[0, 1]), rel=1e-4)


def test_relu_chi_1_and_fixed_points():
    assert float(C.chi_1("relu", 2.0, 0.0)) == pytest.approx(1.0, abs=1e-6)
    # ReLU: q* = sigma_b^2 / (1 - sigma_w^2 / 2) below sigma_w^2 = 2, no finite q* above
    assert float(C.q_star("relu", 1.5, 0.1)) == pytest.approx(0.1 / 0.25, rel=1e-4)
    assert np.isinf(C.q_star("relu", 2.5, 0.1))
    assert np.isnan(C.critical_line("relu", 0.1))  # the ReLU line is the single point (2, 0)


def test_correlation_fixed_point_and_depth_scales():
    ordered, chaotic = C.depth_scales("tanh", 1.2, 0.05), C.depth_scales("tanh", 2.5, 0.05)
    assert ordered.c_star == pytest.approx(1.0, abs=1e-4)
    assert ordered.chi_c == pytest.approx(ordered.chi_1, rel=1e-3)  # at c* = 1, chi_c = chi_1
    assert 0 < chaotic.c_star < 0.9 and chaotic.chi_c < 1 < chaotic.chi_1
    assert ordered.xi_c == pytest.approx(-1 / math.log(ordered.chi_1), rel=1e-3)
    # xi_c diverges at the line (Schoenholz et al. 2017, Fig. 1)
    near = C.depth_scales("tanh", float(C.critical_line("tanh", 0.05)) * 0.98, 0.05)
    assert near.xi_c > 5 * ordered.xi_c
    # the c-map fixes c* and xi_q is finite
    assert float(C.correlation_map("tanh", 2.5, 0.05, chaotic.c_star, chaotic.q_star)) == pytest.approx(
        chaotic.c_star, abs=1e-4
    )
    assert 0 < ordered.xi_q < 10


def test_depth_profile_starts_from_the_input_kernel():
    q, c, chi = C.depth_profile("relu", 2.0, 0.0, 4, q0=0.5, c0=0.3)
    np.testing.assert_allclose(q, 1.0, rtol=1e-6)  # critical ReLU preserves the length
    assert c[0] == pytest.approx(0.3) and np.all(np.diff(c) > 0)  # correlations flow to 1
    np.testing.assert_allclose(chi, 1.0, rtol=1e-6)


@pytest.mark.parametrize(
    "activation,expected",
    [
        ("relu", (0.0, 2.0, "scale-invariant")),
        ("leaky_relu(0.5)", (0.0, 1.6, "scale-invariant")),
        ("tanh", (0.0, 1.0, "K*=0")),
        ("sin", (0.0, 1.0, "K*=0")),
        ("erf", (0.0, math.pi / 4, "K*=0")),
    ],
)
def test_critical_init_of_universality_classes(activation, expected):
    got = C.critical_init(activation)
    assert got is not None
    assert got.universality == expected[2]
    np.testing.assert_allclose([got.C_b, got.C_W], expected[:2], rtol=1e-5)


def test_critical_init_none_outside_the_classes():
    assert C.critical_init("sigmoid") is None and C.critical_init("softplus") is None
    # phi(0) = 0 and phi'(0) != 0 but a_1 > 0 (RYH Sec. 5.3.4): GELU and SWISH are not in the K* = 0 class
    assert C.critical_init("gelu") is None and C.critical_init("x * sigmoid(x)") is None


def test_selu_fixed_point_and_convergence():
    mu, nu = C.selu_moment_map(0.0, 1.0)
    assert abs(mu) < 1e-5 and nu == pytest.approx(1.0, abs=1e-5)
    path = C.selu_flow(0.5, 2.0, 60)
    assert path.shape == (61, 2)
    np.testing.assert_allclose(path[-1], [0.0, 1.0], atol=1e-3)
    assert np.all(np.diff(np.abs(path[1:, 1] - 1)) <= 1e-9)  # the variance error shrinks every layer
    # near-normalised weights (Klambauer et al. Theorem 1: omega in [-0.1, 0.1], tau in [0.95, 1.1]) keep
    # an attracting point in the domain mu in [-0.1, 0.1], nu in [0.8, 1.5]
    path = C.selu_flow(0.5, 2.0, 60, omega=0.05, tau=1.05)
    assert abs(path[-1, 0]) < 0.1 and 0.8 < path[-1, 1] < 1.5
    np.testing.assert_allclose(path[-1], path[-10], atol=1e-4)


def test_gaussian_moments_match_relu_closed_form():
    m, v = 0.3, 2.0
    s = math.sqrt(v)
    mean = m * norm.cdf(m / s) + s * norm.pdf(m / s)
    second = (m**2 + v) * norm.cdf(m / s) + m * s * norm.pdf(m / s)
    got = C.gaussian_moments("relu", m, v)
    np.testing.assert_allclose(got, [mean, second], rtol=1e-5)


def test_selu_flow_marks_the_fixed_point_the_map_settles_at():
    """Issue 23, item 6: the diamond was hard-coded at (0, 1); at tau = 1.4 the fixed point moves (the help says so).
    Checked against the moments of SELU(z), z ~ N(0, nu* tau), by adaptive quadrature (scipy), not the map itself."""
    from scipy import integrate, stats

    from workbench.experiments import selu_flow as S

    alpha, lam = 1.6732632423543772, 1.0507009873554805
    selu = lambda z: lam * (z if z > 0 else alpha * np.expm1(z))
    fixed = S.view(S.Config(tau=1.4))["fixed_point"]
    sd = np.sqrt(fixed[1] * 1.4)
    moment = lambda k: sum(
        integrate.quad(lambda z: selu(z) ** k * stats.norm.pdf(z, scale=sd), a, b, epsabs=1e-12)[0]
        for a, b in ((-np.inf, 0.0), (0.0, np.inf))
    )
    mean, second = moment(1), moment(2)
    assert abs(fixed[0] - 0.0) > 0.1 and abs(fixed[1] - 1.0) > 1.0  # far from (0, 1)
    np.testing.assert_allclose([mean, second - mean**2], fixed, rtol=1e-6)
    np.testing.assert_allclose(S.view(S.Config())["fixed_point"], [0.0, 1.0], atol=1e-6)  # Klambauer et al., Thm 1
    view = S.view(S.Config(tau=1.4, mu0=0.5, nu0=2.0))
    assert view["nu"].max() >= fixed[1] and view["nu"].max() >= view["path"][:, 1].max()  # the plot holds both
