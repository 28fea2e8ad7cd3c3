"""Layers of `workbench.stax` in neural-tangents' names and conventions: Dense, Conv (1-D, 2-D, 3-D), AvgPool,
SumPool, GlobalAvgPool, GlobalSumPool, Flatten, LayerNorm, Identity and Scale (a branch multiplier).

Each layer is a frozen dataclass (hashable: it is the jit cache key of its kernel) that knows, for a tensor `Info`,
its output shape (refusing bad input with the layer's position and the shapes, before any compute), its
parameters (neural-tangents' init: "ntk" W ~ N(0, 1) behind W_std / sqrt(fan_in), "standard" W ~ N(0,
W_std^2 / fan_in)), its forward pass and its map of the kernel state. Inputs are NHWC / NWC / NC; a layer
unpacks to neural-tangents' triple: `init_fn, apply_fn, kernel_fn = layer`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from workbench.core.declare import Choice, Flag, Given, Int, Real, declare
from workbench.stax import ops
from workbench.stax.state import Ctx, Info, KState, Where, fmt_shape, position

Array = jax.Array
Stream = Info | list[Info]
Scaler = Callable[["Linear", int, Where], tuple[float, float]]  # (layer, fan_in, position) -> (W mult, b mult)

PARAMETERIZATIONS = ("ntk", "standard")
MAX_CHANNELS = 10_000_000
MAX_STD = 1e6

__all__ = [
    "PARAMETERIZATIONS",
    "AvgPool",
    "Conv",
    "Dense",
    "Flatten",
    "GlobalAvgPool",
    "GlobalSumPool",
    "Identity",
    "Layer",
    "LayerNorm",
    "Scale",
    "SumPool",
]


def single(x: Stream, where: Where, label: str) -> Info:
    """The one input of a layer, or a ValueError when it receives the branches of a FanOut."""
    if isinstance(x, list):
        raise ValueError(
            f"{position(where, label)}: receives {len(x)} branches from a FanOut; put parallel(...) or FanInSum() "
            "before it"
        )
    return x


def nt_scale(layer: Linear, fan_in: int, where: Where) -> tuple[float, float]:
    """neural-tangents' forward multipliers: W_std / sqrt(fan_in) and b_std ("ntk"), 1 and 1 ("standard")."""
    if layer.parameterization == "ntk":
        return layer.W_std / math.sqrt(fan_in), (layer.b_std or 0.0)
    return 1.0, 1.0


