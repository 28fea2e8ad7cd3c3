"""Empirical (finite-width) NTK of the workbench MLP and of any model (Jacot et al. 2018, Eq. 5).

    Theta(x, x') = sum_p lambda_p  df(x)/dtheta_p  df(x')/dtheta_p

over the trainable tensors theta_p, averaged over output units (mean of the per-output kernels, the
"trace" convention; one output gives its kernel). The weights lambda_p are set by `scaling`:

- "sgd" (default): lambda = the parameter's SGD learning-rate factor m^-c of its role
  (`workbench.core.parametrizations.lr_scale`). This is the kernel of training: plain SGD at learning
  rate lr in `workbench.nets.engine` (loss 0.5 mean ||f - y||^2) follows df/dt = -(lr/N) Theta (f - y)
  with t = step * lr. Its infinite-width limit, for parametrization "ntk" (any width) and "sp", is
  `mlp_kernels(..., parametrization="standard", width=n)` with n = base_width for "ntk" and the
  actual width for "sp" (see `limit_kernels`); for "mup" and "mf" no fixed kernel governs training.
- "nt": lambda = init std^2 of the tensor, i.e. the tangent kernel with respect to unit-variance
  parameters theta / std (neural-tangents' "ntk" parametrization convention). For "ntk" and "sp"
  models it converges to `mlp_kernels(..., parametrization="ntk", weight_std, bias_std)`, with a
  relative Frobenius error falling like n^-1/2.
- "raw": lambda = 1 (the plain J J^T).

`method="structured"` uses the MLP's layer structure: layer l contributes
lambda_W m_l^2 (A_l A_l'^T) * (D_l D_l'^T) + lambda_b D_l D_l'^T, with A_l the layer's inputs and
D_l = df/dh_l the backpropagated signals (Novak et al. 2022, "structured derivatives"); nothing of
size N x parameters is formed. `method="jacobian"` contracts full Jacobians and works for any NNX
module (or any function with `jacobian_ntk`); the two agree to float32 precision.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from numpy.typing import ArrayLike

from workbench.core import parametrizations as P
from workbench.core.activations import Activation
from workbench.core.declare import Array as ArrayArg
from workbench.core.declare import Choice, Given, Instance, declare
from workbench.nets.models import MLP, MLPConfig, build_mlp, layer_roles, param_roles
from workbench.theory.kernels.analytic import MAX_INPUT, Kernels, _act_key, _check_memory, _example_x2, mlp_kernels

__all__ = ["METHODS", "SCALINGS", "empirical_ntk", "jacobian_ntk", "limit_kernels"]

SCALINGS = ("sgd", "nt", "raw")
METHODS = ("structured", "jacobian")
_HIGHEST = jax.lax.Precision.HIGHEST


def _role_weights(config: MLPConfig, scaling: str) -> dict[str, float]:
    """lambda of each role (input, hidden, output, bias, output_bias) under `scaling` (one of SCALINGS)."""
    c = config
    m = P.width_ratio(c.width, c.base_width)
    if scaling == "raw":
        return {r: 1.0 for r in P.ROLES}
    if scaling == "sgd":
        return {r: P.lr_scale(c.parametrization, r, m, "sgd") for r in P.ROLES}
    fan_in = {"input": c.in_dim, "hidden": c.base_width, "output": c.base_width}
    stds = {r: P.init_std(c.parametrization, r, m, c.weight_std / fan_in[r] ** 0.5) for r in fan_in}
    if c.zero_readout:
        stds["output"] = 0.0
    return {**{r: s * s for r, s in stds.items()}, "bias": c.bias_std**2, "output_bias": c.bias_std**2}


@dataclass(frozen=True)
class _Spec:
    """Static structure of an MLP for the jitted structured NTK (hashable: the jit cache key). The role
    weights lambda (which depend on weight_std and bias_std) are traced arguments, so that changing the
    stds does not recompile."""

    multipliers: tuple
    bias: bool
    act_key: tuple
    act: Activation = field(compare=False, hash=False)


def _signals(
    spec: _Spec, Ws: Sequence[jax.Array], bs: Sequence[jax.Array], x: jax.Array
) -> tuple[list[jax.Array], list[jax.Array]]:
    """Layer inputs A_l (N, fan_in) and backpropagated signals D_l = df/dh_l (N, k, fan_out)."""
    inputs, slopes = [], []
    for l, W in enumerate(Ws):
        inputs.append(x)
        if l == len(Ws) - 1:
            break
        h = spec.multipliers[l] * jnp.matmul(x, W, precision=_HIGHEST) + (bs[l] if spec.bias else 0.0)
        x, slope = jax.jvp(spec.act.fn, (h,), (jnp.ones_like(h),))
        slopes.append(slope)
    k = Ws[-1].shape[1]
    D = jnp.broadcast_to(jnp.eye(k, dtype=x.dtype), (x.shape[0], k, k))
    signals = [D]
    for l in range(len(Ws) - 2, -1, -1):
        D = spec.multipliers[l + 1] * jnp.matmul(D, Ws[l + 1].T, precision=_HIGHEST) * slopes[l][:, None, :]
        signals.append(D)
    return inputs, signals[::-1]


def _structured(
    spec: _Spec,
    lam_w: jax.Array,
    lam_b: jax.Array,
    Ws: Sequence[jax.Array],
    bs: Sequence[jax.Array],
    x1: jax.Array,
    x2: jax.Array | None,
) -> jax.Array:
    a1, d1 = _signals(spec, Ws, bs, x1)
    a2, d2 = (a1, d1) if x2 is None else _signals(spec, Ws, bs, x2)
    terms = []  # one per layer (an MLP has at least its readout)
    for l in range(len(Ws)):
        k = d1[l].shape[1]
        dd = jnp.matmul(d1[l].reshape(d1[l].shape[0], -1), d2[l].reshape(d2[l].shape[0], -1).T, precision=_HIGHEST) / k
        aa = jnp.matmul(a1[l], a2[l].T, precision=_HIGHEST)
        terms.append(dd * (lam_w[l] * spec.multipliers[l] ** 2 * aa + (lam_b[l] if spec.bias else 0.0)))
    return functools.reduce(operator.add, terms)


_structured_jit = jax.jit(_structured, static_argnums=0)


def _leaf_kernel(a: jax.Array, b: jax.Array, k: int) -> jax.Array:
    """Mean over the k outputs of the sum over parameter axes of a[n, o, ...] b[m, o, ...]."""
    a, b = a.reshape(a.shape[0], k, -1), b.reshape(b.shape[0], k, -1)
    return jnp.einsum("nop,mop->nm", a, b, precision=_HIGHEST) / k


def _jacobian_ntk(
    fn: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    x1: jax.Array | np.ndarray,
    x2: jax.Array | np.ndarray | None = None,
    *,
    weights: Any = None,
) -> jax.Array:
    """`jacobian_ntk` on checked arguments (jit-able: `fn` static)."""
    out = jax.eval_shape(fn, params, x1)
    k = math.prod(out.shape[1:])
    n_params = sum(int(jnp.size(p)) for p in jax.tree_util.tree_leaves(params))
    if n_params == 0:
        raise ValueError("params: the model has no parameters, so its tangent kernel is not defined")
    n2 = x1.shape[0] if x2 is None else x2.shape[0]
    _check_memory(x1.shape[0] + (0 if x2 is None else n2), k * n_params, 4, 1, "jacobian_ntk (Jacobians)")
    j1 = jax.jacrev(fn)(params, x1)
    j2 = j1 if x2 is None else jax.jacrev(fn)(params, x2)
    weights = jax.tree_util.tree_map(lambda _: 1.0, params) if weights is None else weights
    leaves = zip(*(jax.tree_util.tree_leaves(t) for t in (j1, j2, weights)))
    return functools.reduce(operator.add, (w * _leaf_kernel(a, b, k) for a, b, w in leaves))  # params has leaves


_jacobian_jit = jax.jit(_jacobian_ntk, static_argnums=0)


def _example_fn(params: jax.Array, x: jax.Array) -> jax.Array:
    """A small two-output model for the attack suite's base call of `jacobian_ntk`."""
    return jnp.tanh(x @ params)


