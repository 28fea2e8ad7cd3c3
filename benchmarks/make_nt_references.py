"""Reference NNGP / NTK of `workbench.stax` architectures computed by neural-tangents 0.6.5 in float64.

Runs in the side venv (neural-tangents needs jax 0.4.23) and imports nothing from workbench:

    python3.11 -m venv /work/ntvenv && /work/ntvenv/bin/pip install neural-tangents==0.6.5 jax==0.4.23 \
        jaxlib==0.4.23 "numpy<2" "scipy<1.13" tf2jax==0.3.6
    /work/ntvenv/bin/python benchmarks/make_nt_references.py tests/data/nt_stax_kernels.json

Each case holds its architecture as data (`spec`: [name, kwargs] for a layer, ["serial" | "parallel", [specs]] for a
combinator; names and arguments are neural-tangents' and workbench.stax's alike), its inputs x1 (N1, ...) and x2, and
nngp / ntk of x1 with itself ("_11") and with x2 ("_12"). Activations without a closed form (Tanh, Sigmoid,
Activation(expression)) run as `ElementwiseNumerical(fn, deg)` at deg 300, and at deg 200 as a check: `nt_error` is
their largest relative difference (a bound on the reference's own quadrature error, which falls fast with deg).
Kernels with spatial axes are stored in neural-tangents' layout before its `is_reversed` transposition:
(N1, N2, H, H', W, W').
"""

import json
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from neural_tangents import stax  # pyright: ignore[reportMissingImports]  # installed only in the side venv

jax.config.update("jax_enable_x64", True)
warnings.filterwarnings("ignore")

DEG = (300, 200)  # Gauss-Hermite degrees of ElementwiseNumerical: the reference, and a coarser check of it
NUMERICAL = {
    "Tanh": jnp.tanh,
    "Sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "softplus": jax.nn.softplus,
    "x * sigmoid(x)": lambda x: x * jax.nn.sigmoid(x),
    "sin(x) + 0.5 * x": lambda x: jnp.sin(x) + 0.5 * x,
}
CLOSED = {"relu": ("Relu", {}), "erf": ("Erf", {}), "gelu": ("Gelu", {}), "abs": ("Abs", {}), "sign": ("Sign", {})}

W, B = 1.4, 0.2  # W_std, b_std of most layers


def conv(c, f, **kw):
    return ["Conv", {"out_chan": c, "filter_shape": f, "W_std": W, "b_std": B, **kw}]


def dense(n=1, **kw):
    return ["Dense", {"out_dim": n, "W_std": W, "b_std": B, **kw}]


def act(name, **kw):
    return [name, kw]


def serial(*layers):
    return ["serial", list(layers)]


def block(c, scale, f=(3, 3)):
    """A pre-activation residual block; the branch multiplier sits in its last layer's stds (neural-tangents
    refuses FanInSum after an elementwise scaling)."""
    branch = serial(
        act("Relu"),
        conv(c, f, padding="SAME"),
        act("Relu"),
        ["Conv", {"out_chan": c, "filter_shape": f, "padding": "SAME", "W_std": W * scale, "b_std": B * scale}],
    )
    return serial(["FanOut", {"num": 2}], ["parallel", [branch, ["Identity", {}]]], ["FanInSum", {}])


