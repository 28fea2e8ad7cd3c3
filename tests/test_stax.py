"""workbench.stax (issue 24): neural-tangents references for every layer and option, float32 precision, layouts,
`get`, memory refusal and the errors that name a layer's position and the shapes before any compute."""

import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workbench import stax
from workbench.core import memory
from workbench.stax import kernel as stax_kernel

DATA = Path(__file__).parent / "data"
STAX_REFS = json.loads((DATA / "nt_stax_kernels.json").read_text())["cases"]
CNN_REFS = json.loads((DATA / "nt_cnn_kernels.json").read_text())["cases"]
W, B = 1.5, 0.1


def build(spec: list) -> Any:
    """A description from the references' data form: [name, kwargs] or ["serial" | "parallel", [specs]]."""
    name, arg = spec
    if name in ("serial", "parallel"):
        return getattr(stax, name)(*(build(s) for s in arg))
    return getattr(stax, name)(**{k: tuple(v) if isinstance(v, list) else v for k, v in arg.items()})


def _blocks(net: Any, x1: np.ndarray, x2: np.ndarray) -> dict[str, np.ndarray]:
    """x1-x1 and x1-x2 blocks of one symmetric float64 call on [x1; x2] (one compilation per case; the cross path is
    checked against the symmetric one below)."""
    with jax.enable_x64(True):
        k = net.kernel_fn(np.concatenate([x1, x2]))
        assert k.nngp.dtype == np.float64
    n = len(x1)
    return {
        f"{name}_{ij}": np.asarray(getattr(k, name))[:n, sl]
        for name in ("nngp", "ntk")
        for ij, sl in (("11", slice(0, n)), ("12", slice(n, None)))
    }


def _check(blocks: dict[str, np.ndarray], case: dict, tol: float) -> float:
    worst = 0.0
    for key, got in blocks.items():
        ref = np.array(case[key])
        assert got.shape == ref.shape, (key, got.shape, ref.shape)
        err = np.abs(got - ref) / np.abs(ref).max()
        if key.endswith("_11") and err.ndim == 2:
            # neural-tangents' own float64 diagonal takes arccos of 1 - O(eps): its ReLU NTK diagonal is off by
            # ~sqrt(eps) ~ 1e-8; ours is exact (a point's correlation with itself is exactly 1)
            np.fill_diagonal(err, err.diagonal() / 10)
        worst = max(worst, float(err.max()))
        assert err.max() <= tol, (key, err.max())
    return worst


@pytest.mark.parametrize("case", STAX_REFS, ids=lambda c: c["name"])
def test_matches_neural_tangents_every_layer(case):
    """Every layer and option against neural-tangents 0.6.5 (benchmarks/make_nt_references.py): 1e-9 relative
    where every activation has a closed form, 1e-6 with quadrature (the reference's own error is far below)."""
    tol = 1e-9 if case["method"] == "closed form" else 1e-6
    assert case["nt_error"] < 1e-7
    _check(_blocks(build(case["spec"]), np.array(case["x1"]), np.array(case["x2"])), case, tol)


def cnn(name: str) -> Any:
    """The two CNNs of shared/reference/nt_cnn_kernels.json."""
    if name == "conv1d_circular_flatten":
        conv = lambda: stax.Conv(64, (3,), padding="CIRCULAR", W_std=W, b_std=B)  # noqa: E731
        return stax.serial(conv(), stax.Relu(), conv(), stax.Relu(), stax.Flatten(), stax.Dense(1, W_std=W, b_std=B))
    conv = lambda: stax.Conv(64, (3, 3), padding="SAME", W_std=W, b_std=B)  # noqa: E731
    return stax.serial(
        conv(), stax.Relu(), stax.AvgPool((2, 2), strides=(2, 2)), conv(), stax.Gelu(), stax.GlobalAvgPool(),
        stax.Dense(1, W_std=W, b_std=B),
    )  # fmt: skip


@pytest.mark.parametrize("case", CNN_REFS, ids=lambda c: c["name"])
def test_matches_neural_tangents_cnns(case):
    _check(_blocks(cnn(case["name"]), np.array(case["x1"]), np.array(case["x2"])), case, 1e-9)


