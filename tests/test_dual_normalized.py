"""One table of closed forms (issue 24): the normalized duals of the infinite-depth theory come from
`workbench.theory.kernels.dual` (`Dual.normalized`), against textbook formulas written here, with complements
1 - k(1 - s) and k'(1) - k'(1 - s) accurate where a subtraction is not; and the public pieces the stax layers use."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workbench.core.activations import get_activation
from workbench.theory import infinite_depth as I
from workbench.theory.kernels.dual import dual_of, gaussian_expectations

RHO = np.linspace(-0.999, 0.999, 41)


def textbook(name: str, q: float, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(k, k') of the normalized dual at variance q: arc-cosine (Cho & Saul 2009), arcsine (Williams 1997), sinh."""
    t = np.arccos(r)
    if name == "relu":
        return (np.sin(t) + (math.pi - t) * r) / math.pi, (math.pi - t) / math.pi
    if name == "abs":
        return 2 / math.pi * (np.sin(t) + r * np.arcsin(r)), 2 / math.pi * np.arcsin(r)
    if name == "erf":
        p = 2 * q / (1 + 2 * q)
        return np.arcsin(p * r) / np.arcsin(p), p / np.sqrt(1 - (p * r) ** 2) / np.arcsin(p)
    return np.sinh(q * r) / np.sinh(q), q * np.cosh(q * r) / np.sinh(q)


@pytest.mark.parametrize("name, q", [("relu", 1.0), ("abs", 1.0), ("erf", 1.0), ("erf", 3.0), ("sin", 2.676)])
def test_normalized_dual_is_the_textbook_formula(name, q):
    k, dk, kc, dkc = dual_of(get_activation(name)).normalized(RHO, 1 - RHO, 1 + RHO, q, np)
    assert isinstance(k, np.ndarray) and k.dtype == np.float64
    want_k, want_dk = textbook(name, q, RHO)
    np.testing.assert_allclose(k, want_k, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dk, want_dk, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(kc, 1 - want_k, rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(dkc, textbook(name, q, np.array([1.0]))[1] - want_dk, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name, q", [("erf", 1.0), ("sin", 1.0), ("sin", 13.8258)])
def test_complements_near_one_are_free_of_cancellation(name, q):
    """At s = 1e-14 a subtraction 1 - k(1 - s) keeps about two digits; the closed complements keep all of them:
    (1 - k) / s -> k'(1) and (k'(1) - k') / s -> k''(1) (smooth duals)."""
    s = np.array([1e-14, 1e-10])
    _, _, kc, dkc = dual_of(get_activation(name)).normalized(1 - s, s, 2 - s, q, np)
    one = textbook(name, q, np.array([1.0]))[1][0]
    p = 2 * q / (1 + 2 * q)  # k''(1): q^2 for sinh(q rho) / sinh(q), p^3 (1 - p^2)^(-3/2) / arcsin(p) for erf
    d2 = q * q if name == "sin" else p**3 / (1 - p * p) ** 1.5 / math.asin(p)
    np.testing.assert_allclose(kc / s, one, rtol=1e-9)
    np.testing.assert_allclose(dkc / s, d2, rtol=1e-8)


def test_infinite_depth_duals_use_the_kernels_closed_forms():
    """The infinite-depth Dual of relu is E[relu relu] / E[relu^2] of the kernels' table, numbers identical."""
    e_phi, _ = gaussian_expectations("relu", 1.0, RHO, 1.0)
    with jax.enable_x64(True):
        e64 = np.asarray(gaussian_expectations("relu", 1.0, RHO, 1.0)[0])
    np.testing.assert_allclose(I.get_dual("relu").k(RHO), e64 / 0.5, rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(I.get_dual("relu").k(RHO), np.asarray(e_phi) / 0.5, rtol=2e-6, atol=1e-7)
    sine = I.get_dual("sine_2.676")
    np.testing.assert_allclose(sine.k(RHO), textbook("sin", 2.676, RHO)[0], rtol=1e-12, atol=1e-15)
    with jax.enable_x64(True):  # the table loop's jax.numpy path gives the numpy numbers
        np.testing.assert_allclose(np.asarray(sine.kc(jnp.asarray(1 - RHO), jnp)), sine.kc(1 - RHO), rtol=1e-14)


def test_no_normalized_closed_form_is_refused():
    with pytest.raises(ValueError, match="activation: 'tanh' has no normalized closed form"):
        dual_of(get_activation("tanh")).normalized(RHO, 1 - RHO, 1 + RHO)
    with pytest.raises(ValueError, match="activation: 'sign' has no normalized closed form"):
        dual_of(get_activation("sign")).normalized(RHO, 1 - RHO, 1 + RHO)


def test_coefficients_and_mehler_give_the_quadrature_expectations():
    """The public pieces the stax layers use (per-point Hermite coefficients, then Mehler's sum) reproduce
    `expectations` of a quadrature activation, diagonal included."""
    d = dual_of(get_activation("tanh"))
    q1, q2 = jnp.asarray([0.5, 1.0, 2.0]), jnp.asarray([1.0, 1.0, 0.7])
    q12 = jnp.asarray([0.3, 1.0, -0.4])
    got = d.mehler(d.coefficients(q1), d.coefficients(q2), d.diagonal(q1), q1, q12, q2)
    want = d.expectations(q1, q12, q2)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6)
    np.testing.assert_allclose(got[0][1], d.diagonal(q1)[0][1], rtol=1e-7)
