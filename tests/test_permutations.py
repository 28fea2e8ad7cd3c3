"""Permutations with NTK ensembles (issue 28 B; arXiv 2502.16763, code opallab/permlearn): the kernels against the
arc-cosine closed form, the member law against an independent numpy solve, the paper's sign claim, the sampled
accuracy against its Gaussian expectation, the repository's stored members (tests/data/permlearn_members.npz, made by
benchmarks/make_permlearn_reference.py) against the law and its counts, finite networks, the experiment's records."""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from workbench.experiments import permutations as E
from workbench.nets.engine import Program, runs, stacked_params
from workbench.nets.models import MLP
from workbench.theory import permutations as PM
from workbench.theory.kernels import mlp_kernels

REFERENCE = np.load(Path(__file__).parent / "data" / "permlearn_members.npz")


def arccos_kernels(x1, x2, sigma):
    """NNGP and NTK of x -> W2 relu(W1 x), no bias, NT "ntk" parametrization (Cho & Saul 2009, Jacot et al. 2018)."""
    d = x1.shape[1]
    n1, n2 = np.linalg.norm(x1, axis=1), np.linalg.norm(x2, axis=1)
    cos = np.clip(x1 @ x2.T / np.outer(n1, n2), -1, 1)
    theta = np.arccos(cos)
    q = sigma**2 * np.outer(n1, n2) / d  # sqrt of the two pre-activation variances
    k1 = q * (np.sin(theta) + (np.pi - theta) * cos) / (2 * np.pi)
    k0 = (np.pi - theta) / (2 * np.pi)
    nngp = sigma**2 * k1
    return nngp, nngp + sigma**2 * (q * cos) * k0


def closed_form_law(k, parametrization, sigma=1.0):
    """Mean and covariance of one converged member from the arc-cosine kernels, solved with numpy."""
    _, x = PM.two_hot_inputs(k)
    e = np.eye(k)
    (kxx, txx), (ksx, tsx), (kss, _) = (arccos_kernels(a, b, sigma) for a, b in ((e, e), (x, e), (x, x)))
    if parametrization == "sp":
        txx, tsx = kxx, ksx
    transfer = np.linalg.solve(txx, tsx.T).T
    cov = kss - transfer @ ksx.T - ksx @ transfer.T + transfer @ kxx @ transfer.T
    return transfer @ e, cov


def test_ntk_of_the_two_layer_net_is_the_arccos_kernel():
    _, x = PM.two_hot_inputs(6)
    x = np.concatenate([np.eye(6), x, np.random.default_rng(0).normal(size=(5, 6))])
    got = mlp_kernels(x, depth=1, weight_std=1.3, bias_std=None, parametrization="ntk")
    nngp, ntk = arccos_kernels(x, x, 1.3)
    np.testing.assert_allclose(got.nngp, nngp, atol=2e-6)
    np.testing.assert_allclose(got.ntk, ntk, atol=2e-6)


@pytest.mark.parametrize("parametrization", ["sp", "ntk"])
def test_member_law_is_the_closed_form_and_has_the_paper_signs(parametrization):
    for k, sigma in ((5, 1.0), (10, 0.6)):
        law = PM.member_law(k, parametrization, sigma)
        mean, cov = closed_form_law(k, parametrization, sigma)
        np.testing.assert_allclose(law.mean, mean, atol=1e-9)
        np.testing.assert_allclose(law.cov, cov, atol=1e-9 * sigma**4)
        pairs, _ = PM.two_hot_inputs(k)
        right = np.zeros(mean.shape, bool)
        right[np.arange(len(pairs))[:, None], pairs] = True
        assert law.mean[right].min() > 0 > law.mean[~right].max()  # the mean learns P exactly (the paper's sign claim)


def test_sampled_accuracy_is_its_gaussian_expectation():
    """Members drawn by infinite_ensemble: the accuracy at M, averaged over trials, is sum_t w_t prod_c
    Phi(+-mean_tc sqrt(M) / sd_t) (output coordinates independent, the average's sd is sd / sqrt M)."""
    k, m, trials = 5, 16, 40
    law = PM.member_law(k, "sp")
    pairs, _ = PM.two_hot_inputs(k)
    sign = -np.ones(law.mean.shape)
    sign[np.arange(len(pairs))[:, None], pairs] = 1
    z = sign * law.mean * math.sqrt(m) / np.sqrt(np.diag(law.cov))[:, None]
    p_right = norm.cdf(z).prod(1)
    sampled, expected = [], []
    for seed in range(trials):
        _, acc = PM.infinite_ensemble(k, 1e-4, n_tests=200, max_models=m, seed=seed)
        assert len(acc) == m
        w = PM.draw_counts(k, 200, seed)
        sampled.append(acc[m - 1])
        expected.append(p_right @ w / w.sum())
    assert abs(np.mean(sampled) - np.mean(expected)) < 4 * np.std(sampled) / math.sqrt(trials) + 0.01


