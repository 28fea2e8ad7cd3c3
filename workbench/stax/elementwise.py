"""Activations of `workbench.stax`: neural-tangents' Relu, LeakyRelu, Abs, ABRelu, Erf, Sigmoid_like, Gelu, Sin, Cos,
Sign, and Tanh, Sigmoid and any activation of the registry (`workbench.core.activations`) through one
`Activation(name_or_expression)`.

Every one is phi(x) = a psi(b x + phase) + c for a registry activation psi, whose Gaussian expectations come from
`workbench.theory.kernels.dual` (closed forms by family, Gauss-Hermite quadrature with Mehler's series otherwise):
nngp -> a^2 E[psi(u) psi(v)] + c^2 and ntk -> a^2 b^2 E[psi'(u) psi'(v)] ntk, with (u, v) of covariance b^2 K. The shift
c is allowed for odd psi only (Erf, Sigmoid_like); the phase for sin only (Sin, Cos: sin(bx + p) = cos p sin bx +
sin p cos bx, whose cross terms vanish). Each point's per-position Hermite coefficients are computed once, in the
point pass; the pairs take Mehler's sum of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from workbench.core.activations import Activation as Act
from workbench.core.activations import get_activation
from workbench.core.declare import Activation as ActivationArg
from workbench.core.declare import Flag, Given, Int, Real, Text, declare
from workbench.stax.layers import Layer, Scaler, single
from workbench.stax.state import Ctx, Info, KState, Where, fmt_shape, position
from workbench.theory.kernels import dual

Array = jax.Array
MAX_COEF = 1e6
_COEF = Real(-MAX_COEF, MAX_COEF)

__all__ = [
    "ABRelu",
    "Abs",
    "Activation",
    "Cos",
    "Erf",
    "Gelu",
    "LeakyRelu",
    "Relu",
    "Sigmoid",
    "Sigmoid_like",
    "Sign",
    "Sin",
    "Tanh",
    "activation_of",
]


def _act_key(act: Act) -> tuple:
    """What identifies an activation (a callable by itself, not by its name)."""
    return (act.name, act.family, act.params, act.fn if act.family == "callable" else None)


@dataclass(frozen=True)
class Elementwise(Layer):
    """phi(x) = a psi(b x + phase) + c applied entrywise; needs a Gaussian input."""

    name: str
    key: tuple
    a: float = 1.0
    b: float = 1.0
    c: float = 0.0
    phase: float = 0.0
    degree: int = dual.DEGREE
    approximate: bool = False  # Gelu(approximate=True): tanh approximation in apply_fn only, as in neural-tangents
    act: Act = field(default=None, compare=False, hash=False)  # pyright: ignore[reportAssignmentType]

    @property
    def label(self) -> str:
        return self.name

    def infer(self, x: Any, where: Where) -> Any:
        info = single(x, where, self.label)
        if info.gaussian is None:
            raise ValueError(
                f"{position(where, self.label)}: an activation's kernel needs a Gaussian input, i.e. a Dense or "
                f"Conv before it (got the raw input, an activation's or a Flatten's output, shape "
                f"{fmt_shape(info.shape)})"
            )
        return Info(info.shape, None)

    def apply(self, params: Any, x: Any, where: Where, scale: Scaler) -> Any:
        z = self.b * x + self.phase if (self.b != 1.0 or self.phase) else x
        y = jax.nn.gelu(z, approximate=True) if self.approximate else self.act.fn(z)
        return self.a * y + self.c if (self.a != 1.0 or self.c) else y

    # ------------------------------------------------------------ kernel
    def _point(self, var: Array) -> dict:
        """Per-point data: variances of psi's argument, and for quadrature the Hermite coefficients of psi and
        psi' and their exact diagonal expectations."""
        q = self.b**2 * var
        data: dict[str, Any] = {"q": q}
        kernel = dual.dual_of(self.act)
        if kernel.kind == "quadrature" and not self.phase:
            data["coef"] = kernel.coefficients(q, self.degree)
            data["diag"] = kernel.diagonal(q, self.degree)
        return data

    def _expect(self, ctx: Ctx, st: KState, pa: dict, pb: dict, q12: Array) -> tuple[Array, Array]:
        q11, q22 = ctx.side(pa["q"], st, True), ctx.side(pb["q"], st, False)
        if self.phase:  # sin(bx + p): cos^2 p E[sin sin] + sin^2 p E[cos cos]; the derivative swaps them
            s, c = dual.dual_of(self.act).expectations(q11, q12, q22)
            cp, sp = math.cos(self.phase) ** 2, math.sin(self.phase) ** 2
            return cp * s + sp * c, cp * c + sp * s
        kernel = dual.dual_of(self.act)
        if ctx.nb == 1 and not st.full:  # each point with itself, same positions: the exact diagonal
            return kernel.diagonal(pa["q"], self.degree)
        if kernel.kind != "quadrature":
            return kernel.expectations(q11, q12, q22)
        ca, cb = (tuple(ctx.side(c, st, first, extra=1) for c in p["coef"]) for p, first in ((pa, True), (pb, False)))
        diag = tuple(ctx.side(d, st, True) for d in pa["diag"])
        return kernel.mehler(ca, cb, diag, q11, q12, q22)

    def kernel(self, st: KState, ctx: Ctx, where: Where) -> KState:
        info = self.infer(st.info, where)
        pa, pb = ctx.point_data(st, self._point)
        e_phi, e_dphi = self._expect(ctx, st, pa, pb, self.b**2 * st.nngp)
        nngp = self.a**2 * e_phi + self.c**2
        ntk = None if st.ntk is None else (self.a * self.b) ** 2 * e_dphi * st.ntk
        return KState(nngp, ntk, st.full, info)