class Layer:
    """A layer of a network description; unpacks to neural-tangents' `(init_fn, apply_fn, kernel_fn)`."""

    label_name: ClassVar[str] = "Layer"

    @property
    def label(self) -> str:
        return self.label_name

    # ------------------------------------------------------------ the description's interface
    def infer(self, x: Stream, where: Where) -> Stream:
        """Output Info of input Info x; ValueError naming the position and the shapes for bad input."""
        return single(x, where, self.label)

    def init(self, key: Array, x: Stream, where: Where) -> tuple[Stream, Any]:
        """(output Info, parameters in neural-tangents' layout)."""
        return self.infer(x, where), ()

    def apply(self, params: Any, x: Any, where: Where, scale: Scaler) -> Any:
        """Forward pass; `scale` gives each Dense / Conv its multipliers."""
        return x

    def kernel(self, st: Any, ctx: Ctx, where: Where) -> Any:
        """Kernel state after this layer."""
        return st

    def need(self, after: Any, where: Where, plan: dict[Where, bool]) -> Any:
        """Whether the full spatial covariance is needed below this layer, given whether it is needed above it."""
        plan[where] = after
        return after

    def linear_layers(self, where: Where) -> Iterator[tuple[Where, Linear]]:
        """Every Dense / Conv of the description with its position, in forward order."""
        return iter(())

    # ------------------------------------------------------------ neural-tangents' triple
    def init_fn(self, rng: Any, input_shape: Any) -> tuple[tuple[int, ...], Any]:
        """(output_shape, params) for inputs of `input_shape` (batch first, -1 allowed)."""
        from workbench.stax.kernel import check_input_shape

        info = check_input_shape(self, input_shape)
        out, params = self.init(_key(rng), info, ())
        return single(out, (), self.label).shape, params

    def apply_fn(self, params: Any, inputs: Any, **kwargs: Any) -> Array:
        """The finite network's outputs on `inputs` (neural-tangents' apply_fn; extra keywords are ignored)."""
        from workbench.stax.kernel import check_inputs

        x = check_inputs(self, inputs)
        self.check_params(params, x.shape)
        return self.apply(params, x, (), nt_scale)

    def check_params(self, params: Any, shape: tuple[int, ...]) -> None:
        """Refuse `params` that are not this description's `init_fn` parameters for inputs of `shape` (structure,
        every tensor's shape, finite entries) with a ValueError naming the first tensor that differs."""
        info = Info((-1,) + tuple(shape[1:]), None)
        want = jax.eval_shape(lambda k: self.init(k, info, ())[1], jax.random.PRNGKey(0))
        want_leaves, want_tree = jax.tree_util.tree_flatten(want)
        got_leaves, got_tree = jax.tree_util.tree_flatten(params)
        if got_tree != want_tree:
            raise ValueError(
                f"params: not this description's parameters (init_fn gives {len(want_leaves)} tensors in the "
                f"structure {want_tree}, got {len(got_leaves)} in {got_tree})"[:400]
            )
        for i, (w, g) in enumerate(zip(want_leaves, got_leaves)):
            if tuple(np.shape(g)) != tuple(w.shape):
                raise ValueError(
                    f"params: tensor {i} has shape {tuple(np.shape(g))}, but on inputs {fmt_shape(info.shape)} the "
                    f"description needs {tuple(w.shape)} (params of another network or input width?)"
                )
            if not isinstance(g, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(g))):  # pyright: ignore
                raise ValueError(f"params: tensor {i} holds NaN or infinite entries")

    def kernel_fn(self, x1: Any, x2: Any = None, get: Any = None, **kwargs: Any) -> Any:
        """Infinite-width NNGP and NTK (see `workbench.stax.kernel.kernel_fn`)."""
        from workbench.stax.kernel import kernel_fn

        return kernel_fn(self, x1, x2, get, **kwargs)

    def __iter__(self) -> Iterator[Callable]:
        return iter((self.init_fn, self.apply_fn, self.kernel_fn))

    def __getitem__(self, i: int) -> Callable:
        return (self.init_fn, self.apply_fn, self.kernel_fn)[i]

    def __len__(self) -> int:
        return 3


def _key(rng: Any) -> Array:
    """A jax.random key (`jax.random.PRNGKey(seed)` or `jax.random.key(seed)`), or a ValueError naming rng."""
    if isinstance(rng, (jax.Array, np.ndarray)):
        typed = jnp.issubdtype(rng.dtype, jax.dtypes.prng_key)
        if typed or (rng.dtype == np.uint32 and rng.shape == (2,)):
            return jnp.asarray(rng)
    raise ValueError(f"rng: must be a jax.random key, e.g. jax.random.PRNGKey(0), got {rng!r:.80}")


# ---------------------------------------------------------------- argument checks of the constructors


def _int_tuple(value: Any, lo: int, hi: int) -> tuple[int, ...] | None:
    """value (an int or a sequence of 1 to 4 ints in [lo, hi]) as a tuple, or None."""
    items = (value,) if isinstance(value, (int, np.integer)) else value
    if not isinstance(items, (tuple, list)) or not 1 <= len(items) <= 4:
        return None
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and lo <= v <= hi for v in items):
        return None
    return tuple(int(v) for v in items)


def _positive_ints(name: str, value: Any, length: int | None = None) -> tuple[int, ...]:
    """A tuple of positive ints (1 to 3 of them), or ValueError naming `name`."""
    items = _int_tuple(value, 1, 10**6)
    if items is None or len(items) > 3:
        raise ValueError(f"{name}: must be a tuple of 1 to 3 positive integers such as (3, 3), got {value!r:.80}")
    if length is not None and len(items) != length:
        raise ValueError(f"{name}: must have {length} entries (one per spatial axis), got {items}")
    return items