def test_repository_members_follow_the_sp_law_and_their_count():
    """The repository's stored members (width 50 000, torch SGD): ensemble_accuracy on them reproduces its CSV count,
    and their mean and sd are the sp law's (readout kernel), not the ntk law's. By symmetry every wrong coordinate
    of the law has the same mean and every input the same sd, whatever P."""
    for k in (5, 10):
        out, targets = REFERENCE[f"k{k}_outputs"].astype(float), REFERENCE[f"k{k}_targets"].astype(int)
        acc = PM.ensemble_accuracy(out, targets, REFERENCE[f"k{k}_counts"])
        assert PM.models_needed(acc, 0.1) == int(REFERENCE[f"k{k}_needed"])
        margin = out[:, targets == 0].mean(1)  # per member: its mean output on the wrong coordinates
        se = margin.std(ddof=1) / math.sqrt(len(out))
        sp, ntk = PM.member_law(k, "sp"), PM.member_law(k, "ntk")
        assert abs(margin.mean() - wrong_mean(sp, k)) < 3 * se
        assert abs(margin.mean() - wrong_mean(ntk, k)) > 5 * se
        np.testing.assert_allclose(out.std(0, ddof=1).mean(), math.sqrt(sp.cov[0, 0]), rtol=0.1)


def wrong_mean(law, k):
    """The law's mean output on the wrong coordinates."""
    pairs, _ = PM.two_hot_inputs(k)
    right = np.zeros(law.mean.shape, bool)
    right[np.arange(len(pairs))[:, None], pairs] = True
    return law.mean[~right].mean()


def test_models_needed_and_rates():
    assert PM.models_needed([0.1, 0.95, 0.8, 0.97], 0.1) == 2
    assert PM.models_needed([0.1, 0.5], 0.1) == 0
    ks = np.array([5.0, 10.0, 20.0])
    rates = PM.rate_curves(ks, 3 * ks**2)
    np.testing.assert_allclose(rates["k^2"], 3 * ks**2)
    assert rates["k log k"][2] / rates["k log k"][0] == pytest.approx(20 * math.log(20) / (5 * math.log(5)))


def test_finite_networks_converge_to_the_law():
    """32 "sp" networks of width 512 trained by the engine: train loss ~ 0, mean and sd on the test inputs near the
    infinite-width law (sd of the ensemble mean: law sd / sqrt 32)."""
    k, members = 5, 32
    config = E.Config(k=k, width=512)
    mc = E.model_config(config, k)
    lr, steps = E.schedule(mc)
    graphdef, params0 = stacked_params(MLP, mc, np.arange(members))
    x = jnp.broadcast_to(jnp.eye(k), (members, k, k))
    final, losses, _ = runs(Program(graphdef, mc), steps, params0, {"lr": [lr]}, x, x)
    assert float(losses[:, 0, -1].max()) < 1e-8
    _, x_test = PM.two_hot_inputs(k)
    out = np.asarray(E._outputs(graphdef, jax.tree.map(lambda a: a[:, 0], final), jnp.asarray(x_test)), float)
    law = PM.member_law(k, "sp")
    sd = np.sqrt(np.diag(law.cov))[:, None]
    assert np.abs((out.mean(0) - law.mean) / (sd / math.sqrt(members))).max() < 4.5
    np.testing.assert_allclose(out.std(0).mean(), sd.mean(), rtol=0.1)


def test_experiment_records_and_counts():
    """Infinite width at the quick settings: one point per k, the summary's shapes; the counts at k = 10 within the
    law's spread of the repository's 69 (its 94th percentile, benchmarks/bench_permutations)."""
    config = E.Config(k=10, seeds=4)
    records = list(E.run(config))
    points = [r.metrics for r in records if r.kind == "point"]
    assert [p["k"] for p in points] == [5, 10]
    summary = records[-1].metrics
    assert records[-1].kind == "summary" and summary["needed"].shape == (2, 4)
    assert summary["repository"].tolist() == [43.0, 69.0]
    assert 30 < summary["needed_mean"][1] < 90
    assert points[1]["accuracy"].shape[0] == 4


@pytest.mark.parametrize(
    "field, value", [("k", 2), ("k", PM.MAX_K + 1), ("width", -1), ("parametrization", "mup"), ("delta", 0.0)]
)
def test_bad_config_is_refused(field, value):
    with pytest.raises(ValueError, match=field):
        E.Config().replace(**{field: value})


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="k"):
        PM.member_law(1)
    with pytest.raises(ValueError, match="weights"):
        PM.ensemble_accuracy(np.ones((2, 3, 3)), np.eye(3, dtype=int), np.zeros(3))
    with pytest.raises(ValueError, match="targets"):
        PM.ensemble_accuracy(np.ones((2, 3, 3)), 2 * np.eye(3, dtype=int), np.ones(3))
    with pytest.raises(ValueError, match="delta"):
        PM.infinite_ensemble(5, -0.1)