def _layer(name: str, act: Act | str, **kw: Any) -> Elementwise:
    act = get_activation(act)
    return Elementwise(name, _act_key(act), act=act, **kw)


@declare(do_stabilize=Flag())
def Relu(do_stabilize: bool = False) -> Elementwise:
    """max(x, 0) (arc-cosine closed form)."""
    return _layer("Relu", "relu")


@declare(alpha=_COEF, do_stabilize=Flag())
def LeakyRelu(alpha: float, do_stabilize: bool = False) -> Elementwise:
    """x for x > 0, alpha x otherwise (closed form)."""
    return _layer(f"LeakyRelu({alpha:g})", f"leaky_relu({alpha!r})")


@declare(do_stabilize=Flag())
def Abs(do_stabilize: bool = False) -> Elementwise:
    """|x| (closed form)."""
    return _layer("Abs", "abs")


@declare(a=_COEF, b=_COEF, do_stabilize=Flag())
def ABRelu(a: float, b: float, do_stabilize: bool = False) -> Elementwise:
    """a min(x, 0) + b max(x, 0) (closed form: b leaky_relu(a / b), or -a relu(-x) for b = 0)."""
    if b == 0:
        return _layer(f"ABRelu({a:g}, {b:g})", "relu", a=-a, b=-1.0)
    return _layer(f"ABRelu({a:g}, {b:g})", f"leaky_relu({a / b!r})", a=b)