@declare(
    fn=Given(why="a function fn(params, x) of jax arrays, checked callable in the body", example=lambda: _example_fn),
    params=Given(why="a pytree of parameter arrays, checked in the body", example=lambda: np.ones((3, 2))),
    x1=ArrayArg("n1 d"),
    x2=ArrayArg("n2 d", none_ok=True, example=_example_x2),
    weights=Given(why="a pytree of scalars shaped like params, checked in the body", none_ok=True),
)
def jacobian_ntk(
    fn: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    x1: ArrayLike,
    x2: ArrayLike | None = None,
    *,
    weights: Any = None,
) -> jax.Array:
    """sum_p weights_p J_p(x1) J_p(x2)^T for any fn(params, x) -> (N,) or (N, k...), mean over outputs.

    `weights`: a pytree of scalars shaped like `params` (None: all 1). Forms the full Jacobians, so
    memory is N x outputs x parameters (checked before anything is computed)."""
    if not callable(fn):
        raise ValueError(f"fn: must be a function fn(params, x), got {type(fn).__name__}")
    leaves, tree = jax.tree_util.tree_flatten(params)
    if not leaves or not all(hasattr(p, "shape") or isinstance(p, (int, float)) for p in leaves):
        raise ValueError("params: must be a non-empty pytree of arrays (the model's parameters)")
    if weights is not None:
        w_leaves, w_tree = jax.tree_util.tree_flatten(weights)
        if w_tree != tree or not all(hasattr(w, "shape") or isinstance(w, (int, float)) for w in w_leaves):
            raise ValueError("weights: must be a pytree of scalars with the structure of params")
    x1 = jnp.asarray(x1, jnp.result_type(x1, jnp.float32))
    x2 = None if x2 is None else jnp.asarray(x2, x1.dtype)
    try:
        jax.eval_shape(fn, params, x1)
    except Exception as err:  # noqa: BLE001 - any failure of the user's function on these shapes
        raise ValueError(f"fn: fn(params, x1) failed on x1 of shape {tuple(x1.shape)}: {err}") from None
    return _jacobian_ntk(fn, params, x1, x2, weights=weights)


