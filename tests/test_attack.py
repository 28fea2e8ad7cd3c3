"""Attack suite (issue 12, item 7): bad values for every Config field of every experiment and for the
arguments of every public function of `workbench`, the share codes, the activation parser and the run store.

Each attempt is judged independently of the code under test (`field_oracle` re-derives from the declared
type and range whether a value is valid):

- clear: refused with a ValueError/TypeError whose message names the field or argument (and, for a numeric
  field, its allowed range);
- accepted: a valid value, kept as the normalised value the oracle expects, with finite results;
- cryptic: any other exception, or a refusal that does not name the argument (or its range);
- silent: an invalid value accepted, a valid one refused, or an accepted value giving a non-finite result;
- hang: a call past its deadline; crash: MemoryError, RecursionError, SystemError.

The counts are printed at the end (`pytest -s`); every test asserts 0 cryptic, silent, hangs and crashes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import typing
from collections import Counter
from collections.abc import Callable
from unittest import mock

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from widgets.panels import PANELS
from workbench import collapse, criticality, data, data_sphere, fourier
from workbench.activations import get_activation
from workbench.checks import check_training
from workbench.config import Config, field_types
from workbench.kernels import (
    Kernels,
    empirical_ntk,
    gaussian_expectations,
    gradient_flow,
    kernel_eigenvalues,
    kernel_vs_angle,
    mlp_kernels,
    nngp_posterior,
)
from workbench.models import MLPConfig, build_mlp
from workbench.rundb import RunDB, RunDBError
from workbench.toy_models import PairMLPConfig, XORNetConfig
from workbench.training import TrainConfig
from workbench.transformer import TransformerConfig
from workbench.ufm import UFMConfig

pytestmark = pytest.mark.timeout(600)

CONFIGS: list[type[Config]] = list(
    dict.fromkeys(
        [p.experiment.Config for p in PANELS]
        + [MLPConfig, TrainConfig, UFMConfig, PairMLPConfig, XORNetConfig, TransformerConfig]
    )
)
DEADLINE_S = 20.0  # per call; the tiny sizes below run in well under a second once compiled
OUTCOMES: Counter = Counter()
BAD = ("cryptic", "silent", "hang", "crash")


class Hang(Exception):
    """Raised by the per-call deadline."""


def _alarm(signum, frame):
    raise Hang


def finite(value) -> bool:
    """Every float in a (nested) result is finite."""
    if isinstance(value, dict):
        return all(finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(finite(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return all(finite(getattr(value, f.name)) for f in dataclasses.fields(value))
    try:
        arr = np.asarray(value)
    except Exception:
        return True
    return arr.dtype.kind not in "fc" or bool(np.all(np.isfinite(arr)))


def judge(
    label: str,
    name: str | tuple[str, ...],
    call: Callable[[], object],
    valid: bool | None,
    *,
    must_mention: tuple[str, ...] = (),
    check: Callable[[object], bool] | None = None,
    nonfinite_ok: bool = False,
    reraise: type[Exception] | None = None,
    problems: list,
) -> str:
    """Run `call` under a deadline and classify it (module docstring). `valid`: the oracle's verdict
    (None: either a clear refusal or a finite result is right); `name`: the argument a refusal must name (or
    one of several); `must_mention`: text a refusal must hold besides."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, DEADLINE_S)
    error: BaseException | None = None
    result = None
    try:
        result = call()
    except Hang:
        error = Hang()
    except Exception as err:
        if reraise is not None and isinstance(err, reraise):
            raise
        error = err
    except BaseException as err:  # noqa: B036 - every escape is classified, none is re-raised
        error = err
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    if isinstance(error, Hang):
        outcome, why = "hang", f"no answer within {DEADLINE_S} s"
    elif isinstance(error, (MemoryError, RecursionError, SystemError)):
        outcome, why = "crash", repr(error)
    elif error is not None:
        text = str(error)
        names = (name,) if isinstance(name, str) else name
        named = isinstance(error, (ValueError, TypeError)) and any(n in text for n in names)
        named = named and all(m in text for m in must_mention)
        if not named:
            outcome, why = "cryptic", f"{type(error).__name__}: {text[:300]}"
        elif valid:
            outcome, why = "silent", f"refused a valid value: {text[:300]}"
        else:
            outcome, why = "clear", ""
    elif valid is False:
        outcome, why = "silent", f"accepted an invalid value, got {str(result)[:200]}"
    elif (not finite(result) and not nonfinite_ok) or (check is not None and not check(result)):
        outcome, why = "silent", f"accepted but the result is wrong or not finite: {str(result)[:200]}"
    else:
        outcome, why = "accepted", ""
    OUTCOMES[outcome] += 1
    if outcome in BAD:
        problems.append(f"{outcome}: {label} {name}: {why}")
    return outcome


