"""Kernel explorer's architecture choice (issue 24): the stax architectures' kernels against closed forms computed
here in numpy, the finite networks' empirical NTK near them, and the refusals of sizes the CNN cannot take."""

import math

import numpy as np
import pytest

from workbench.experiments import kernel_explorer as K

W, B = 1.4, 0.1


def arccos1(q1, q2, c):
    """E[relu(u) relu(v)] for variances q1, q2 and correlation c (Cho & Saul 2009)."""
    t = np.arccos(np.clip(c, -1, 1))
    return np.sqrt(q1 * q2) * (np.sin(t) + (math.pi - t) * np.cos(t)) / (2 * math.pi)


def test_resnet_kernel_is_the_residual_arccos_recursion():
    """x -> Dense; depth x (x + [relu, Dense] / sqrt(L)); relu; Dense: NNGP by the recursion K += (W^2 E + b^2) / L."""
    L = 3
    m = K.analytic(K.Config(architecture="resnet", depth=L, n_points=8, seeds=0))
    theta = m["angle"]
    k, q = W**2 * np.cos(theta) + B**2, W**2 + B**2
    for _ in range(L):
        k, q = k + (W**2 * arccos1(q, q, k / q) + B**2) / L, q + (W**2 * q / 2 + B**2) / L
    np.testing.assert_allclose(m["nngp_angle"], W**2 * arccos1(q, q, k / q) + B**2, rtol=2e-5, atol=1e-6)


def test_linear_cnn_kernel_is_the_pooled_patch_covariance():
    """Linear CNN (2x2 average pool, 3x3 SAME conv, identity, global average pool, Dense): NNGP = W^2 M + b^2 with
    M = W^2 sum_k (sum_p x_(p+k)) (sum_p' x'_(p'+k)) / (9 P^2) + b^2 over the zero-padded 4x4 image, NTK = 2 W^2 M
    + b^2 (neural-tangents' "ntk" convention)."""
    config = K.Config(architecture="cnn", activation="identity", depth=1, dataset="digits", n_points=8, seeds=0)
    m = K.analytic(config)
    ref, path = K.angle_path(config, K.ANGLES)

    def patch_sums(x):
        img = x[..., 0].reshape(-1, 4, 2, 4, 2).mean((2, 4))
        pad = np.pad(img, ((0, 0), (1, 1), (1, 1)))
        return np.stack([pad[:, i : i + 4, j : j + 4].sum((1, 2)) for i in range(3) for j in range(3)], 1)

    s0, s = patch_sums(ref.astype(np.float64)), patch_sums(path.astype(np.float64))
    M = W**2 * (s @ s0[0]) / (9 * 16**2) + B**2
    np.testing.assert_allclose(m["nngp_angle"], W**2 * M + B**2, rtol=1e-5)
    np.testing.assert_allclose(m["ntk_angle"], 2 * W**2 * M + B**2, rtol=1e-5)
    assert m["ntk_map"].shape == (8, 8)


@pytest.mark.parametrize("architecture", ["cnn", "layernorm"])
def test_finite_networks_sit_near_the_curve(architecture):
    """Four narrow networks of the same description: the mean NTK within a few spreads of kernel_fn's."""
    config = K.Config(
        architecture=architecture, dataset="digits", depth=1, width=64, seeds=4, n_points=8, activation="erf"
    )
    m = K.empirical(config)
    theory = np.interp(m["empirical_angle"], K.ANGLES, K.analytic(config)["ntk_angle"])
    err = np.abs(m["empirical_ntk_mean"] - theory)
    assert np.all(err <= 4 * m["empirical_ntk_std"] / math.sqrt(4) + 1e-2 * np.abs(theory).max()), (err, theory)


def test_sizes_the_cnn_cannot_take_are_refused_naming_the_field():
    with pytest.raises(ValueError, match="dataset: the CNN takes images"):
        K.Config(architecture="cnn")
    with pytest.raises(ValueError, match="n_points: the CNN's pooled kernel"):
        K.Config(architecture="cnn", dataset="digits", n_points=K.CNN_MAX_POINTS + 1)
    with pytest.raises(ValueError, match="depth: the resnet architecture takes at most"):
        K.Config(architecture="resnet", depth=K.STAX_MAX_DEPTH + 1)
