"""Your own Flax NNX model in the abc table, as microsoft/mup's `set_base_shapes` does for PyTorch modules
(Yang et al. 2022, TP V, App. H): each parameter's role is inferred from its shapes at two widths (an axis that
grows with the width is infinite), then the init is rescaled and every tensor gets its learning rate from
`core/parametrizations`, without touching the forward pass. So the rows apply in their multiplier-free form
(`parametrizations.free_scaling`); attention logits scaled by 1/d instead of 1/sqrt(d) (TP V, Sec. 4) are part of
the forward pass, which the model itself must do (`workbench.nets.zoo.transformer` does).

A factory is `make_model(width, rngs, **options) -> nnx.Module`, with `in_dim`, `out_dim`, `depth` and `branch`
(the residual-branch multiplier) among its keywords where it takes them. Roles, for Flax's (..., fan_in,
fan_out) weight layout: infinite fan_out only -> "input", both -> "hidden", fan_in only -> "output", a vector with
an infinite axis (bias, LayerNorm scale) -> "bias", nothing infinite -> "output_bias" (untouched by every row).
A tensor repeated with depth (its path differs only by a list index, and there are twice as many at twice the
depth) lies in a residual branch: with a depth scaling its learning rate also gets `depth_lr_scale`.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import re
import typing
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from workbench.core import parametrizations as P
from workbench.core.config import spec
from workbench.core.declare import Given, Instance, Int, declare
from workbench.core.fields import BASE_WIDTH, PARAMETRIZATION, WIDTH
from workbench.core.memory import require
from workbench.nets.models import TRAINING_COPIES, ModelConfig

__all__ = ["Own", "OwnConfig", "Role", "configure", "factory", "infer_roles", "register", "role_table"]

Factory = Callable[..., nnx.Module]
OPTIONS = ("in_dim", "out_dim", "depth", "branch")  # keywords the lab passes to a factory that takes them
_REGISTRY: dict[str, Factory] = {}


@dataclass(frozen=True)
class Role:
    """One parameter: its path, role in the abc table, shape at the base width, infinite axes, whether it lies in
    a residual branch, and the width exponent b of the factory's own init (std ~ width^-b; None: initialised to 0)."""

    path: str
    role: str
    shape: tuple[int, ...]
    infinite: tuple[int, ...]
    branch: bool = False
    init_exponent: float | None = None


def _path(keys: tuple[Any, ...]) -> str:
    """'blocks/0/kernel' from a pytree path of an nnx.State (the Variable's `value` attribute dropped)."""
    parts = [getattr(k, "key", getattr(k, "idx", None)) for k in keys]
    return "/".join(str(p) for p in parts if p is not None)


def _takes(make_model: Factory) -> set[str]:
    """The lab's keywords (`OPTIONS`) that a factory accepts."""
    try:
        params = inspect.signature(make_model).parameters
    except (TypeError, ValueError):
        return set()
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return set(OPTIONS)
    return {name for name in OPTIONS if name in params}