def assert_no_problems(problems: list) -> None:
    assert not problems, f"{len(problems)} bad outcomes:\n" + "\n".join(problems[:40])


# ---------------------------------------------------------------- values


class Opaque:
    """An object of no expected type."""


COMMON_BAD = [
    None,
    "1",
    "",
    (1, 2),
    [1],
    [],
    {},
    {"a": 1},
    b"1",
    complex(1, 1),
    Opaque(),
    np.array([1.0, 2.0]),
    10**400,
    -(10**400),
    math.nan,
    math.inf,
    -math.inf,
    np.float64("nan"),
    True,
    False,
    np.bool_(True),
    len,
]


def numeric_values(kind: type, meta: dict) -> list:
    """In-range, boundary, out-of-range and numpy-typed values for an int or float field."""
    lo, hi = meta.get("lo"), meta.get("hi")
    lo_ = 0 if lo is None else lo
    hi_ = lo_ + 10 if hi is None else hi
    mid = (lo_ + hi_) / 2 if kind is float else (int(lo_) + int(hi_)) // 2
    out = [lo_, hi_, mid, -1, 0, 0.5, 2.5, lo_ - 1, hi_ + 1, hi_ * 10 + 1, -1e300, 1e300]
    if kind is int:
        out += [np.int64(mid), np.int32(min(int(mid), 2**31 - 1)), np.uint8(min(int(mid), 255)), float(mid)]
        out += [np.float64(mid), np.float32(0.5)]
    else:
        out += [np.float64(mid), np.float32(mid), np.int64(int(mid)), float(np.nextafter(hi_, math.inf))]
    return out


def field_oracle(kind: typing.Any, meta: dict, value: typing.Any, name: str = "") -> tuple[bool, typing.Any]:
    """(valid, the normalised value a Config should store), from the field's declared type and range."""
    if typing.get_origin(kind) is tuple:
        element = typing.get_args(kind)[0]
        if not isinstance(value, (tuple, list)) or not value:
            return False, None
        checked = [field_oracle(element, meta, v, name) for v in value]
        return all(ok for ok, _ in checked), tuple(v for _, v in checked)
    if meta.get("choices"):
        ok = isinstance(value, str) and value in meta["choices"]
        return ok, value
    if meta.get("check") == "activation" or name == "expression":
        return isinstance(value, str) and value in ("relu", "tanh", "erf", "x * sigmoid(x)", "leaky_relu(0.2)"), value
    if kind is bool:
        return isinstance(value, (bool, np.bool_)), bool(value) if isinstance(value, (bool, np.bool_)) else None
    if kind is str:
        return isinstance(value, str), value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False, None
    if isinstance(value, int) and abs(value) > 10**300:
        return False, None
    v = float(value)
    if not math.isfinite(v) or (kind is int and not v.is_integer()):
        return False, None
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (v <= lo if meta.get("lo_open") else v < lo):
        return False, None
    if hi is not None and v > hi:
        return False, None
    return True, (int(value) if kind is int else v)


def field_values(kind: typing.Any, meta: dict, name: str = "") -> list:
    """The attack catalogue of one field."""
    if typing.get_origin(kind) is tuple:
        element = typing.get_args(kind)[0]
        good = numeric_values(element, meta)[:3]
        return [
            tuple(good),
            list(good),
            (good[0],),
            good[0],
            (),
            "12",
            None,
            1.5,
            ((1, 2),),
            {1: 2},
            np.array(good),
            tuple(np.int64(g) for g in good),
        ] + [(v,) for v in numeric_values(element, meta) + COMMON_BAD if not isinstance(v, (list, tuple))]
    if meta.get("choices"):
        return list(meta["choices"]) + ["nope", " " + str(meta["choices"][0]), 0] + COMMON_BAD
    if meta.get("check") == "activation" or name == "expression":
        return ["relu", "tanh", "x * sigmoid(x)", "leaky_relu(0.2)", "nope", "x/0", "log(", "1e309*x", np.tanh]
    if kind is bool:
        return [True, False, np.bool_(False), 0, 1, "True"] + COMMON_BAD
    if kind is str:
        return ["relu", "abc"] + COMMON_BAD
    return numeric_values(kind, meta) + COMMON_BAD


def mention(kind: typing.Any, meta: dict, value: typing.Any) -> tuple[str, ...]:
    """What a refusal of a numeric field must show besides its name: its range, when one is declared."""
    element = typing.get_args(kind)[0] if typing.get_origin(kind) is tuple else kind
    if element not in (int, float) or (meta.get("lo") is None and meta.get("hi") is None):
        return ()
    hi = meta.get("hi")
    return (str(hi),) if hi is not None else (str(meta.get("lo")),)


