"""Finite-width MLPs (Flax NNX) whose init, forward multipliers and learning rates come from the abc table.

Layer l computes h_l = m^-a_l * x_{l-1} @ W_l + b_l with W_l ~ N(0, std_l^2) and x_l = phi(h_l); the
readout is f = m^-a * x_L @ W_out + b_out. `depth` counts hidden layers, as in `workbench.theory.kernels`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, overload

import jax
import jax.numpy as jnp
from flax import nnx

from workbench.core import parametrizations as P
from workbench.core.activations import get_activation
from workbench.core.config import Config, spec
from workbench.core.declare import Instance, Int, declare
from workbench.core.fields import ACTIVATION, BASE_WIDTH, DEPTH, PARAMETRIZATION, WIDTH
from workbench.core.memory import require

__all__ = [
    "MLP",
    "TRAINING_COPIES",
    "MLPConfig",
    "ModelConfig",
    "build_mlp",
    "count_params",
    "layer_roles",
    "n_params",
    "param_roles",
]


class ModelConfig(Config):
    """Base of a model's config: the model owns how the optimizer treats its tensors (`param_labels`, fed
    to `optax.multi_transform`) and how its learning rates scale with width (`scaling`). By default every
    tensor is "hidden" under SP, which trains them all alike."""

    def scaling(self) -> tuple[str, int, int]:
        """(parametrization, width, base_width) read by `workbench.nets.optim.make_optimizer`."""
        return "sp", 1, 1

    def param_labels(self, params: nnx.State) -> nnx.State:
        """A pytree like `params` holding each tensor's role in the abc table."""
        return jax.tree_util.tree_map(lambda _: "hidden", params)

    def optimizer_options(self, optimizer: str) -> dict[str, Any]:
        """Further `make_optimizer` arguments (multiplier-free rows, the depth factor of residual branches)."""
        return {}


@dataclass(frozen=True)
class MLPConfig(ModelConfig):
    """Architecture and parametrization of a finite MLP."""

    in_dim: int = spec(2, lo=1, hi=100_000, doc="input dimension d")
    width: int = WIDTH(128, doc="hidden width n")
    depth: int = DEPTH(2, doc="number of hidden layers")
    out_dim: int = spec(1, lo=1, hi=10_000, doc="output dimension")
    activation: str = ACTIVATION("relu", doc="nonlinearity or expression in x")
    parametrization: str = PARAMETRIZATION("mup", doc="abc-parametrization")
    base_width: int = BASE_WIDTH(128, doc="width n0 at which all equal SP")
    weight_std: float = spec(1.0, lo=0.0, hi=10.0, doc="sigma_w: SP init std is sigma_w/sqrt(fan_in)")
    bias_std: float = spec(0.0, lo=0.0, hi=10.0, doc="sigma_b: init std of the biases")
    bias: bool = spec(True, doc="use biases")
    zero_readout: bool = spec(False, doc="initialise the readout weights to zero")

    def scaling(self) -> tuple[str, int, int]:
        return self.parametrization, self.width, self.base_width

    def param_labels(self, params: nnx.State) -> nnx.State:
        return param_roles(self, params)


@declare(config=Instance(MLPConfig))
def layer_roles(config: MLPConfig) -> tuple[str, ...]:
    """Role in the abc table of each weight matrix, first layer to readout."""
    return ("input",) + ("hidden",) * (config.depth - 1) + ("output",)


