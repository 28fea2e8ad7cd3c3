"""Neural-collapse metrics against constructions and an independent implementation; the imbalanced
deep-linear UFM against the general orthogonal frame of Dang et al. (2023)."""

import itertools
import math

import numpy as np
import pytest

from workbench.experiments import neural_collapse as NC
from workbench.theory import collapse

C = 5


def _etf_features(scale=3.0, per_class=20, dim=12):
    etf = collapse.simplex_etf(C, dim, seed=1)
    return np.repeat(scale * etf, per_class, axis=0), np.repeat(np.arange(C), per_class), etf


def test_simplex_etf_gives_zero_nc1_nc2_nc3_nc4():
    h, y, etf = _etf_features()
    np.testing.assert_allclose(etf @ etf.T, np.where(np.eye(C), 1.0, -1.0 / (C - 1)), atol=1e-12)
    m = collapse.nc_metrics(h, y, C, w=0.5 * etf)
    for name in (
        "nc1",
        "nc2",
        "nc3",
        "nc4",
        "nc2_norm_M",
        "nc2_norm_W",
        "nc2_angle_M",
        "nc2_angle_W",
        "nc2_maxangle_M",
        "nc2_maxangle_W",
    ):
        assert m[name] < 1e-12, name


def test_noisy_mixture_with_equal_within_and_between_spread_gives_nc1_of_order_one():
    rng = np.random.default_rng(0)
    dim, per_class = 12, 2000
    etf = collapse.simplex_etf(C, dim, seed=2)
    # class means s * etf give Sigma_B eigenvalues s^2/(C-1) on C-1 axes;
    # noise sigma^2 I there: nc1 = sigma^2 (C-1)^2/(s^2 C)
    s, sigma = math.sqrt(C - 1), 1.0
    y = np.repeat(np.arange(C), per_class)
    h = s * etf[y] + sigma * rng.normal(size=(len(y), dim))
    expected = sigma**2 * (C - 1) ** 2 / (s**2 * C)
    assert collapse.nc1(h, y, C) == pytest.approx(expected, rel=0.05)
    assert 0.3 < expected < 3
    # wrong classifier and no structure: far from collapse
    m = collapse.nc_metrics(rng.normal(size=(200, dim)), rng.integers(0, C, 200), C, w=rng.normal(size=(C, dim)))
    assert m["nc1"] > 1 and m["nc3"] > 0.5 and m["nc4"] > 0.3


def _reference(h, y, c, w, b):
    """Papyan et al. (2020) definitions written out with loops and numpy.linalg.pinv."""
    n, d = h.shape
    mu_g = h.mean(0)
    mus = [h[y == k].mean(0) for k in range(c)]
    sw = sum(np.outer(h[i] - mus[y[i]], h[i] - mus[y[i]]) for i in range(n)) / n
    sb = sum(np.outer(mu - mu_g, mu - mu_g) for mu in mus) / c
    nc1 = np.trace(sw @ np.linalg.pinv(sb, rcond=1e-10)) / c
    m = np.array([mu - mu_g for mu in mus])
    cos = lambda a, b_: a @ b_ / np.linalg.norm(a) / np.linalg.norm(b_)
    pairs = [(i, j) for i, j in itertools.product(range(c), repeat=2) if i != j]
    cm, cw = np.array([cos(m[i], m[j]) for i, j in pairs]), np.array([cos(w[i], w[j]) for i, j in pairs])
    norms_m, norms_w = np.linalg.norm(m, axis=1), np.linalg.norm(w, axis=1)
    nc3 = np.sum((w / np.linalg.norm(w) - m / np.linalg.norm(m)) ** 2)
    pred = [np.argmax(w @ h[i] + b) for i in range(n)]
    ncc = [np.argmin([np.linalg.norm(h[i] - mu) for mu in mus]) for i in range(n)]
    return {
        "nc1": nc1,
        "nc2_norm_M": norms_m.std() / norms_m.mean(),
        "nc2_norm_W": norms_w.std() / norms_w.mean(),
        "nc2_angle_M": cm.std(),
        "nc2_angle_W": cw.std(),
        "nc2_maxangle_M": np.mean(np.abs(cm + 1 / (c - 1))),
        "nc2_maxangle_W": np.mean(np.abs(cw + 1 / (c - 1))),
        "nc3": nc3,
        "nc4": np.mean(np.array(pred) != np.array(ncc)),
    }