def attack_field(cls: type[Config], f: dataclasses.Field, value, problems: list) -> str:
    kind = field_types(cls)[f.name]
    meta = dict(f.metadata)
    valid, expected = field_oracle(kind, meta, value, f.name)

    def build():
        try:
            config = cls(**{f.name: value})
        except ValueError:
            if valid and passes_field_checks(cls, f.name, value):
                raise CrossField from None
            raise
        stored = getattr(config, f.name)
        assert type(stored) is type(expected) and stored == expected, (stored, expected)
        if isinstance(stored, tuple):
            assert all(type(s) is type(e) for s, e in zip(stored, expected, strict=True))
        assert cls.from_code(config.to_code()) == config  # a shareable value (no callables, no numpy types)
        return config

    label = f"{cls.__module__}.{cls.__name__}({f.name}={value!r:.60})"
    try:
        return judge(
            label, f.name, build, valid, must_mention=mention(kind, meta, value), reraise=CrossField, problems=problems
        )
    except CrossField:  # a valid value that another field's default rules out: a refusal naming a field is right
        names = tuple(g.name for g in dataclasses.fields(cls))
        return judge(label, names, lambda: cls(**{f.name: value}), None, problems=problems)


class CrossField(Exception):
    """A value passed every per-field check and was refused by the config's cross-field `validate`."""


def passes_field_checks(cls: type[Config], name: str, value) -> bool:
    """True when `value` passes every per-field check of `cls` (its cross-field `validate` switched off)."""
    try:
        with mock.patch.object(cls, "validate", lambda self: None):
            cls(**{name: value})
    except (ValueError, TypeError):
        return False
    return True


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: f"{c.__module__.split('.')[-1]}.{c.__name__}")
def test_every_config_field_refuses_bad_values_clearly(cls):
    problems: list = []
    for f in dataclasses.fields(cls):
        for value in field_values(field_types(cls)[f.name], dict(f.metadata)):
            attack_field(cls, f, value, problems)
    assert_no_problems(problems)


SCALARS = st.one_of(
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=4),
    st.complex_numbers(max_magnitude=10),
    st.integers(-(2**62), 2**62).map(np.int64),
    st.floats(width=32, allow_nan=True).map(np.float32),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.lists(SCALARS, max_size=3).map(tuple))
FIELDS = [(cls, f) for cls in CONFIGS for f in dataclasses.fields(cls)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(which=st.sampled_from(FIELDS), value=VALUES)
def test_random_values_for_any_field(which, value):
    problems: list = []
    cls, f = which
    attack_field(cls, f, value, problems)
    assert_no_problems(problems)


# ---------------------------------------------------------------- share codes and JSON


CODES = [
    "",
    "!!!",
    "eJw",
    "eJyrVkrLzCtJTVGyUkqqrFTSUcrMLUhVsjI0MDDQUUrJTy7JzM9TsqpWKkktLlGyMlSq1QEA2GYL3A",
    "A" * 70_000,
    None,
    5,
    ["x"],
]


def _deflated(obj) -> str:
    import base64
    import zlib

    return base64.urlsafe_b64encode(zlib.compress(json.dumps(obj).encode(), 9)).decode().rstrip("=")


def test_share_codes_and_json_refuse_clearly():
    problems: list = []
    bombs = [
        _deflated({"depth": [1, 2]}),
        _deflated({"depth": 10**400}),
        _deflated({"depth": None}),
        _deflated([1]),
        _deflated(5),
        _deflated({"nope": 1}),
        _deflated({"a": "x" * 200_000}),
        _deflated({"depth": "3"}),
    ]
    for cls in CONFIGS:
        names = (cls.__name__,) + tuple(f.name for f in dataclasses.fields(cls))  # the class or the bad field
        for code in CODES + bombs:
            judge(
                f"{cls.__name__}.from_code({str(code)[:30]!r})",
                names,
                lambda cls=cls, code=code: cls.from_code(code),
                False,
                problems=problems,
            )
        for text in ["", "[", "[1]", "5", "null", '{"x": 1}', "[" * 100_000, '{"seed": 1e999}', "{" + "1" * 70000]:
            judge(
                f"{cls.__name__}.from_json({text[:30]!r})",
                names,
                lambda cls=cls, text=text: cls.from_json(text),
                False,
                problems=problems,
            )
        default = cls()
        judge(
            f"{cls.__name__} round trip",
            cls.__name__,
            lambda cls=cls, d=default: cls.from_code(d.to_code()),
            True,
            check=lambda c, d=default: c == d,
            problems=problems,
        )
    assert_no_problems(problems)


# ---------------------------------------------------------------- the activation parser


PARSER_BAD = [
    "",
    "   ",
    "log(",
    "x +",
    "leaky_relu(.)",
    "(e)",
    "(1e-)",
    "elu(--1)",
    "(-8)**(1/3)*x",
    "(-1)**0.5*x",
    "x/0",
    "1e309*x",
    "10**400*x",
    "__import__('os')",
    "x.real",
    "[x]",
    "lambda: x",
    "y",
    "3",
    "x if x else x",
    "maximum(x)",
    "tanh(x, x, x)",
    "x" * 600,
    "(" * 200 + "x" + ")" * 199,
    "x" + "**x" * 50,
    "log(x)",
    "x / x",
    "exp(exp(x))",
    "leaky_relu(1e999)",
    "elu(nan)",
    None,
    3,
    b"relu",
]
PARSER_GOOD = [
    "relu",
    " ReLU ",
    "(" * 50 + "x" + ")" * 50,
    "x * sigmoid(x)",
    "maximum(x, 0)**2",
    "leaky_relu(0.2)",
    "elu(1)",
    "pi*x",
    "x > 0",
]


def test_activation_parser_refuses_clearly():
    problems: list = []
    grid = np.linspace(-3, 3, 7, dtype=np.float32)
    for text in PARSER_BAD:
        judge(
            f"get_activation({str(text)[:40]!r})",
            "activation",
            lambda text=text: get_activation(text)(grid),
            False,
            problems=problems,
        )
    for text in PARSER_GOOD:
        judge(
            f"get_activation({text!r})",
            "activation",
            lambda text=text: get_activation(text)(grid),
            True,
            problems=problems,
        )
    assert_no_problems(problems)


# ---------------------------------------------------------------- public functions

RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 3))
Y = RNG.normal(size=(6, 1))


