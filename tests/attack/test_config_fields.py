"""Attacks on every Config field of every panel's experiment and of the model/training configs: a catalogue of
in-range, boundary, out-of-range, numpy-typed and foreign values per field, then hypothesis's random values."""

from __future__ import annotations

import dataclasses
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.core.config import Config, field_types

from .oracle import CONFIGS, assert_no_problems, field_oracle, field_values, judge, mention

pytestmark = pytest.mark.timeout(600)


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
