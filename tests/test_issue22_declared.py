"""Declared arguments of the kernels, criticality, collapse, infinite-depth and sphere modules (issue 22): the edge
values their declarations accept give finite, meaningful results (each of these raised or returned NaN before),
and cross-argument checks name the argument."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from workbench.data import sphere as S
from workbench.theory import collapse
from workbench.theory import criticality as C
from workbench.theory import criticality_finite as F
from workbench.theory import infinite_depth as I
from workbench.theory.kernels import gaussian_expectations, gradient_flow, kernel_vs_angle, mlp_kernels


def test_a_zero_variance_moment_is_the_activation_at_the_mean():
    """var = 0 (declared valid) divided by the standard deviation: NaN before."""
    m1, m2 = C.gaussian_moments("selu", np.array([-1.0, 0.5]), 0.0)
    phi = np.array([1.0507009873554805 * 1.6732632423543772 * (math.exp(-1.0) - 1), 1.0507009873554805 * 0.5])
    np.testing.assert_allclose(m1, phi, rtol=1e-6)
    np.testing.assert_allclose(m2, phi**2, rtol=1e-6)
    path = C.selu_flow(0.5, 0.0, 3)  # nu0 = 0: a deterministic flow, finite
    assert path.shape == (4, 2) and np.all(np.isfinite(path))


def test_zero_lengths_and_small_fixed_points_stay_finite():
    q, c, chi = C.depth_profile("tanh", 0.0, 0.0, 3)  # both variances 0: c was 0 / 0
    assert np.all(q == 0) and np.all(c == 1) and np.all(np.isfinite(chi))
    slope = C.chi_q("relu", 0.5, 1e-8)  # q* below 1e-6: stepped below q = 0, gave 0.13
    assert np.isfinite(slope) and slope == pytest.approx(0.25, rel=1e-3)
    assert C.critical_init("0 * x") is None  # was ZeroDivisionError


def test_shapes_that_do_not_broadcast_are_named():
    with pytest.raises(ValueError, match="^sigma_b2: shape"):
        C.q_star("tanh", np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="^q: shape"):
        C.length_map("tanh", np.ones(3), 0.0, np.ones(2))
    with pytest.raises(ValueError, match="^q12: shape"):
        gaussian_expectations("erf", np.ones(3), np.zeros(2), np.ones(3))


def test_designer_reaches_the_ends_of_its_range():
    """alpha = 0.02 asked for degree 2^51 and was refused naming degree; the sine family below alpha 1/2 raised
    scipy's bracket error."""
    d = I.design_dual(0.02)
    assert len(d.coef) - 1 <= 64 and d.alpha == pytest.approx(0.02, rel=1e-6)
    with pytest.raises(ValueError, match=r"^alpha: the sine family reaches only alpha > 0.5"):
        I.design_dual(0.3, family="sine")
    assert I.consistent_dual(5).alpha == pytest.approx(2.0, rel=1e-9)
    with pytest.raises(ValueError, match="^d: "):
        I.consistent_dual(0.5)


def test_depths_and_duals_are_declaration_kinds():
    with pytest.raises(ValueError, match=r"^depth: must be a whole number in \[0, 100000\] or inf"):
        I.diagonal_log_ntk("relu", 2.5)
    assert I.diagonal_log_ntk("relu", math.inf) == math.inf
    with pytest.raises(ValueError, match="^dual: must be a Dual, a preset"):
        I.deep_kernel(None, 0.5, 3)  # pyright: ignore[reportArgumentType]
    with pytest.raises(ValueError, match="^dual: 'relu' is not singular"):
        I.koenigs("relu")
    s, log_k = I.deep_kernel("3d_opt", np.array([0.2, 0.5]), 3, delta=0.5)  # delta broadcasts with rho
    assert s.shape == log_k.shape == (2,)


def test_points_far_from_the_unit_scale_reach_the_sphere():
    x = np.array([[1e300, 1e300, 0.0], [1e-300, 0.0, 0.0]])  # the norm overflowed (and underflowed) before
    np.testing.assert_allclose(I.to_sphere(x), [[2**-0.5, 2**-0.5, 0.0], [1.0, 0.0, 0.0]])


def test_labels_are_checked_by_every_classifier():
    x = np.eye(3)
    with pytest.raises(ValueError, match="^y_train: labels must be -1 or"):
        I.nearest_neighbour(x, [0, 1, 2], x)
    with pytest.raises(ValueError, match="^y_train: must be"):
        I.majority_vote(None, 3)  # pyright: ignore[reportArgumentType]
    with pytest.raises(ValueError, match="^y: 2 labels for 3 points"):
        I.accuracy([1, -1, 1], [1, -1])


def test_sphere_tasks_name_the_argument():
    t = S.dirichlet_task(3, 10, 10, alpha1=(1.0, 1.0, 1.0))  # a lone alpha: the other is DIRICHLET[3]'s
    assert t.dim == 3
    with pytest.raises(ValueError, match="^alpha1: its length differs from alpha2's"):
        S.dirichlet_task(2, 10, 10, alpha1=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="^n_test: the playground sets need at least 4 points"):
        S.playground_task("circle", 2, 1)  # was refused by the data set, naming its n
    with pytest.raises(ValueError, match="^name: must be one of"):
        S.sphere_task("moons", 10, 10)


def test_collapse_checks_classes_against_the_classifier():
    h, y = np.random.default_rng(0).normal(size=(6, 3)), np.array([0, 1, 2, 0, 1, 2])
    with pytest.raises(ValueError, match="^w: must have one row per class"):
        collapse.nc_metrics(h, y, 3, w=np.ones((2, 3)))
    with pytest.raises(ValueError, match="^w: its axis 'd'"):
        collapse.nc_metrics(h, y, 3, w=np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"^features\[1\]: "):
        collapse.layer_nc([h, "x"], y, 3)
    a = collapse.gof_prediction((10, 5), 1e-3, 1e-3)  # one layer's decay as a number
    b = collapse.gof_prediction((10, 5), 1e-3, [1e-3])
    np.testing.assert_array_equal(a["z"], b["z"])


def test_kernels_name_cross_argument_mismatches():
    x = np.random.default_rng(0).normal(size=(4, 3))
    with pytest.raises(ValueError, match="^x2: its axis 'd' has length 2 but x1's has 3"):
        mlp_kernels(x, np.ones((2, 2)), depth=1)
    with pytest.raises(ValueError, match="^depth: "):
        kernel_vs_angle([0.1], depth=-1)
    k = mlp_kernels(x, depth=1)
    with pytest.raises(ValueError, match="^k_train: must be a Kernels"):
        gradient_flow(k.ntk, k, np.ones(4), 1.0)  # pyright: ignore[reportArgumentType]


def test_one_sampled_network_has_nan_standard_errors_without_warnings():
    config = F.SampledNetworks("tanh", 0.05, width=8, depth=2, seeds=1, in_dim=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = F.measure(config, 1.0)
    assert np.all(np.isnan(m["q_sem"])) and np.all(np.isfinite(m["q"]))
    with pytest.raises(ValueError, match="^config: must be a Networks"):
        F.measure({}, 1.0)  # pyright: ignore[reportArgumentType]