def arrays(base: np.ndarray, *, one_d_ok: bool = False, none_ok: bool = False) -> list[tuple[object, bool | None]]:
    """(value, valid) attacks on an array argument shaped like `base`."""
    nan, inf = base.astype(float).copy(), base.astype(float).copy()
    nan.flat[0], inf.flat[-1] = np.nan, np.inf
    out: list[tuple[object, bool | None]] = [
        (base.tolist(), True),
        (base.astype(np.float32), True),
        (None, none_ok),
        ("x", False),
        (3.0, False),
        (np.zeros((0,) + base.shape[1:]), False),
        (nan, False),
        (inf, False),
        (base.astype(complex) + 1j, False),
        (base[None], False),
        (np.array([["a"] * base.shape[-1]] * base.shape[0]) if base.ndim == 2 else np.array(["a"] * len(base)), False),
        (np.full(base.shape, 1e300), None),
    ]
    if base.ndim == 2:
        out += [(np.zeros((base.shape[0], 0)), False), (base[:, 0], True if one_d_ok else False)]
    return out


def ints(lo, hi, big: bool = False) -> list[tuple[object, bool]]:
    """Attacks on an integer argument in [lo, hi]; `big`: hi itself takes long to compute, so only hi + 1 is tried."""
    top = [] if big else [(hi, True)]
    return (
        [(lo, True), (np.int64(lo), True), (lo - 1, False), (hi + 1, False), (True, False)]
        + top
        + [(v, False) for v in (None, "3", 2.5, math.nan, math.inf, 10**400, (lo,), complex(lo, 1))]
    )


def reals(lo, hi, lo_open=False, none_ok=False, arrays_ok=False) -> list[tuple[object, bool | None]]:
    """Attacks on a real argument in [lo, hi] ((lo, hi] with `lo_open`); `arrays_ok`: it broadcasts over arrays."""
    inside = (lo + hi) / 2 if hi < 1e300 else lo + 1
    out = [(inside, True), (np.float32(inside), True), (np.int64(round(inside)), None)]
    out += [(lo - 1, False), (hi * 2 + 1, False) if hi < 1e300 else (math.inf, False), (lo, not lo_open)]
    out += [(None, none_ok), ((inside,), arrays_ok)]
    return out + [(v, False) for v in ("1", math.nan, math.inf, -math.inf, 10**400, complex(1, 1))]


def choices(options) -> list[tuple[object, bool]]:
    return [(o, True) for o in options] + [(v, False) for v in ("nope", None, 3, ("x",))]


K_TRAIN = mlp_kernels(X, depth=1)
K_TEST = mlp_kernels(X[:2], X, depth=1)
MODEL = build_mlp(MLPConfig(in_dim=3, width=8, depth=1))
H = RNG.normal(size=(12, 4))
LABELS = np.repeat(np.arange(3), 4)
W = RNG.normal(size=(3, 4))

