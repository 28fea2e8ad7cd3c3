"""Activations: one registry of named nonlinearities and a safe parser for typed expressions in `x`.

An `Activation` carries its function and its *family* with parameters; the closed-form Gaussian
expectations (dual kernels, Cho & Saul 2009; Williams 1997; Tsuchida et al. 2021) are looked up by
family in `workbench.theory.kernels.dual`, and everything without a closed form falls back to Gauss-Hermite
quadrature of `fn` there.  Names accepted by `get_activation`:

- a registered name: relu, abs, erf, gelu, sin, cos, identity, tanh, sigmoid, softplus, silu, elu,
  selu, sign, quadratic (and the aliases linear, swish);
- a parametrized name: leaky_relu(a), elu(a);
- any expression in `x` built from numbers, + - * / ** and comparisons, and the functions in
  `ALLOWED_FUNCTIONS` ("x * sigmoid(x)", "maximum(x, 0)**2", "leaky_relu(x, 0.2)"); parsed with `ast`
  and evaluated by walking the tree, never with `eval`;
- any Python callable mapping a jax array to a jax array.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, overload

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf as _erf
from jax.typing import ArrayLike

from workbench.core.declare import Given, Instance, declare

__all__ = [
    "ALLOWED_CONSTANTS",
    "ALLOWED_FUNCTIONS",
    "ALLOWED_HELP",
    "Activation",
    "ActivationLike",
    "NAMES",
    "SUGGESTIONS",
    "derivative",
    "get_activation",
]

Array = jax.Array


@dataclass(frozen=True)
class Activation:
    """A nonlinearity phi with its family name and parameters (used to find closed-form kernels)."""

    name: str
    fn: Callable[[Array], Array] = field(compare=False, repr=False)
    family: str = "expression"
    params: tuple[float, ...] = ()

    @overload
    def __call__(self, x: Array) -> Array: ...
    @overload
    def __call__(self, x: ArrayLike) -> ArrayLike: ...  # numpy in: a jax Array out, but "identity" returns x

    def __call__(self, x: Any) -> Any:
        return self.fn(x)


ActivationLike = str | Activation | Callable[[Array], Array]
"""What `get_activation` resolves: a name, a parametrized name, an expression in x, an Activation or a callable."""


def _leaky_relu(x: Array, a: float = 0.01) -> Array:
    return jnp.where(x >= 0, x, a * x)


def _elu(x: Array, a: float = 1.0) -> Array:
    return jnp.where(x > 0, x, a * jnp.expm1(jnp.minimum(x, 0.0)))


def _gelu(x: Array) -> Array:
    """Exact GELU x * Phi(x) (Hendrycks & Gimpel 2016), not the tanh approximation."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


_NAMED: dict[str, Callable[[Array], Array]] = {
    "relu": jax.nn.relu,
    "abs": jnp.abs,
    "erf": _erf,
    "gelu": _gelu,
    "sin": jnp.sin,
    "cos": jnp.cos,
    "identity": lambda x: x,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "softplus": jax.nn.softplus,
    "silu": jax.nn.silu,
    "elu": _elu,
    "selu": jax.nn.selu,
    "sign": jnp.sign,
    "quadratic": jnp.square,
}
_ALIASES = {"linear": "identity", "swish": "silu", "square": "quadratic"}
_PARAMETRIZED: dict[str, tuple[Callable, int]] = {"leaky_relu": (_leaky_relu, 1), "elu": (_elu, 1)}

NAMES: tuple[str, ...] = tuple(_NAMED) + ("leaky_relu(a)", "elu(a)")
_EXAMPLES = ("leaky_relu(0.1)", "elu(0.5)", "x * sigmoid(x)", "maximum(x, 0)**2")  # a parameter, typed expressions
SUGGESTIONS: tuple[str, ...] = tuple(_NAMED) + _EXAMPLES  # what an activation control offers (any other text works)

