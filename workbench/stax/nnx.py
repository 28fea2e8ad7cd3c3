"""Flax NNX modules from `workbench.stax` descriptions, and the empirical NTK of those and of any NNX module.

`network(layer, input_shape, parametrization=..., width=m)` builds the finite network of a description:

- parametrization "nt" (default): every Dense / Conv as written (neural-tangents' "ntk": W ~ N(0, 1) behind
  W_std / sqrt(fan_in), b ~ N(0, 1) behind b_std; "standard": W ~ N(0, W_std^2 / fan_in), b ~ N(0, b_std^2)); its
  forward pass is `apply_fn` on the same parameters (`params=` takes those of `init_fn`, `stax_params()` gives
  them back);
- "sp", "ntk", "mup", "mf": the abc table of `workbench.core.parametrizations` per layer from its role: "input"
  (its input is the network's input), "output" (nothing but non-linear layers between it and the network's output),
  "hidden" otherwise; multiplier m^-a, init std m^-b W_std / sqrt(base fan_in) (fan_in = channels x filter size),
  biases N(0, b_std^2). Every one is neural-tangents' "standard" at m = 1.

`width` is the multiplier m of every hidden channel count (the description's counts are the base width; output
layers keep theirs). Under "nt" with "ntk" layers, or "ntk" / "sp" with `scaling="nt"`, `empirical_ntk` converges
to the description's `kernel_fn` NTK as m grows (relative error ~ m^-1/2). `empirical_ntk` also takes a module
written by hand (its `nnx.Param`s, inputs of any shape), which neural-tangents' analytic kernels could not.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from numpy.typing import ArrayLike

from workbench.core import checks
from workbench.core import parametrizations as P
from workbench.core.declare import Choice, Given, Instance, Int, Real, declare
from workbench.core.memory import require
from workbench.stax.combinators import FanInSumLayer, FanOutLayer, Parallel, Serial, serial
from workbench.stax.elementwise import Relu
from workbench.stax.kernel import check_input_shape, check_inputs
from workbench.stax.layers import Conv, Dense, Flatten, Layer, Linear, nt_scale
from workbench.stax.state import Info, Where
from workbench.theory.kernels.analytic import MAX_INPUT
from workbench.theory.kernels.empirical import jacobian_ntk

PARAMETRIZATIONS = ("nt",) + P.NAMES
SCALINGS = ("raw", "nt")
MAX_WIDTH = 4096.0
TRAINING_COPIES = 6  # float32 copies of the parameters while training (`workbench.nets.models.TRAINING_COPIES`)

__all__ = ["PARAMETRIZATIONS", "SCALINGS", "StaxNetwork", "empirical_ntk", "network"]


# ---------------------------------------------------------------- walking a description


def _walk(layer: Layer, x: Any, where: Where, visit: Callable[[Where, Linear, Info], None]) -> Any:
    """The description's forward shape pass, calling visit(position, layer, input Info) at every Dense / Conv."""
    if isinstance(layer, Serial):
        for i, sub in enumerate(layer.layers):
            x = _walk(sub, x, where + (i,), visit)
        return x
    if isinstance(layer, Parallel):
        layer.infer(x, where)  # checks the branches
        return [_walk(sub, xi, where + (i,), visit) for i, (sub, xi) in enumerate(zip(layer.layers, x))]
    if isinstance(layer, Linear):
        visit(where, layer, x)
    return layer.infer(x, where)


def _flows(layer: Layer, x: Any, where: Where, forward: bool, seen: dict[Where, bool]) -> Any:
    """Forward: whether each Dense / Conv reads the network's input with no Dense / Conv before it. Backward
    (x: the flag after the layer): whether it reaches the network's output with none after it."""
    if isinstance(layer, Serial):
        order = range(len(layer.layers)) if forward else reversed(range(len(layer.layers)))
        for i in order:
            x = _flows(layer.layers[i], x, where + (i,), forward, seen)
        return x
    if isinstance(layer, Parallel):
        xs = x if isinstance(x, list) else [x] * len(layer.layers)
        return [_flows(sub, xi, where + (i,), forward, seen) for i, (sub, xi) in enumerate(zip(layer.layers, xs))]
    if isinstance(layer, FanOutLayer):
        return [x] * layer.num if forward else any(x) if isinstance(x, list) else x
    if isinstance(layer, FanInSumLayer) and forward:
        return any(x)
    if isinstance(layer, Linear):
        seen[where] = bool(x)
        return False
    return x