CASES = [
    # name, spec, per-point input shape
    (
        "mlp_relu_standard",
        serial(
            dense(16, parameterization="standard"),
            act("Relu"),
            dense(12, b_std=None),
            act("Erf", a=1.5, b=0.7, c=0.2),
            dense(1, parameterization="standard"),
        ),
        (5,),
    ),
    (
        "conv1d_valid_stride_erf",
        serial(
            conv(8, (3,), strides=(2,)),
            act("Erf", a=1.2, b=0.8, c=0.3),
            conv(8, (2,), padding="SAME", parameterization="standard"),
            act("Relu"),
            ["Flatten", {}],
            dense(parameterization="standard"),
        ),
        (9, 3),
    ),
    (
        "conv2d_same_stride_avgpool_edges",
        serial(
            conv(6, (3, 3), strides=(2, 1), padding="SAME"),
            act("Relu"),
            ["AvgPool", {"window_shape": (3, 2), "strides": (1, 1), "padding": "SAME", "normalize_edges": True}],
            conv(6, (2, 2), padding="VALID", b_std=None),
            act("Gelu"),
            ["GlobalAvgPool", {}],
            dense(),
        ),
        (6, 5, 2),
    ),
    (
        "conv2d_circular_sumpool_standard",
        serial(
            conv(5, (3, 2), padding="CIRCULAR", parameterization="standard"),
            act("Abs"),
            ["SumPool", {"window_shape": (2, 2), "strides": (2, 1), "padding": "CIRCULAR"}],
            conv(7, (2, 2), padding="SAME", parameterization="standard", b_std=None),
            act("LeakyRelu", alpha=0.2),
            ["GlobalSumPool", {}],
            dense(parameterization="standard"),
        ),
        (5, 4, 2),
    ),
    (
        "avgpool_valid_flatten",
        serial(
            conv(4, (2, 2), padding="SAME"),
            act("ABRelu", a=-0.3, b=1.2),
            ["AvgPool", {"window_shape": (2, 2), "strides": (2, 2)}],
            conv(4, (2, 2), padding="SAME"),
            act("ABRelu", a=0.7, b=0.0),
            ["Flatten", {}],
            dense(),
        ),
        (6, 4, 2),
    ),
    (
        "resnet_cnn",
        serial(
            conv(8, (3, 3), padding="SAME"),
            block(8, 0.5**0.5),
            block(8, 0.5**0.5),
            act("Relu"),
            ["AvgPool", {"window_shape": (2, 2), "strides": (1, 1), "padding": "SAME"}],
            ["Flatten", {}],
            dense(),
        ),
        (4, 4, 2),
    ),
    (
        "three_branches",
        serial(
            dense(8),
            ["FanOut", {"num": 3}],
            [
                "parallel",
                [
                    serial(act("Relu"), dense(8)),
                    serial(act("Erf"), dense(8, parameterization="standard")),
                    ["Identity", {}],
                ],
            ],
            ["FanInSum", {}],
            act("Relu"),
            dense(),
        ),
        (5,),
    ),
    (
        "resnet_mlp_layernorm",
        serial(
            dense(16),
            block_mlp := serial(
                ["FanOut", {"num": 2}],
                [
                    "parallel",
                    [serial(["LayerNorm", {}], act("Relu"), dense(16, W_std=0.8, b_std=0.1)), ["Identity", {}]],
                ],
                ["FanInSum", {}],
            ),
            block_mlp,
            ["LayerNorm", {"axis": -1}],
            act("Gelu"),
            dense(),
        ),
        (6,),
    ),
    (
        "layernorm_spatial_sin",
        serial(
            conv(6, (3, 3), padding="SAME"),
            ["LayerNorm", {"axis": (1, 2, 3)}],
            act("Sin", a=1.3, b=0.9, c=0.4),
            conv(6, (3, 3), padding="SAME"),
            ["LayerNorm", {"axis": -1, "eps": 0.01}],
            act("Cos", a=0.8, b=1.1, c=-0.3),
            ["AvgPool", {"window_shape": (2, 3), "strides": (1, 2), "padding": "CIRCULAR"}],
            ["GlobalAvgPool", {}],
            dense(),
        ),
        (4, 5, 2),
    ),
    (
        "dense_on_images_sign_gap",
        serial(dense(5), act("Sign"), dense(5, b_std=None), act("Sigmoid_like"), ["GlobalAvgPool", {}], dense()),
        (3, 4, 2),
    ),
    ("spatial_output_full", serial(conv(4, (3,), padding="SAME"), act("Relu"), conv(3, (2,), padding="VALID")), (6, 2)),
    (
        "spatial_output_pooled_2d",
        serial(conv(4, (2, 2), padding="SAME"), act("Relu"), ["AvgPool", {"window_shape": (2, 2), "strides": (1, 1)}]),
        (4, 3, 2),
    ),
    (
        "quadrature_tanh_gap",
        serial(
            conv(6, (3,), padding="CIRCULAR"),
            act("Tanh"),
            ["AvgPool", {"window_shape": (2,), "strides": (2,)}],
            conv(6, (2,)),
            act("Sigmoid"),
            ["GlobalAvgPool", {}],
            dense(),
        ),
        (6, 2),
    ),
    (
        "quadrature_expressions_mlp",
        serial(
            dense(8),
            ["Activation", {"activation": "x * sigmoid(x)"}],
            dense(8),
            ["Activation", {"activation": "softplus"}],
            dense(8),
            ["Activation", {"activation": "sin(x) + 0.5 * x"}],
            dense(),
        ),
        (4,),
    ),
    (
        "closed_form_by_name",
        serial(
            dense(8),
            ["Activation", {"activation": "erf"}],
            dense(8),
            ["Activation", {"activation": "relu"}],
            dense(8),
            ["Activation", {"activation": "gelu"}],
            dense(),
        ),
        (4,),
    ),
]


