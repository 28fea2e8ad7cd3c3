"""workbench.stax.nnx (issue 24): the Flax NNX module of a stax description equals apply_fn on the same parameters,
takes the abc parametrizations per layer role with the width as a multiplier of hidden channels, and its empirical
NTK converges to kernel_fn's NTK (RMS relative gap ~ width^-1/2) for a pooled CNN and a residual network."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workbench import stax
from workbench.stax import nnx as snnx

W, B = 1.4, 0.1


def pooled_cnn(parameterization: str = "ntk"):
    conv = lambda: stax.Conv(8, (3, 3), padding="SAME", W_std=W, b_std=B, parameterization=parameterization)  # noqa: E731
    return stax.serial(
        conv(), stax.Relu(), stax.AvgPool((2, 2), strides=(2, 2)), conv(), stax.Erf(), stax.GlobalAvgPool(),
        stax.Dense(1, W_std=W, b_std=B, parameterization=parameterization),
    )  # fmt: skip


def resnet(depth: int = 2, units: int = 16):
    """Dense stem, `depth` pre-activation residual blocks with branch multiplier 1/sqrt(depth), Dense readout."""
    dense = lambda: stax.Dense(units, W_std=W, b_std=B)  # noqa: E731
    branch = stax.serial(stax.Relu(), dense(), stax.Relu(), dense(), stax.Scale(depth**-0.5))
    block = stax.serial(stax.FanOut(2), stax.parallel(branch, stax.Identity()), stax.FanInSum())
    return stax.serial(dense(), *[block] * depth, stax.Relu(), stax.Dense(1, W_std=W))


def test_forward_equals_apply_fn_on_the_same_parameters():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 4, 4, 2)), jnp.float32)
    for parameterization in ("ntk", "standard"):
        net = pooled_cnn(parameterization)
        _, params = net.init_fn(jax.random.PRNGKey(1), (-1, 4, 4, 2))
        module = snnx.network(net, (-1, 4, 4, 2), params=params)
        np.testing.assert_array_equal(module(x), net.apply_fn(params, x))
        # every abc parametrization is neural-tangents' "standard" at width 1
        if parameterization == "standard":
            for name in ("sp", "ntk", "mup", "mf"):
                abc = snnx.network(net, (-1, 4, 4, 2), parametrization=name, params=params)
                np.testing.assert_allclose(abc(x), net.apply_fn(params, x), rtol=1e-6)
    module = snnx.network(resnet(), (-1, 5), seed=3)
    xs = jnp.ones((2, 5))
    np.testing.assert_array_equal(module(xs), module.layer.apply_fn(module.stax_params(), xs))


def test_roles_and_width_multiply_hidden_channels_only():
    module = snnx.network(pooled_cnn(), (-1, 4, 4, 2), parametrization="mup", width=4)
    assert module.roles == ("input", "hidden", "output")
    assert [w.shape for w in module.weights] == [(3, 3, 2, 32), (3, 3, 32, 32), (32, 1)]
    # mup: hidden weights std W / sqrt(fan_in at base) * m^-1/2 (= W / sqrt(actual fan_in)), readout m^-1
    assert module.stds[1][0] == pytest.approx(W / np.sqrt(9 * 8) / 2)
    assert module.stds[2][0] == pytest.approx(W / np.sqrt(8) / 4)
    deep = snnx.network(resnet(), (-1, 5), width=2)
    assert [w.shape for w in deep.weights][:2] == [(5, 32), (32, 32)]
    assert deep.roles == ("input",) + ("hidden",) * 4 + ("output",)
    assert deep(jnp.ones((2, 5))).shape == (2, 1)


def _slope(net, shape, widths, seeds=32):
    """(fitted log-log slope, gaps) of the RMS relative gap sqrt(mean (Theta_emp - Theta)^2 / mean Theta^2) between the
    empirical NTK and kernel_fn's NTK, median over seeds (a ReLU network's NTK at small width has heavy tails)."""
    x = jnp.asarray(np.random.default_rng(0).normal(size=(6,) + shape), jnp.float32)
    theta = np.asarray(net.kernel_fn(x, None, "ntk"))
    gaps = []
    for m in widths:
        errs = []
        for seed in range(seeds):
            module = snnx.network(net, (-1,) + shape, width=m, seed=seed)
            errs.append(np.sqrt(np.mean((np.asarray(snnx.empirical_ntk(module, x)) - theta) ** 2) / np.mean(theta**2)))
        gaps.append(float(np.median(errs)))
    return np.polyfit(np.log(widths), np.log(gaps), 1)[0], gaps


@pytest.mark.parametrize(
    "net, shape, widths",
    [(pooled_cnn(), (4, 4, 2), [1, 3, 9, 27]), (resnet(), (5,), [1, 3, 9, 27])],
    ids=["pooled_cnn", "residual"],
)
def test_empirical_ntk_converges_to_kernel_fn(net, shape, widths):
    """Base widths 8 (CNN channels) and 16 (residual units), so 8 to 216 channels and 16 to 432 units; the gap falls
    like width^-1/2 (fitted slopes -0.48 and -0.48 here; -0.35 to -0.55 over other inputs and seeds)."""
    slope, gaps = _slope(net, shape, widths)
    assert -0.7 <= slope <= -0.3, (slope, gaps)
    assert gaps[-1] < 0.2, gaps


def test_nt_scaling_makes_sp_and_ntk_converge_to_the_same_kernel():
    """The empirical NTK with respect to unit-variance parameters ("nt" scaling) is the same function of the
    random draws under "nt", "sp" and "ntk": each converges to kernel_fn's NTK."""
    net = resnet(1, 4)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(3, 5)), jnp.float32)
    ref = snnx.empirical_ntk(snnx.network(net, (-1, 5), width=4, seed=2), x)
    for name in ("sp", "ntk"):
        got = snnx.empirical_ntk(snnx.network(net, (-1, 5), parametrization=name, width=4, seed=2), x, scaling="nt")
        np.testing.assert_allclose(got, ref, rtol=2e-4)