class MLP(nnx.Module):
    """MLP of `depth` hidden layers whose scalings follow `workbench.core.parametrizations.TABLE`."""

    def __init__(self, config: MLPConfig, *, rngs: nnx.Rngs):
        c = config
        self.config = c
        self.phi = get_activation(c.activation)
        m = P.width_ratio(c.width, c.base_width)
        dims = [c.in_dim] + [c.width] * c.depth + [c.out_dim]
        roles = layer_roles(c)
        base_fan_in = [c.in_dim] + [c.base_width] * c.depth
        self.roles = tuple(roles)
        self.multipliers = tuple(P.multiplier(c.parametrization, r, m) for r in roles)
        kernels, biases = [], []
        for l, role in enumerate(roles):
            std = P.init_std(c.parametrization, role, m, c.weight_std / math.sqrt(base_fan_in[l]))
            if role == "output" and c.zero_readout:
                std = 0.0
            kernels.append(nnx.Param(std * jax.random.normal(rngs.params(), (dims[l], dims[l + 1]))))
            if c.bias:
                biases.append(nnx.Param(c.bias_std * jax.random.normal(rngs.params(), (dims[l + 1],))))
        self.kernels = nnx.List(kernels)
        self.biases = nnx.List(biases)

    def layer(self, l: int, x: jax.Array) -> jax.Array:
        """Pre-activation of layer l (the readout for l = depth)."""
        h = self.multipliers[l] * (x @ self.kernels[l][...])
        return h + self.biases[l][...] if self.config.bias else h

    def classifier(self) -> tuple[jax.Array, jax.Array | None]:
        """(W (C, n), b or None): the logits are W x_L + b of the last features x_L."""
        w = self.multipliers[-1] * self.kernels[-1][...].T
        return w, (self.biases[-1][...] if self.config.bias else None)

    @overload
    def __call__(self, x: jax.Array, *, return_hidden: Literal[False] = False) -> jax.Array: ...
    @overload
    def __call__(
        self, x: jax.Array, *, return_hidden: Literal[True]
    ) -> tuple[jax.Array, dict[str, list[jax.Array]]]: ...

    def __call__(self, x: jax.Array, *, return_hidden: bool = False):
        preacts, features = [], []
        for l in range(len(self.roles) - 1):
            h = self.layer(l, x)
            x = self.phi(h)
            preacts.append(h)
            features.append(x)
        out = self.layer(len(self.roles) - 1, x)
        return (out, {"preacts": preacts, "features": features}) if return_hidden else out


@declare(config=Instance(MLPConfig))
def n_params(config: MLPConfig) -> int:
    """Trainable scalars of the MLP of `config` (weights and biases), without building it."""
    dims = [config.in_dim] + [config.width] * config.depth + [config.out_dim]
    return sum(a * b + (b if config.bias else 0) for a, b in zip(dims, dims[1:]))


TRAINING_COPIES = 6  # float32 copies of the parameters while training: params, grads, two Adam moments, update, init


@declare(config=Instance(MLPConfig), seed=Int(0, 2**31 - 1))
def build_mlp(config: MLPConfig, seed: int = 0) -> MLP:
    """A freshly initialised MLP; the same config and seed give the same weights. Refused before
    allocating when training it would not fit in memory (`workbench.core.memory.require`)."""
    require(
        4 * TRAINING_COPIES * n_params(config),
        "MLPConfig",
        f"width {config.width} x depth {config.depth} ({n_params(config):,} parameters)",
        "use a smaller width or depth",
    )
    return MLP(config, rngs=nnx.Rngs(params=seed))


def _example_params() -> nnx.State:
    """The Param state of the default MLP (the attack suite's base call of `param_roles`)."""
    return nnx.state(build_mlp(MLPConfig()), nnx.Param)


@declare(config=Instance(MLPConfig), params=Instance(nnx.State, example=_example_params))
def param_roles(config: MLPConfig, params: nnx.State) -> nnx.State:
    """A pytree like an MLP's Param state holding each tensor's role in the abc table."""
    roles = layer_roles(config)

    def role(path: tuple[Any, ...], _: object) -> str:
        group, index = path[0].key, path[1].key
        if group == "kernels":
            return roles[index]
        return "output_bias" if index == len(roles) - 1 else "bias"

    return jax.tree_util.tree_map_with_path(role, params)


@declare(model=Instance(nnx.Module, example=lambda: build_mlp(MLPConfig(in_dim=3, width=8, depth=1))))
def count_params(model: nnx.Module) -> int:
    """Number of trainable scalars."""
    return sum(int(jnp.size(p)) for p in jax.tree_util.tree_leaves(nnx.state(model, nnx.Param)))