def build(spec, deg):
    name, arg = spec
    if name in ("serial", "parallel"):
        return getattr(stax, name)(*(build(s, deg) for s in arg))
    if name in NUMERICAL:
        return stax.ElementwiseNumerical(NUMERICAL[name], deg)
    if name == "Activation":
        key = arg["activation"]
        if key in CLOSED:
            return getattr(stax, CLOSED[key][0])(**CLOSED[key][1])
        return stax.ElementwiseNumerical(NUMERICAL[key], deg)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in arg.items()}
    return getattr(stax, name)(**kwargs)


def numerical(spec):
    name, arg = spec
    if name in ("serial", "parallel"):
        return any(numerical(s) for s in arg)
    return name in NUMERICAL or (name == "Activation" and arg["activation"] not in CLOSED)


def unreverse(k, nngp):
    """neural-tangents' output with its spatial pairs in forward order."""
    nngp = np.asarray(nngp)
    if not k.is_reversed or nngp.ndim <= 2:
        return nngp
    nsp = (nngp.ndim - 2) // 2
    order = [0, 1]
    for i in reversed(range(nsp)):
        order += [2 + 2 * i, 2 + 2 * i + 1]
    return nngp.transpose(order)


def compute(spec, x1, x2, deg):
    _, _, kernel_fn = build(spec, deg)
    out = {}
    for key, xb in (("11", None), ("12", x2)):
        k = kernel_fn(x1, xb)
        out[f"nngp_{key}"] = unreverse(k, k.nngp)
        out[f"ntk_{key}"] = unreverse(k, k.ntk)
    return out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/data/nt_stax_kernels.json"
    cases = []
    for seed, (name, spec, shape) in enumerate(CASES):
        rng = np.random.default_rng(100 + seed)
        x1, x2 = rng.normal(size=(3,) + shape), rng.normal(size=(2,) + shape)
        ref = compute(spec, x1, x2, DEG[0])
        nt_error = 0.0
        if numerical(spec):
            check = compute(spec, x1, x2, DEG[1])
            nt_error = max(float(np.abs(ref[k] - check[k]).max() / np.abs(check[k]).max()) for k in ref)
        cases.append(
            dict(
                name=name,
                spec=spec,
                x1=x1.tolist(),
                x2=x2.tolist(),
                nt_error=nt_error,
                method="quadrature" if numerical(spec) else "closed form",
                **{k: v.tolist() for k, v in ref.items()},
            )
        )
        print(f"{name}: nngp {ref['nngp_11'].shape}, method {cases[-1]['method']}, nt_error {nt_error:.1e}")
    source = "neural-tangents 0.6.5, jax 0.4.23, float64 (benchmarks/make_nt_references.py); inputs NHWC / NWC"
    with open(path, "w") as f:
        json.dump({"source": source, "ElementwiseNumerical_deg": DEG[0], "cases": cases}, f)


if __name__ == "__main__":
    main()