# Functions a typed expression may call; everything here maps arrays to arrays.
ALLOWED_FUNCTIONS: dict[str, Callable] = {
    **{k: v for k, v in _NAMED.items() if k not in ("identity", "quadratic")},
    "leaky_relu": _leaky_relu,
    "exp": jnp.exp,
    "log": jnp.log,
    "log1p": jnp.log1p,
    "expm1": jnp.expm1,
    "sqrt": jnp.sqrt,
    "square": jnp.square,
    "cosh": jnp.cosh,
    "sinh": jnp.sinh,
    "arctan": jnp.arctan,
    "arcsinh": jnp.arcsinh,
    "maximum": jnp.maximum,
    "minimum": jnp.minimum,
    "where": jnp.where,
    "clip": jnp.clip,
    "heaviside": lambda x, h0=0.5: jnp.where(x > 0, 1.0, jnp.where(x < 0, 0.0, h0)),
    "relu6": jax.nn.relu6,
    "hard_tanh": jax.nn.hard_tanh,
    "mish": jax.nn.mish,
}
ALLOWED_CONSTANTS = {"pi": math.pi, "e": math.e}
_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_COMPARE = {ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Lt: operator.lt, ast.LtE: operator.le}

ALLOWED_HELP = (
    "an activation name (" + ", ".join(NAMES) + ") or an expression in x using numbers, "
    "+ - * / **, comparisons (> >= < <=), the constants pi and e, and the functions "
    + ", ".join(sorted(ALLOWED_FUNCTIONS))
)  # the full list, shown behind a toggle in the panels; error messages stay one line
_SHORT_HELP = "use a name such as relu, erf or tanh, or an expression in x such as x * sigmoid(x)"


def _check(node: ast.AST) -> None:
    """Reject every syntax node outside the whitelist, naming the offending construct."""
    if isinstance(node, ast.Expression):
        return _check(node.body)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ValueError(f"activation: only numeric constants are allowed, got {node.value!r}")
        return None
    if isinstance(node, ast.Name):
        if node.id != "x" and node.id not in ALLOWED_CONSTANTS:
            raise ValueError(f"activation: unknown name {node.id!r}; {_SHORT_HELP}")
        return None
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        _check(node.left)
        return _check(node.right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check(node.operand)
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        _check(node.left)
        return _check(node.comparators[0])
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in ALLOWED_FUNCTIONS:
            what = node.func.id if isinstance(node.func, ast.Name) else type(node.func).__name__
            raise ValueError(f"activation: function {what!r} is not allowed; {_SHORT_HELP}")
        if node.keywords:
            raise ValueError("activation: keyword arguments are not allowed; pass arguments by position")
        for arg in node.args:
            _check(arg)
        return None
    raise ValueError(f"activation: {type(node).__name__} is not allowed in an expression; {_SHORT_HELP}")


def _fold(node: ast.AST):
    """The real value of a subexpression free of x and of calls (None if it has either), refusing what is not
    a finite real number: 1e309, (-8)**(1/3), (-1)**0.5, x/0 (a constant zero divisor), 10**400."""
    if isinstance(node, ast.Constant):
        number = node.value
        assert isinstance(number, (int, float))  # `_check` admits only numeric constants
        value = float(number) if abs(number) < 1e308 or isinstance(number, float) else math.inf
        if not math.isfinite(value):
            raise ValueError(f"activation: the number {ast.unparse(node)[:20]} is not finite")
        return value
    if isinstance(node, ast.Name):
        return ALLOWED_CONSTANTS.get(node.id)
    if isinstance(node, ast.UnaryOp):
        inner = _fold(node.operand)
        return None if inner is None else _UNARY[type(node.op)](inner)
    if isinstance(node, ast.BinOp):
        left, right = _fold(node.left), _fold(node.right)
        if isinstance(node.op, ast.Div) and right == 0:
            raise ValueError(f"activation: division by zero in {ast.unparse(node)!r}")
        if left is None or right is None:
            return None
        try:
            value = _BINOPS[type(node.op)](left, right)
        except (OverflowError, ZeroDivisionError):
            value = math.inf
        if isinstance(value, complex):
            raise ValueError(f"activation: {ast.unparse(node)!r} is not a real number")
        if not math.isfinite(value):
            raise ValueError(f"activation: {ast.unparse(node)!r} is not a finite number")
        return value
    for child in ast.iter_child_nodes(node):
        _fold(child)
    return None


def _evaluate(node: ast.AST, x: Array):
    """Evaluate a checked expression tree at x by structural recursion (no eval, no exec)."""
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, (int, float))  # `_check` admits only numeric constants
        return float(node.value)
    if isinstance(node, ast.Name):
        return x if node.id == "x" else ALLOWED_CONSTANTS[node.id]
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_evaluate(node.left, x), _evaluate(node.right, x))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, x))
    if isinstance(node, ast.Compare):
        cmp = _COMPARE[type(node.ops[0])](_evaluate(node.left, x), _evaluate(node.comparators[0], x))
        return jnp.asarray(cmp, dtype=jnp.result_type(x, float))
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)  # all `_check` admits besides the above
    args = [_evaluate(a, x) for a in node.args]
    return ALLOWED_FUNCTIONS[node.func.id](*args)