def _spatial_check(
    info: Info, where: Where, label: str, window: tuple[int, ...], strides: tuple[int, ...], padding: str, what: str
) -> tuple[int, ...]:
    """The input's spatial sizes, after refusing input with the wrong number of spatial axes, strides larger than the
    input, or a VALID window larger than it (SAME and CIRCULAR pad it, as in neural-tangents)."""
    shape, k = info.shape, len(window)
    layout = {1: "(N, W, C)", 2: "(N, H, W, C)", 3: "(N, D, H, W, C)"}[k]
    if len(shape) - 2 != k:
        have = "no spatial axis" if len(shape) <= 2 else f"{len(shape) - 2} spatial axes"
        raise ValueError(
            f"{position(where, label)}: a {k}-D {what} {window} needs input {layout} with a channel axis last, "
            f"got shape {fmt_shape(shape)} ({have})"
        )
    sizes = shape[1:-1]
    for n, w, s in zip(sizes, window, strides):
        if s > n or (w > n and padding == "VALID"):
            big = f"strides {strides}" if s > n else f"{what} {window} (VALID padding)"
            raise ValueError(
                f"{position(where, label)}: {big} larger than the input's spatial shape {tuple(sizes)} "
                f"(input {fmt_shape(shape)})"
            )
    return sizes


# ---------------------------------------------------------------- Dense and Conv


@dataclass(frozen=True)
class Linear(Layer):
    """Base of Dense and Conv: a random linear map with neural-tangents' parameterizations."""

    W_std: float = 1.0
    b_std: float | None = None
    parameterization: str = "ntk"

    def out_channels(self) -> int:
        raise NotImplementedError

    def window(self) -> tuple[int, ...]:
        """Filter shape (() for Dense)."""
        return ()

    def fan_in(self, info: Info) -> int:
        """Input channels x filter size."""
        return info.shape[-1] * math.prod(self.window())

    def weight_shape(self, info: Info) -> tuple[int, ...]:
        return self.window() + (info.shape[-1], self.out_channels())

    def init(self, key: Array, x: Stream, where: Where) -> tuple[Stream, Any]:
        info = self.infer(x, where)
        assert isinstance(info, Info)
        inp = single(x, where, self.label)
        kw, kb = jax.random.split(key)
        w = jax.random.normal(kw, self.weight_shape(inp))
        b = None if self.b_std is None else jax.random.normal(kb, (1,) * (len(inp.shape) - 1) + (self.out_channels(),))
        if self.parameterization == "standard":
            w = w * (self.W_std / math.sqrt(self.fan_in(inp)))
            b = None if b is None else b * float(self.b_std or 0.0)
        return info, (w, b)

    def linear_layers(self, where: Where) -> Iterator[tuple[Where, Linear]]:
        yield where, self

    def product(self, w: Array, x: Array) -> Array:
        raise NotImplementedError

    def apply(self, params: Any, x: Any, where: Where, scale: Scaler) -> Any:
        w, b = params
        fan_in = x.shape[-1] * math.prod(self.window())
        wm, bm = scale(self, fan_in, where)
        out = wm * self.product(w, x)
        return out if b is None else out + bm * b

    def affine(self, st: KState, mapped: KState, fan_in: int) -> KState:
        """nngp -> W^2 K + b^2 and the NTK of either parameterization, from the spatially mapped state."""
        w2, b2 = self.W_std**2, (self.b_std or 0.0) ** 2
        nngp = w2 * mapped.nngp + b2
        ntk = None
        if mapped.ntk is not None:
            if self.parameterization == "ntk":
                ntk = nngp + w2 * mapped.ntk
            else:
                ntk = fan_in * mapped.nngp + w2 * mapped.ntk + (self.b_std is not None)
        return KState(nngp, ntk, mapped.full, mapped.info)


@dataclass(frozen=True)
class DenseLayer(Linear):
    """Dense on the last (channel) axis; acts at every position of NHWC input."""

    out_dim: int = 1
    label_name: ClassVar[str] = "Dense"

    @property
    def label(self) -> str:
        return f"Dense({self.out_dim})"

    def out_channels(self) -> int:
        return self.out_dim

    def infer(self, x: Stream, where: Where) -> Stream:
        info = single(x, where, self.label)
        if len(info.shape) < 2:
            raise ValueError(f"{position(where, self.label)}: needs input (N, features), got {fmt_shape(info.shape)}")
        return Info(info.shape[:-1] + (self.out_dim,), frozenset({where}))

    def product(self, w: Array, x: Array) -> Array:
        return jnp.tensordot(x, w, axes=(-1, 0), precision=jax.lax.Precision.HIGHEST)

    def kernel(self, st: KState, ctx: Ctx, where: Where) -> KState:
        info = self.infer(st.info, where)
        assert isinstance(info, Info)
        return self.affine(st, KState(st.nngp, st.ntk, st.full, info), st.info.shape[-1])


