"""What flows through a `workbench.stax` network description: the static `Info` of a tensor (shape, Gaussianity)
for the checks before any compute, and the `KState` of the kernel computation with the `Ctx` of one pass.

Two passes run the same kernel maps (see `workbench.stax.kernel`): the *point* pass (each input with itself, one
batch axis) records, at every activation and LayerNorm, each point's per-position variances (and Hermite
coefficients for quadrature); the *pair* pass (blocks of pairs, two batch axes) reads them back in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import jax

from workbench.stax import ops

Array = jax.Array
Where = tuple[int, ...]

__all__: list[str] = []


class Info(NamedTuple):
    """Static description of a tensor: `shape` (batch first, given as -1 when unknown; channels last) and
    `gaussian`: the positions of the random linear layers it is a linear image of when it is i.i.d. Gaussian
    across channels (after Dense or Conv, and pooling, LayerNorm or sums of those), None otherwise (the input,
    after an activation or a Flatten). Independent branches have disjoint sources."""

    shape: tuple[int, ...]
    gaussian: frozenset | None


def fmt_shape(shape: tuple[int, ...]) -> str:
    """(N, 8, 8, 2) for a shape whose batch is unknown (-1)."""
    return "(" + ", ".join("N" if (i == 0 and n < 0) else str(n) for i, n in enumerate(shape)) + ")"


def position(where: Where, label: str) -> str:
    """'layer 2.0.1 (Conv(8, (3, 3), SAME))', or the label alone for a network of one layer."""
    return f"layer {'.'.join(map(str, where))} ({label})" if where else label


@dataclass
class KState:
    """nngp and ntk (None when not asked for) of a block of pairs or of points, in the full or the diagonal
    spatial layout (`workbench.stax.ops`), with the static `info` of the tensor they describe."""

    nngp: Array
    ntk: Array | None
    full: bool
    info: Info

    @property
    def nsp(self) -> int:
        """Number of spatial dimensions."""
        return len(self.info.shape) - 2

    def map(self, fn: Callable[[Array], Array], **changes: Any) -> KState:
        """The same linear map applied to nngp and ntk."""
        return replace(self, nngp=fn(self.nngp), ntk=None if self.ntk is None else fn(self.ntk), **changes)


@dataclass
class Ctx:
    """One pass: `nb` batch axes (1: points with themselves, 2: pairs), `plan`: whether the full spatial layout is
    needed after each layer (by position), `records`: per-point data written by the point pass, or the
    (rows, columns) records the pair pass reads back in order. `sizes` collects each state's entries per batch
    element (for the memory estimate)."""

    nb: int
    plan: dict[Where, bool]
    records: list = field(default_factory=list)
    rows: list | None = None
    cols: list | None = None
    taken: int = 0
    sizes: list = field(default_factory=list)

    def point_data(self, st: KState, make: Callable[[Array], dict]) -> tuple[dict, dict]:
        """Per-point data of the current layer for the first and second point of every pair: in the point pass
        `make(variances)` (variances at each position, shape (points, *spatial)) is recorded, in the pair pass the
        recorded data of the block's rows and columns is read back."""
        if self.rows is None:
            var = ops.diagonal(st.nngp, 1, st.nsp) if st.full else st.nngp
            data = make(var)
            self.records.append(data)
            return data, data
        assert self.cols is not None
        i = self.taken
        self.taken += 1
        return self.rows[i], self.cols[i]

    def side(self, v: Array, st: KState, first: bool, extra: int = 0) -> Array:
        """Per-point data shaped to broadcast against st's arrays (see `ops.side`)."""
        return ops.side(v, self.nb, st.full, first, extra)

    def settle(self, st: KState, where: Where) -> KState:
        """Drop to the diagonal layout after a layer above which nothing reads off-diagonal positions."""
        self.sizes.append(st.nngp.size)
        if st.full and not self.plan.get(where, True):
            return st.map(lambda a: ops.diagonal(a, self.nb, st.nsp), full=False)
        return st