@declare(a=_COEF, b=_COEF, c=_COEF)
def Erf(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> Elementwise:
    """a erf(b x) + c (closed form, Williams 1997)."""
    return _layer(f"Erf({a:g}, {b:g}, {c:g})", "erf", a=a, b=b, c=c)


@declare()
def Sigmoid_like() -> Elementwise:
    """neural-tangents' erf approximation of the logistic sigmoid: 0.5 erf(x / 2.4020563531719796) + 0.5."""
    return _layer("Sigmoid_like", "erf", a=0.5, b=1 / 2.4020563531719796, c=0.5)


@declare(approximate=Flag())
def Gelu(approximate: bool = False) -> Elementwise:
    """x Phi(x) (closed form); `approximate` changes apply_fn only (tanh form), as in neural-tangents."""
    return _layer(f"Gelu(approximate={approximate})", "gelu", approximate=approximate)


@declare(a=_COEF, b=_COEF, c=_COEF)
def Sin(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> Elementwise:
    """a sin(b x + c) (closed form)."""
    return _layer(f"Sin({a:g}, {b:g}, {c:g})", "sin", a=a, b=b, phase=c)


@declare(a=_COEF, b=_COEF, c=_COEF)
def Cos(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> Elementwise:
    """a cos(b x + c) = a sin(b x + c + pi / 2) (closed form)."""
    return _layer(f"Cos({a:g}, {b:g}, {c:g})", "sin", a=a, b=b, phase=c + math.pi / 2)


@declare()
def Sign() -> Elementwise:
    """sign(x): NNGP (2/pi) arcsin; NTK factor 0 (phi' = 0 almost everywhere)."""
    return _layer("Sign", "sign")


@declare(degree=Int(1, dual.MAX_DEGREE))
def Tanh(degree: int = dual.DEGREE) -> Elementwise:
    """tanh (Gauss-Hermite quadrature with `degree` Hermite terms; not in neural-tangents, whose
    `ElementwiseNumerical(jnp.tanh, deg)` is the same function)."""
    return _layer("Tanh", "tanh", degree=degree)


@declare(degree=Int(1, dual.MAX_DEGREE))
def Sigmoid(degree: int = dual.DEGREE) -> Elementwise:
    """The logistic sigmoid 1 / (1 + e^-x) (quadrature; neural-tangents' Sigmoid_like is an erf stand-in)."""
    return _layer("Sigmoid", "sigmoid", degree=degree)


@declare(activation=ActivationArg(), degree=Int(1, dual.MAX_DEGREE))
def Activation(activation: str, degree: int = dual.DEGREE) -> Elementwise:
    """Any activation of the registry by name or typed expression in x ("relu", "leaky_relu(0.1)", "tanh",
    "x * sigmoid(x)", ...): closed form where its family has one, quadrature with `degree` Hermite terms otherwise."""
    act = get_activation(activation)
    return _layer(f"Activation({act.name!r})", act, degree=degree)


@declare(
    fn=Given(why="a function of jax arrays, checked callable in the body", example=lambda: jnp.tanh),
    name=Text(max_len=100),
    degree=Int(1, dual.MAX_DEGREE),
)
def activation_of(fn: Callable[[Array], Array], name: str = "custom", degree: int = dual.DEGREE) -> Elementwise:
    """An activation layer from a Python function of jax arrays (`jnp.tanh`, a lambda): Gauss-Hermite quadrature of
    fn and of its autograd derivative (the layer is keyed by the function object, so two lambdas never share a
    compiled kernel)."""
    if not callable(fn):
        raise ValueError(f"fn: must be a function of jax arrays, got {type(fn).__name__}")
    probe = jnp.linspace(-3.0, 3.0, 7)
    try:
        out = jax.eval_shape(fn, probe)  # shapes only: a function taking or giving something else fails here
        values = np.asarray(fn(probe)) if isinstance(out, jax.ShapeDtypeStruct) and out.shape == probe.shape else None
    except Exception as err:  # noqa: BLE001 - the user's function: any failure is reported by name
        raise ValueError(f"fn: fails on an array x ({type(err).__name__}: {str(err)[:200]})") from None
    if values is None or values.dtype.kind not in "biuf":
        raise ValueError(f"fn: must map an array x to real values of x's shape elementwise, got {out!r:.100}")
    if not np.all(np.isfinite(values)):
        raise ValueError("fn: gives NaN or inf on x in [-3, 3]; an activation must be finite")
    return _layer(f"Activation({name})", get_activation(fn), degree=degree)