def _rebuild(layer: Layer, fn: Callable[[Where, Linear], Layer], where: Where = ()) -> Layer:
    """The description with every Dense / Conv replaced by fn(position, layer)."""
    if isinstance(layer, (Serial, Parallel)):
        return dataclasses.replace(
            layer, layers=tuple(_rebuild(s, fn, where + (i,)) for i, s in enumerate(layer.layers))
        )
    return fn(where, layer) if isinstance(layer, Linear) else layer


def _channels(lin: Linear) -> int:
    return lin.out_channels()


def _widen(where: Where, lin: Linear, m: float, output: bool) -> Linear:
    if output:
        return lin
    n = max(1, round(m * _channels(lin)))
    return dataclasses.replace(lin, **{"out_dim" if hasattr(lin, "out_dim") else "out_chan": n})


def _nest(layer: Layer, flat: dict[Where, tuple], where: Where = ()) -> Any:
    """neural-tangents' nested parameters from per-position (W, b)."""
    if isinstance(layer, (Serial, Parallel)):
        return tuple(_nest(s, flat, where + (i,)) for i, s in enumerate(layer.layers))
    return flat[where] if isinstance(layer, Linear) else ()


def _flat(layer: Layer, params: Any, where: Where = (), out: dict | None = None) -> dict[Where, tuple]:
    """Per-position (W, b) of neural-tangents' nested parameters, checking their structure."""
    out = {} if out is None else out
    if isinstance(layer, (Serial, Parallel)):
        if not isinstance(params, (tuple, list)) or len(params) != len(layer.layers):
            raise ValueError(f"params: at {where or 'the top'} expected {len(layer.layers)} entries (one per layer)")
        for i, (s, p) in enumerate(zip(layer.layers, params)):
            _flat(s, p, where + (i,), out)
    elif isinstance(layer, Linear):
        if not isinstance(params, (tuple, list)) or len(params) != 2:
            raise ValueError(f"params: at {where} ({layer.label}) expected (W, b)")
        out[where] = tuple(params)
    return out


# ---------------------------------------------------------------- the module