def _shapes(make_model: Factory, width: int, options: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """{path: shape} of the model's Params at `width`, traced without allocating (`nnx.eval_shape`)."""
    try:
        model = nnx.eval_shape(lambda: make_model(width, nnx.Rngs(params=0), **options))
    except Exception as e:  # the user's code: any failure is reported with the width it happened at
        raise ValueError(f"make_model: fails at width {width} ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(model, nnx.Module):
        raise ValueError(f"make_model: must return a flax.nnx.Module, got {type(model).__name__} at width {width}")
    leaves = jax.tree_util.tree_leaves_with_path(nnx.state(model, nnx.Param))
    if not leaves:
        raise ValueError(f"make_model: the model has no trainable parameters (nnx.Param) at width {width}")
    return {_path(keys): tuple(int(n) for n in leaf.shape) for keys, leaf in leaves}


def _init_rms(make_model: Factory, width: int, options: dict[str, Any]) -> dict[str, float]:
    """{path: RMS of its initial values} of the factory's model at `width` (allocated: refused when too large)."""
    size = sum(math.prod(s) for s in _shapes(make_model, width, options).values())
    require(4 * size, "base_width", f"the factory's model at width {width} ({size:,} parameters)")
    with jax.ensure_compile_time_eval():  # concrete values even when first asked inside a traced init (a worker)
        state = nnx.state(make_model(width, nnx.Rngs(params=0), **options), nnx.Param)
        leaves = jax.tree_util.tree_leaves_with_path(state)
        return {_path(keys): float(jnp.sqrt(jnp.mean(jnp.square(leaf.astype(jnp.float32))))) for keys, leaf in leaves}


def _init_exponents(make_model: Factory, base_width: int, options: dict[str, Any]) -> dict[str, float | None]:
    """Each parameter's init exponent b (RMS ~ width^-b) from its RMS at the base width and twice it, rounded to a
    multiple of 1/2 (Flax's Linear: 1/2 for a width fan-in, 0 otherwise; its Embed: 1/2); None for zeros."""
    small, big = _init_rms(make_model, base_width, options), _init_rms(make_model, 2 * base_width, options)
    return {p: round(2 * math.log2(small[p] / big[p])) / 2 if small[p] > 0 and big[p] > 0 else None for p in small}


def _compare(a: dict[str, tuple[int, ...]], b: dict[str, tuple[int, ...]], what: str) -> None:
    """Refuse two parameter trees that differ in their paths or ranks."""
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        raise ValueError(
            f"make_model: the parameters differ between {what}: only in the first {only_a[:5]}, "
            f"only in the second {only_b[:5]}"
        )
    ranks = [p for p in a if len(a[p]) != len(b[p])]
    if ranks:
        raise ValueError(f"make_model: parameters {ranks[:5]} change rank between {what}")


def _role(path: str, small: tuple[int, ...], big: tuple[int, ...], ratio: int) -> tuple[str, tuple[int, ...]]:
    """Role and infinite axes of one parameter from its shapes at widths n0 and ratio * n0."""
    infinite = tuple(i for i, (s, t) in enumerate(zip(small, big)) if s != t)
    bad = [i for i in infinite if big[i] != ratio * small[i]]
    rank = len(small)
    if bad or any(i < rank - 2 for i in infinite):
        axis = bad[0] if bad else infinite[0]
        raise ValueError(
            f"make_model: parameter {path!r} grows along axis {axis} ({small} -> {big} when the width grows "
            f"x{ratio}); no role explains it: an infinite axis must grow in proportion to the width and be one of "
            "the last two (fan_in, fan_out) axes of a weight (kernels with head axes, as nnx.MultiHeadAttention's "
            "and LinearGeneral's, are not supported: build attention from nnx.Linear projections, as zoo.transformer)"
        )
    if not infinite:
        return "output_bias", infinite
    if rank == 1:
        return "bias", infinite
    fan_in, fan_out = rank - 2 in infinite, rank - 1 in infinite
    return ("hidden" if fan_in and fan_out else "output" if fan_in else "input"), infinite


def _pattern(path: str) -> str:
    """A path with its list indices replaced by '*' (the same tensor of every block)."""
    return re.sub(r"(^|/)\d+(?=/|$)", r"\1*", path)


_NAME = Given(why="a name: checked in the body (text, not reserved)", example="mine")
_FACTORY = Given(
    why="a function (width, rngs, **options) -> nnx.Module; checked by building it",
    example=lambda: factory("zoo:resmlp"),
)


@declare(
    make_model=_FACTORY,
    base_width=Int(1, P.MAX_WIDTH // 2),
    options=Given(any_value=True, why="keywords for the factory (e.g. in_dim, depth)"),
)
def infer_roles(make_model: Factory, base_width: int = 64, options: dict[str, Any] | None = None) -> tuple[Role, ...]:
    """Every parameter's role from its shapes at `base_width` and twice that (mup's `set_base_shapes` with a
    delta model); with a `depth` option, also which tensors repeat with depth (residual branches)."""
    if not callable(make_model):
        raise ValueError(f"make_model: must be a function (width, rngs) -> nnx.Module, got {type(make_model).__name__}")
    if not isinstance(options, (dict, type(None))):
        raise ValueError(f"options: must be a dict of keywords for the factory (or None), got {type(options).__name__}")
    options = dict(options or {})
    small, big = _shapes(make_model, base_width, options), _shapes(make_model, 2 * base_width, options)
    _compare(small, big, f"widths {base_width} and {2 * base_width}")
    roles = {p: _role(p, small[p], big[p], 2) for p in small}
    if all(not infinite for _, infinite in roles.values()):
        raise ValueError(
            f"make_model: no parameter changes shape between widths {base_width} and {2 * base_width}; "
            "the width argument must set the hidden sizes"
        )
    branch: set[str] = set()
    if options.get("depth"):
        deep = _shapes(make_model, base_width, {**options, "depth": 2 * options["depth"]})
        counts, deep_counts = Counter(map(_pattern, small)), Counter(map(_pattern, deep))
        branch = {p for p in small if deep_counts[_pattern(p)] == 2 * counts[_pattern(p)] and _pattern(p) != p}
    b_own = _init_exponents(make_model, base_width, options)
    return tuple(Role(p, roles[p][0], small[p], roles[p][1], p in branch, b_own[p]) for p in sorted(small))


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 300:
        raise ValueError(f"{name}: must be a non-empty name of at most 300 characters, got {value!r:.80}")
    return value


@declare(
    name=_NAME,
    make_model=_FACTORY,
)
def register(name: str, make_model: Factory) -> str:
    """Make a factory known by `name` in this process (arrays and closures cannot travel in a config; for a sweep
    on Dask workers name an importable 'package.module:function' instead)."""
    if not callable(make_model):
        raise ValueError(f"make_model: must be a function (width, rngs) -> nnx.Module, got {type(make_model).__name__}")
    if _text("name", name).startswith("zoo:"):
        raise ValueError(f"name: must be non-empty and not start with 'zoo:', got {name!r}")
    _REGISTRY[name] = make_model
    return name


@declare(name=Given(why="a model name: checked in the body", example="zoo:resmlp"))
def factory(name: str) -> Factory:
    """The factory a config names: registered in this process, one of `workbench.nets.zoo`, or imported."""
    if _text("model", name) in _REGISTRY:
        return _REGISTRY[name]
    module, _, attr = name.partition(":")
    if module == "zoo":
        module = "workbench.nets.zoo"
    if not attr or not re.fullmatch(r"[A-Za-z_][\w.]*", module) or not attr.isidentifier():
        raise ValueError(
            f"model: {name!r} is not registered (register(name, make_model)), a 'zoo:' example or an importable "
            "'package.module:function'"
        )
    try:
        found = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"model: cannot import {name!r} ({type(e).__name__}: {e})") from None
    if not callable(found):
        raise ValueError(f"model: {name!r} is not a function")
    return typing.cast(Factory, found)


@dataclass(frozen=True)
class OwnConfig(ModelConfig):
    """A factory's model at one width (and depth) under a row of the abc table, roles inferred from shapes."""

    model: str = spec("zoo:resmlp", doc="registered name, 'zoo:<example>' or 'package.module:function'")
    parametrization: str = PARAMETRIZATION("mup", doc="abc-parametrization (multiplier-free form)")
    width: int = WIDTH(64)
    base_width: int = BASE_WIDTH(64)
    depth: int = spec(0, lo=0, hi=256, doc="depth passed to the factory (0: not passed)")
    base_depth: int = spec(2, lo=1, hi=256, doc="depth L0 at which every depth scaling is the plain network")
    depth_scaling: str = spec("none", choices=tuple(P.DEPTH_SCALINGS), doc="residual branches x (L/L0)^-alpha")
    inputs: int = spec(0, lo=0, hi=1_000_000, doc="in_dim for a factory that takes it (0: not passed)")
    outputs: int = spec(0, lo=0, hi=100_000, doc="out_dim for a factory that takes it (0: not passed)")
    roles: str = spec("", doc="'path=role[/branch]' entries, ';'-separated (`configure` infers them)")

    def validate(self) -> None:
        for entry in filter(None, self.roles.split(";")):
            _, _, label = entry.partition("=")
            if label.split("/")[0] not in P.ROLES:
                raise ValueError(f"roles: {entry!r} names no role of the abc table ({', '.join(P.ROLES)})")

    def options(self) -> dict[str, Any]:
        """The keywords the factory receives (of those it takes)."""
        takes = _takes(factory(self.model))
        given = {"in_dim": self.inputs, "out_dim": self.outputs, "depth": self.depth}
        out: dict[str, Any] = {k: v for k, v in given.items() if v and k in takes}
        if self.depth:
            out["branch"] = P.branch_multiplier(self.depth_scaling, self.depth / self.base_depth)
        return out

    def label(self, path: str) -> str:
        """'role' or 'role/branch' of a parameter of the factory's model (a branch tensor of any block by its
        pattern, 'blocks/*/kernel')."""
        labels = _labels(self.roles)
        found = labels.get(path) or labels.get(_pattern(path))
        if found is None:
            raise ValueError(f"roles: no role for parameter {path!r}; configure() infers them from the factory")
        return found

    def scaling(self) -> tuple[str, int, int]:
        return self.parametrization, self.width, self.base_width

    def param_labels(self, params: nnx.State) -> nnx.State:
        return jax.tree_util.tree_map_with_path(lambda keys, _: self.label(_path(keys).partition("/")[2]), params)

    def optimizer_options(self, optimizer: str) -> dict[str, Any]:
        ratio = self.depth / self.base_depth if self.depth else 1.0
        return {"free": True, "depth_factor": P.depth_lr_scale(self.depth_scaling, ratio, optimizer)}


@functools.cache
def _labels(roles: str) -> dict[str, str]:
    return dict(entry.split("=", 1) for entry in roles.split(";") if entry)


@functools.cache
def _inferred(make_model: Factory, base_width: int, options: tuple[tuple[str, Any], ...]) -> tuple[Role, ...]:
    """Roles of a factory (the function itself is the key: re-registering a name is never stale)."""
    return infer_roles(make_model, base_width, dict(options))


def _base_roles(config: OwnConfig) -> tuple[Role, ...]:
    """The roles of the config's factory at its base width (and base depth)."""
    base = config.replace(width=config.base_width, depth=config.base_depth if config.depth else 0)
    return _inferred(factory(config.model), config.base_width, tuple(sorted(base.options().items())))


def _own_exponent(config: OwnConfig, path: str, role: str) -> float:
    """The factory's own init exponent of a parameter (a branch tensor of any block by its pattern); SP's for
    zeros, where no rescaling changes anything."""
    roles = _base_roles(config)
    found = {_pattern(r.path): r.init_exponent for r in roles} | {r.path: r.init_exponent for r in roles}
    b = found.get(path, found.get(_pattern(path)))
    return P.TABLE["sp"][role].b if b is None else b


@declare(config=Instance(OwnConfig, example=lambda: OwnConfig(model="zoo:resmlp", width=16, base_width=8)))
def configure(config: OwnConfig) -> OwnConfig:
    """`config` with the roles of its factory's parameters inferred at its base width (and base depth)."""
    takes = _takes(factory(config.model))
    if config.depth and not {"depth", "branch"} <= takes:
        raise ValueError(
            f"depth: the factory {config.model!r} must take 'depth' and 'branch' (its residual multiplier) keywords "
            "to be scaled in depth; leave depth 0"
        )
    roles = _base_roles(config)
    entries = {(_pattern(r.path) if r.branch else r.path): f"{r.role}{'/branch' if r.branch else ''}" for r in roles}
    return config.replace(roles=";".join(f"{path}={label}" for path, label in entries.items()))


class Own(nnx.Module):
    """The factory's model with its init rescaled to the row: by m^-(b - b_own), b_own the width exponent of the
    factory's own init (measured: Flax's Embed has 1/2 where an SP input layer has 0)."""

    def __init__(self, config: OwnConfig, *, rngs: nnx.Rngs):
        self.config = config
        size = sum(math.prod(s) for s in _shapes(factory(config.model), config.width, config.options()).values())
        require(4 * TRAINING_COPIES * size, "width", f"{config.model} at width {config.width} ({size:,} parameters)")
        self.net = factory(config.model)(config.width, rngs, **config.options())
        m = P.width_ratio(config.width, config.base_width)
        state = nnx.state(self.net, nnx.Param)

        def rescale(keys: tuple[Any, ...], value: jax.Array) -> jax.Array:
            path = _path(keys)
            role = config.label(path).split("/")[0]
            return value * m ** -(P.free_scaling(config.parametrization, role).b - _own_exponent(config, path, role))

        nnx.update(self.net, jax.tree_util.tree_map_with_path(rescale, state))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.net(*args, **kwargs)


def _example_config() -> OwnConfig:
    return configure(OwnConfig(model="zoo:resmlp", inputs=4, outputs=2, width=16, base_width=8))


@declare(
    config=Instance(OwnConfig, example=_example_config),
    optimizer=Given(any_value=False, why="an optimizer name", example="adam"),
)
def role_table(config: OwnConfig, optimizer: str = "adam") -> list[dict[str, Any]]:
    """One row per parameter: role, init factor and learning-rate factor at this width and depth (the table the
    notebook prints), refusing a model that would not fit in memory."""
    if optimizer not in P.OPTIMIZER_FAMILY:
        raise ValueError(f"optimizer: must be one of {', '.join(P.OPTIMIZER_FAMILY)}, got {optimizer!r}")
    shapes = _shapes(factory(config.model), config.width, config.options())
    size = sum(math.prod(s) for s in shapes.values())
    require(4 * TRAINING_COPIES * size, "width", f"{config.model} at width {config.width} ({size:,} parameters)")
    m = P.width_ratio(config.width, config.base_width)
    depth = config.optimizer_options(optimizer)["depth_factor"]
    rows = []
    for path in shapes:
        label = config.label(path)
        role, branch = label.split("/")[0], label.endswith("/branch")
        row = P.free_scaling(config.parametrization, role)
        c = row.c_sgd if P.OPTIMIZER_FAMILY[optimizer] == "sgd" else row.c_adam
        init = m ** -(row.b - _own_exponent(config, path, role))
        rows.append(
            dict(
                path=path,
                shape=shapes[path],
                role=role,
                branch=branch,
                init=init,
                lr=m**-c * (depth if branch else 1.0),
            )
        )
    return rows
