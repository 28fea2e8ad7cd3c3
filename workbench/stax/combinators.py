"""Combinators of `workbench.stax`: serial, parallel, FanOut and FanInSum (neural-tangents' names).

A residual block is `serial(FanOut(2), parallel(serial(branch..., Scale(1 / sqrt(L))), Identity()), FanInSum())`.
FanInSum adds kernels, which is right for independent branches only: each must be Gaussian (the output of a
Dense / Conv, or the identity of one) and no two may be linear images of the same random layer (two Identity
branches would need 4K, not 2K); anything else is refused with the branches' shapes and sources.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jax

from workbench.core.declare import Int, declare
from workbench.stax.layers import Layer, Linear, Scaler, Stream, single
from workbench.stax.state import Ctx, Info, KState, Where, fmt_shape, position

__all__ = ["FanInSum", "FanOut", "parallel", "serial"]


def _layers(kind: str, layers: tuple) -> tuple[Layer, ...]:
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise ValueError(
                f"{kind}: argument {i} is not a workbench.stax layer (got {type(layer).__name__}); build every layer "
                "with workbench.stax (Dense, Conv, Relu, ...)"
            )
    return tuple(layers)


@dataclass(frozen=True)
class Serial(Layer):
    """Layers one after the other."""

    layers: tuple[Layer, ...] = ()

    @property
    def label(self) -> str:
        return f"serial of {len(self.layers)}"

    def infer(self, x: Stream, where: Where) -> Stream:
        for i, layer in enumerate(self.layers):
            x = layer.infer(x, where + (i,))
        return x

    def init(self, key: jax.Array, x: Stream, where: Where) -> tuple[Stream, Any]:
        keys = jax.random.split(key, max(len(self.layers), 1))
        params = []
        for i, layer in enumerate(self.layers):
            x, p = layer.init(keys[i], x, where + (i,))
            params.append(p)
        return x, tuple(params)

    def apply(self, params: Any, x: Any, where: Where, scale: Scaler) -> Any:
        for i, (layer, p) in enumerate(zip(self.layers, params)):
            x = layer.apply(p, x, where + (i,), scale)
        return x

    def kernel(self, st: Any, ctx: Ctx, where: Where) -> Any:
        for i, layer in enumerate(self.layers):
            st = layer.kernel(st, ctx, where + (i,))
            st = [ctx.settle(s, where + (i,)) for s in st] if isinstance(st, list) else ctx.settle(st, where + (i,))
        return st

    def need(self, after: Any, where: Where, plan: dict[Where, bool]) -> Any:
        plan[where] = after
        for i in reversed(range(len(self.layers))):
            after = self.layers[i].need(after, where + (i,), plan)
        return after

    def linear_layers(self, where: Where) -> Iterator[tuple[Where, Linear]]:
        for i, layer in enumerate(self.layers):
            yield from layer.linear_layers(where + (i,))


@declare()
def serial(*layers: Layer) -> Serial:
    """Compose layers: `init_fn, apply_fn, kernel_fn = serial(Conv(...), Relu(), ...)`."""
    return Serial(_layers("serial", layers))


@dataclass(frozen=True)
class Parallel(Layer):
    """One layer per branch of a FanOut."""

    layers: tuple[Layer, ...] = ()

    @property
    def label(self) -> str:
        return f"parallel of {len(self.layers)}"

    def _branches(self, x: Stream, where: Where) -> list[Info]:
        if not isinstance(x, list) or len(x) != len(self.layers):
            got = f"{len(x)} branches" if isinstance(x, list) else f"one input {fmt_shape(x.shape)}"
            raise ValueError(
                f"{position(where, self.label)}: needs {len(self.layers)} branches (a FanOut({len(self.layers)}) "
                f"before it), got {got}"
            )
        return x

    def infer(self, x: Stream, where: Where) -> Stream:
        xs = self._branches(x, where)
        out = [layer.infer(xi, where + (i,)) for i, (layer, xi) in enumerate(zip(self.layers, xs))]
        return [single(o, where + (i,), self.layers[i].label) for i, o in enumerate(out)]

    def init(self, key: jax.Array, x: Stream, where: Where) -> tuple[Stream, Any]:
        xs = self._branches(x, where)
        keys = jax.random.split(key, max(len(self.layers), 1))
        outs, params = [], []
        for i, (layer, xi) in enumerate(zip(self.layers, xs)):
            o, p = layer.init(keys[i], xi, where + (i,))
            outs.append(o)
            params.append(p)
        return outs, tuple(params)

    def apply(self, params: Any, x: Any, where: Where, scale: Scaler) -> Any:
        return [layer.apply(p, xi, where + (i,), scale) for i, (layer, p, xi) in enumerate(zip(self.layers, params, x))]

    def kernel(self, st: Any, ctx: Ctx, where: Where) -> Any:
        return [
            ctx.settle(layer.kernel(s, ctx, where + (i,)), where + (i,))
            for i, (layer, s) in enumerate(zip(self.layers, st))
        ]

    def need(self, after: Any, where: Where, plan: dict[Where, bool]) -> Any:
        plan[where] = any(after) if isinstance(after, list) else after
        afters = after if isinstance(after, list) else [after] * len(self.layers)
        return [layer.need(a, where + (i,), plan) for i, (layer, a) in enumerate(zip(self.layers, afters))]

    def linear_layers(self, where: Where) -> Iterator[tuple[Where, Linear]]:
        for i, layer in enumerate(self.layers):
            yield from layer.linear_layers(where + (i,))


@declare()
def parallel(*layers: Layer) -> Parallel:
    """Apply the i-th layer to the i-th branch of a FanOut."""
    return Parallel(_layers("parallel", layers))


@dataclass(frozen=True)
class FanOutLayer(Layer):
    """num copies of the input, one per branch."""

    num: int = 2

    @property
    def label(self) -> str:
        return f"FanOut({self.num})"

    def infer(self, x: Stream, where: Where) -> Stream:
        return [single(x, where, self.label)] * self.num

    def apply(self, params: Any, x: Any, where: Where, scale: Scaler) -> Any:
        return [x] * self.num

    def kernel(self, st: Any, ctx: Ctx, where: Where) -> Any:
        return [st] * self.num

    def need(self, after: Any, where: Where, plan: dict[Where, bool]) -> Any:
        need = any(after) if isinstance(after, list) else after
        plan[where] = need
        return need


@declare(num=Int(1, 1000))
def FanOut(num: int) -> FanOutLayer:
    """num copies of the input (neural-tangents' `stax.FanOut`)."""
    return FanOutLayer(num)


@dataclass(frozen=True)
class FanInSumLayer(Layer):
    """The sum of the branches (their kernels add: the branches must be independent Gaussians)."""

    @property
    def label(self) -> str:
        return "FanInSum"

    def infer(self, x: Stream, where: Where) -> Stream:
        if not isinstance(x, list):
            raise ValueError(
                f"{position(where, self.label)}: needs branches (a FanOut and parallel before it), got "
                f"one input {fmt_shape(x.shape)}"
            )
        shapes = [xi.shape[1:] for xi in x]
        if any(s != shapes[0] for s in shapes):
            raise ValueError(
                f"{position(where, self.label)}: branches must have equal shapes, got "
                + ", ".join(fmt_shape(xi.shape) for xi in x)
            )
        sources: frozenset = frozenset()
        for i, xi in enumerate(x):
            if xi.gaussian is None:
                raise ValueError(
                    f"{position(where, self.label)}: branch {i} (shape {fmt_shape(xi.shape)}) is not Gaussian (an "
                    "activation, a Flatten or the raw input is its last layer); the sum's kernel is the sum of "
                    "kernels only for independent Gaussian branches: end it with a Dense or Conv, or sum before the "
                    "activation"
                )
            if xi.gaussian & sources:
                raise ValueError(
                    f"{position(where, self.label)}: branch {i} depends on the same random layer(s) "
                    f"{sorted(xi.gaussian & sources)} as an earlier branch, so their kernels do not add; give each "
                    "branch but one its own Dense or Conv"
                )
            sources = sources | xi.gaussian
        return Info(x[0].shape, sources)

    def apply(self, params: Any, x: Any, where: Where, scale: Scaler) -> Any:
        out = x[0]
        for xi in x[1:]:
            out = out + xi
        return out

    def kernel(self, st: Any, ctx: Ctx, where: Where) -> Any:
        info = self.infer([s.info for s in st], where)
        assert isinstance(info, Info)
        full = all(s.full for s in st)
        parts = [s if s.full == full else ctx.settle(s, where + (-1,)) for s in st]
        nngp = parts[0].nngp
        ntk = parts[0].ntk
        for s in parts[1:]:
            nngp = nngp + s.nngp
            ntk = None if ntk is None or s.ntk is None else ntk + s.ntk
        return KState(nngp, ntk, full, info)

    def need(self, after: Any, where: Where, plan: dict[Where, bool]) -> Any:
        plan[where] = after
        plan[where + (-1,)] = after
        return after  # one flag for all branches: the caller's FanOut / parallel hand it to each

    def linear_layers(self, where: Where) -> Iterator[tuple[Where, Linear]]:
        return iter(())


@declare()
def FanInSum() -> FanInSumLayer:
    """The sum of the branches (neural-tangents' `stax.FanInSum`)."""
    return FanInSumLayer()
