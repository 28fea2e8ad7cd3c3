"""`workbench.stax`: a neural-tangents-compatible layer algebra on today's JAX. One description gives the finite
network (`init_fn`, `apply_fn`), its infinite-width NNGP and NTK (`kernel_fn`) and a Flax NNX module under any
parametrization of the abc table (`workbench.stax.nnx`):

    from workbench import stax
    init_fn, apply_fn, kernel_fn = stax.serial(
        stax.Conv(64, (3, 3), padding="SAME", W_std=1.5, b_std=0.1), stax.Relu(),
        stax.AvgPool((2, 2), strides=(2, 2)), stax.Conv(64, (3, 3), padding="SAME", W_std=1.5, b_std=0.1),
        stax.Gelu(), stax.GlobalAvgPool(), stax.Dense(1, W_std=1.5, b_std=0.1))
    k = kernel_fn(x1, x2, ("nngp", "ntk"))     # k.nngp, k.ntk: (N1, N2)

Names, argument names and conventions are neural-tangents' (NHWC / NWC inputs, W_std, b_std,
parameterization="ntk" | "standard", padding VALID / SAME / CIRCULAR, strides), so NT code ports by changing the
import. Layers: `workbench.stax.layers`, activations: `workbench.stax.elementwise`, combinators:
`workbench.stax.combinators`, the kernel computation: `workbench.stax.kernel`.
"""

from workbench.stax.combinators import FanInSum, FanOut, parallel, serial
from workbench.stax.elementwise import (
    ABRelu,
    Abs,
    Activation,
    Cos,
    Erf,
    Gelu,
    LeakyRelu,
    Relu,
    Sigmoid,
    Sigmoid_like,
    Sign,
    Sin,
    Tanh,
    activation_of,
)
from workbench.stax.kernel import Kernels
from workbench.stax.layers import (
    AvgPool,
    Conv,
    Dense,
    Flatten,
    GlobalAvgPool,
    GlobalSumPool,
    Identity,
    Layer,
    LayerNorm,
    Scale,
    SumPool,
)

__all__ = [
    "ABRelu",
    "Abs",
    "Activation",
    "AvgPool",
    "Conv",
    "Cos",
    "Dense",
    "Erf",
    "FanInSum",
    "FanOut",
    "Flatten",
    "Gelu",
    "GlobalAvgPool",
    "GlobalSumPool",
    "Identity",
    "Kernels",
    "Layer",
    "LayerNorm",
    "LeakyRelu",
    "Relu",
    "Scale",
    "Sigmoid",
    "Sigmoid_like",
    "Sign",
    "Sin",
    "SumPool",
    "Tanh",
    "activation_of",
    "parallel",
    "serial",
]