# (label, function, base keyword arguments, {argument: [(value, valid), ...]})
FUNCTIONS: list[tuple[str, Callable, dict, dict]] = [
    (
        "mlp_kernels",
        mlp_kernels,
        dict(x1=X, depth=2),
        dict(
            x1=arrays(X),
            x2=arrays(X[:2], none_ok=True) + [(X[:, :2], False)],
            depth=ints(0, 10_000) + [(10**8, False)],
            activation=[("relu", True), ("erf", True), ("nope", False), (None, False), (3, False)],
            weight_std=reals(0.0, 1e6),
            bias_std=reals(0.0, 1e6, none_ok=True),
            parametrization=[("ntk", True), ("standard", None), ("nope", False), (None, False), (3, False)],
            degree=ints(1, 1024) + [(4000, False), (10**5, False)],
            block_size=ints(1, 4096),
        ),
    ),
    (
        "mlp_kernels(standard)",
        mlp_kernels,
        dict(x1=X, depth=2, parametrization="standard", width=16),
        dict(width=ints(1, 10_000_000)),
    ),
    (
        "gaussian_expectations",
        lambda **kw: gaussian_expectations(kw.pop("activation"), kw.pop("q11"), kw.pop("q12"), kw.pop("q22"), **kw),
        dict(activation="erf", q11=1.0, q12=0.5, q22=1.0),
        dict(
            q11=[
                (2.0, True),
                (np.float32(2.0), True),
                (np.array([1.0, 2.0]), True),
                (-1.0, False),
                (math.nan, False),
                ("1", False),
                (None, False),
                (complex(1, 1), False),
            ],
            q12=[(0.2, True), (5.0, False), (math.nan, False)],
            degree=ints(1, 1024),
            activation=[("erf", True), ("nope", False)],
        ),
    ),
    (
        "empirical_ntk",
        lambda **kw: empirical_ntk(MODEL, **kw),
        dict(x1=X),
        dict(
            x1=arrays(X) + [(X[:, :2], False)],
            x2=arrays(X[:2], none_ok=True),
            method=choices(("structured", "jacobian")),
            scaling=choices(("sgd", "nt", "raw")),
        ),
    ),
    (
        "nngp_posterior",
        nngp_posterior,
        dict(k_train=K_TRAIN.nngp, k_test_train=K_TEST.nngp, y_train=Y),
        dict(
            k_train=[
                (np.asarray(K_TRAIN.nngp), True),
                (-np.eye(6), False),
                (np.ones((6, 6)), False),
                (np.ones((6, 5)), False),
                (None, False),
                (np.full((6, 6), np.nan), False),
            ],
            k_test_train=[(np.ones((2, 5)), False), (None, False), (np.full((2, 6), np.nan), False)],
            y_train=arrays(Y, one_d_ok=True) + [(Y[:5], False)],
            k_test=[(np.eye(2), True), (np.ones((3, 3)), False), ("x", False)],
            diag_reg=reals(0.0, 1e6),
        ),
    ),
    (
        "gradient_flow",
        gradient_flow,
        dict(k_train=K_TRAIN, k_test_train=K_TEST, y_train=Y, t=1.0),
        dict(
            t=[
                (0.0, True),
                (np.array([0.0, 1.0, 10.0]), True),
                (np.float32(2.0), True),
                (-1.0, False),
                (math.nan, False),
                (math.inf, False),
                ("1", False),
                (None, False),
                (np.array([1.0, -1.0]), False),
                (complex(1, 1), False),
            ],
            k_train=[
                (Kernels(K_TRAIN.nngp, -jnp.eye(6)), False),
                (K_TRAIN.ntk, False),
                (None, False),
                (Kernels(K_TRAIN.nngp, jnp.full((6, 6), jnp.nan)), False),
            ],
            k_test_train=[(Kernels(jnp.ones((2, 5)), jnp.ones((2, 5))), False), (None, False)],
            y_train=arrays(Y, one_d_ok=True) + [(Y[:5], False)],
            f0_train=[(Y, True), (Y[:5], False), (np.full((6, 1), np.nan), False)],
            f0_test=[(Y[:2], True), (Y, False)],
            diag_reg=reals(0.0, 1e6),
        ),
    ),
    (
        "kernel_vs_angle",
        kernel_vs_angle,
        dict(angles=np.linspace(0, 3, 4), depth=1),
        dict(
            angles=[
                (0.5, True),
                ([0.1, 0.2], True),
                (math.nan, False),
                ("x", False),
                (None, False),
                (np.array([]), False),
            ],
            dim=ints(2, 100_000),
            q0=reals(0.0, 1e6, lo_open=True),
        ),
    ),
    (
        "kernel_eigenvalues",
        kernel_eigenvalues,
        dict(k=np.eye(3)),
        dict(
            k=[
                (np.eye(3), True),
                (np.ones((2, 3)), False),
                (np.full((2, 2), np.nan), False),
                (None, False),
                (np.zeros((0, 0)), False),
                ("x", False),
                (np.eye(2) * 1j, False),
            ]
        ),
    ),
    (
        "q_star",
        lambda **kw: criticality.q_star(kw.pop("activation"), kw.pop("sigma_w2"), kw.pop("sigma_b2"), **kw),
        dict(activation="tanh", sigma_w2=1.5, sigma_b2=0.1),
        dict(
            sigma_w2=reals(0.0, 1e4, arrays_ok=True) + [(np.array([1.0, 2.0]), True), (np.array([1, np.nan]), False)],
            sigma_b2=reals(0.0, 1e4, arrays_ok=True),
            q0=reals(0.0, 1e6, lo_open=True),
            iters=ints(1, 1_000_000),
            tol=reals(0.0, 1.0, lo_open=True),
        ),
    ),
    (
        "c_star",
        lambda **kw: criticality.c_star(kw.pop("activation"), kw.pop("sigma_w2"), kw.pop("sigma_b2"), **kw),
        dict(activation="tanh", sigma_w2=1.5, sigma_b2=0.1),
        dict(c0=reals(-1.0, 1.0), iters=ints(1, 1_000_000), tol=reals(0.0, 1.0, lo_open=True)),
    ),
    (
        "depth_scales",
        lambda **kw: criticality.depth_scales(kw.pop("activation"), kw.pop("sigma_w2"), kw.pop("sigma_b2")),
        dict(activation="tanh", sigma_w2=1.5, sigma_b2=0.1),
        dict(sigma_w2=reals(0.0, 1e4), sigma_b2=reals(0.0, 1e4), activation=choices(("tanh", "erf"))),
    ),
    (
        "depth_profile",
        lambda **kw: criticality.depth_profile(
            kw.pop("activation"), kw.pop("sigma_w2"), kw.pop("sigma_b2"), kw.pop("depth"), **kw
        ),
        dict(activation="tanh", sigma_w2=1.5, sigma_b2=0.1, depth=3),
        dict(depth=ints(1, 1000) + [(10**8, False)], q0=reals(0.0, 1e6, lo_open=True), c0=reals(-1.0, 1.0)),
    ),
    (
        "critical_line",
        lambda **kw: criticality.critical_line(kw.pop("activation"), kw.pop("sigma_b2"), **kw),
        dict(activation="tanh", sigma_b2=0.1),
        dict(
            sigma_b2=reals(0.0, 1e4, arrays_ok=True) + [(np.array([0.0, 0.1]), True)],
            q_max=reals(0.0, 1e3, lo_open=True),
        ),
    ),
    (
        "selu_flow",
        lambda **kw: criticality.selu_flow(kw.pop("mu0"), kw.pop("nu0"), kw.pop("steps"), **kw),
        dict(mu0=0.5, nu0=1.5, steps=3),
        dict(
            mu0=[(0.1, True), (math.nan, False), ("x", False), (None, False), (1e300, False)],
            nu0=[(1.0, True), (-1.0, False), (math.nan, False), (None, False), (1e300, False)],
            steps=ints(0, 1000),
        ),
    ),
    (
        "nc_metrics",
        lambda **kw: collapse.nc_metrics(kw.pop("h"), kw.pop("y"), kw.pop("n_classes"), **kw),
        dict(h=H, y=LABELS, n_classes=3, w=W),
        dict(
            h=arrays(H),
            y=[
                (LABELS.tolist(), True),
                (np.where(LABELS == 2, -1, LABELS), False),
                (LABELS + 1, False),
                (LABELS.astype(float) + 0.5, False),
                (LABELS[:5], False),
                (None, False),
                ("x", False),
            ],
            n_classes=[(3, True), (np.int64(3), True), (4, None), (2, None), (100_000, None), (1, False), (0, False)]
            + [(v, False) for v in (True, None, "3", 2.5, math.nan, 10**400, (3,))],
            w=[(W.tolist(), True), (W[:2], False), (np.full((3, 4), np.nan), False), ("x", False)],
            b=[(np.zeros(3), True), (np.zeros(2), False), (np.array([np.nan] * 3), False)],
        ),
    ),
    (
        "simplex_etf",
        lambda **kw: collapse.simplex_etf(kw.pop("n_classes"), **kw),
        dict(n_classes=3),
        dict(
            n_classes=ints(2, 512) + [(1, False)],
            dim=[(v, ok) for v, ok in ints(2, 100_000) if v is not None] + [(1, False), (None, True)],
            seed=ints(0, 2**31 - 1),
        ),
    ),
    (
        "gof_prediction",
        collapse.gof_prediction,
        dict(class_sizes=(10, 5), weight_decay_h=1e-3, weight_decays_w=(1e-3,)),
        dict(
            class_sizes=[
                ((10, 5, 1), True),
                ((0, 5), False),
                ((-1, 5), False),
                (5, False),
                ((), False),
                (("a", 1), False),
                ((math.nan, 2), False),
            ],
            weight_decay_h=reals(0.0, 1e6, lo_open=True),
            weight_decays_w=[((1e-3, 1e-3), True), ((), False), ((math.nan,), False), ((-1.0,), False), (None, False)],
        ),
    ),
    (
        "neuron_concentration",
        lambda **kw: fourier.neuron_concentration(kw.pop("embedding"), **kw),
        dict(embedding=RNG.normal(size=(7, 4))),
        dict(
            embedding=arrays(RNG.normal(size=(7, 4))),
            p=[(7, True), (3, False), (0, False), (-1, False), ("7", False), (None, True)],
        ),
    ),
    (
        "sine",
        data.sine,
        dict(n_train=4, n_test=4),
        dict(
            n_train=ints(1, 10_000_000, big=True),
            n_test=ints(1, 10_000_000, big=True),
            noise=reals(0.0, 10.0),
            frequency=reals(0.0, 1e3),
            seed=ints(0, 2**31 - 1),
        ),
    ),
    (
        "teacher",
        data.teacher,
        dict(n_train=4, n_test=4, in_dim=2, width=4),
        dict(
            in_dim=ints(1, 100_000, big=True) + [(10**7, False)],
            width=ints(1, 100_000, big=True),
            depth=ints(0, 16),
            noise=reals(0.0, 10.0),
            activation=[("relu", True), ("nope", False), (None, False)],
            seed=ints(0, 2**31 - 1),
        ),
    ),
    (
        "playground",
        data.playground,
        dict(n=8),
        dict(
            name=choices(data.PLAYGROUND),
            n=ints(4, 10_000_000, big=True),
            noise=reals(0.0, 1.0),
            test_fraction=[(0.5, True), (0.0, False), (1.0, False), (math.nan, False), ("x", False)],
            seed=ints(0, 2**31 - 1),
        ),
    ),
    (
        "gaussian_mixture",
        data.gaussian_mixture,
        dict(class_sizes=(3, 3), dim=2, test_per_class=2),
        dict(
            class_sizes=[
                ((2, 3, 4), True),
                ((5,), False),
                (5, False),
                ((0, 3), False),
                (("a", 2), False),
                (None, False),
            ],
            dim=ints(1, 100_000, big=True),
            separation=reals(0.0, 1e3),
            test_per_class=ints(1, 10_000_000, big=True),
            seed=ints(0, 2**31 - 1),
        ),
    ),
    (
        "xor_cluster",
        data.xor_cluster,
        dict(n_train=4, n_test=4, dim=4),
        dict(
            n_train=ints(1, 10_000_000, big=True),
            dim=ints(2, 10_000_000, big=True) + [(1, False)],
            label_flip=reals(0.0, 0.5),
            signal=[(None, True), (2.0, True), (math.nan, False), (-1.0, False), ("x", False), (math.inf, False)],
            seed=ints(0, 2**31 - 1),
        ),
    ),
    (
        "xor_cluster(huge)",
        data.xor_cluster,
        dict(n_train=100_000, n_test=4, dim=4),
        dict(dim=[(100_000, False), (10_000_000, False)]),
    ),
    (
        "modular",
        data.modular,
        dict(p=7),
        dict(
            p=ints(2, 1000),
            op=choices(data.MODULAR_OPS),
            train_fraction=[(0.5, True), (0.0, False), (1.0, False), (math.nan, False)],
            seed=ints(0, 2**31 - 1),
        ),
    ),
    (
        "dirichlet_task",
        data_sphere.dirichlet_task,
        dict(d=2, n_train=4, n_test=4),
        dict(
            d=[(3, True), (4, False), (None, False), ("2", False)],
            n_train=ints(1, 1_000_000, big=True),
            prior=[(0.3, True), (0.0, False), (1.0, False), (math.nan, False), ("x", False)],
            seed=ints(0, 2**31 - 1),
        ),
    ),
    (
        "playground_task",
        data_sphere.playground_task,
        dict(name="gauss", n_train=4, n_test=4),
        dict(n_train=ints(2, 1_000_000, big=True), noise=reals(0.0, 1.0), seed=ints(0, 2**31 - 1)),
    ),
    (
        "build_mlp",
        lambda **kw: build_mlp(MLPConfig(in_dim=2, width=4, depth=1), **kw),
        dict(seed=0),
        dict(seed=ints(0, 2**31 - 1)),
    ),
]