def test_bad_arguments():
    with pytest.raises(ValueError, match="layer 0 \\(Conv"):
        snnx.network(pooled_cnn(), (-1, 4, 4))
    with pytest.raises(ValueError, match="params: given parameters fix the channel counts"):
        params = pooled_cnn().init_fn(jax.random.PRNGKey(0), (-1, 4, 4, 2))[1]
        snnx.network(pooled_cnn(), (-1, 4, 4, 2), width=2, params=params)
    module = snnx.network(pooled_cnn(), (-1, 4, 4, 2))
    with pytest.raises(ValueError, match="x2: shape"):
        snnx.empirical_ntk(module, np.ones((2, 4, 4, 2)), np.ones((2, 4, 5, 2)))


def test_empirical_ntk_of_a_hand_written_module():
    """Any NNX module (not from stax) with image inputs: the same J J^T as a direct jacrev; "nt" needs stax."""
    from flax import nnx

    class Tiny(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.conv = nnx.Conv(2, 3, kernel_size=(3,), rngs=rngs)
            self.out = nnx.Linear(18, 2, rngs=rngs)

        def __call__(self, x):
            return self.out(jnp.tanh(self.conv(x)).reshape(x.shape[0], -1))

    model = Tiny(nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(2).normal(size=(3, 6, 2)), jnp.float32)
    got = snnx.empirical_ntk(model, x)
    graphdef, params = nnx.split(model, nnx.Param)
    jac = jax.jacrev(lambda p: nnx.merge(graphdef, p)(x))(params)
    rows = [np.asarray(j).reshape(3, 2, -1) for j in jax.tree_util.tree_leaves(jac)]
    ref = sum(np.einsum("nkp,mkp->nm", j, j) / 2 for j in rows)
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    with pytest.raises(ValueError, match="scaling: 'nt' needs a StaxNetwork"):
        snnx.empirical_ntk(model, x, scaling="nt")