@declare(
    out_dim=Int(1, MAX_CHANNELS),
    W_std=Real(0.0, MAX_STD),
    b_std=Real(0.0, MAX_STD, none_ok=True),
    batch_axis=Int(0, 0),
    channel_axis=Int(-1, -1),
    parameterization=Choice(PARAMETERIZATIONS),
)
def Dense(
    out_dim: int,
    W_std: float = 1.0,
    b_std: float | None = None,
    batch_axis: int = 0,
    channel_axis: int = -1,
    parameterization: str = "ntk",
) -> DenseLayer:
    """Fully connected layer on the channel axis (neural-tangents' `stax.Dense`; b_std None: no bias)."""
    return DenseLayer(W_std, b_std, parameterization, out_dim)


_SPEC = {1: ("NWC", "WIO"), 2: ("NHWC", "HWIO"), 3: ("NDHWC", "DHWIO")}


@dataclass(frozen=True)
class ConvLayer(Linear):
    """Weight-shared convolution over the spatial axes of NWC / NHWC / NDHWC input (HWIO filters)."""

    out_chan: int = 1
    filter_shape: tuple[int, ...] = (1,)
    strides: tuple[int, ...] = (1,)
    padding: str = "VALID"
    label_name: ClassVar[str] = "Conv"

    @property
    def label(self) -> str:
        return f"Conv({self.out_chan}, {self.filter_shape}, {self.padding})"

    def out_channels(self) -> int:
        return self.out_chan

    def window(self) -> tuple[int, ...]:
        return self.filter_shape

    def infer(self, x: Stream, where: Where) -> Stream:
        info = single(x, where, self.label)
        sizes = _spatial_check(info, where, self.label, self.filter_shape, self.strides, self.padding, "filter")
        out = tuple(ops.out_size(n, k, s, self.padding) for n, k, s in zip(sizes, self.filter_shape, self.strides))
        return Info((info.shape[0],) + out + (self.out_chan,), frozenset({where}))

    def product(self, w: Array, x: Array) -> Array:
        nsp = len(self.filter_shape)
        padding = self.padding
        if padding == "CIRCULAR":
            widths = [(0, 0)] + [
                ops.pads(n, k, s, padding) for n, k, s in zip(x.shape[1:-1], self.filter_shape, self.strides)
            ]
            x = jnp.pad(x, widths + [(0, 0)], mode="wrap")
            padding = "VALID"
        lhs, rhs = _SPEC[nsp]
        return jax.lax.conv_general_dilated(
            x,
            w,
            self.strides,
            padding,
            dimension_numbers=(lhs, rhs, lhs),
            precision=jax.lax.Precision.HIGHEST,
        )

    def kernel(self, st: KState, ctx: Ctx, where: Where) -> KState:
        info = self.infer(st.info, where)
        assert isinstance(info, Info)
        f = lambda a: ops.conv(a, ctx.nb, st.full, self.filter_shape, self.strides, self.padding)  # noqa: E731
        return self.affine(st, st.map(f, info=info), self.fan_in(st.info))


def _dimension_numbers(value: Any, nsp: int) -> None:
    default = (_SPEC[nsp][0], _SPEC[nsp][1], _SPEC[nsp][0])
    if value is not None and (not isinstance(value, (tuple, list)) or tuple(value) != default):
        raise ValueError(
            f"dimension_numbers: only neural-tangents' default {default} "
            f"(channels last) is supported, got {value!r:.80}"
        )


