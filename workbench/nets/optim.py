"""Optax optimizers whose per-tensor learning rates follow the parametrization table (TP V, Table 3).

Each role (input, hidden, output, bias, output_bias) gets its own copy of the base optimizer with
learning rate lr * m^-c; `optax.multi_transform` routes every tensor to the copy of its role. A tensor inside a
residual branch is labelled "<role>/branch" and also gets the depth factor (`parametrizations.depth_lr_scale`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING

import jax
import optax

from workbench.core import parametrizations as P
from workbench.core.declare import Choice, Flag, Given, Int, Real, declare

if TYPE_CHECKING:
    from flax import nnx

__all__ = ["OPTIMIZERS", "make_optimizer"]

OPTIMIZERS = tuple(P.OPTIMIZER_FAMILY)


def _base_optimizer(name: str, lr: float, *, momentum: float = 0.9, weight_decay: float = 0.0, b2: float = 0.999):
    """One optax transformation: sgd (L2 weight decay), momentum, adam (L2), adamw (decoupled); b2 is
    Adam's second-moment decay. `lr`, `weight_decay` and `b2` may be traced (see `make_optimizer`),
    so no branch looks at their values."""
    l2 = optax.add_decayed_weights(weight_decay)
    if name == "sgd":
        return optax.chain(l2, optax.sgd(lr))
    if name == "momentum":
        return optax.chain(l2, optax.sgd(lr, momentum=momentum))
    if name == "adam":
        return optax.chain(l2, optax.adam(lr, b2=b2))
    if name == "adamw":
        return optax.adamw(lr, b2=b2, weight_decay=weight_decay)
    raise ValueError(f"optimizer: must be one of {', '.join(OPTIMIZERS)}, got {name!r}")


@declare(
    name=Choice(OPTIMIZERS),
    lr=Real(0.0, 1e4, lo_open=True),  # the ranges of `workbench.nets.engine.TrainConfig`'s fields
    parametrization=Choice(P.NAMES),
    width=Int(1, P.MAX_WIDTH),
    base_width=Int(1, P.MAX_WIDTH),
    roles=Given(
        why="a pytree of role names like the parameters, or a function of the parameters returning one; the body "
        "checks that it is one of the two",
        example=lambda: lambda params: jax.tree.map(lambda _: "hidden", params),
    ),
    momentum=Real(0.0, 0.999),
    weight_decay=Real(0.0, 100.0),
    b2=Real(0.0, 0.99999),
    free=Flag(),
    depth_factor=Real(1e-6, 1e6),
)
def make_optimizer(
    name: str,
    lr: float,
    *,
    parametrization: str,
    width: int,
    base_width: int,
    roles: nnx.State | Callable[[nnx.State], nnx.State],
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    b2: float = 0.999,
    free: bool = False,
    depth_factor: float = 1.0,
) -> optax.GradientTransformationExtraArgs:
    """The optimizer for a model whose tensors carry `roles` (see `models.param_roles`).

    lr, weight_decay and b2 are injected hyperparameters (`optax.inject_hyperparams`): they live in the
    optimizer state, so changing them does not recompile a jitted training step. `free`: the multiplier-free
    rows (`parametrizations.free_scaling`), for models whose forward pass the table does not touch."""
    if not (callable(roles) or isinstance(roles, Mapping)):
        raise ValueError(
            "roles: must be a pytree of role names like the parameters (an nnx.State) or a function of the "
            f"parameters returning one, got {type(roles).__name__}"
        )
    m = P.width_ratio(width, base_width)
    family = P.OPTIMIZER_FAMILY[name]

    def scale(role: str) -> float:
        if not free:
            return P.lr_scale(parametrization, role, m, name)
        row = P.free_scaling(parametrization, role)
        return m ** -(row.c_sgd if family == "sgd" else row.c_adam)

    def factory(lr: float, weight_decay: float, b2: float) -> optax.GradientTransformationExtraArgs:
        transforms: dict[Hashable, optax.GradientTransformation] = {  # the key type multi_transform declares
            label: _base_optimizer(name, lr * scale(role) * factor, momentum=momentum, weight_decay=weight_decay, b2=b2)
            for role in P.ROLES
            for label, factor in ((role, 1.0), (f"{role}/branch", depth_factor))
        }
        return optax.multi_transform(transforms, roles)

    return optax.inject_hyperparams(factory)(lr=lr, weight_decay=weight_decay, b2=b2)