@functools.lru_cache(maxsize=32)
def _mlp_fn(graphdef: nnx.GraphDef) -> Callable[[nnx.State, jax.Array], jax.Array]:
    return lambda params, x: nnx.merge(graphdef, params)(x)


def _example_mlp() -> MLP:
    """A small MLP taking 3 features (the attack suite's x1), for the base calls."""
    return build_mlp(MLPConfig(in_dim=3, width=8, depth=1))


def _example_config() -> MLPConfig:
    """An MLP config with a fixed-kernel limit, taking 3 features, for the base calls."""
    return MLPConfig(in_dim=3, width=8, depth=1, parametrization="ntk")


@declare(
    model=Instance(nnx.Module, example=_example_mlp),
    x1=ArrayArg("n1 d", lo=-MAX_INPUT, hi=MAX_INPUT),
    x2=ArrayArg("n2 d", lo=-MAX_INPUT, hi=MAX_INPUT, none_ok=True, example=_example_x2),
    method=Choice(METHODS),
    scaling=Choice(SCALINGS),
)
def empirical_ntk(
    model: nnx.Module, x1: ArrayLike, x2: ArrayLike | None = None, *, method: str = "structured", scaling: str = "sgd"
) -> jax.Array:
    """Empirical NTK (N1, N2) of a workbench MLP (any parametrization) or, with method="jacobian" and
    scaling="raw", of any NNX module; see the module docstring for `scaling`."""
    x1 = jnp.asarray(x1, jnp.result_type(x1, jnp.float32))
    x2 = None if x2 is None else jnp.asarray(x2, x1.dtype)
    in_dim = getattr(getattr(model, "config", None), "in_dim", None)
    for name, x in (("x1", x1), ("x2", x2)):
        if x is not None and in_dim is not None and x.shape[1] != in_dim:
            raise ValueError(f"{name}: the model takes in_dim = {in_dim} features, got shape {tuple(x.shape)}")
    n2 = x1.shape[0] if x2 is None else x2.shape[0]
    _check_memory(x1.shape[0], n2, x1.dtype.itemsize, 4, "empirical_ntk")
    if not isinstance(model, MLP):
        if method != "jacobian" or scaling != "raw":
            raise ValueError(
                "empirical_ntk: a model other than workbench.nets.models.MLP needs "
                "method='jacobian' and scaling='raw' (or use jacobian_ntk with weights)"
            )
        graphdef, params = nnx.split(model, nnx.Param)
        return _jacobian_jit(_mlp_fn(graphdef), params, x1, x2)
    c = model.config
    lam = _role_weights(c, scaling)
    if method == "jacobian":
        graphdef, params = nnx.split(model, nnx.Param)
        weights = jax.tree_util.tree_map(lambda r: lam[r], param_roles(c, params))
        return _jacobian_jit(_mlp_fn(graphdef), params, x1, x2, weights=weights)
    roles = layer_roles(c)
    spec = _Spec(tuple(model.multipliers), c.bias, _act_key(model.phi), model.phi)
    lam_w = jnp.asarray([lam[r] for r in roles], x1.dtype)
    lam_b = jnp.asarray([lam["bias"]] * (len(roles) - 1) + [lam["output_bias"]], x1.dtype)
    Ws = [k[...] for k in model.kernels]
    bs = [b[...] for b in model.biases] if c.bias else []
    return _structured_jit(spec, lam_w, lam_b, Ws, bs, x1, x2)


@declare(
    config=Instance(MLPConfig, example=_example_config),
    x1=ArrayArg("n1 d", lo=-MAX_INPUT, hi=MAX_INPUT),
    x2=ArrayArg("n2 d", lo=-MAX_INPUT, hi=MAX_INPUT, none_ok=True, example=_example_x2),
)
def limit_kernels(config: MLPConfig, x1: ArrayLike, x2: ArrayLike | None = None) -> Kernels:
    """Infinite-width limit of the MLP's NNGP and of its "sgd"-scaled empirical NTK (see module docstring)."""
    if config.parametrization not in ("ntk", "sp"):
        raise ValueError(
            f"parametrization: {config.parametrization!r} learns features; only 'ntk' and 'sp' "
            "train in a fixed-kernel limit"
        )
    if config.zero_readout:
        raise ValueError("zero_readout: the analytic kernels assume a Gaussian readout at init")
    width = config.base_width if config.parametrization == "ntk" else config.width
    return mlp_kernels(
        x1,
        x2,
        depth=config.depth,
        activation=config.activation,
        weight_std=config.weight_std,
        bias_std=config.bias_std if config.bias else None,
        parametrization="standard",
        width=width,
    )