@declare(
    out_chan=Int(1, MAX_CHANNELS),
    filter_shape=Given(why="a tuple of 1 to 3 positive ints, checked in the body", example=(3,)),
    strides=Given(why="None or a tuple like filter_shape, checked in the body", none_ok=True),
    padding=Choice(ops.PADDINGS),
    W_std=Real(0.0, MAX_STD),
    b_std=Real(0.0, MAX_STD, none_ok=True),
    dimension_numbers=Given(why="None or neural-tangents' channels-last default, checked in the body", none_ok=True),
    parameterization=Choice(PARAMETERIZATIONS),
)
def Conv(
    out_chan: int,
    filter_shape: tuple[int, ...],
    strides: tuple[int, ...] | None = None,
    padding: str = "VALID",
    W_std: float = 1.0,
    b_std: float | None = None,
    dimension_numbers: tuple[str, str, str] | None = None,
    parameterization: str = "ntk",
) -> ConvLayer:
    """Convolution (neural-tangents' `stax.Conv`): a 1-D filter (k,) on NWC input, (kh, kw) on NHWC; padding VALID,
    SAME or CIRCULAR (periodic); fan-in = input channels x filter size."""
    filt = _positive_ints("filter_shape", filter_shape)
    stride = (1,) * len(filt) if strides is None else _positive_ints("strides", strides, len(filt))
    _dimension_numbers(dimension_numbers, len(filt))
    return ConvLayer(W_std, b_std, parameterization, out_chan, filt, stride, padding)


# ---------------------------------------------------------------- pooling and reshaping


@dataclass(frozen=True)
class Pool(Layer):
    """Average or sum pooling over windows of the spatial axes."""

    window_shape: tuple[int, ...] = (1,)
    strides: tuple[int, ...] = (1,)
    padding: str = "VALID"
    normalize_edges: bool = False
    average: bool = True

    @property
    def label(self) -> str:
        return f"{'Avg' if self.average else 'Sum'}Pool({self.window_shape}, {self.padding})"

    def infer(self, x: Stream, where: Where) -> Stream:
        info = single(x, where, self.label)
        sizes = _spatial_check(info, where, self.label, self.window_shape, self.strides, self.padding, "window")
        out = tuple(ops.out_size(n, k, s, self.padding) for n, k, s in zip(sizes, self.window_shape, self.strides))
        return Info((info.shape[0],) + out + (info.shape[-1],), info.gaussian)

    def apply(self, params: Any, x: Any, where: Where, scale: Scaler) -> Any:
        pads = [ops.pads(n, k, s, self.padding) for n, k, s in zip(x.shape[1:-1], self.window_shape, self.strides)]
        if self.padding == "CIRCULAR":
            x = jnp.pad(x, [(0, 0)] + pads + [(0, 0)], mode="wrap")
            pads = [(0, 0)] * len(pads)
        window, strides = (1,) + self.window_shape + (1,), (1,) + self.strides + (1,)
        padding = [(0, 0)] + pads + [(0, 0)]
        out = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, strides, padding)
        if not self.average:
            return out
        if self.normalize_edges and self.padding == "SAME":
            ones = jnp.ones((1,) + x.shape[1:-1] + (1,), x.dtype)
            return out / jax.lax.reduce_window(ones, 0.0, jax.lax.add, window, strides, padding)
        return out / math.prod(self.window_shape)

    def kernel(self, st: KState, ctx: Ctx, where: Where) -> KState:
        info = self.infer(st.info, where)
        assert st.full, "pooling is planned on the full spatial covariance"
        f = lambda a: ops.pool(  # noqa: E731
            a, ctx.nb, self.window_shape, self.strides, self.padding, self.normalize_edges, self.average
        )
        return st.map(f, info=info)

    def need(self, after: Any, where: Where, plan: dict[Where, bool]) -> Any:
        plan[where] = after
        return True


def _pool(window_shape: Any, strides: Any, padding: str, normalize_edges: bool, average: bool) -> Pool:
    window = _positive_ints("window_shape", window_shape)
    stride = (1,) * len(window) if strides is None else _positive_ints("strides", strides, len(window))
    return Pool(window, stride, padding, normalize_edges, average)


_WINDOW = Given(why="a tuple of 1 to 3 positive ints, checked in the body", example=(2,))
_STRIDES = Given(why="None or a tuple like window_shape, checked in the body", none_ok=True)


@declare(
    window_shape=_WINDOW,
    strides=_STRIDES,
    padding=Choice(ops.PADDINGS),
    normalize_edges=Flag(),
    batch_axis=Int(0, 0),
    channel_axis=Int(-1, -1),
)
def AvgPool(
    window_shape: tuple[int, ...],
    strides: tuple[int, ...] | None = None,
    padding: str = "VALID",
    normalize_edges: bool = False,
    batch_axis: int = 0,
    channel_axis: int = -1,
) -> Pool:
    """Average pooling (neural-tangents' `stax.AvgPool`: strides default to 1; SAME windows divide by the window
    size unless `normalize_edges`, which divides by the real positions)."""
    return _pool(window_shape, strides, padding, normalize_edges, True)