NONFINITE_OK = {"q_star", "depth_scales", "critical_line"}  # inf where q* diverges, NaN off the critical line


def _call(fn, base, arg, value):
    return lambda: fn(**{**base, arg: value})


@pytest.mark.parametrize("case", FUNCTIONS, ids=lambda c: c[0])
def test_every_public_function_refuses_bad_arguments_clearly(case):
    label, fn, base, attacks = case
    problems: list = []
    loose = label in NONFINITE_OK
    judge(f"{label}(defaults)", label, lambda: fn(**base), True, nonfinite_ok=loose, problems=problems)
    for arg, values in attacks.items():
        for value, valid in values:
            judge(
                f"{label}({arg}={str(value)[:50]!r})",
                arg,
                _call(fn, base, arg, value),
                valid,
                nonfinite_ok=loose,
                problems=problems,
            )
    assert_no_problems(problems)


# ---------------------------------------------------------------- the run database


def test_run_database_refuses_and_survives_bad_files(tmp_path):
    """Importing a damaged export keeps what is readable or refuses naming the path; opening a file that is not a
    database refuses and leaves it as it was."""
    problems: list = []
    db = RunDB(tmp_path / "runs.sqlite")
    good = tmp_path / "good.json"
    record = {"done": 1, "total": 2, "unit": "steps", "kind": "step", "status": "running", "elapsed": 0.1}
    good.write_text(json.dumps({"config": {"seed": 0}, "records": [{**record, "metrics": {"loss": 0.5}}]}))
    head = '{"config": "TrainConfig", "fields": {"seed": 0}}\n' + json.dumps({**record, "metrics": {"loss": 1}}) + "\n"
    cases = {
        "truncated": head + '{"done": 1, "total": 2, "unit": "steps", "metr',
        "nul": head + "\x00\x00\n",
        "not json": "hello\n",
        "list line": "[1, 2]\n",
        "no records": json.dumps({"config": {}, "records": [{"done": "x"}]}),
    }
    judge("RunDB.import_run(good)", "path", lambda: db.import_run(good), True, problems=problems)
    for name, content in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.jsonl"
        path.write_text(content)
        judge(f"RunDB.import_run({name})", "path", lambda path=path: db.import_run(path), None, problems=problems)
    other = tmp_path / "notes.txt"
    other.write_text("not a database\n" * 100)
    with pytest.raises(RunDBError, match="not a workbench run database.*left unchanged"):  # an operational error
        RunDB(other)
    assert other.read_text() == "not a database\n" * 100
    assert_no_problems(problems)