def test_cross_path_equals_symmetric_blocks():
    """kernel_fn(x1, x2) and get's forms against the symmetric call, on several tiles (small TILE_ENTRIES)."""
    net = stax.serial(stax.Conv(4, (3,), padding="SAME", W_std=W, b_std=B), stax.Erf(), stax.Flatten(), stax.Dense(1))
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=(5, 6, 2)), rng.normal(size=(3, 6, 2))
    whole = net.kernel_fn(np.concatenate([x1, x2]))
    cross = net.kernel_fn(x1, x2, ("ntk", "nngp"))
    assert type(cross).__name__ == "Kernel" and cross._fields == ("ntk", "nngp")
    np.testing.assert_allclose(cross.nngp, whole.nngp[:5, 5:], rtol=1e-6)
    np.testing.assert_allclose(net.kernel_fn(x1, x2, "ntk"), whole.ntk[:5, 5:], rtol=1e-6)
    np.testing.assert_allclose(whole.nngp, whole.nngp.T, rtol=0)  # exactly symmetric


def test_tiles_assemble_with_spatial_outputs(monkeypatch):
    """Several tiles (mirrored below the diagonal, spatial pairs swapped) equal one tile."""
    net = stax.serial(stax.Conv(3, (2, 2), padding="SAME", W_std=W, b_std=B), stax.Relu(), stax.AvgPool((2, 2)))
    x = np.random.default_rng(1).normal(size=(5, 3, 3, 2))
    one = net.kernel_fn(x)
    monkeypatch.setattr(stax_kernel, "TILE_ENTRIES", 2 * 2 * 81)  # 2 x 2 pairs per tile
    many = net.kernel_fn(x)
    assert one.nngp.shape == (5, 5, 2, 2, 2, 2)
    for name in ("nngp", "ntk"):
        a, b = np.asarray(getattr(many, name)), np.asarray(getattr(one, name))
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6 * np.abs(b).max())
        np.testing.assert_array_equal(a, np.transpose(a, (1, 0, 3, 2, 5, 4)))  # K(x1, x2)[h, h'] = K(x2, x1)[h', h]


def test_diagonal_spatial_is_the_diagonal_of_the_full_output():
    net = stax.serial(stax.Conv(3, (3,), padding="CIRCULAR", W_std=W, b_std=B), stax.Gelu(), stax.Conv(2, (2,)))
    x = np.random.default_rng(2).normal(size=(3, 5, 2))
    full = net.kernel_fn(x, get="nngp")
    diag = net.kernel_fn(x, get="nngp", diagonal_spatial=True)
    assert full.shape == (3, 3, 4, 4) and diag.shape == (3, 3, 4)
    np.testing.assert_allclose(diag, np.diagonal(full, axis1=2, axis2=3), rtol=1e-6)


# ---------------------------------------------------------------- float32


def _awkward(shape: tuple, seed: int = 0) -> np.ndarray:
    """Random inputs plus an exact duplicate, an antipode and a rescaled copy."""
    x = np.random.default_rng(seed).normal(size=(4,) + shape).astype(np.float32)
    return np.concatenate([x, x[:1], -x[1:2], 1.5 * x[2:3]]).astype(np.float32)


RESNET = stax.serial(
    stax.Conv(8, (3, 3), padding="SAME", W_std=W, b_std=B),
    stax.FanOut(2),
    stax.parallel(
        stax.serial(stax.Relu(), stax.Conv(8, (3, 3), padding="SAME", W_std=W, b_std=B), stax.Tanh(),
                    stax.Conv(8, (3, 3), padding="SAME", W_std=W, b_std=B), stax.Scale(0.5**0.5)),
        stax.Identity(),
    ),
    stax.FanInSum(),
    stax.LeakyRelu(0.1),
    stax.AvgPool((2, 2), strides=(2, 2)),
    stax.Flatten(),
    stax.Dense(1, W_std=W, b_std=B),
)  # fmt: skip


@pytest.mark.parametrize(
    "net, shape",
    [(cnn("conv2d_same_avgpool_gap"), (6, 6, 2)), (RESNET, (4, 4, 2))],
    ids=["pooled_cnn", "resnet_relu_tanh"],
)
def test_float32_within_1e5_of_float64(net, shape):
    """Relative to each entry's scale sqrt(K_ii K_jj); duplicates, antipodes and rescaled inputs included (a
    duplicate's correlation is exactly 1: the input kernel sums channels in order). Near-duplicates (relative
    distance ~1e-3) are not covered: the ReLU family's NTK factor is not Lipschitz at angle 0 and a CNN with pooling
    cannot carry 1 - cos without the four-point covariance of the difference (see the report of issue 24)."""
    x = _awkward(shape)
    k32 = net.kernel_fn(x)
    with jax.enable_x64(True):
        k64 = net.kernel_fn(x.astype(np.float64))
    for name in ("nngp", "ntk"):
        got, ref = np.asarray(getattr(k32, name), np.float64), np.asarray(getattr(k64, name))
        assert getattr(k32, name).dtype == np.float32
        err = np.abs(got - ref) / np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
        assert err.max() <= 1e-5, (name, err.max())
        np.testing.assert_allclose(np.diag(got), np.diag(ref), rtol=1e-5)


