"""Attacks on the activation parser (`get_activation`): malformed, unsafe, non-finite and huge expressions are
refused naming the activation; the accepted spellings evaluate to finite values."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.core.activations import get_activation

from .oracle import assert_no_problems, judge

pytestmark = pytest.mark.timeout(600)


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