# ---------------------------------------------------------------- a training run's data against its model


def _dataset(**changes) -> data.Dataset:
    base = data.playground("gauss", n=16)
    return dataclasses.replace(base, **changes)


TRAINING = [  # (what, model config, data set, loss, the argument a refusal must name or None when valid)
    ("valid", MLPConfig(out_dim=2), _dataset(), "mse", None),
    ("valid xent", MLPConfig(out_dim=2), _dataset(), "xent", None),
    ("valid regression", MLPConfig(in_dim=1), data.sine(8, 8), "mse", None),
    ("out_dim 1 on 2 classes", MLPConfig(out_dim=1), _dataset(), "mse", "out_dim"),
    ("label = n_classes", MLPConfig(out_dim=2), _dataset(y_train=np.full(8, 2, np.int32)), "mse", "y_train"),
    ("negative label", MLPConfig(out_dim=2), _dataset(y_test=np.full(8, -1, np.int32)), "xent", "y_test"),
    ("float labels", MLPConfig(out_dim=2), _dataset(y_train=np.full(8, np.nan)), "mse", "y_train"),
    ("NaN inputs", MLPConfig(out_dim=2), _dataset(x_train=np.full((8, 2), np.nan, np.float32)), "mse", "x_train"),
    (
        "NaN targets",
        MLPConfig(in_dim=1),
        dataclasses.replace(data.sine(8, 8), y_train=np.full((8, 1), np.nan)),
        "mse",
        "y_train",
    ),
    (
        "empty train",
        MLPConfig(out_dim=2),
        _dataset(x_train=np.zeros((0, 2), np.float32), y_train=np.zeros(0, np.int32)),
        "mse",
        "x_train",
    ),
    ("wrong in_dim", MLPConfig(in_dim=3, out_dim=2), _dataset(), "mse", "in_dim"),
    ("xent on regression", MLPConfig(in_dim=1), data.sine(8, 8), "xent", "loss"),
    ("one label per point", MLPConfig(out_dim=2), _dataset(y_train=np.zeros(3, np.int32)), "mse", "y_train"),
]


@pytest.mark.parametrize("case", TRAINING, ids=lambda c: c[0])
def test_training_data_is_checked_against_the_model_before_the_first_step(case):
    what, model_config, dataset, loss, name = case
    problems: list = []
    judge(what, name or what, lambda: check_training(model_config, dataset, loss), name is None, problems=problems)
    assert_no_problems(problems)


def test_log_activation_is_refused_before_training():
    """log(x) is NaN for x <= 0, which Gaussian pre-activations always reach: refused when the config is built."""
    with pytest.raises(ValueError, match=r"activation: 'log\(x\)' is not finite at x = -20"):
        MLPConfig(activation="log(x)")


def test_zz_print_counts():
    """The tally of every attempt above (run with -s to see it)."""
    total = sum(OUTCOMES.values())
    print(f"\nattack suite: {total} attempts: " + ", ".join(f"{k} {v}" for k, v in sorted(OUTCOMES.items())))
    assert total > 2000 and all(OUTCOMES[k] == 0 for k in BAD), OUTCOMES