# ---------------------------------------------------------------- the finite network of the same description


def test_init_and_apply_follow_neural_tangents_layout():
    init_fn, apply_fn, _ = RESNET
    out_shape, params = init_fn(jax.random.PRNGKey(0), (-1, 4, 4, 2))
    assert out_shape == (-1, 1)
    w, b = params[0]
    assert w.shape == (3, 3, 2, 8) and b.shape == (1, 1, 1, 8)  # HWIO filters, NT's bias shape
    assert params[1] == () and len(params[2]) == 2  # FanOut, parallel of two branches
    y = apply_fn(params, jnp.ones((3, 4, 4, 2)))
    assert y.shape == (3, 1)


def test_scale_equals_scaled_last_dense():
    """Scale(c) after Dense(W, b) is neural-tangents' Dense(c W, c b) (kernels and forward pass)."""
    c = 0.3
    x = np.random.default_rng(3).normal(size=(4, 5))
    a = stax.serial(stax.Dense(8, W, B), stax.Relu(), stax.Dense(3, W, B), stax.Scale(c))
    b = stax.serial(stax.Dense(8, W, B), stax.Relu(), stax.Dense(3, c * W, c * B))
    ka, kb = a.kernel_fn(x), b.kernel_fn(x)
    np.testing.assert_allclose(ka.nngp, kb.nngp, rtol=1e-5)
    np.testing.assert_allclose(ka.ntk, kb.ntk, rtol=1e-5)


def test_activation_matches_its_named_layer_and_the_mlp_kernels():
    """Activation("relu") is Relu, activation_of(jnp.tanh) is Tanh; serial(Dense, phi) x L + Dense is mlp_kernels
    (the MLP fast path)."""
    from workbench.theory.kernels import mlp_kernels

    x = np.random.default_rng(4).normal(size=(5, 3))
    net = stax.serial(*[stax.Dense(16, W, B), stax.Activation("erf")] * 2, stax.Dense(1, W, B))
    k, ref = net.kernel_fn(x), mlp_kernels(x, depth=2, activation="erf", weight_std=W, bias_std=B)
    np.testing.assert_allclose(k.nngp, ref.nngp, rtol=2e-6)
    np.testing.assert_allclose(k.ntk, ref.ntk, rtol=2e-6)
    assert stax.Activation("relu").key == stax.Relu().key  # pyright: ignore[reportAttributeAccessIssue]
    by_fn = stax.serial(stax.Dense(4, W, B), stax.activation_of(jnp.tanh), stax.Dense(1)).kernel_fn(x, get="ntk")
    by_name = stax.serial(stax.Dense(4, W, B), stax.Tanh(), stax.Dense(1)).kernel_fn(x, get="ntk")
    np.testing.assert_array_equal(by_fn, by_name)


# ---------------------------------------------------------------- errors before any compute


