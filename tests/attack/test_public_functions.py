"""Attacks on the arguments of the public functions of `workbench` (kernels, criticality, collapse, fourier,
data sets, build_mlp): a hand table of (value, valid) per argument, built from the generators in `oracle`."""

from __future__ import annotations

import math
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
import pytest

from workbench import data
from workbench.data import sphere as data_sphere
from workbench.nets.models import MLPConfig, build_mlp
from workbench.theory import collapse, criticality, fourier
from workbench.theory.kernels import (
    Kernels,
    empirical_ntk,
    gaussian_expectations,
    gradient_flow,
    kernel_eigenvalues,
    kernel_vs_angle,
    mlp_kernels,
    nngp_posterior,
)

from .oracle import arrays, assert_no_problems, choices, ints, judge, reals

pytestmark = pytest.mark.timeout(600)


RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 3))
Y = RNG.normal(size=(6, 1))


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
                (math.inf, True),  # the converged network
                (-math.inf, False),
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