@functools.lru_cache(maxsize=256)  # a sweep builds a config per point: each distinct text is parsed and probed once
def _parse_expression(text: str) -> Callable[[Array], Array]:
    """Parse a typed expression in `x` into a function, or raise ValueError saying what is allowed."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"activation: got an empty expression; {_SHORT_HELP}")
    if len(text) > 500:
        raise ValueError("activation: expression longer than 500 characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise ValueError(f"activation: cannot parse {text!r} ({err.msg}); {_SHORT_HELP}") from None
    _check(tree)
    _fold(tree.body)
    body = tree.body
    if not any(isinstance(n, ast.Name) and n.id == "x" for n in ast.walk(body)):
        raise ValueError(f"activation: expression {text!r} does not use x")

    def fn(x: ArrayLike) -> Array:
        x = jnp.asarray(x)
        return jnp.broadcast_to(_evaluate(body, x), x.shape).astype(jnp.result_type(x, float))

    try:
        jax.eval_shape(fn, jax.ShapeDtypeStruct((3,), jnp.float32))
    except Exception as err:  # wrong arity or types: say so in the user's terms
        raise ValueError(f"activation: cannot evaluate {text!r}: {err}") from None
    values = np.asarray(fn(_PROBE))
    if not np.all(np.isfinite(values)):
        where = float(_PROBE[np.argmin(np.isfinite(values))])
        raise ValueError(
            f"activation: {text.strip()!r} is not finite at x = {where:g} (Gaussian pre-activations reach every "
            f"real x; the probe covers [{_PROBE[0]:g}, {_PROBE[-1]:g}])"
        )
    return fn


_PROBE = np.linspace(-20.0, 20.0, 401, dtype=np.float32)  # points where a typed activation must be finite (0 included)


_PARAM_NAME = re.compile(r"^\s*([a-z_]+)\s*\(\s*([-+0-9.eE]+)\s*\)\s*$")


@declare(
    activation=Given(
        why="a name, a parametrized name or an expression in x (text), an Activation or a callable; the body "
        "refuses anything else, and every refusal names the activation",
        example="relu",
    )
)
def get_activation(activation: ActivationLike) -> Activation:
    """Resolve a name, a parametrized name, a typed expression or a callable to an Activation."""
    if isinstance(activation, Activation):
        return activation
    if callable(activation):
        return Activation(getattr(activation, "__name__", "custom"), activation, "callable")
    if not isinstance(activation, str):
        raise ValueError(f"activation: expected a string or a callable, got {type(activation).__name__}")
    key = activation.strip().lower()
    key = _ALIASES.get(key, key)
    if key in _NAMED:
        return Activation(key, _NAMED[key], key)
    match = _PARAM_NAME.match(key)
    if match and match.group(1) in _PARAMETRIZED:
        family = match.group(1)
        try:
            value = float(match.group(2))
        except ValueError:
            raise ValueError(f"activation: {family}(a) needs a number a, got {match.group(2)!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"activation: parameter of {family} must be finite, got {value}")
        base = _PARAMETRIZED[family][0]
        return Activation(f"{family}({value:g})", lambda x: base(x, value), family, (value,))
    return Activation(activation.strip(), _parse_expression(activation), "expression")


@declare(act=Instance(Activation, example=lambda: get_activation("tanh")))
def derivative(act: Activation) -> Callable[[Array], Array]:
    """Elementwise phi' by automatic differentiation (sign and step functions give 0 a.e.)."""
    return jnp.vectorize(jax.grad(lambda x: act.fn(x).astype(jnp.result_type(x))))