@pytest.mark.parametrize(
    "net, shape, words",
    [
        (stax.serial(stax.Conv(4, (3,)), stax.Relu()), (7,), ["layer 0 (Conv", "(N, 7)", "channel axis"]),
        (stax.serial(stax.Conv(4, (3, 3)), stax.Relu()), (9, 2), ["layer 0 (Conv", "2-D filter", "(N, 9, 2)"]),
        (
            stax.serial(stax.Conv(4, (3,)), stax.Flatten(), stax.GlobalAvgPool()),
            (6, 2),
            ["layer 2 (GlobalAvgPool)", "(N, 16)", "Flatten"],
        ),
        (
            stax.serial(
                stax.Conv(4, (3,)), stax.FanOut(2), stax.parallel(stax.Conv(5, (3,)), stax.Identity()), stax.FanInSum()
            ),
            (6, 2),
            ["layer 3 (FanInSum)", "(N, 2, 5)", "(N, 4, 4)"],
        ),
        (stax.serial(stax.Conv(4, (7,))), (6, 2), ["layer 0 (Conv", "larger", "(N, 6, 2)"]),
        (stax.serial(stax.Conv(4, (2,), strides=(9,))), (6, 2), ["layer 0 (Conv", "larger", "(6,)"]),
        (stax.serial(stax.Conv(4, (2,)), stax.Relu(), stax.AvgPool((8,))), (6, 2), ["layer 2 (AvgPool", "larger"]),
        (stax.serial(stax.Relu(), stax.Dense(1)), (6,), ["layer 0 (Relu)", "Gaussian", "(N, 6)"]),
        (
            stax.serial(
                stax.Dense(4), stax.FanOut(2), stax.parallel(stax.Identity(), stax.Identity()), stax.FanInSum()
            ),
            (6,),
            ["layer 3 (FanInSum)", "same random layer"],
        ),
        (stax.serial(stax.Dense(4), stax.FanOut(2), stax.Dense(1)), (6,), ["layer 2 (Dense(1))", "2 branches"]),
        (stax.serial(stax.Dense(4), stax.Flatten(), stax.LayerNorm()), (6,), ["layer 2 (LayerNorm", "Gaussian"]),
        (stax.serial(stax.Dense(4), stax.LayerNorm(axis=0)), (6,), ["layer 1 (LayerNorm", "batch axis"]),
    ],
    ids=[
        "conv_without_channels",
        "2d_filter_on_1d",
        "gap_after_flatten",
        "fan_in_sum_shapes",
        "filter_larger",
        "strides_larger",
        "window_larger",
        "activation_on_input",
        "dependent_branches",
        "branches_into_a_layer",
        "layernorm_after_flatten",
        "layernorm_batch_axis",
    ],
)
def test_bad_input_names_the_layer_and_the_shapes(net, shape, words, monkeypatch):
    """init_fn, apply_fn and kernel_fn refuse before anything is computed (the jitted kernel is never reached)."""
    monkeypatch.setattr(stax_kernel, "_compute_jit", None)  # any compute would raise TypeError instead
    x = np.ones((2,) + shape)
    for call in (lambda: net.kernel_fn(x), lambda: net.init_fn(jax.random.PRNGKey(0), (-1,) + shape)):
        with pytest.raises(ValueError) as err:
            call()
        for word in words:
            assert word in str(err.value), (word, str(err.value))


def test_bad_arguments_are_refused_at_construction():
    with pytest.raises(ValueError, match="padding: must be one of VALID, SAME, CIRCULAR, got 'REFLECT'"):
        stax.Conv(4, (3,), padding="REFLECT")
    with pytest.raises(ValueError, match="filter_shape"):
        stax.Conv(4, (0, 3))
    with pytest.raises(ValueError, match="strides: must have 2 entries"):
        stax.Conv(4, (3, 3), strides=(1,))
    with pytest.raises(ValueError, match="serial: argument 1 is not a workbench.stax layer"):
        stax.serial(stax.Relu(), (len, len, len))  # pyright: ignore[reportArgumentType]  # the refused input
    net = stax.serial(stax.Dense(2), stax.Relu())
    with pytest.raises(ValueError, match="get: must be None, 'nngp', 'ntk'"):
        net.kernel_fn(np.ones((2, 3)), get="cov1")
    with pytest.raises(ValueError, match="x2: shape \\(2, 4\\) does not match x1's \\(2, 3\\)"):
        net.kernel_fn(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="x1: holds NaN"):
        net.kernel_fn(np.full((2, 3), np.nan))


def test_memory_is_estimated_and_refused_before_allocating(monkeypatch):
    """The full spatial covariance of N = 20000 8x8 images (N^2 x 64^2 entries) is refused with the sizes and the
    limit; the estimate of a small call is far below it."""
    net = cnn("conv2d_same_avgpool_gap")
    need, block = stax_kernel.estimate(net, (8, 8, 2), 128, None, 4, True, False)
    assert 1.5e8 < need < 2e9 and 1 <= block <= 128
    monkeypatch.setattr(memory, "_free_memory", lambda: (2 * 2**30, "test limit"))
    monkeypatch.setattr(stax_kernel, "_compute_jit", None)
    with pytest.raises(ValueError, match=r"kernel_fn: 20000 x 20000 inputs of shape \(N, 8, 8, 2\).*test limit"):
        net.kernel_fn(np.zeros((20000, 8, 8, 2), np.float32))
