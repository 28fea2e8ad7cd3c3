"""Optax optimizers whose per-tensor learning rates follow the parametrization table (TP V, Table 3).

Each role (input, hidden, output, bias, output_bias) gets its own copy of the base optimizer with
learning rate lr * m^-c; `optax.multi_transform` routes every tensor to the copy of its role.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

import optax

from workbench.core import parametrizations as P

if TYPE_CHECKING:
    from flax import nnx

OPTIMIZERS = tuple(P.OPTIMIZER_FAMILY)


def base_optimizer(name: str, lr: float, *, momentum: float = 0.9, weight_decay: float = 0.0, b2: float = 0.999):
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
) -> optax.GradientTransformationExtraArgs:
    """The optimizer for a model whose tensors carry `roles` (see `models.param_roles`).

    lr, weight_decay and b2 are injected hyperparameters (`optax.inject_hyperparams`): they live in the
    optimizer state, so changing them does not recompile a jitted training step."""
    m = P.width_ratio(width, base_width)

    def factory(lr: float, weight_decay: float, b2: float) -> optax.GradientTransformationExtraArgs:
        transforms: dict[Hashable, optax.GradientTransformation] = {  # the key type multi_transform declares
            role: base_optimizer(
                name,
                lr * P.lr_scale(parametrization, role, m, name),
                momentum=momentum,
                weight_decay=weight_decay,
                b2=b2,
            )
            for role in P.ROLES
        }
        return optax.multi_transform(transforms, roles)

    return optax.inject_hyperparams(factory)(lr=lr, weight_decay=weight_decay, b2=b2)
