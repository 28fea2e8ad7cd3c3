"""Attacks on the share codes (`Config.from_code`) and JSON (`Config.from_json`) of every config: garbage,
deflate bombs, wrong shapes and types; and a round trip of each default."""

from __future__ import annotations

import dataclasses
import json

import pytest

from .oracle import CONFIGS, assert_no_problems, judge

pytestmark = pytest.mark.timeout(600)


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
