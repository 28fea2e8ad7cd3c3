"""Attacks on every Config field of every panel's experiment and of the model/training configs: a catalogue of
in-range, boundary, out-of-range, numpy-typed and foreign values per field (a group's fields by their path, with
the experiment's limits), foreign values for the groups themselves, then hypothesis's random values."""

from __future__ import annotations

import dataclasses
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.core.config import Config, get_path, leaves

from .oracle import CONFIGS, assert_no_problems, field_oracle, field_values, judge, mention

pytestmark = pytest.mark.timeout(600)


def attack_field(cls: type[Config], path: str, kind, meta: dict, value, problems: list) -> str:
    valid, expected = field_oracle(kind, meta, value, path.rsplit(".", 1)[-1])

    def build():
        try:
            config = cls().replace(**{path: value})
        except ValueError:
            if valid and passes_field_checks(cls, path, value):
                raise CrossField from None
            raise
        stored = get_path(config, path)
        assert type(stored) is type(expected) and stored == expected, (stored, expected)
        if isinstance(stored, tuple):
            assert all(type(s) is type(e) for s, e in zip(stored, expected, strict=True))
        assert cls.from_code(config.to_code()) == config  # a shareable value (no callables, no numpy types)
        return config

    label = f"{cls.__module__}.{cls.__name__}({path}={value!r:.60})"
    try:
        return judge(
            label, path, build, valid, must_mention=mention(kind, meta, value), reraise=CrossField, problems=problems
        )
    except CrossField:  # a valid value that another field's default rules out: a refusal naming a field is right
        names = tuple(p for p, *_ in leaves(cls))
        return judge(label, names, lambda: cls().replace(**{path: value}), None, problems=problems)


GROUP_VALUES = [0, "x", None, 1.5, True, [], (1,), {"nope": 1}, {"lr": "fast"}, {"width": -1}, {1: 2}]


def attack_group(cls: type[Config], name: str, problems: list) -> None:
    """A group field given something other than its config or a JSON object of valid fields: refused naming it."""
    for value in GROUP_VALUES:
        label = f"{cls.__module__}.{cls.__name__}({name}={value!r:.60})"
        judge(label, name, lambda value=value: cls().replace(**{name: value}), False, problems=problems)


class CrossField(Exception):
    """A value passed every per-field check and was refused by the config's cross-field `validate`."""


def passes_field_checks(cls: type[Config], name: str, value) -> bool:
    """True when `value` passes every per-field check of `cls` (its cross-field `validate` switched off)."""
    try:
        with mock.patch.object(cls, "validate", lambda self: None):
            cls().replace(**{name: value})
    except (ValueError, TypeError):
        return False
    return True


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: f"{c.__module__.split('.')[-1]}.{c.__name__}")
def test_every_config_field_refuses_bad_values_clearly(cls):
    problems: list = []
    for path, _, kind, meta in leaves(cls):
        for value in field_values(kind, meta, path.rsplit(".", 1)[-1]):
            attack_field(cls, path, kind, meta, value, problems)
    for f in dataclasses.fields(cls):
        if f.metadata.get("group") is not None:
            attack_group(cls, f.name, problems)
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
FIELDS = [(cls, leaf) for cls in CONFIGS for leaf in leaves(cls)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(which=st.sampled_from(FIELDS), value=VALUES)
def test_random_values_for_any_field(which, value):
    problems: list = []
    cls, (path, _, kind, meta) = which
    attack_field(cls, path, kind, meta, value, problems)
    assert_no_problems(problems)