class StaxNetwork(nnx.Module):
    """The finite network of a stax description (see the module docstring); `roles`, `multipliers` and `stds` per
    Dense / Conv in forward order; `layer`: the widened description, so `layer.apply_fn` and `layer.kernel_fn`
    describe this network."""

    def __init__(
        self,
        layer: Layer,
        input_shape: tuple[int, ...],
        *,
        parametrization: str = "nt",
        width: float = 1.0,
        seed: int = 0,
        params: Any = None,
    ):
        base_info = check_input_shape(layer, input_shape)
        raw: dict[Where, bool] = {}
        last: dict[Where, bool] = {}
        _flows(layer, True, (), True, raw)
        _flows(layer, True, (), False, last)
        base_fan_in: dict[Where, int] = {}
        _walk(layer, base_info, (), lambda w, lin, info: base_fan_in.__setitem__(w, lin.fan_in(info)))
        wide = _rebuild(layer, lambda w, lin: _widen(w, lin, width, last[w]))
        info = check_input_shape(wide, input_shape)
        inputs: dict[Where, Info] = {}
        _walk(wide, info, (), lambda w, lin, i: inputs.__setitem__(w, i))
        self.layer = wide
        self.input_shape = tuple(input_shape)
        self.parametrization = parametrization
        self.width = width
        order = [w for w, _ in wide.linear_layers(())]
        linears = dict(wide.linear_layers(()))
        self.positions = tuple(order)
        self.roles = tuple("input" if raw[w] else "output" if last[w] else "hidden" for w in order)
        mults, stds = [], []
        for w, role in zip(order, self.roles):
            lin, fan_in = linears[w], linears[w].fan_in(inputs[w])
            if parametrization == "nt":
                mults.append(nt_scale(lin, fan_in, w))
                ntk = lin.parameterization == "ntk"
                stds.append((1.0 if ntk else lin.W_std / math.sqrt(fan_in), 1.0 if ntk else (lin.b_std or 0.0)))
            else:
                base = lin.W_std / math.sqrt(base_fan_in[w])
                mults.append((P.multiplier(parametrization, role, width), 1.0))
                stds.append((P.init_std(parametrization, role, width, base), lin.b_std or 0.0))
        self.multipliers = tuple(mults)
        self.stds = tuple(stds)
        if params is None:  # numpy's generator: eager jax.random would compile a sampler for every new shape
            rng = np.random.default_rng(seed)
            flat = {}
            for i, w in enumerate(order):
                lin = linears[w]
                W = stds[i][0] * rng.standard_normal(lin.weight_shape(inputs[w]), np.float32)
                b_shape = (1,) * (len(inputs[w].shape) - 1) + (lin.out_channels(),)
                b = None if lin.b_std is None else stds[i][1] * rng.standard_normal(b_shape, np.float32)
                flat[w] = (W, b)
        else:
            flat = _flat(wide, params)
            for w in order:
                want = linears[w].weight_shape(inputs[w])
                if np.shape(flat[w][0]) != want:
                    raise ValueError(f"params: W at {w} has shape {np.shape(flat[w][0])}, expected {want}")
        self.has_bias = tuple(flat[w][1] is not None for w in order)
        self.weights = nnx.List([nnx.Param(jnp.asarray(flat[w][0])) for w in order])
        self.biases = nnx.List([nnx.Param(jnp.asarray(flat[w][1])) for w in order if flat[w][1] is not None])

    def stax_params(self) -> Any:
        """The parameters in neural-tangents' nested layout (for `self.layer.apply_fn`)."""
        flat, j = {}, 0
        for i, w in enumerate(self.positions):
            b = None
            if self.has_bias[i]:
                b = self.biases[j][...]
                j += 1
            flat[w] = (self.weights[i][...], b)
        return _nest(self.layer, flat)

    def __call__(self, x: jax.Array) -> jax.Array:
        scale = dict(zip(self.positions, self.multipliers))
        return self.layer.apply(self.stax_params(), x, (), lambda lin, fan_in, w: scale[w])


# ---------------------------------------------------------------- public entry points


def _example_layer() -> Layer:
    """A small CNN on (N, 4, 2) inputs for the attack suite's base calls."""
    return serial(Conv(4, (2,), padding="SAME"), Relu(), Flatten(), Dense(1))


def _n_params(layer: Layer, input_shape: tuple[int, ...], width: float) -> int:
    last: dict[Where, bool] = {}
    _flows(layer, True, (), False, last)
    wide = _rebuild(layer, lambda w, lin: _widen(w, lin, width, last[w]))
    sizes: list[int] = []
    _walk(
        wide,
        check_input_shape(wide, input_shape),
        (),
        lambda w, lin, i: sizes.append(math.prod(lin.weight_shape(i)) + lin.out_channels()),
    )
    return sum(sizes)


@declare(
    layer=Instance(Layer, example=_example_layer),
    input_shape=Given(why="(N, [spatial...,] C), checked against the description", example=(-1, 4, 2)),
    parametrization=Choice(PARAMETRIZATIONS),
    width=Real(1.0 / 64, MAX_WIDTH),
    seed=Int(0, 2**31 - 1),
    params=Given(why="None or init_fn's parameters, checked against the description", none_ok=True),
)
def network(
    layer: Layer,
    input_shape: tuple[int, ...],
    *,
    parametrization: str = "nt",
    width: float = 1.0,
    seed: int = 0,
    params: Any = None,
) -> StaxNetwork:
    """The Flax NNX module of a stax description (module docstring); refused before allocating when training it
    would not fit in memory."""
    check_input_shape(layer, input_shape)
    n = _n_params(layer, tuple(input_shape), width)
    require(4 * TRAINING_COPIES * n, "network", f"width {width:g} ({n:,} parameters)", "use a smaller width")
    if params is not None and width != 1.0:
        raise ValueError("params: given parameters fix the channel counts; use width 1.0 with them")
    return StaxNetwork(
        layer, tuple(input_shape), parametrization=parametrization, width=width, seed=seed, params=params
    )


