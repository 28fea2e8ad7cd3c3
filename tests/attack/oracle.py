"""The shared judge of the attack suite: every attempt is judged independently of the code under test
(`field_oracle` re-derives from the declared type and range whether a value is valid):

- clear: refused with a ValueError/TypeError whose message names the field or argument (and, for a numeric
  field, its allowed range);
- accepted: a valid value, kept as the normalised value the oracle expects, with finite results;
- cryptic: any other exception, or a refusal that does not name the argument (or its range);
- silent: an invalid value accepted, a valid one refused, or an accepted value giving a non-finite result;
- hang: a call past its deadline; crash: MemoryError, RecursionError, SystemError.

Every test asserts 0 cryptic, silent, hangs and crashes among its own attempts. `judge` tallies each verdict in
`OUTCOMES`; the package's conftest hands each test's own tally to its report and prints the table of attempts by
surface and verdict at the end of the run (whatever ran, in any order).
"""

from __future__ import annotations

import dataclasses
import math
import signal
import typing
from collections import Counter
from collections.abc import Callable

import numpy as np

from widgets.panels import PANELS
from workbench.core.config import Config
from workbench.nets.engine import TrainConfig
from workbench.nets.models import MLPConfig
from workbench.nets.toy_models import PairMLPConfig, XORNetConfig
from workbench.nets.transformer import TransformerConfig
from workbench.nets.ufm import UFMConfig

CONFIGS: list[type[Config]] = list(
    dict.fromkeys(
        [p.experiment.Config for p in PANELS]
        + [MLPConfig, TrainConfig, UFMConfig, PairMLPConfig, XORNetConfig, TransformerConfig]
    )
)
DEADLINE_S = 20.0  # per call; the tiny sizes below run in well under a second once compiled
OUTCOMES: Counter = Counter()  # every verdict so far in this process; the conftest takes each test's share
VERDICTS = ("clear", "accepted", "cryptic", "silent", "hang", "crash")
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