@declare(
    window_shape=_WINDOW, strides=_STRIDES, padding=Choice(ops.PADDINGS), batch_axis=Int(0, 0), channel_axis=Int(-1, -1)
)
def SumPool(
    window_shape: tuple[int, ...],
    strides: tuple[int, ...] | None = None,
    padding: str = "VALID",
    batch_axis: int = 0,
    channel_axis: int = -1,
) -> Pool:
    """Sum pooling (neural-tangents' `stax.SumPool`)."""
    return _pool(window_shape, strides, padding, False, False)


@dataclass(frozen=True)
class GlobalPool(Layer):
    """Average or sum over every spatial position (removes the spatial axes)."""

    average: bool = True

    @property
    def label(self) -> str:
        return f"Global{'Avg' if self.average else 'Sum'}Pool"

    def infer(self, x: Stream, where: Where) -> Stream:
        info = single(x, where, self.label)
        if len(info.shape) <= 2:
            raise ValueError(
                f"{position(where, self.label)}: needs spatial axes, input (N, W, C) or (N, H, W, C), got "
                f"{fmt_shape(info.shape)} (no spatial axis left: after a Flatten, or flat input)"
            )
        return Info((info.shape[0], info.shape[-1]), info.gaussian)

    def apply(self, params: Any, x: Any, where: Where, scale: Scaler) -> Any:
        axes = tuple(range(1, x.ndim - 1))
        return jnp.mean(x, axis=axes) if self.average else jnp.sum(x, axis=axes)

    def kernel(self, st: KState, ctx: Ctx, where: Where) -> KState:
        info = self.infer(st.info, where)
        assert st.full, "global pooling is planned on the full spatial covariance"
        return st.map(lambda a: ops.spatial_mean(a, ctx.nb, st.nsp, True, self.average), info=info, full=False)

    def need(self, after: Any, where: Where, plan: dict[Where, bool]) -> Any:
        plan[where] = after
        return True


@declare(batch_axis=Int(0, 0), channel_axis=Int(-1, -1))
def GlobalAvgPool(batch_axis: int = 0, channel_axis: int = -1) -> GlobalPool:
    """Mean over all spatial positions: (N, H, W, C) -> (N, C) (neural-tangents' `stax.GlobalAvgPool`)."""
    return GlobalPool(True)


@declare(batch_axis=Int(0, 0), channel_axis=Int(-1, -1))
def GlobalSumPool(batch_axis: int = 0, channel_axis: int = -1) -> GlobalPool:
    """Sum over all spatial positions (neural-tangents' `stax.GlobalSumPool`)."""
    return GlobalPool(False)


@dataclass(frozen=True)
class FlattenLayer(Layer):
    """All non-batch axes into one; its kernel is the mean over positions of the same-position covariance."""

    label_name: ClassVar[str] = "Flatten"

    def infer(self, x: Stream, where: Where) -> Stream:
        info = single(x, where, self.label)
        return Info((info.shape[0], math.prod(info.shape[1:])), None)

    def apply(self, params: Any, x: Any, where: Where, scale: Scaler) -> Any:
        return x.reshape(x.shape[0], -1)

    def kernel(self, st: KState, ctx: Ctx, where: Where) -> KState:
        info = self.infer(st.info, where)
        return st.map(lambda a: ops.trace_mean(a, ctx.nb, st.nsp, st.full), info=info, full=False)

    def need(self, after: Any, where: Where, plan: dict[Where, bool]) -> Any:
        plan[where] = after
        return False


@declare(batch_axis=Int(0, 0), batch_axis_out=Int(0, 0))
def Flatten(batch_axis: int = 0, batch_axis_out: int = 0) -> FlattenLayer:
    """Flatten every non-batch axis (neural-tangents' `stax.Flatten`); the kernel needs only same-position
    covariances below it."""
    return FlattenLayer()