@functools.lru_cache(maxsize=32)
def _flat_fn(graphdef: nnx.GraphDef, rest: tuple[int, ...]) -> Callable[[nnx.State, jax.Array], jax.Array]:
    return lambda params, x: nnx.merge(graphdef, params)(x.reshape((x.shape[0],) + rest))


def _example_network() -> StaxNetwork:
    return network(_example_layer(), (-1, 4, 2))


def _example_x(n: int) -> Callable[[], np.ndarray]:
    return lambda: np.random.default_rng(n).normal(size=(n, 4, 2))


_jacobian_ntk = jax.jit(jacobian_ntk, static_argnums=0)  # compiled once per model and input shape


def _generic_inputs(x: Any, name: str, like: jax.Array | None = None) -> jax.Array:
    """Inputs of a hand-written module: a finite real array (N, ...) matching x1 beyond the batch axis."""
    x = jnp.asarray(checks.array(name, x, ndim=(2, 3, 4, 5), max_abs=MAX_INPUT))
    x = x.astype(jnp.result_type(x, jnp.float32) if like is None else like.dtype)
    if like is not None and x.shape[1:] != like.shape[1:]:
        raise ValueError(
            f"{name}: shape {tuple(x.shape)} does not match x1's {tuple(like.shape)} beyond the batch axis"
        )
    return x


@declare(
    model=Instance(nnx.Module, example=_example_network),
    x1=Given(why="inputs (N1, [spatial...,] C), checked against the model", example=_example_x(3)),
    x2=Given(why="None or inputs like x1, checked against the model", none_ok=True, example=_example_x(2)),
    scaling=Choice(SCALINGS),
)
def empirical_ntk(model: nnx.Module, x1: ArrayLike, x2: ArrayLike | None = None, *, scaling: str = "raw") -> jax.Array:
    """Empirical NTK (N1, N2), mean over output units, of a stax network or of any NNX module written by hand (its
    `nnx.Param`s; inputs of any shape (N, ...)): "raw" sum_p J_p J_p^T; "nt" (stax networks) each tensor weighted by
    its init std^2, the kernel with respect to unit-variance parameters, which converges to `kernel_fn`'s NTK under
    "ntk" and "sp" too. Full Jacobians (`workbench.theory.kernels.empirical`), memory checked before any compute."""
    stax_net = isinstance(model, StaxNetwork)
    if stax_net:
        a = check_inputs(model.layer, x1, "x1")
        b = None if x2 is None else check_inputs(model.layer, x2, "x2", like=a)
    else:
        if scaling != "raw":
            raise ValueError("scaling: 'nt' needs a StaxNetwork (it knows each tensor's init std); use 'raw'")
        a = _generic_inputs(x1, "x1")
        b = None if x2 is None else _generic_inputs(x2, "x2", like=a)
    rest = tuple(int(n) for n in a.shape[1:])
    graphdef, params = nnx.split(model, nnx.Param)
    if not jax.tree_util.tree_leaves(params):
        raise ValueError(f"model: {type(model).__name__} has no nnx.Param, so its tangent kernel is not defined")
    fn = _flat_fn(graphdef, rest)
    if not stax_net:
        try:
            jax.eval_shape(fn, params, a.reshape(a.shape[0], -1))
        except Exception as err:  # noqa: BLE001 - any failure of the user's module on these inputs
            raise ValueError(f"x1: the model fails on inputs of shape {tuple(a.shape)}: {err}") from None
    weights = None
    if scaling == "nt":
        assert isinstance(model, StaxNetwork)
        w2 = [s[0] ** 2 for s in model.stds]
        b2 = [s[1] ** 2 for s, has in zip(model.stds, model.has_bias) if has]
        table = {"weights": w2, "biases": b2}
        weights = jax.tree_util.tree_map_with_path(lambda path, _: table[path[0].key][path[1].key], params)
    flat = lambda v: None if v is None else v.reshape(v.shape[0], -1)  # noqa: E731
    # jacobian_ntk checks the Jacobians' memory as it is traced, before any compute
    return _jacobian_ntk(fn, params, flat(a), flat(b), weights=weights)
