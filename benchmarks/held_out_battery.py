# pyright: reportArgumentType=false, reportCallIssue=false, reportAttributeAccessIssue=false
"""A held-out battery against the third wave's modules (issue 22's method): bad or edge inputs a user would type,
written by hand by someone other than the code's author, each classified as

- ok: a legitimate edge input that gave a finite result in its domain;
- clear: a ValueError / TypeError (or RunDBError) whose message names the argument at fault;
- cryptic: any other exception, or one that names no argument (a message from inside jax / numpy);
- silent: a result although the input should have been refused, or one that is NaN, inf or out of its domain;
- hang: no answer within `TIMEOUT` seconds; crash: the process died.

    python -m benchmarks.held_out_battery            # the table of counts per module and every non-clear case
    python -m benchmarks.held_out_battery -k stax    # only cases whose module or label contains 'stax'

Cases run in a worker process (an address-space limit of `MEMORY_GB` GiB above its start, so that an unguarded
huge allocation fails instead of swapping the machine); one that does not answer is killed and the worker restarted.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TIMEOUT = 20.0  # seconds per case
RUN = 150.0  # seconds for a legitimate experiment run, which compiles and trains on a loaded machine
MEMORY_GB = 6  # address space a case may add to the worker's
FINITE_GUARD = "the result is not finite"  # `declare`'s generic refusal: names no argument


@dataclass(frozen=True)
class Case:
    module: str
    label: str
    call: Callable[[], Any]
    arg: tuple[str, ...]  # names one of which a clear refusal must mention ("" entry: any ValueError)
    ok: Callable[[Any], bool] | None = None  # a legitimate input: the check its result must pass
    timeout: float = TIMEOUT  # longer only for a legitimate run that compiles and trains


CASES: list[Case] = []


def case(module: str, label: str, arg: str | tuple[str, ...], ok: Callable[[Any], bool] | None = None):
    """Register `fn` (no arguments) as a case: refused naming `arg`, or with `ok`, a result passing `ok`."""

    def add(fn: Callable[[], Any]) -> Callable[[], Any]:
        CASES.append(Case(module, label, fn, (arg,) if isinstance(arg, str) else arg, ok))
        return fn

    return add


def bad(module: str, label: str, arg: str | tuple[str, ...], fn: Callable[[], Any]) -> None:
    CASES.append(Case(module, label, fn, (arg,) if isinstance(arg, str) else arg))


def good(
    module: str, label: str, fn: Callable[[], Any], ok: Callable[[Any], bool], arg: str | tuple = "", timeout=TIMEOUT
) -> None:
    CASES.append(Case(module, label, fn, (arg,) if isinstance(arg, str) else arg, ok, timeout))


def _finite(v: Any) -> bool:
    import numpy as np

    if isinstance(v, dict):
        return all(_finite(x) for x in v.values())
    if isinstance(v, (list, tuple)):
        return all(_finite(x) for x in v)
    try:
        a = np.asarray(v)
    except Exception:
        return True
    return a.dtype.kind not in "fc" or bool(np.all(np.isfinite(a)))


def _tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="battery-"))


# ================================================================ workbench.stax


def _stax_cases() -> None:
    import numpy as np

    from workbench import stax

    m = "stax"
    x2d = np.random.default_rng(0).normal(size=(3, 4))
    img = np.random.default_rng(0).normal(size=(2, 4, 4, 3))
    seq = np.random.default_rng(0).normal(size=(2, 5, 3))
    # layer constructors: wrong types, NaN, ranges
    for label, fn, arg in [
        ("Dense(0)", lambda: stax.Dense(0), "out_dim"),
        ("Dense(-3)", lambda: stax.Dense(-3), "out_dim"),
        ("Dense(2.5)", lambda: stax.Dense(2.5), "out_dim"),
        ("Dense('8')", lambda: stax.Dense("8"), "out_dim"),
        ("Dense(None)", lambda: stax.Dense(None), "out_dim"),
        ("Dense(10**12)", lambda: stax.Dense(10**12), "out_dim"),
        ("Dense W_std nan", lambda: stax.Dense(4, W_std=float("nan")), "W_std"),
        ("Dense W_std -1", lambda: stax.Dense(4, W_std=-1.0), "W_std"),
        ("Dense W_std inf", lambda: stax.Dense(4, W_std=float("inf")), "W_std"),
        ("Dense b_std -0.1", lambda: stax.Dense(4, b_std=-0.1), "b_std"),
        ("Dense parameterization 'mup'", lambda: stax.Dense(4, parameterization="mup"), "parameterization"),
        ("Dense channel_axis 5", lambda: stax.Dense(4, channel_axis=5), "channel_axis"),
        ("Dense batch_axis=channel_axis", lambda: stax.Dense(4, batch_axis=1, channel_axis=1), "axis"),
        ("Conv filter ()", lambda: stax.Conv(4, ()), "filter_shape"),
        ("Conv filter (0,)", lambda: stax.Conv(4, (0,)), "filter_shape"),
        ("Conv filter (3.0,)", lambda: stax.Conv(4, (3.0,)), "filter_shape"),
        ("Conv filter '3'", lambda: stax.Conv(4, "3"), "filter_shape"),
        ("Conv filter (-1, 2)", lambda: stax.Conv(4, (-1, 2)), "filter_shape"),
        ("Conv filter 5-D", lambda: stax.Conv(4, (1, 1, 1, 1, 1)), "filter_shape"),
        ("Conv strides (0,)", lambda: stax.Conv(4, (3,), strides=(0,)), "strides"),
        ("Conv strides len mismatch", lambda: stax.Conv(4, (3, 3), strides=(1,)), "strides"),
        ("Conv padding 'same'", lambda: stax.Conv(4, (3,), padding="same"), "padding"),
        ("Conv padding 'FULL'", lambda: stax.Conv(4, (3,), padding="FULL"), "padding"),
        (
            "Conv dimension_numbers junk",
            lambda: stax.Conv(4, (3, 3), dimension_numbers=("NCHW", "XYZ", "NHWC")),
            "dimension_numbers",
        ),
        ("AvgPool window ()", lambda: stax.AvgPool(()), "window_shape"),
        ("AvgPool window (0, 2)", lambda: stax.AvgPool((0, 2)), "window_shape"),
        ("AvgPool padding 'x'", lambda: stax.AvgPool((2,), padding="x"), "padding"),
        ("SumPool strides (-1,)", lambda: stax.SumPool((2,), strides=(-1,)), "strides"),
        ("LayerNorm eps -1", lambda: stax.LayerNorm(eps=-1.0), "eps"),
        ("LayerNorm eps nan", lambda: stax.LayerNorm(eps=float("nan")), "eps"),
        ("LayerNorm axis 'x'", lambda: stax.LayerNorm(axis="x"), "axis"),
        ("LeakyRelu alpha nan", lambda: stax.LeakyRelu(float("nan")), "alpha"),
        ("ABRelu a inf", lambda: stax.ABRelu(float("inf"), 1.0), "a"),
        ("Erf a nan", lambda: stax.Erf(a=float("nan")), "a"),
        ("Sin b 1e308", lambda: stax.Sin(b=1e308), "b"),
        ("Activation 'nonsense'", lambda: stax.Activation("nonsense"), "activation"),
        ("Activation 'x**'", lambda: stax.Activation("x**"), "activation"),
        ("Activation 42", lambda: stax.Activation(42), "activation"),
        ("Activation degree 0", lambda: stax.Activation("tanh", degree=0), "degree"),
        ("Activation degree 10**9", lambda: stax.Activation("tanh", degree=10**9), "degree"),
        ("activation_of 'relu' str", lambda: stax.activation_of("relu"), "fn"),
        ("activation_of None", lambda: stax.activation_of(None), "fn"),
        ("activation_of 2-arg fn", lambda: stax.activation_of(lambda a, b: a), "fn"),
        ("activation_of nan fn", lambda: stax.activation_of(lambda x: x * float("nan")), "fn"),
        ("activation_of shape-changing fn", lambda: stax.activation_of(lambda x: x.sum()), "fn"),
        ("activation_of returns str", lambda: stax.activation_of(lambda x: "y"), "fn"),
        ("activation_of raises", lambda: stax.activation_of(lambda x: 1 / 0), "fn"),
        ("Scale nan", lambda: stax.Scale(float("nan")), "c"),
        ("FanOut 0", lambda: stax.FanOut(0), "num"),
        ("FanOut 1.5", lambda: stax.FanOut(1.5), "num"),
        ("serial of a function", lambda: stax.serial(stax.Dense(2), np.tanh), "serial"),
        ("serial of a triple", lambda: stax.serial(tuple(stax.Dense(2))), "serial"),
        ("parallel of None", lambda: stax.parallel(None), "parallel"),
        ("Flatten batch_axis 3", lambda: stax.Flatten(batch_axis=3), "batch_axis"),
        ("GlobalAvgPool channel_axis 9", lambda: stax.GlobalAvgPool(channel_axis=9), "channel_axis"),
    ]:
        bad(m, label, arg, fn)

    # nonsense compositions, refused when kernel_fn / init_fn first sees their shapes
    def kfn(layer: Any, *xs: Any, **kw: Any) -> Any:
        return layer.kernel_fn(*xs, **kw)

    for label, layer, x, arg in [
        (
            "Dense after GlobalAvgPool on 2-D",
            lambda: stax.serial(stax.GlobalAvgPool(), stax.Dense(1)),
            x2d,
            ("GlobalAvgPool", "spatial", "layer"),
        ),
        ("Conv on 1-D input", lambda: stax.serial(stax.Conv(4, (3,)), stax.Dense(1)), x2d, ("Conv", "layer")),
        (
            "Conv 2-D filter on sequence",
            lambda: stax.serial(stax.Conv(4, (3, 3)), stax.Flatten(), stax.Dense(1)),
            seq,
            ("Conv", "layer"),
        ),
        (
            "Conv VALID filter bigger than image",
            lambda: stax.serial(stax.Conv(4, (9, 9)), stax.Flatten(), stax.Dense(1)),
            img,
            ("Conv", "layer"),
        ),
        (
            "AvgPool window bigger than image",
            lambda: stax.serial(stax.AvgPool((8, 8)), stax.Flatten(), stax.Dense(1)),
            img,
            ("AvgPool", "layer"),
        ),
        ("FanInSum without FanOut", lambda: stax.serial(stax.Dense(2), stax.FanInSum()), x2d, ("FanInSum", "layer")),
        (
            "FanOut without FanInSum",
            lambda: stax.serial(stax.FanOut(2), stax.parallel(stax.Dense(2), stax.Dense(2))),
            x2d,
            ("branches", "FanOut"),
        ),
        (
            "FanInSum of mismatched shapes",
            lambda: stax.serial(stax.FanOut(2), stax.parallel(stax.Dense(2), stax.Dense(3)), stax.FanInSum()),
            x2d,
            ("FanInSum", "shape"),
        ),
        (
            "FanInSum of two Identity (correlated)",
            lambda: stax.serial(
                stax.Dense(4), stax.FanOut(2), stax.parallel(stax.Identity(), stax.Identity()), stax.FanInSum()
            ),
            x2d,
            ("FanInSum", "branch"),
        ),
        (
            "parallel count != FanOut",
            lambda: stax.serial(stax.FanOut(3), stax.parallel(stax.Dense(2), stax.Dense(2)), stax.FanInSum()),
            x2d,
            ("parallel", "branches"),
        ),
        (
            "FanInSum after Relu branches (not Gaussian)",
            lambda: stax.serial(
                stax.Dense(4), stax.FanOut(2), stax.parallel(stax.Relu(), stax.Identity()), stax.FanInSum()
            ),
            x2d,
            ("FanInSum", "branch"),
        ),
        (
            "GlobalAvgPool twice",
            lambda: stax.serial(stax.Conv(2, (2, 2)), stax.GlobalAvgPool(), stax.GlobalAvgPool()),
            img,
            ("GlobalAvgPool", "layer"),
        ),
        ("Flatten of 2-D then Conv", lambda: stax.serial(stax.Flatten(), stax.Conv(2, (2,))), x2d, ("Conv", "layer")),
        (
            "LayerNorm over batch axis",
            lambda: stax.serial(stax.Dense(2), stax.LayerNorm(axis=0)),
            x2d,
            ("LayerNorm", "axis"),
        ),
        (
            "Dense channel_axis 1 on image",
            lambda: stax.serial(stax.Dense(2, channel_axis=1), stax.Flatten()),
            img,
            ("Dense", "axis"),
        ),
    ]:
        bad(m, f"kernel_fn: {label}", arg, lambda layer=layer, x=x: kfn(layer(), x))

    net = stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(1))
    for label, fn, arg in [
        ("x2 of another feature size", lambda: net.kernel_fn(x2d, np.ones((2, 5))), "x2"),
        ("x1 1-D", lambda: net.kernel_fn(np.ones(4)), "x1"),
        ("x1 empty", lambda: net.kernel_fn(np.ones((0, 4))), "x1"),
        ("x1 nan", lambda: net.kernel_fn(np.full((2, 4), np.nan)), "x1"),
        ("x1 inf", lambda: net.kernel_fn(np.full((2, 4), np.inf)), "x1"),
        ("x1 1e300", lambda: net.kernel_fn(np.full((2, 4), 1e300)), "x1"),
        ("x1 strings", lambda: net.kernel_fn(np.array([["a", "b"]])), "x1"),
        ("x1 complex", lambda: net.kernel_fn(np.ones((2, 4)) * 1j), "x1"),
        ("x1 ragged list", lambda: net.kernel_fn([[1.0, 2.0], [1.0]]), "x1"),
        ("x1 dict", lambda: net.kernel_fn({"x": 1}), "x1"),
        ("x1 6-D", lambda: net.kernel_fn(np.ones((1, 1, 1, 1, 1, 4))), "x1"),
        ("get 'nngpp'", lambda: net.kernel_fn(x2d, None, "nngpp"), "get"),
        ("get ()", lambda: net.kernel_fn(x2d, None, ()), "get"),
        ("get 5", lambda: net.kernel_fn(x2d, None, 5), "get"),
        ("unknown keyword", lambda: net.kernel_fn(x2d, mask_constant=1.0), "kernel_fn"),
        ("diagonal_spatial 'yes'", lambda: net.kernel_fn(x2d, diagonal_spatial="yes"), "diagonal_spatial"),
        ("huge N (refused before allocating)", lambda: net.kernel_fn(np.ones((400_000, 4))), ("kernel_fn", "memory")),
        (
            "huge image N",
            lambda: stax.serial(stax.Conv(4, (3, 3)), stax.Relu(), stax.GlobalAvgPool(), stax.Dense(1)).kernel_fn(
                np.ones((20_000, 32, 32, 3))
            ),
            ("kernel_fn", "memory"),
        ),
        ("init_fn rng int", lambda: net.init_fn(0, (-1, 4)), "rng"),
        ("init_fn rng string", lambda: net.init_fn("seed", (-1, 4)), "rng"),
        ("init_fn input_shape (4,)", lambda: net.init_fn(__import__("jax").random.PRNGKey(0), (4,)), "input_shape"),
        (
            "init_fn input_shape (-1, 0)",
            lambda: net.init_fn(__import__("jax").random.PRNGKey(0), (-1, 0)),
            "input_shape",
        ),
        ("init_fn input_shape str", lambda: net.init_fn(__import__("jax").random.PRNGKey(0), "(-1, 4)"), "input_shape"),
        ("apply_fn params None", lambda: net.apply_fn(None, x2d), "params"),
        (
            "apply_fn params of another net",
            lambda: net.apply_fn(
                stax.serial(stax.Dense(3), stax.Relu(), stax.Dense(2)).init_fn(
                    __import__("jax").random.PRNGKey(0), (-1, 4)
                )[1],
                x2d,
            ),
            "params",
        ),
        (
            "apply_fn inputs of another width",
            lambda: net.apply_fn(net.init_fn(__import__("jax").random.PRNGKey(0), (-1, 4))[1], np.ones((2, 6))),
            ("inputs", "Dense"),
        ),
        (
            "apply_fn params with nan",
            lambda: net.apply_fn(
                __import__("jax").tree_util.tree_map(
                    lambda a: a * np.nan, net.init_fn(__import__("jax").random.PRNGKey(0), (-1, 4))[1]
                ),
                x2d,
            ),
            "params",
        ),
    ]:
        bad(m, label, arg, fn)

    good(
        m,
        "kernel_fn duplicated points",
        lambda: net.kernel_fn(np.ones((3, 4))),
        lambda k: _finite(k) and abs(float(k.nngp[0, 1] - k.nngp[0, 0])) < 1e-5,
    )
    good(m, "kernel_fn zero inputs", lambda: net.kernel_fn(np.zeros((2, 4))), _finite, "x1")
    good(
        m,
        "kernel_fn LayerNorm on zero inputs",
        lambda: stax.serial(stax.Dense(4), stax.LayerNorm(), stax.Dense(1)).kernel_fn(np.zeros((2, 3))),
        _finite,
        ("x1", "LayerNorm"),
    )
    good(
        m,
        "kernel_fn of serial() (the identity, as in neural-tangents)",
        lambda: stax.serial().kernel_fn(x2d),
        lambda k: bool(np.allclose(k.nngp, x2d @ x2d.T / 4, atol=1e-5)),
    )
    good(m, "kernel_fn one point", lambda: net.kernel_fn(np.ones((1, 4))), _finite)
    good(m, "kernel_fn tiny 1e-30 inputs", lambda: net.kernel_fn(np.full((2, 4), 1e-30)), _finite)

    # the NNX module of a description
    from workbench.stax import nnx as snnx

    for label, fn, arg in [
        ("network of a function", lambda: snnx.network(np.tanh, (-1, 4)), "layer"),
        ("network input_shape (4,)", lambda: snnx.network(net, (4,)), "input_shape"),
        ("network input_shape None", lambda: snnx.network(net, None), "input_shape"),
        ("network width 0", lambda: snnx.network(net, (-1, 4), width=0.0), "width"),
        ("network width 1e9", lambda: snnx.network(net, (-1, 4), width=1e9), "width"),
        (
            "network huge width (memory)",
            lambda: snnx.network(
                stax.serial(stax.Dense(4096), stax.Relu(), stax.Dense(4096), stax.Dense(1)), (-1, 4), width=64.0
            ),
            ("network", "width"),
        ),
        ("network parametrization 'abc'", lambda: snnx.network(net, (-1, 4), parametrization="abc"), "parametrization"),
        (
            "network params of another net",
            lambda: snnx.network(
                net,
                (-1, 4),
                params=stax.serial(stax.Dense(3), stax.Relu(), stax.Dense(2)).init_fn(
                    __import__("jax").random.PRNGKey(0), (-1, 4)
                )[1],
            ),
            "params",
        ),
        ("network params 'x'", lambda: snnx.network(net, (-1, 4), params="x"), "params"),
        (
            "network Conv on 1-D",
            lambda: snnx.network(stax.serial(stax.Conv(2, (3,)), stax.Dense(1)), (-1, 4)),
            ("Conv", "layer"),
        ),
        ("empirical_ntk of a numpy function", lambda: snnx.empirical_ntk(np.tanh, x2d), "model"),
        (
            "empirical_ntk x1 wrong width",
            lambda: snnx.empirical_ntk(snnx.network(net, (-1, 4)), np.ones((2, 6))),
            ("x1", "Dense"),
        ),
        (
            "empirical_ntk x2 wrong width",
            lambda: snnx.empirical_ntk(snnx.network(net, (-1, 4)), x2d, np.ones((2, 5))),
            "x2",
        ),
        ("empirical_ntk x1 nan", lambda: snnx.empirical_ntk(snnx.network(net, (-1, 4)), np.full((2, 4), np.nan)), "x1"),
        (
            "empirical_ntk scaling 'ntk'",
            lambda: snnx.empirical_ntk(snnx.network(net, (-1, 4)), x2d, scaling="ntk"),
            "scaling",
        ),
        (
            "empirical_ntk huge N",
            lambda: snnx.empirical_ntk(snnx.network(net, (-1, 4), width=64.0), np.ones((200_000, 4))),
            ("memory", "empirical", "x1"),
        ),
    ]:
        bad(m, label, arg, fn)

    def param_free() -> Any:
        from flax import nnx

        class Plain(nnx.Module):
            def __call__(self, x):
                return x

        return snnx.empirical_ntk(Plain(), x2d)

    bad(m, "empirical_ntk of a module without params", "model", param_free)

    def wrong_inputs() -> Any:
        from flax import nnx

        return snnx.empirical_ntk(nnx.Linear(3, 2, rngs=nnx.Rngs(0)), x2d)

    bad(m, "empirical_ntk hand module, inputs it cannot take", "x1", wrong_inputs)


# ================================================================ workbench.nets.own / zoo


def _own_cases() -> None:
    import jax.numpy as jnp
    from flax import nnx

    from workbench.nets import own, zoo

    m = "nets.own"

    def no_params(width, rngs):
        class M(nnx.Module):
            def __call__(self, x):
                return x

        return M()

    def fixed(width, rngs):
        return nnx.Linear(3, 2, rngs=rngs)

    def squared(width, rngs):
        return nnx.Linear(3, width * width, rngs=rngs)

    def tuple_factory(width, rngs):
        return nnx.Linear(3, width, rngs=rngs), nnx.Linear(width, 2, rngs=rngs)

    calls: list[int] = []

    def side_effect(width, rngs):
        calls.append(width)
        return nnx.Sequential(nnx.Linear(3, width, rngs=rngs), nnx.Linear(width, 2, rngs=rngs))

    def raising(width, rngs):
        raise RuntimeError("my model is broken")

    def no_rngs(width):
        return nnx.Linear(3, width, rngs=nnx.Rngs(0))

    def layers_with_width(width, rngs):
        return nnx.Sequential(*[nnx.Linear(3, 3, rngs=rngs) for _ in range(width // 8)])

    def plus_one(width, rngs):
        return nnx.Sequential(nnx.Linear(3, width + 1, rngs=rngs), nnx.Linear(width + 1, 2, rngs=rngs))

    def batch_stat(width, rngs):
        return nnx.Sequential(
            nnx.Linear(3, width, rngs=rngs), nnx.BatchNorm(width, rngs=rngs), nnx.Linear(width, 2, rngs=rngs)
        )

    def conv_kernel(width, rngs):
        return nnx.Conv(3, width, (3, 3), rngs=rngs)

    def returns_none(width, rngs):
        return None

    def returns_array(width, rngs):
        return jnp.ones((width, width))

    def huge(width, rngs):
        return nnx.Linear(width * 1000, width * 1000, rngs=rngs)

    for label, fn, arg in [
        ("factory with no params", no_params, "make_model"),
        ("factory whose params do not grow", fixed, "make_model"),
        ("factory whose params grow as width^2", squared, "make_model"),
        ("factory returning a tuple", tuple_factory, "make_model"),
        ("factory that raises", raising, "make_model"),
        ("factory without rngs", no_rngs, "make_model"),
        ("factory whose layer count grows with width", layers_with_width, "make_model"),
        ("factory width + 1", plus_one, "make_model"),
        ("factory returning None", returns_none, "make_model"),
        ("factory returning an array", returns_array, "make_model"),
    ]:
        bad(m, f"infer_roles: {label}", arg, lambda fn=fn: own.infer_roles(fn, 8))
    good(
        m,
        "infer_roles: factory with side effects",
        lambda: own.infer_roles(side_effect, 8),
        lambda r: len(r) == 4,
        "make_model",
    )
    good(m, "infer_roles: conv factory", lambda: own.infer_roles(conv_kernel, 8), lambda r: len(r) == 2, "make_model")
    good(m, "infer_roles: with BatchNorm", lambda: own.infer_roles(batch_stat, 8), lambda r: len(r) >= 4, "make_model")
    good(
        m,
        "infer_roles: huge factory (its roles, or refused by size)",
        lambda: own.infer_roles(huge, 64),
        lambda r: len(r) == 2,
        ("make_model", "base_width"),
    )
    for label, fn, arg in [
        ("infer_roles of a string", lambda: own.infer_roles("zoo:resmlp"), "make_model"),
        ("infer_roles base_width 0", lambda: own.infer_roles(side_effect, 0), "base_width"),
        ("infer_roles options a list", lambda: own.infer_roles(side_effect, 8, [1, 2]), "options"),
        (
            "infer_roles option unknown to factory",
            lambda: own.infer_roles(side_effect, 8, {"depth": 2}),
            ("make_model", "options"),
        ),
        ("register empty name", lambda: own.register("", side_effect), "name"),
        ("register name 42", lambda: own.register(42, side_effect), "name"),
        ("register 'zoo:x'", lambda: own.register("zoo:x", side_effect), "name"),
        ("register a non-callable", lambda: own.register("mine", 3), "make_model"),
        ("factory 'zoo:nothing'", lambda: own.factory("zoo:nothing"), "model"),
        ("factory 'nonexistent_pkg:f'", lambda: own.factory("nonexistent_pkg_xyz:f"), "model"),
        ("factory 'os.path'", lambda: own.factory("os.path"), "model"),
        ("factory ''", lambda: own.factory(""), "model"),
        ("factory None", lambda: own.factory(None), "model"),
        ("factory 'zoo:np' (a module)", lambda: own.factory("zoo:np"), "model"),
        ("factory '../x:f'", lambda: own.factory("../x:f"), "model"),
        ("OwnConfig width 0", lambda: own.OwnConfig(width=0), "width"),
        ("OwnConfig width 'x'", lambda: own.OwnConfig(width="x"), "width"),
        ("OwnConfig model 42", lambda: own.OwnConfig(model=42), "model"),
        ("OwnConfig roles nonsense", lambda: own.OwnConfig(roles="a=nonsense"), "roles"),
        ("OwnConfig roles no '='", lambda: own.OwnConfig(roles="justtext"), "roles"),
        ("OwnConfig parametrization 'xyz'", lambda: own.OwnConfig(parametrization="xyz"), "parametrization"),
        ("configure a dict", lambda: own.configure({"model": "zoo:resmlp"}), "config"),
        ("configure unknown model", lambda: own.configure(own.OwnConfig(model="zoo:nothing")), "model"),
        (
            "configure depth for a factory without depth",
            lambda: own.configure(own.OwnConfig(model="zoo:cnn", depth=4)),
            "depth",
        ),
        ("role_table without configure", lambda: own.role_table(own.OwnConfig(width=16, base_width=8)), "roles"),
        (
            "role_table optimizer 'lbfgs'",
            lambda: own.role_table(own.configure(own.OwnConfig(width=16, base_width=8)), "lbfgs"),
            "optimizer",
        ),
        (
            "role_table optimizer None",
            lambda: own.role_table(own.configure(own.OwnConfig(width=16, base_width=8)), None),
            "optimizer",
        ),
        (
            "role_table huge width (memory)",
            lambda: own.role_table(
                own.configure(own.OwnConfig(width=65536, base_width=8, inputs=4, outputs=2, depth=64))
            ),
            "width",
        ),
        (
            "role_table roles of another model",
            lambda: own.role_table(own.configure(own.OwnConfig(width=16, base_width=8)).replace(model="zoo:cnn")),
            "roles",
        ),
        (
            "Own huge width (memory)",
            lambda: own.Own(
                own.configure(own.OwnConfig(width=65536, base_width=8, inputs=4, outputs=2, depth=64)), rngs=nnx.Rngs(0)
            ),
            "width",
        ),
        ("Own unconfigured", lambda: own.Own(own.OwnConfig(width=16, base_width=8), rngs=nnx.Rngs(0)), "roles"),
    ]:
        bad(m, label, arg, fn)

    def registered_then_bad():
        own.register("battery_fixed", fixed)
        return own.configure(own.OwnConfig(model="battery_fixed", width=16, base_width=8))

    bad(m, "configure a registered factory whose params do not grow", "make_model", registered_then_bad)

    z = "nets.zoo"
    rngs = lambda: nnx.Rngs(0)  # noqa: E731
    for label, fn, arg in [
        ("resmlp width 0", lambda: zoo.resmlp(0, rngs()), "width"),
        ("resmlp width 'x'", lambda: zoo.resmlp("x", rngs()), "width"),
        ("resmlp width 10**7", lambda: zoo.resmlp(10**7, rngs()), "width"),
        ("resmlp rngs 0", lambda: zoo.resmlp(8, 0), "rngs"),
        ("resmlp depth -1", lambda: zoo.resmlp(8, rngs(), depth=-1), "depth"),
        ("resmlp branch nan", lambda: zoo.resmlp(8, rngs(), branch=float("nan")), "branch"),
        ("resmlp in_dim 0", lambda: zoo.resmlp(8, rngs(), in_dim=0), "in_dim"),
        ("cnn width 0", lambda: zoo.cnn(0, rngs()), "width"),
        ("cnn in_dim 63 (not a square image)", lambda: zoo.cnn(8, rngs(), in_dim=63), "in_dim"),
        ("cnn in_dim 'x'", lambda: zoo.cnn(8, rngs(), in_dim="x"), "in_dim"),
        ("cnn out_dim 0", lambda: zoo.cnn(8, rngs(), out_dim=0), "out_dim"),
        ("transformer width 6 (not multiple of heads)", lambda: zoo.transformer(6, rngs()), "width"),
        ("transformer width 0", lambda: zoo.transformer(0, rngs()), "width"),
        ("transformer width 2.5", lambda: zoo.transformer(2.5, rngs()), "width"),
        ("transformer depth 0", lambda: zoo.transformer(8, rngs(), depth=0), "depth"),
        ("transformer out_dim -1", lambda: zoo.transformer(8, rngs(), out_dim=-1), "out_dim"),
        ("transformer width 10**6 (memory)", lambda: zoo.transformer(2**20, rngs()), "width"),
    ]:
        bad(z, label, arg, fn)

    def resmlp_forward():
        net = zoo.resmlp(8, rngs(), in_dim=3, out_dim=2)
        return net(jnp.ones((4, 3)))

    good(z, "resmlp forward", resmlp_forward, lambda y: y.shape == (4, 2) and _finite(y))

    def transformer_forward():
        net = zoo.transformer(8, rngs())
        return net(jnp.zeros((2, 5), jnp.int32))

    good(z, "transformer forward on tokens", transformer_forward, _finite)


# ================================================================ workbench.data.sources


def _sources_cases() -> None:
    import numpy as np

    from workbench.data import sources

    m = "data.sources"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3))
    y = np.arange(20) % 2
    for label, fn, arg in [
        ("x None", lambda: sources.from_arrays(None, y), "x"),
        ("x string", lambda: sources.from_arrays("data.csv", y), "x"),
        ("x empty", lambda: sources.from_arrays(np.zeros((0, 3)), np.zeros(0, int)), "x"),
        ("x (N, 0)", lambda: sources.from_arrays(np.zeros((20, 0)), y), "x"),
        ("x nan", lambda: sources.from_arrays(np.where(x > 1, np.nan, x), y), "x"),
        ("x inf", lambda: sources.from_arrays(np.where(x > 1, np.inf, x), y), "x"),
        ("x 1e300 (float32 overflow)", lambda: sources.from_arrays(x * 1e300, y), "x"),
        ("x complex", lambda: sources.from_arrays(x * 1j, y), "x"),
        ("x ragged list", lambda: sources.from_arrays([[1.0, 2.0], [3.0]], [0, 1]), "x"),
        ("x strings array", lambda: sources.from_arrays(np.array([["a", "b"]] * 4), [0, 1, 0, 1]), "x"),
        ("x object array", lambda: sources.from_arrays(np.array([[1, None]] * 4, dtype=object), [0, 1, 0, 1]), "x"),
        ("x constant", lambda: sources.from_arrays(np.ones((20, 3)), y), "x"),
        ("x one point", lambda: sources.from_arrays(np.ones((1, 3)), [0]), "x"),
        ("x 5-D", lambda: sources.from_arrays(np.ones((4, 1, 1, 1, 2)), [0, 1, 0, 1]), "x"),
        ("x bool", lambda: sources.from_arrays(x > 0, y), "x"),
        ("y one class", lambda: sources.from_arrays(x, np.zeros(20, int)), "y"),
        ("y wrong length", lambda: sources.from_arrays(x, np.arange(19) % 2), "y"),
        ("y negative labels", lambda: sources.from_arrays(x, np.where(y == 0, -1, 1)), "y"),
        ("y nan", lambda: sources.from_arrays(x, np.where(y == 0, np.nan, 1.0)), "y"),
        ("y 1e300 (float32 overflow)", lambda: sources.from_arrays(x, np.full(20, 1e300) * (1 + y)), "y"),
        ("y strings", lambda: sources.from_arrays(x, np.array(["cat", "dog"] * 10)), "y"),
        ("y (N, 3) ints", lambda: sources.from_arrays(x, np.ones((20, 3), int)), "y"),
        ("y 3-D", lambda: sources.from_arrays(x, np.ones((20, 1, 1))), "y"),
        ("y None", lambda: sources.from_arrays(x, None), "y"),
        ("y labels above n_classes", lambda: sources.from_arrays(x, np.arange(20) % 5, n_classes=3), "y"),
        ("y floats with n_classes", lambda: sources.from_arrays(x, y + 0.5, n_classes=2), ("y", "n_classes")),
        ("n_classes -1", lambda: sources.from_arrays(x, y, n_classes=-1), "n_classes"),
        ("n_classes 1", lambda: sources.from_arrays(x, np.zeros(20, int), n_classes=1), ("y", "n_classes")),
        ("test_fraction 0", lambda: sources.from_arrays(x, y, test_fraction=0.0), "test_fraction"),
        ("test_fraction 1", lambda: sources.from_arrays(x, y, test_fraction=1.0), "test_fraction"),
        ("test_fraction nan", lambda: sources.from_arrays(x, y, test_fraction=float("nan")), "test_fraction"),
        ("test_fraction 0.001 of 20 points", lambda: sources.from_arrays(x, y, test_fraction=0.001), "test_fraction"),
        ("seed -1", lambda: sources.from_arrays(x, y, seed=-1), "seed"),
        ("seed 'a'", lambda: sources.from_arrays(x, y, seed="a"), "seed"),
        ("huge x (memory)", lambda: sources.from_arrays(np.broadcast_to(np.float32(1.0), (10**6, 10**4)), y), "x"),
        ("load None", lambda: sources.load(None), "data"),
        ("load ''", lambda: sources.load(""), "data"),
        ("load 'sklearn:mnist'", lambda: sources.load("sklearn:mnist"), "data"),
        ("load 'modular:abc'", lambda: sources.load("modular:abc"), "data"),
        ("load 'modular:0'", lambda: sources.load("modular:0"), ("data", "p")),
        ("load 'modular:1'", lambda: sources.load("modular:1"), ("data", "p")),
        ("load 'modular:1000000'", lambda: sources.load("modular:1000000"), ("data", "p", "memory")),
        ("load 'modular:-5'", lambda: sources.load("modular:-5"), ("data", "p")),
        ("load missing .csv", lambda: sources.load("/nonexistent/data.csv"), "data"),
        ("load a directory named .npz", lambda: sources.load(str(_dir_named("d.npz"))), "data"),
        ("load 'iris' (no prefix)", lambda: sources.load("iris"), "data"),
        ("load test_fraction 2", lambda: sources.load("sklearn:iris", test_fraction=2.0), "test_fraction"),
        ("register name with ':'", lambda: sources.register("a:b", x, y), "name"),
        ("register name 'x.csv'", lambda: sources.register("x.csv", x, y), "name"),
        ("register name None", lambda: sources.register(None, x, y), "name"),
        ("register constant x", lambda: sources.register("mine", np.ones((20, 3)), y), "x"),
    ]:
        bad(m, label, arg, fn)
    good(
        m,
        "duplicated points",
        lambda: sources.from_arrays(np.repeat(x[:2], 10, 0), y),
        lambda d: d.x_train.shape[1] == 3,
    )
    good(
        m,
        "integer token inputs",
        lambda: sources.from_arrays(np.arange(40).reshape(20, 2), y),
        lambda d: d.x_train.dtype.kind == "i",
    )
    good(m, "regression targets (N,)", lambda: sources.from_arrays(x, x[:, 0]), lambda d: d.y_train.ndim == 2)
    good(m, "labels with a gap (0 and 5)", lambda: sources.from_arrays(x, y * 5), lambda d: d.n_classes >= 2)
    good(
        m,
        "images (N, 4, 4)",
        lambda: sources.from_arrays(rng.normal(size=(20, 4, 4)), y),
        lambda d: d.x_train.shape[1] == 16,
    )

    # files
    def write(name: str, text: str | None = None, **arrays: Any) -> str:
        path = _tmp() / name
        if text is not None:
            path.write_text(text)
        else:
            np.savez(path, **arrays)
        return str(path)

    for label, make, arg in [
        (".npz missing y", lambda: write("a.npz", x=x), "data"),
        (".npz with only x_train, y_train", lambda: write("a.npz", x_train=x, y_train=y), "data"),
        (
            ".npz object array",
            lambda: write("a.npz", x=np.array([[1, None]] * 4, dtype=object), y=[0, 1, 0, 1]),
            ("data", "x"),
        ),
        (".npz x nan", lambda: write("a.npz", x=np.where(x > 1, np.nan, x), y=y), "x"),
        (
            ".npz split with mismatched feature sizes",
            lambda: write("a.npz", x_train=x, y_train=y, x_test=rng.normal(size=(5, 4)), y_test=np.arange(5) % 2),
            ("x_test", "x"),
        ),
        (
            ".npz split test labels beyond train classes",
            lambda: write("a.npz", x_train=x, y_train=y, x_test=x[:5], y_test=np.arange(5)),
            ("y_test", "y"),
        ),
        (
            ".npz split regression train, class test",
            lambda: write("a.npz", x_train=x, y_train=x[:, 0], x_test=x[:5], y_test=np.arange(5) % 2),
            ("y_test", "y"),
        ),
        (
            ".npz split empty test",
            lambda: write("a.npz", x_train=x, y_train=y, x_test=np.zeros((0, 3)), y_test=np.zeros(0, int)),
            ("x_test", "x"),
        ),
        (".npz not a zip", lambda: write("a.npz", "this is not a zip file"), "data"),
        (".npz empty file", lambda: write("a.npz", ""), "data"),
        (".csv strings", lambda: write("a.csv", "a,b,label\nx,y,cat\nz,w,dog\nq,r,cat\n"), "data"),
        (".csv ragged", lambda: write("a.csv", "1,2,0\n3,1\n5,6,1\n"), "data"),
        (".csv nan feature", lambda: write("a.csv", "1,2,0\nnan,4,1\n5,6,1\n7,1,0\n"), ("x", "data")),
        (".csv nan label", lambda: write("a.csv", "1,2,0\n3,4,nan\n5,6,1\n7,1,0\n"), ("y", "data")),
        (".csv one column", lambda: write("a.csv", "1\n2\n3\n"), "data"),
        (".csv empty", lambda: write("a.csv", ""), "data"),
        (".csv header only", lambda: write("a.csv", "a,b,label\n"), "data"),
        (".csv two header rows", lambda: write("a.csv", "a,b,label\nc,d,e\n1,2,0\n3,4,1\n5,6,0\n"), "data"),
        (".csv semicolons", lambda: write("a.csv", "1;2;0\n3;4;1\n5;6;0\n"), "data"),
        (".csv one row", lambda: write("a.csv", "1,2,0\n"), ("x", "data")),
        (".csv constant features", lambda: write("a.csv", "1,1,0\n1,1,1\n1,1,0\n1,1,1\n"), "x"),
        (".csv text with .csv name but binary", lambda: write("a.csv", "\x00\x01\x02\xff"), "data"),
    ]:
        bad(m, f"load {label}", arg, lambda make=make: sources.load(make()))
    good(
        m,
        "load .csv with -1/1 labels (numbered 0.. in sorted order)",
        lambda: sources.load(write("a.csv", "".join(f"{i},{i * 2 % 5},{1 if i % 2 else -1}\n" for i in range(12)))),
        lambda d: d.n_classes == 2,
    )
    good(
        m,
        "load .csv with a header",
        lambda: sources.load(write("a.csv", "a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(12)))),
        lambda d: d.n_classes == 2,
    )
    good(
        m,
        "load .csv regression",
        lambda: sources.load(write("a.csv", "".join(f"{i},{i % 3},{i * 0.37:.3f}\n" for i in range(200)))),
        lambda d: d.n_classes == 0,
    )


def _dir_named(name: str) -> Path:
    path = _tmp() / name
    path.mkdir()
    return path


# ================================================================ workbench.nets.subspace


def _subspace_cases() -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from workbench.nets import subspace as sub
    from workbench.nets.models import MLPConfig, build_mlp

    m = "nets.subspace"
    mlp = lambda: build_mlp(MLPConfig(in_dim=3, out_dim=2, width=8, depth=1))  # noqa: E731

    class WithStats(nnx.Module):
        def __init__(self):
            self.lin = nnx.Linear(3, 4, rngs=nnx.Rngs(0))
            self.bn = nnx.BatchNorm(4, rngs=nnx.Rngs(0))

        def __call__(self, x):
            return self.bn(self.lin(x))

    class NanParams(nnx.Module):
        def __init__(self):
            self.w = nnx.Param(jnp.full((3, 2), jnp.nan))

        def __call__(self, x):
            return x @ self.w[...]

    class IntParams(nnx.Module):
        def __init__(self):
            self.w = nnx.Param(jnp.arange(6).reshape(3, 2))

        def __call__(self, x):
            return x @ self.w[...]

    class NoParams(nnx.Module):
        def __call__(self, x):
            return x

    for label, fn, arg in [
        ("model a function", lambda: sub.subspace(np.tanh, 2), "model"),
        ("d 0", lambda: sub.subspace(mlp(), 0), "d"),
        ("d -1", lambda: sub.subspace(mlp(), -1), "d"),
        ("d 2.5", lambda: sub.subspace(mlp(), 2.5), "d"),
        ("d > D", lambda: sub.subspace(mlp(), 10_000), "d"),
        ("d nan", lambda: sub.subspace(mlp(), float("nan")), "d"),
        ("kind 'gaussian'", lambda: sub.subspace(mlp(), 2, kind="gaussian"), "kind"),
        ("layout 'local'", lambda: sub.subspace(mlp(), 2, layout="local"), "layout"),
        ("size < d", lambda: sub.subspace(mlp(), 4, size=2), "size"),
        ("size > D", lambda: sub.subspace(mlp(), 4, size=10_000), "size"),
        ("seed -1", lambda: sub.subspace(mlp(), 2, seed=-1), "seed"),
        ("model with BatchNorm stats", lambda: sub.subspace(WithStats(), 2), "model"),
        ("model without params", lambda: sub.subspace(NoParams(), 1), "model"),
        ("model with NaN params", lambda: sub.subspace(NanParams(), 2), "model"),
        ("model with integer params", lambda: sub.subspace(IntParams(), 2), "model"),
        (
            "dense d huge (memory)",
            lambda: sub.subspace(
                build_mlp(MLPConfig(in_dim=64, out_dim=10, width=2048, depth=2)), 400_000, kind="dense"
            ),
            ("subspace", "d"),
        ),
        (
            "sparse layer layout, size D (time)",
            lambda: sub.subspace(
                build_mlp(MLPConfig(in_dim=64, out_dim=10, width=512, depth=8)),
                1_000_000,
                kind="sparse",
                layout="layer",
            ),
            ("subspace", "d", "size"),
        ),
        (
            "fastfood layer layout, many tensors x size",
            lambda: sub.subspace(
                build_mlp(MLPConfig(in_dim=4, out_dim=2, width=1024, depth=64)),
                60_000_000,
                kind="fastfood",
                layout="layer",
            ),
            ("subspace", "d", "size"),
        ),
        ("with_dim of a plain state", lambda: sub.with_dim(nnx.state(mlp()), 2), "params"),
        ("with_dim d > size", lambda: sub.with_dim(nnx.state(sub.subspace(mlp(), 2, size=4)), 5), "d"),
        ("with_dim d 0", lambda: sub.with_dim(nnx.state(sub.subspace(mlp(), 2, size=4)), 0), "d"),
        ("with_dim of a dict", lambda: sub.with_dim({"mask": 1}, 2), "params"),
        ("projection_bytes kind 'x'", lambda: sub.projection_bytes(10, 2, "x"), "kind"),
        ("projection_bytes n_params 0", lambda: sub.projection_bytes(0, 2, "dense"), "n_params"),
        ("SubspaceConfig d > n_params", lambda: sub.SubspaceConfig(d=5, size=5, n_params=3), "d"),
        ("SubspaceConfig size < d", lambda: sub.SubspaceConfig(d=5, size=2, n_params=30), "size"),
    ]:
        bad(m, label, arg, fn)
    for kind in sub.KINDS:
        for layout in sub.LAYOUTS:
            good(
                m,
                f"{kind}/{layout} forward at theta_d = 0 equals the model",
                lambda kind=kind, layout=layout: _subspace_equal(sub, mlp, kind, layout),
                bool,
            )

    def unit_norm():
        s = sub.subspace(mlp(), 3, kind="dense")
        e = jnp.zeros(3).at[0].set(1.0)
        return float(jnp.linalg.norm(s.offset(e)))

    good(m, "dense column has unit norm", unit_norm, lambda v: abs(v - 1.0) < 1e-4)
    good(
        m,
        "d = D (every direction)",
        lambda: sub.subspace(
            mlp(), sum(int(np.size(a)) for a in jax.tree.leaves(nnx.state(mlp(), nnx.Param))), kind="dense"
        ),
        lambda s: True,
    )


def _subspace_equal(sub: Any, mlp: Callable, kind: str, layout: str) -> bool:
    import numpy as np

    model = mlp()
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    want = np.asarray(model(x))
    got = np.asarray(sub.subspace(model, 2, kind=kind, layout=layout)(x))
    return bool(np.allclose(want, got, atol=1e-5))


# ================================================================ workbench.core.scaling / workbench.runs.scaling


def _scaling_cases() -> None:
    import numpy as np

    from workbench.core import scaling

    m = "core.scaling"
    n = np.array([64.0, 128, 256, 512, 1024, 2048])
    y = 3 * n**-0.5 + 0.01
    fit = lambda *a, **k: scaling.fit_scaling(*a, resamples=50, **k)  # noqa: E731
    for label, fn, arg in [
        ("n and y of different lengths", lambda: fit(n, y[:5]), ("n", "y")),
        ("n 2-D", lambda: fit(n[None], y[None]), "n"),
        ("n empty", lambda: fit(np.array([]), np.array([])), "n"),
        ("n with a zero", lambda: fit(np.r_[0.0, n[1:]], y), "n"),
        ("n negative", lambda: fit(-n, y), "n"),
        ("n nan", lambda: fit(np.r_[np.nan, n[1:]], y), "n"),
        ("n inf", lambda: fit(np.r_[np.inf, n[1:]], y), "n"),
        ("y zero", lambda: fit(n, np.r_[0.0, y[1:]]), "y"),
        ("y negative", lambda: fit(n, -y), "y"),
        ("y nan", lambda: fit(n, np.r_[np.nan, y[1:]]), "y"),
        ("y strings", lambda: fit(n, np.array(["a"] * 6)), "y"),
        ("three sizes", lambda: fit(n[:3], y[:3]), "n"),
        ("one size repeated", lambda: fit(np.full(6, 64.0), y), "n"),
        ("level 1.0", lambda: fit(n, y, level=1.0), "level"),
        ("level 0.3", lambda: fit(n, y, level=0.3), "level"),
        ("level nan", lambda: fit(n, y, level=float("nan")), "level"),
        ("resamples 0", lambda: scaling.fit_scaling(n, y, resamples=0), "resamples"),
        ("resamples 1e9", lambda: scaling.fit_scaling(n, y, resamples=10**9), "resamples"),
        ("guess -1", lambda: fit(n, y, guess=-1.0), "guess"),
        ("guess nan", lambda: fit(n, y, guess=float("nan")), "guess"),
        ("seed -1", lambda: fit(n, y, seed=-1), "seed"),
        ("n 1e308 (overflow)", lambda: fit(n * 1e305, y), ("n", "y")),
        (
            "100k resamples of 200k points (memory)",
            lambda: scaling.fit_scaling(np.tile(n, 40_000), np.tile(y, 40_000), resamples=100_000),
            ("resamples", "memory", "n"),
        ),
        ("list of strings", lambda: fit(["64", "128", "256", "512"], [1, 2, 3, 4]), "n"),
    ]:
        bad(m, label, arg, fn)

    def in_domain(f: Any) -> bool:
        lo_ok = all(lo <= hi for lo, hi in f.intervals.values())
        return bool(
            np.isfinite([f.a, f.alpha, f.c]).all()
            and f.alpha > 0
            and f.c >= 0
            and f.a > 0
            and lo_ok
            and np.isfinite(f.rms)
            and not np.isnan(f.n_irreducible)
        )

    good(m, "exact law recovered", lambda: fit(n, y), lambda f: in_domain(f) and abs(f.alpha - 0.5) < 1e-3)
    good(m, "pure power law (c = 0)", lambda: fit(n, 3 * n**-0.5), lambda f: in_domain(f) and f.c < 1e-6)
    good(m, "constant metric", lambda: fit(n, np.full(6, 0.3)), in_domain, "y")
    good(m, "metric growing with n", lambda: fit(n, 0.1 * n**0.3), in_domain, "y")
    good(m, "four points, four sizes", lambda: fit(n[:4], y[:4]), in_domain)
    good(
        m,
        "noisy repeats",
        lambda: fit(np.repeat(n, 3), np.repeat(y, 3) * np.exp(np.random.default_rng(0).normal(0, 0.3, 18))),
        in_domain,
    )
    good(
        m,
        "subnormal metric 1e-318 (the fit is scale-free)",
        lambda: fit(n, y * 1e-318),
        lambda f: in_domain(f) and abs(f.alpha - 0.5) < 1e-3,
    )
    good(m, "tiny metric 1e-200", lambda: fit(n, y * 1e-200), in_domain, "y")
    good(m, "n below one", lambda: fit(n / 1e4, y), in_domain)
    good(m, "guess below c: n_small inf", lambda: fit(n, y, guess=0.001), lambda f: in_domain(f))
    good(m, "band at n = 0", lambda: fit(n, y).band(np.array([0.0, 1.0])), _finite, "n")
    good(m, "predict at negative n", lambda: fit(n, y).predict(-1.0), _finite, "n")

    _runs_scaling_cases()


def _sweep_db(rows: list[tuple[dict, dict]], grid: dict, *, status: str = "finished") -> Any:
    """A run database with one sweep: each row (config, last metrics)."""
    from workbench.core.experiment import Record
    from workbench.runs.rundb import RunDB

    db = RunDB(_tmp() / "runs.sqlite")
    sweep_id = db.sweep("example", {}, grid, [0], False)
    for config, metrics in rows:
        db.save_point(sweep_id, "example", config, [Record(1, 1, "steps", metrics, status)])
    return db


def _runs_scaling_cases() -> None:
    import math

    from workbench.runs import scaling as rs

    m = "runs.scaling"
    sizes = [64, 128, 256, 512, 1024]
    law = lambda n: 3 * n**-0.5 + 0.01  # noqa: E731
    good_rows = lambda: [({"n": s, "seed": 0}, {"loss": law(s)}) for s in sizes]  # noqa: E731
    grid = {"n": sizes}

    def db_of(rows: list, g: dict = grid, **kw: Any) -> Any:
        return _sweep_db(rows, g, **kw)

    missing = lambda: db_of(
        [
            ({"n": s, "seed": 0}, {"loss": law(s)} if s != 256 else {"acc": 0.5})  # noqa: E731
            for s in sizes
        ]
    )
    for label, fn, arg in [
        ("a sweep missing a metric in one run", lambda: rs.fit_sweep(missing(), None, "loss", store=False), "metric"),
        ("metric not held at all", lambda: rs.fit_sweep(db_of(good_rows()), None, "accuracy", store=False), "metric"),
        (
            "metric NaN in a run",
            lambda: rs.fit_sweep(
                db_of([({"n": s, "seed": 0}, {"loss": law(s) if s != 128 else math.nan}) for s in sizes]),
                None,
                "loss",
                store=False,
            ),
            "metric",
        ),
        (
            "metric a string",
            lambda: rs.fit_sweep(
                db_of([({"n": s, "seed": 0}, {"loss": "low"}) for s in sizes]), None, "loss", store=False
            ),
            "metric",
        ),
        (
            "metric negative",
            lambda: rs.fit_sweep(
                db_of([({"n": s, "seed": 0}, {"loss": -law(s)}) for s in sizes]), None, "loss", store=False
            ),
            "metric",
        ),
        ("metric name 42", lambda: rs.fit_sweep(db_of(good_rows()), None, 42, store=False), "metric"),
        ("axis not a field", lambda: rs.fit_sweep(db_of(good_rows()), None, "loss", "width", store=False), "axis"),
        (
            "axis a string field",
            lambda: rs.fit_sweep(
                db_of([({"n": s, "name": f"r{s}", "seed": 0}, {"loss": law(s)}) for s in sizes]),
                None,
                "loss",
                "name",
                store=False,
            ),
            "axis",
        ),
        (
            "axis zero sizes",
            lambda: rs.fit_sweep(
                db_of([({"n": s - 64, "seed": 0}, {"loss": law(s)}) for s in sizes]), None, "loss", store=False
            ),
            "axis",
        ),
        (
            "two fields vary",
            lambda: rs.fit_sweep(
                db_of([({"n": s, "lr": 1 / s, "seed": 0}, {"loss": law(s)}) for s in sizes], {"n": sizes, "lr": [1]}),
                None,
                "loss",
                "n",
                store=False,
            ),
            "axis",
        ),
        ("three sizes only", lambda: rs.fit_sweep(db_of(good_rows()[:3]), None, "loss", store=False), "axis"),
        ("sweep_id 99", lambda: rs.fit_sweep(db_of(good_rows()), 99, "loss", store=False), "sweep_id"),
        ("sweep_id '1'", lambda: rs.fit_sweep(db_of(good_rows()), "1", "loss", store=False), "sweep_id"),
        ("sweep_id True", lambda: rs.fit_sweep(db_of(good_rows()), True, "loss", store=False), "sweep_id"),
        ("sweep_id 1.0", lambda: rs.fit_sweep(db_of(good_rows()), 1.0, "loss", store=False), "sweep_id"),
        (
            "no finished runs",
            lambda: rs.fit_sweep(db_of(good_rows(), status="error"), None, "loss", store=False),
            "sweep_id",
        ),
        ("empty database", lambda: rs.fit_sweep(_sweep_db_empty(), None, "loss", store=False), "sweep_id"),
        ("db path missing", lambda: rs.fit_sweep(_missing(), None, "loss", store=False), DB),
        ("db a text file", lambda: rs.fit_sweep(_text_file("runs.sqlite", "hello"), None, "loss", store=False), DB),
        ("db a directory", lambda: rs.fit_sweep(str(_tmp()), None, "loss", store=False), DB),
        ("db 42", lambda: rs.fit_sweep(42, None, "loss", store=False), "db"),
        ("level 2", lambda: rs.fit_sweep(db_of(good_rows()), None, "loss", level=2.0, store=False), "level"),
        ("resamples 5", lambda: rs.fit_sweep(db_of(good_rows()), None, "loss", resamples=5, store=False), "resamples"),
        ("held of a missing db", lambda: rs.held(_missing()), DB),
        ("held sweep_id -1", lambda: rs.held(db_of(good_rows()), -1), "sweep_id"),
        ("sweep_points axis 3", lambda: rs.sweep_points(db_of(good_rows()), None, "loss", 3), "axis"),
        ("summary of a dict", lambda: rs.summary({}, None), "fit"),
    ]:
        bad(m, label, arg, fn)
    good(
        m,
        "fit a good sweep",
        lambda: rs.fit_sweep(db_of(good_rows()), None, "loss", resamples=50, store=False)[0],
        lambda f: abs(f.alpha - 0.5) < 1e-3,
    )
    good(m, "fit and store, then fits()", lambda: _fit_and_list(db_of(good_rows())), lambda fits: len(fits) == 1)
    good(
        m,
        "sweep with a diverged (inf) run but the metric finite in others",
        lambda: rs.held(db_of(good_rows())),
        lambda h: h[1] == ["loss"],
    )

    # the command line
    for label, argv_fn, arg in [
        ("runs fit: missing metric", lambda: ["runs", "fit", "--db", _path(missing()), "--metric", "loss"], "metric"),
        (
            "runs fit: no such sweep",
            lambda: ["runs", "fit", "--db", _path(db_of(good_rows())), "--sweep", "7", "--metric", "loss"],
            "sweep",
        ),
        (
            "runs fit: resamples -3",
            lambda: ["runs", "fit", "--db", _path(db_of(good_rows())), "--metric", "loss", "--resamples", "-3"],
            "resamples",
        ),
        (
            "runs fit: level nan",
            lambda: ["runs", "fit", "--db", _path(db_of(good_rows())), "--metric", "loss", "--level", "nan"],
            "level",
        ),
        (
            "runs fit: guess -1",
            lambda: ["runs", "fit", "--db", _path(db_of(good_rows())), "--metric", "loss", "--guess", "-1"],
            "guess",
        ),
        (
            "runs fit: axis unknown",
            lambda: ["runs", "fit", "--db", _path(db_of(good_rows())), "--metric", "loss", "--axis", "width"],
            "axis",
        ),
        ("runs fit: db missing (and nothing created)", lambda: ["runs", "fit", "--db", _missing()], DB),
        (
            "runs fit: database is a text file",
            lambda: ["runs", "fit", "--db", _text_file("r.sqlite", "x" * 100)],
            ("db", "database"),
        ),
    ]:
        bad(m, f"cli {label}", arg, lambda argv_fn=argv_fn: _cli(argv_fn()))
    good(
        m,
        "cli runs fits: a garbled stored fit is skipped and said",
        lambda: _cli(["runs", "fits", "--db", _garbled_fit(db_of(good_rows()))]),
        lambda out: "skipped the fit" in out,
    )
    good(
        m,
        "cli runs fit then fits",
        lambda: _cli(["runs", "fit", "--db", _path(db_of(good_rows())), "--metric", "loss", "--resamples", "50"]),
        lambda out: "alpha" in out,
    )


DB = ("db", "runs database")


def _missing() -> str:
    """A database path in a folder that does not exist (a typo); `_cli` checks that nothing was created there."""
    return str(_tmp() / "typo" / "runs.sqlite")


def _path(db: Any) -> str:
    return str(db.path)


def _sweep_db_empty() -> Any:
    from workbench.runs.rundb import RunDB

    return RunDB(_tmp() / "runs.sqlite")


def _text_file(name: str, text: str) -> str:
    path = _tmp() / name
    path.write_text(text)
    return str(path)


def _fit_and_list(db: Any) -> list:
    from workbench.runs import scaling as rs

    rs.fit_sweep(db, None, "loss", resamples=50)
    return db.fits()


def _garbled_fit(db: Any) -> str:
    import sqlite3

    from workbench.runs import scaling as rs

    rs.fit_sweep(db, None, "loss", resamples=50)
    with sqlite3.connect(db.path) as con:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        table = next(t for t in tables if "fit" in t)
        cols = [r[1] for r in con.execute(f"pragma table_info({table})")]
        col = next(c for c in cols if c in ("fit", "body", "json", "data"))
        con.execute(f"update {table} set {col} = ?", ('{"a": 1}',))
    return str(db.path)


class CliError(ValueError):
    """`python -m workbench` ended with a status other than 0; its message is what it printed to stderr."""


def _cli(argv: list[str]) -> str:
    """stdout of `python -m workbench ARGV` run in this process; CliError with its stderr on a refusal (status 2),
    the exception itself for anything that escapes main."""
    import contextlib
    import io

    from workbench.runs.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse
            rc = e.code
    if "--db" in argv:
        folder = Path(argv[argv.index("--db") + 1]).parent
        if rc != 0 and folder.name == "typo" and folder.exists():
            raise RuntimeError(f"a refused command created {folder}")
    if rc != 0:
        text = err.getvalue().strip()
        raise CliError(
            text
            if text.startswith(("error:", "usage:")) and len(text.splitlines()) <= 4
            else f"(not a one-line refusal) {text[-300:]}"
        )
    return out.getvalue() + err.getvalue()


# ======================================================== workbench.theory.dkm / experiments.deep_kernel_machine


def _dkm_cases() -> None:
    import numpy as np
    from flax import nnx

    from workbench.theory import dkm

    m = "theory.dkm"
    rng = np.random.default_rng(0)
    cfg = dkm.DKMConfig(in_dim=2, inducing=4, layers=1, out_dim=1)
    cat = dkm.DKMConfig(in_dim=2, inducing=4, layers=1, out_dim=2, likelihood="categorical")
    z = rng.normal(size=(4, 2))
    x, y = rng.normal(size=(6, 2)), rng.normal(size=(6, 1))
    split = lambda c=cfg, zz=z, nu=1.0: nnx.split(dkm.build_dkm(c, zz, nu), nnx.Param)  # noqa: E731

    def other_params():
        g, _ = split()
        _, p = split(dkm.DKMConfig(in_dim=2, inducing=5, layers=1, out_dim=1), rng.normal(size=(5, 2)))
        return dkm.loss(g, p, x, y)

    def nan_params():
        import jax

        g, p = split()
        return dkm.loss(g, jax.tree.map(lambda a: a * np.nan, p), x, y)

    for label, fn, arg in [
        ("DKMConfig inducing 0", lambda: dkm.DKMConfig(inducing=0), "inducing"),
        ("DKMConfig likelihood 'poisson'", lambda: dkm.DKMConfig(likelihood="poisson"), "likelihood"),
        ("DKMConfig noise 0", lambda: dkm.DKMConfig(noise=0.0), "noise"),
        ("DKMConfig activation 'nope'", lambda: dkm.DKMConfig(activation="nope"), "activation"),
        ("build z wrong shape", lambda: dkm.build_dkm(cfg, rng.normal(size=(3, 2)), 1.0), "z"),
        ("build z wrong in_dim", lambda: dkm.build_dkm(cfg, rng.normal(size=(4, 3)), 1.0), "z"),
        ("build z nan", lambda: dkm.build_dkm(cfg, np.full((4, 2), np.nan), 1.0), "z"),
        ("build z 1-D", lambda: dkm.build_dkm(cfg, np.ones(4), 1.0), "z"),
        ("build nu 0", lambda: dkm.build_dkm(cfg, z, 0.0), "nu"),
        ("build nu -1", lambda: dkm.build_dkm(cfg, z, -1.0), "nu"),
        ("build nu inf", lambda: dkm.build_dkm(cfg, z, float("inf")), "nu"),
        ("build config a dict", lambda: dkm.build_dkm({"in_dim": 2}, z, 1.0), "config"),
        ("build z zeros (zero Gram)", lambda: dkm.loss(*split(zz=np.zeros((4, 2))), x, y), "z"),
        ("loss x wrong width", lambda: dkm.loss(*split(), rng.normal(size=(6, 3)), y), "x"),
        ("loss y wrong rows", lambda: dkm.loss(*split(), x, y[:5]), ("y", "n")),
        ("loss y wrong columns", lambda: dkm.loss(*split(), x, rng.normal(size=(6, 2))), "y"),
        ("loss y 1-D", lambda: dkm.loss(*split(), x, y[:, 0]), "y"),
        ("loss x nan", lambda: dkm.loss(*split(), np.full((6, 2), np.nan), y), "x"),
        ("loss x empty", lambda: dkm.loss(*split(), np.zeros((0, 2)), np.zeros((0, 1))), "x"),
        ("loss params of another DKM", other_params, "params"),
        ("loss params with NaN", nan_params, "params"),
        (
            "loss graphdef of a Linear",
            lambda: dkm.loss(*nnx.split(nnx.Linear(2, 1, rngs=nnx.Rngs(0)), nnx.Param), x, y),
            ("graphdef", "params"),
        ),
        ("loss params swapped", lambda: dkm.loss(split()[1], split()[0], x, y), ("graphdef", "params")),
        ("categorical y not one-hot", lambda: dkm.loss(*split(cat), x, rng.normal(size=(6, 2))), "y"),
        ("categorical y labels (6, 1)", lambda: dkm.loss(*split(cat), x, np.arange(6)[:, None] % 2), "y"),
        ("predict x_test wrong width", lambda: dkm.predict(*split(), x, y, np.ones((3, 5))), "x_test"),
        ("predict x_test nan", lambda: dkm.predict(*split(), x, y, np.full((3, 2), np.nan)), "x_test"),
        ("predict nngp 'yes'", lambda: dkm.predict(*split(), x, y, x, nngp="yes"), "nngp"),
        (
            "predict huge x_test (memory)",
            lambda: dkm.predict(
                *split(dkm.DKMConfig(in_dim=2, inducing=512, layers=2, out_dim=1), rng.normal(size=(512, 2))),
                x,
                y,
                np.ones((3_000_000, 2)),
            ),
            ("x_test", "memory"),
        ),
        (
            "loss huge x (memory)",
            lambda: dkm.loss(
                *split(dkm.DKMConfig(in_dim=2, inducing=512, layers=2), rng.normal(size=(512, 2))),
                np.ones((3_000_000, 2)),
                np.ones((3_000_000, 1)),
            ),
            ("x", "memory"),
        ),
        ("grams of a dict", lambda: dkm.grams({}, {}), "graphdef"),
    ]:
        bad(m, label, arg, fn)
    good(  # the first loss call of the process: it compiles (about 20 s on a loaded machine)
        m,
        "z all duplicated (the jitter regularises)",
        lambda: dkm.loss(*split(zz=np.ones((4, 2))), x, y),
        _finite,
        timeout=RUN,
    )
    bad(
        m,
        "z duplicated with jitter 0",
        "z",
        lambda: dkm.build_dkm(dkm.DKMConfig(in_dim=2, inducing=4, layers=1, jitter=0.0), np.ones((4, 2)), 1.0),
    )
    good(m, "loss at NNGP init", lambda: dkm.loss(*split(), x, y), _finite)
    good(
        m,
        "predict variance non-negative",
        lambda: dkm.predict(*split(), x, y, rng.normal(size=(5, 2))),
        lambda p: _finite(p.mean) and bool(np.all(np.asarray(p.var) >= -1e-5)),
    )
    good(
        m,
        "predict categorical probabilities sum to 1",
        lambda: dkm.predict(*split(cat), x, np.eye(2)[np.arange(6) % 2], rng.normal(size=(5, 2))),
        lambda p: bool(np.allclose(np.asarray(p.probs).sum(-1), 1, atol=1e-4)),
    )
    good(m, "duplicated training points", lambda: dkm.loss(*split(), np.repeat(x[:1], 6, 0), y), _finite, "x")
    good(m, "constant targets", lambda: dkm.loss(*split(), x, np.ones((6, 1))), _finite)
    good(
        m,
        "grams symmetric",
        lambda: dkm.grams(*split()),
        lambda g: bool(np.allclose(np.asarray(g[0]), np.swapaxes(np.asarray(g[0]), -1, -2), atol=1e-5)),
    )
    good(m, "nu huge 1e6", lambda: dkm.loss(*split(nu=1e6), x, y), _finite, "nu")

    e = "exp.deep_kernel_machine"
    from workbench.experiments import deep_kernel_machine as dkx

    for label, fn, arg in [
        ("inducing > n_train", lambda: dkx.Config(n_train=8, inducing=16), "inducing"),
        ("digits n_train 5000", lambda: dkx.Config(task="digits", n_train=4096), "n_train"),
        ("task 'mnist'", lambda: dkx.Config(task="mnist"), "task"),
        ("nus 100", lambda: dkx.Config(nus=100), "nus"),
        ("lr nan", lambda: dkx.Config(lr=float("nan")), "lr"),
        ("activation 'x**'", lambda: dkx.Config(activation="x**"), "activation"),
        ("run with a dict", lambda: _first(dkx.run({"task": "sine"})), "config"),
        ("run stop 'now'", lambda: _first(dkx.run(dkx.Config(), stop="now")), "stop"),
    ]:
        bad(e, label, arg, fn)
    good(
        e,
        "the biggest run stops within seconds of stop.set() (or is refused)",
        lambda: _stops(
            lambda stop: dkx.run(
                dkx.Config(steps=10_000_000, n_train=4096, n_test=4096, inducing=1024, layers=8, nus=17, seeds=64), stop
            )
        ),
        lambda r: True,
        ("inducing", "memory"),
        timeout=RUN,
    )
    good(
        e,
        "lr 0 (nothing trains)",
        lambda: _last(
            dkx.run(dkx.Config(task="sine", n_train=16, n_test=16, inducing=4, nus=1, steps=2, seeds=1, lr=0.0))
        ),
        _finite_record,
        "lr",
        timeout=RUN,
    )
    good(
        e,
        "tiny sine run",
        lambda: _last(dkx.run(dkx.Config(task="sine", n_train=16, n_test=16, inducing=4, nus=2, steps=3, seeds=1))),
        _finite_record,
        timeout=RUN,
    )


def _own() -> Any:
    from workbench.nets import own

    return own


def _first(gen: Any) -> Any:
    for r in gen:
        return r
    return None


def _last(gen: Any) -> Any:
    last = None
    for record in gen:
        last = record
    return last


def _finite_record(r: Any) -> bool:
    """The run's last record ended well (its metrics' own NaN / inf are documented values, checked by its tests)."""
    return r is not None and r.status not in ("error", "diverged")


def _stops(make: Callable[[Any], Any]) -> Any:
    """Run the generator make(stop) in a thread, set stop after 3 s: it must end within 30 s (a clear refusal
    is raised as it is)."""
    import threading

    stop, out = threading.Event(), {}

    def go() -> None:
        try:
            for r in make(stop):
                out["last"] = r
        except BaseException as err:  # noqa: BLE001 - handed to the caller
            out["err"] = err

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(3.0)
    stop.set()
    t.join(30.0)
    if t.is_alive():
        raise TimeoutError("the run did not end within 30 s of stop.set()")
    if "err" in out:
        raise out["err"]
    return out.get("last")


# ================================================================ permutations


def _permutation_cases() -> None:
    import numpy as np

    from workbench.theory import permutations as pt

    m = "theory.permutations"
    for label, fn, arg in [
        ("two_hot k 1", lambda: pt.two_hot_inputs(1), "k"),
        ("two_hot k 41", lambda: pt.two_hot_inputs(41), "k"),
        ("member_law parametrization 'mup'", lambda: pt.member_law(5, "mup"), "parametrization"),
        ("member_law weight_std 0", lambda: pt.member_law(5, weight_std=0.0), "weight_std"),
        ("member_law weight_std nan", lambda: pt.member_law(5, weight_std=float("nan")), "weight_std"),
        ("draw_counts n_tests 0", lambda: pt.draw_counts(5, 0), "n_tests"),
        ("draw_counts n_tests 1e12", lambda: pt.draw_counts(5, 10**12), "n_tests"),
        (
            "ensemble_accuracy weights zero",
            lambda: pt.ensemble_accuracy(np.ones((2, 3, 3)), np.eye(3, dtype=int), np.zeros(3)),
            "weights",
        ),
        (
            "ensemble_accuracy weights negative",
            lambda: pt.ensemble_accuracy(np.ones((2, 3, 3)), np.eye(3, dtype=int), -np.ones(3)),
            "weights",
        ),
        (
            "ensemble_accuracy targets 2",
            lambda: pt.ensemble_accuracy(np.ones((2, 3, 3)), 2 * np.eye(3, dtype=int), np.ones(3)),
            "targets",
        ),
        (
            "ensemble_accuracy targets float",
            lambda: pt.ensemble_accuracy(np.ones((2, 3, 3)), np.eye(3), np.ones(3)),
            "targets",
        ),
        (
            "ensemble_accuracy shapes disagree",
            lambda: pt.ensemble_accuracy(np.ones((2, 3, 4)), np.eye(3, dtype=int), np.ones(3)),
            ("targets", "outputs"),
        ),
        (
            "ensemble_accuracy outputs nan",
            lambda: pt.ensemble_accuracy(np.full((2, 3, 3), np.nan), np.eye(3, dtype=int), np.ones(3)),
            "outputs",
        ),
        ("models_needed accuracy 1.5", lambda: pt.models_needed(np.array([0.5, 1.5]), 0.1), "accuracy"),
        ("models_needed empty", lambda: pt.models_needed(np.array([]), 0.1), "accuracy"),
        ("models_needed delta -0.1", lambda: pt.models_needed(np.array([0.5]), -0.1), "delta"),
        ("models_needed 2-D", lambda: pt.models_needed(np.ones((2, 2)), 0.1), "accuracy"),
        ("rate_curves ks 1", lambda: pt.rate_curves(np.array([1.0, 2.0]), np.array([1.0, 2.0])), "ks"),
        ("rate_curves counts all 0", lambda: pt.rate_curves(np.array([2.0, 3.0]), np.zeros(2)), "counts"),
        ("rate_curves lengths differ", lambda: pt.rate_curves(np.array([2.0, 3.0]), np.ones(3)), ("counts", "ks")),
        ("rate_curves counts negative", lambda: pt.rate_curves(np.array([2.0, 3.0]), -np.ones(2)), "counts"),
        ("infinite_ensemble delta 0", lambda: pt.infinite_ensemble(5, 0.0), "delta"),
        ("infinite_ensemble k 100", lambda: pt.infinite_ensemble(100, 0.1), "k"),
        ("infinite_ensemble max_models 0", lambda: pt.infinite_ensemble(5, 0.1, max_models=0), "max_models"),
        (
            "infinite_ensemble positional parametrization",
            lambda: pt.infinite_ensemble(5, 0.1, "ntk"),
            ("infinite_ensemble", "positional"),
        ),
    ]:
        bad(m, label, arg, fn)
    good(
        m,
        "two_hot k 2.0 (an integral float is an integer)",
        lambda: pt.two_hot_inputs(2.0),
        lambda r: r[1].shape == (1, 2),
    )
    rng = np.random.default_rng(0)
    outputs, targets = rng.normal(size=(6, 3, 3)), np.eye(3, dtype=int)
    good(
        m,
        "ensemble_accuracy weights 1e308 (the same shares as equal weights)",
        lambda: pt.ensemble_accuracy(outputs, targets, np.full(3, 1e308)),
        lambda a: bool(np.allclose(a, pt.ensemble_accuracy(outputs, targets, np.ones(3)))),
    )
    good(
        m,
        "infinite_ensemble at its largest sizes ends",
        lambda: pt.infinite_ensemble(40, 1e-4, n_tests=1_000_000, max_models=100_000),
        lambda r: 0 <= r[0] <= 100_000 and bool(np.all((r[1] >= 0) & (r[1] <= 1))),
        timeout=RUN,
    )
    good(
        m,
        "member_law covariance PSD",
        lambda: pt.member_law(6),
        lambda law: bool(np.linalg.eigvalsh(law.cov).min() > -1e-8) and _finite(law.mean),
    )
    good(
        m,
        "ensemble_accuracy in [0, 1]",
        lambda: pt.ensemble_accuracy(np.random.default_rng(0).normal(size=(5, 3, 3)), np.eye(3, dtype=int), np.ones(3)),
        lambda a: bool(np.all((a >= 0) & (a <= 1))),
    )
    good(
        m, "models_needed delta 1 (any ensemble)", lambda: pt.models_needed(np.array([0.0, 0.5]), 1.0), lambda v: v == 1
    )
    good(
        m,
        "infinite_ensemble small",
        lambda: pt.infinite_ensemble(4, 0.1, max_models=64),
        lambda r: 0 <= r[0] <= 64 and bool(np.all((r[1] >= 0) & (r[1] <= 1))),
    )
    good(m, "rate_curves one k", lambda: pt.rate_curves(np.array([5.0]), np.array([10.0])), _finite)
    good(
        m,
        "infinite_ensemble weight_std 10 (saturated)",
        lambda: pt.infinite_ensemble(5, 0.1, weight_std=10.0, max_models=64),
        lambda r: bool(np.all((r[1] >= 0) & (r[1] <= 1))),
    )

    e = "exp.permutations"
    from workbench.experiments import permutations as px

    for label, fn, arg in [
        ("k 2", lambda: px.Config(k=2), "k"),
        ("delta 0", lambda: px.Config(delta=0.0), "delta"),
        ("width -1", lambda: px.Config(width=-1), "width"),
        ("width 1e6", lambda: px.Config(width=10**6), "width"),
        ("seeds 0", lambda: px.Config(seeds=0), "seeds"),
        ("max_models 1e9", lambda: px.Config(max_models=10**9), "max_models"),
    ]:
        bad(e, label, arg, fn)
    good(
        e,
        "the biggest finite run stops within seconds of stop.set()",
        lambda: _stops(
            lambda stop: px.run(px.Config(k=40, width=65536, seeds=64, n_tests=100_000, max_models=20_000), stop)
        ),
        lambda r: True,
        ("width", "memory", "seeds"),
        timeout=RUN,
    )
    good(
        e,
        "infinite width tiny",
        lambda: _last(px.run(px.Config(k=4, width=0, seeds=1, n_tests=20, max_models=32))),
        _finite_record,
        timeout=RUN,
    )
    good(
        e,
        "finite width tiny",
        lambda: _last(px.run(px.Config(k=3, width=8, seeds=1, n_tests=10, max_models=4))),
        _finite_record,
        timeout=RUN,
    )


# ================================================================ model_lab, intrinsic_dimension, scaling_law


def _experiment_cases() -> None:
    import numpy as np

    from workbench.experiments import intrinsic_dimension as idx
    from workbench.experiments import model_lab as ml
    from workbench.experiments import scaling_law as sl

    m = "exp.model_lab"
    for label, fn, arg in [
        ("model unknown", lambda: ml.Config(model="zoo:nothing"), "model"),
        ("model ''", lambda: ml.Config(model=""), "model"),
        (
            "model 'os:system' (importable, not a model)",
            lambda: _own().configure(_own().OwnConfig(model="os:system")),
            "make_model",
        ),
        ("data unknown", lambda: ml.Config(data="sklearn:mnist"), "data"),
        ("data missing file", lambda: ml.Config(data="/nonexistent/x.csv"), "data"),
        ("widths ()", lambda: ml.Config(widths=()), "widths"),
        ("widths (0, 8)", lambda: ml.Config(widths=(0, 8)), "widths"),
        ("widths one width (coord_check)", lambda: ml.Config(widths=(8,)), "widths"),
        ("widths 10000 entries", lambda: ml.Config(widths=tuple(range(1, 10_001))), "widths"),
        ("widths and depths both swept", lambda: ml.Config(widths=(8, 16), depths=(2, 4)), "depths"),
        ("depths with 0 and scaling", lambda: ml.Config(depths=(0,), depth_scaling="sqrt"), "depths"),
        ("parametrization 'xyz'", lambda: ml.Config(parametrization="xyz"), "parametrization"),
        ("train a dict with a bad field", lambda: ml.Config(train={"lr": -1}), "lr"),
        ("train a dict with an unknown field", lambda: ml.Config(train={"lrr": 1}), "lrr"),
        ("n_lrs 1", lambda: ml.Config(n_lrs=1), "n_lrs"),
        (
            "model cnn on wine (input mismatch)",
            lambda: _last(ml.run(ml.Config(model="zoo:cnn", data="sklearn:wine", widths=(4, 8), seeds=1, n_samples=8))),
            ("model", "data", "in_dim"),
        ),
        (
            "model transformer on wine (floats as tokens)",
            lambda: _last(
                ml.run(ml.Config(model="zoo:transformer", data="sklearn:wine", widths=(4, 8), seeds=1, n_samples=8))
            ),
            ("model", "data"),
        ),
        (
            "depth sweep on a factory without depth",
            lambda: _first(
                ml.run(ml.Config(model="zoo:cnn", data="digits", study="lr_transfer", depths=(2, 4), widths=(8,)))
            ),
            "depth",
        ),
        (
            "huge widths (memory)",
            lambda: _first(ml.run(ml.Config(widths=(65536, 65536 // 2), base_width=32, depths=(256,), seeds=64))),
            ("width", "memory", "depth"),
        ),
    ]:
        bad(m, label, arg, fn)
    good(
        m,
        "tiny coord check",
        lambda: _last(ml.run(ml.Config(widths=(4, 8), base_width=4, seeds=1, n_samples=8))),
        _finite_record,
        timeout=RUN,
    )
    good(
        m,
        "a regression set (mse)",
        lambda: _last(ml.run(ml.Config(data="sklearn:diabetes", widths=(4, 8), base_width=4, seeds=1, n_samples=8))),
        _finite_record,
        ("data", "loss"),
        timeout=RUN,
    )

    m = "exp.intrinsic_dimension"
    for label, fn, arg in [
        ("widths 2048", lambda: idx.Config(widths=(2048,)), "widths"),
        ("d_min >= d_max", lambda: idx.Config(d_min=10, d_max=10), "d_max"),
        ("d above D", lambda: idx.Config(d=10**6, widths=(2,)), "d"),
        ("arch 'resnet'", lambda: idx.Config(arch="resnet"), "arch"),
        ("labels 'random'", lambda: idx.Config(labels="random"), "labels"),
        ("batch_size 5000", lambda: idx.Config(batch_size=5000), "batch_size"),
        ("widths ()", lambda: idx.Config(widths=()), "widths"),
        (
            "d_int90 dims unsorted",
            lambda: idx.d_int90(np.array([8.0, 2, 4]), np.ones((3, 2)) * 0.5, np.ones(2)),
            "dims",
        ),
        (
            "d_int90 shapes disagree",
            lambda: idx.d_int90(np.array([2.0, 4, 8]), np.ones((4, 2)), np.ones(2)),
            ("acc", "dims"),
        ),
        ("d_int90 acc nan", lambda: idx.d_int90(np.array([2.0, 4, 8]), np.full((3, 2), np.nan), np.ones(2)), "acc"),
        ("d_int90 acc 1-D", lambda: idx.d_int90(np.array([2.0, 4, 8]), np.ones(3), np.ones(2)), "acc"),
        ("d_int90 acc 2.0", lambda: idx.d_int90(np.array([2.0, 4, 8]), np.full((3, 2), 2.0), np.ones(2)), "acc"),
        ("d_int90 full zero", lambda: idx.d_int90(np.array([2.0, 4, 8]), np.full((3, 2), 0.5), np.zeros(2)), "full"),
        ("d_int90 dims zero", lambda: idx.d_int90(np.array([0.0, 4, 8]), np.full((3, 2), 0.5), np.ones(2)), "dims"),
        (
            "d_int90 dims duplicated",
            lambda: idx.d_int90(np.array([4.0, 4, 8]), np.array([[0.5, 0.5], [0.95, 0.95], [1, 1]]), np.ones(2)),
            "dims",
        ),
    ]:
        bad(m, label, arg, fn)
    good(
        m,
        "d_int90 crossing found",
        lambda: idx.d_int90(
            np.array([2.0, 4, 8, 16]), np.array([[0.1] * 2, [0.5] * 2, [0.95] * 2, [1.0] * 2]), np.ones(2)
        ),
        lambda r: 4 <= r[0] <= 8,
    )
    good(
        m,
        "d_int90 never reached (NaN is documented)",
        lambda: idx.d_int90(np.array([2.0, 4, 8]), np.full((3, 2), 0.1), np.ones(2)),
        lambda r: True,
    )
    good(
        m,
        "tiny run",
        lambda: _last(idx.run(idx.Config(widths=(4,), d_min=2, d_max=4, points=2, refine=0, seeds=1, steps=2))),
        _finite_record,
        timeout=RUN,
    )
    good(
        m,
        "d_max above D of the width",
        lambda: _last(idx.run(idx.Config(widths=(1,), d_min=4, d_max=100_000, seeds=1, steps=1, points=2, refine=0))),
        _finite_record,
        ("d_max", "d"),
        timeout=RUN,
    )

    m = "exp.scaling_law"
    for label, fn, arg in [
        ("n_max < 4 n_min", lambda: sl.Config(n_min=64, n_max=128), "n_max"),
        ("n_max > modes / 4", lambda: sl.Config(n_max=4096, modes=4000), "n_max"),
        ("source 'file'", lambda: sl.Config(source="file"), "source"),
        ("a 1.0 (not summable)", lambda: sl.Config(a=1.0), "a"),
        ("level 1", lambda: sl.Config(level=1.0), "level"),
        ("guess nan", lambda: sl.Config(guess=float("nan")), "guess"),
        (
            "sweep source without a sweep",
            lambda: _last(sl.run(sl.Config(source="sweep", sweep=987654))),
            ("sweep", "sweep_id"),
        ),
        ("sweep source, metric missing", lambda: _scaling_law_sweep(sl, "accuracy"), "metric"),
        ("sweep source, axis missing", lambda: _scaling_law_sweep(sl, "loss", axis="width"), "axis"),
    ]:
        bad(m, label, arg, fn)
    good(
        m,
        "theory tiny",
        lambda: _last(sl.run(sl.Config(modes=256, n_min=4, n_max=64, resamples=20))),
        _finite_record,
        timeout=RUN,
    )
    good(m, "sweep source", lambda: _last(_scaling_law_sweep(sl, "loss", run=False)), _finite_record, timeout=RUN)


def _scaling_law_sweep(sl: Any, metric: str, axis: str = "", run: bool = True) -> Any:
    db = _sweep_db(
        [({"n": s, "seed": 0}, {"loss": 3 * s**-0.5 + 0.01}) for s in [64, 128, 256, 512, 1024]],
        {"n": [64, 128, 256, 512, 1024]},
    )
    os.environ["WORKBENCH_DB"] = str(db.path)
    gen = sl.run(sl.Config(source="sweep", sweep=0, metric=metric, axis=axis, resamples=20))
    return _last(gen) if run else gen


# ================================================================ running and classifying


BUILDERS = (_stax_cases, _own_cases, _sources_cases, _subspace_cases, _scaling_cases, _dkm_cases,
            _permutation_cases, _experiment_cases)  # fmt: skip


def build() -> list[Case]:
    if not CASES:
        for b in BUILDERS:
            b()
    return CASES


class _Alarm(Exception):
    pass


def classify(c: Case) -> tuple[str, str]:
    """(outcome, detail) of one case (module docstring)."""
    from workbench.runs.rundb import RunDBError

    def alarm(*_: Any) -> None:
        raise _Alarm()

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(int(c.timeout))
    try:
        result = c.call()
    except _Alarm:
        return "hang", f"no answer in {c.timeout:g} s"
    except (ValueError, TypeError, RunDBError) as err:
        text = f"{type(err).__name__}: {err}"
        if FINITE_GUARD in str(err):
            return "cryptic", "names no argument: " + text
        if any(a and (a in str(err)) for a in c.arg) or c.arg == ("",):
            return "clear", text
        return "cryptic", f"{text} [from {traceback.extract_tb(err.__traceback__)[-1].filename}]"
    except MemoryError as err:
        return "cryptic", f"MemoryError (not refused before allocating): {err}"
    except BaseException as err:  # noqa: BLE001 - what escaped is the finding
        return "cryptic", f"{type(err).__name__}: {str(err)[:300]}"
    finally:
        signal.alarm(0)
    if c.ok is None:
        return "silent", f"accepted: {str(result)[:200]!r}"
    try:
        passed = bool(c.ok(result))
    except Exception as err:  # noqa: BLE001
        return "silent", f"result fails its check ({type(err).__name__}: {err})"
    return ("ok", "") if passed else ("silent", f"result out of its domain: {str(result)[:200]!r}")


def worker(start: int, selected: list[int]) -> None:
    import resource

    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    cases = build()
    import workbench.core.memory as memory

    limit = memory._mapped_bytes() + MEMORY_GB * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    for i in selected[start:]:
        print(json.dumps({"start": i}), flush=True)
        t = time.perf_counter()
        outcome, detail = classify(cases[i])
        print(
            json.dumps({"i": i, "outcome": outcome, "detail": detail[:600], "s": time.perf_counter() - t}), flush=True
        )


def run_all(cases: list[Case], selected: list[int]) -> dict[int, tuple[str, str]]:
    results: dict[int, tuple[str, str]] = {}
    pos = 0
    while pos < len(selected):
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.held_out_battery",
            "--worker",
            str(pos),
            "--select",
            ",".join(map(str, selected)),
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        current, deadline = None, time.monotonic() + 300.0  # imports, on a loaded machine
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                line = proc.stdout.readline()
                if not line:
                    break
                msg = json.loads(line)
                if "start" in msg:
                    current = msg["start"]
                    deadline = time.monotonic() + cases[current].timeout + 20.0
                else:
                    results[msg["i"]] = (msg["outcome"], msg["detail"])
                    pos = selected.index(msg["i"]) + 1
                    current = None
                    print(f"\r{len(results)}/{len(selected)}", end="", file=sys.stderr, flush=True)
            elif time.monotonic() > deadline:
                proc.kill()
                break
        proc.wait()
        if current is not None and current not in results:
            hung = time.monotonic() > deadline
            results[current] = ("hang", "killed: no answer") if hung else ("crash", f"worker died ({proc.returncode})")
            pos = selected.index(current) + 1
        elif pos < len(selected) and selected[pos] not in results and current is None and not ready:
            results[selected[pos]] = ("crash", "worker did not start")
            pos += 1
    print(file=sys.stderr)
    return results


OUTCOMES = ("ok", "clear", "cryptic", "silent", "hang", "crash")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("-k", default="", help="only cases whose module or label contains this")
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    p.add_argument("--select", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is not None:
        worker(args.worker, [int(i) for i in args.select.split(",")])
        return 0
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    cases = build()
    selected = [i for i, c in enumerate(cases) if args.k in c.module or args.k in c.label]
    t = time.perf_counter()
    results = run_all(cases, selected)
    table: dict[str, Counter] = {}
    for i in selected:
        table.setdefault(cases[i].module, Counter())[results[i][0]] += 1
    print(f"{'module':<28}" + "".join(f"{o:>9}" for o in OUTCOMES) + f"{'cases':>8}")
    total: Counter = Counter()
    for module, counts in table.items():
        total.update(counts)
        print(f"{module:<28}" + "".join(f"{counts[o]:>9}" for o in OUTCOMES) + f"{sum(counts.values()):>8}")
    print(f"{'total':<28}" + "".join(f"{total[o]:>9}" for o in OUTCOMES) + f"{sum(total.values()):>8}")
    print(f"({time.perf_counter() - t:.0f} s)\n")
    for i in selected:
        outcome, detail = results[i]
        if outcome not in ("ok", "clear"):
            print(f"[{outcome}] {cases[i].module}: {cases[i].label}\n    {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