@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_agree_with_an_independent_numpy_implementation(seed):
    rng = np.random.default_rng(seed)
    c, n, d = 4, 120, 7
    y = rng.integers(0, c, n)
    h = rng.normal(size=(n, d)) + 1.5 * rng.normal(size=(c, d))[y]
    w, b = rng.normal(size=(c, d)), rng.normal(size=c)
    got, ref = collapse.nc_metrics(h, y, c, w=w, b=b), _reference(h, y, c, w, b)
    for name, value in ref.items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_per_layer_nc_has_one_entry_per_layer():
    h, y, _ = _etf_features()
    noise = np.random.default_rng(0).normal(size=h.shape)
    out = collapse.layer_nc([h + noise, h + 0.1 * noise, h], y, C)
    assert out["nc1_layers"].shape == (3,) and np.all(np.diff(out["nc1_layers"]) < 0) and out["nc1_layers"][-1] < 1e-12


def test_gof_depth_one_is_soft_thresholding_and_deeper_values_are_global_minimisers():
    sizes, lam = [200, 100, 50, 10], 0.012
    pred = collapse.gof_prediction(sizes, lam, [lam])
    n = sum(sizes)
    np.testing.assert_allclose(pred["z"], np.maximum(np.sqrt(sizes) - n * lam, 0))
    np.testing.assert_array_equal(pred["collapsed"], [False, False, False, True])
    assert collapse.minority_collapse_threshold(sizes, 1) == pytest.approx(math.sqrt(10) / n)
    for depth in (2, 3):  # the scalar problem on a fine grid
        s, c = math.sqrt(50.0), 0.01
        grid = np.linspace(0, s, 200_001)
        objective = (grid - s) ** 2 / (2 * n) + (depth + 1) / 2 * c * grid ** (2 / (depth + 1))
        assert collapse.gof_singular_value(s, n, c, depth) == pytest.approx(grid[np.argmin(objective)], abs=1e-3)


@pytest.mark.parametrize("depth, lam", [(1, 0.006), (1, 0.012), (2, 0.002), (2, 0.008)])
def test_imbalanced_deep_linear_ufm_reaches_the_predicted_orthogonal_frame(depth, lam):
    sizes = (200, 100, 50, 10)
    cfg = NC.Config().replace(
        dataset="ufm",
        class_sizes=sizes,
        dim=16,
        depth=depth,
        init_std=0.3,
        optimizer="sgd",
        lr=0.5,
        weight_decay=lam,
        loss="mse",
        steps=4000,
        record_every=4000,
    )
    last = list(NC.run(cfg))[-1].metrics
    pred = collapse.gof_prediction(sizes, lam, [lam] * depth)
    collapsed = lam > collapse.minority_collapse_threshold(sizes, depth)
    np.testing.assert_array_equal(pred["collapsed"], [False, False, False, collapsed])
    alive = ~pred["collapsed"]
    np.testing.assert_allclose(last["w_norms"][alive], pred["w_norms"][alive], rtol=0.05)
    np.testing.assert_allclose(last["h_norms"][alive], pred["feature_norms"][-1][alive], rtol=0.05)
    assert np.all(last["w_norms"][~alive] < 0.01 * pred["w_norms"].max())  # minority collapse where the formula says
    np.testing.assert_allclose(last["gof_w_norms"], pred["w_norms"])
    np.testing.assert_allclose(pred["feature_norms"][0], pred["h_norms"])


def test_mlp_on_gaussian_mixture_collapses_and_runs_are_reproducible():
    cfg = NC.Config().replace(class_sizes=(40, 40, 40), width=64, steps=600, record_every=300)
    first, second = ([r for r in NC.run(cfg) if r.status != "compiling"] for _ in range(2))
    recs = first
    assert recs[-1].metrics["nc1"] < 0.2 * recs[0].metrics["nc1"] and recs[-1].metrics["train_acc"] == 1.0
    assert recs[-1].metrics["nc1_layers"].shape == (2,) and recs[-1].metrics["gram_M"].shape == (3, 3)
    assert recs[-1].metrics["proj_M"].shape == (3, 3)
    assert [r.metrics["nc1"] for r in first] == [r.metrics["nc1"] for r in second]


def test_bad_configs_raise_errors_naming_the_field():
    with pytest.raises(ValueError, match="dim: the UFM needs dim >= number of classes"):
        NC.Config().replace(dataset="ufm", class_sizes=(10,) * 8, dim=4)
    with pytest.raises(ValueError, match="class_sizes"):
        NC.Config().replace(class_sizes=(10,))
    with pytest.raises(ValueError, match="dataset: must be one of"):
        NC.Config().replace(dataset="mnist")
    with pytest.raises(ValueError, match="dim: a simplex ETF"):
        collapse.simplex_etf(5, 2)