@dataclass(frozen=True)
class LayerNormLayer(Layer):
    """(x - mean) / sqrt(eps + var) over `axis` (which holds the channel axis)."""

    axis: tuple[int, ...] = (-1,)
    eps: float = 1e-12

    @property
    def label(self) -> str:
        return f"LayerNorm(axis={self.axis})"

    def axes(self, ndim: int, where: Where) -> tuple[int, ...]:
        axes = tuple(sorted({a % ndim for a in self.axis}))
        if any(not -ndim <= a < ndim for a in self.axis) or 0 in axes or ndim - 1 not in axes:
            raise ValueError(
                f"{position(where, self.label)}: axis must name the channel axis ({ndim - 1} or -1) and may add "
                f"spatial axes, never the batch axis 0, for input of {ndim} axes; got {self.axis}"
            )
        return axes

    def infer(self, x: Stream, where: Where) -> Stream:
        info = single(x, where, self.label)
        self.axes(len(info.shape), where)
        if info.gaussian is None:
            raise ValueError(
                f"{position(where, self.label)}: its kernel needs a Gaussian input (the output of a Dense or Conv), "
                f"got the output of a non-linear or reshaping layer or the raw input, shape {fmt_shape(info.shape)}"
            )
        return info

    def apply(self, params: Any, x: Any, where: Where, scale: Scaler) -> Any:
        axes = self.axes(x.ndim, where)
        mean = jnp.mean(x, axis=axes, keepdims=True)
        var = jnp.mean((x - mean) ** 2, axis=axes, keepdims=True)
        return (x - mean) / jnp.sqrt(self.eps + var)

    def kernel(self, st: KState, ctx: Ctx, where: Where) -> KState:
        info = self.infer(st.info, where)
        # the normalised spatial axes: the same indices in the per-point variances (points, *spatial)
        spatial = tuple(a for a in self.axes(len(st.info.shape), where) if a != len(st.info.shape) - 1)

        def make(var: Array) -> dict:
            v = self.eps + var  # the channel mean of x^2 -> the variance at each position; spatial axes averaged
            if spatial:
                v = jnp.broadcast_to(jnp.mean(v, axis=spatial, keepdims=True), var.shape)
            return {"norm": 1.0 / jnp.sqrt(v)}

        a, b = ctx.point_data(st, make)
        scale = ctx.side(a["norm"], st, True) * ctx.side(b["norm"], st, False)
        return st.map(lambda k: k * scale, info=info)


@declare(
    axis=Given(why="an int or a tuple of ints, checked against the input's axes", example=-1),
    eps=Real(0.0, 1.0),
    batch_axis=Int(0, 0),
    channel_axis=Int(-1, -1),
)
def LayerNorm(
    axis: int | tuple[int, ...] = -1, eps: float = 1e-12, batch_axis: int = 0, channel_axis: int = -1
) -> LayerNormLayer:
    """Layer normalisation over `axis` (the channel axis, -1, and optionally spatial axes), neural-tangents'
    `stax.LayerNorm`; needs a Gaussian input (after a Dense or Conv)."""
    axes = _int_tuple(axis, -5, 4)
    if axes is None:
        raise ValueError(
            f"axis: must be an int or a tuple of ints in [-5, 4] such as -1 or (1, 2, 3), got {axis!r:.80}"
        )
    return LayerNormLayer(axes, eps)


# ---------------------------------------------------------------- identity and scaling


@dataclass(frozen=True)
class IdentityLayer(Layer):
    """The identity (neural-tangents' `stax.Identity`)."""

    label_name: ClassVar[str] = "Identity"


@declare()
def Identity() -> IdentityLayer:
    """The identity layer (a residual shortcut: `parallel(branch, Identity())`)."""
    return IdentityLayer()


@dataclass(frozen=True)
class ScaleLayer(Layer):
    """x -> c x: nngp and ntk times c^2; keeps a Gaussian input Gaussian (a residual branch multiplier)."""

    c: float = 1.0

    @property
    def label(self) -> str:
        return f"Scale({self.c:g})"

    def apply(self, params: Any, x: Any, where: Where, scale: Scaler) -> Any:
        return self.c * x

    def kernel(self, st: KState, ctx: Ctx, where: Where) -> KState:
        return st.map(lambda a: self.c**2 * a)


@declare(c=Real(-MAX_STD, MAX_STD))
def Scale(c: float) -> ScaleLayer:
    """Multiply by a constant c (e.g. a residual branch's 1/sqrt(L)); not in neural-tangents, where
    `Dense(W_std=c * W_std, b_std=c * b_std)` as the branch's last layer gives the same kernels."""
    return ScaleLayer(c)
