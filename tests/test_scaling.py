"""Scaling laws (issue 27 B): L(n) = a n^-alpha + c with bootstrap intervals (`workbench.core.scaling`) fitted to a
sweep of the run database (`workbench.runs.scaling`, `python -m workbench runs fit`). Checked against the truth of
synthetic curves (interval coverage), scipy's least squares in log space, the exponent of the eigenlearning theory,
a real sweep's stored runs, and bad input; the schema-2 `fits` table leaves a schema-1 database readable."""

import sqlite3

import numpy as np
import pytest
from scipy.optimize import least_squares

from workbench.core.experiment import Record
from workbench.core.scaling import fit_scaling
from workbench.runs import rundb, sweep
from workbench.runs.__main__ import main
from workbench.runs.rundb import RunDB
from workbench.runs.scaling import fit_sweep, held, sweep_points
from workbench.theory import learning_curves as LC

TRUTH = {"a": 5.0, "alpha": 0.5, "c": 0.05}
SIZES = np.repeat(np.geomspace(64, 4096, 7).round(), 3)  # 7 sizes x 3 seeds


def scipy_fit(n: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(a, alpha, c) by scipy's bounded least squares of log(a n^-alpha + c) - log y (independent of the fit)."""
    res = least_squares(
        lambda p: np.log(p[0] * n ** -p[1] + p[2]) - np.log(y),
        [1.0, 0.3, 0.01],
        bounds=([0, 0, 0], [np.inf, 10, np.inf]),
        xtol=1e-12,
        ftol=1e-12,
    )
    return res.x


def test_the_95_percent_interval_covers_the_truth_in_at_least_90_of_100_draws():
    covered = dict.fromkeys(TRUTH, 0)
    for draw in range(100):
        rng = np.random.default_rng(1000 + draw)
        clean = TRUTH["a"] * SIZES ** -TRUTH["alpha"] + TRUTH["c"]
        fit = fit_scaling(SIZES, clean * np.exp(0.05 * rng.normal(size=SIZES.size)), resamples=200, seed=draw)
        for name, truth in TRUTH.items():
            lo, hi = fit.intervals[name]
            covered[name] += lo <= truth <= hi
    print("coverage of 100 draws:", covered)
    assert min(covered.values()) >= 90, covered


def test_the_fit_is_scipys_least_squares_in_log_space():
    for draw in range(5):
        rng = np.random.default_rng(draw)
        y = (TRUTH["a"] * SIZES ** -TRUTH["alpha"] + TRUTH["c"]) * np.exp(0.1 * rng.normal(size=SIZES.size))
        fit = fit_scaling(SIZES, y, resamples=20)
        np.testing.assert_allclose([fit.a, fit.alpha, fit.c], scipy_fit(SIZES, y), rtol=2e-3, atol=2e-4)


@pytest.mark.parametrize("a, b", [(1.5, 2.0), (2.0, 3.0)])
def test_alpha_agrees_with_the_eigenlearning_exponent(a, b):
    """Noise-free ridgeless kernel regression on lam_i = i^-a, v_i^2 = i^-b: test MSE ~ n^-(b - 1) for b < 2a + 1
    (the modes beyond n are unlearned; Simon et al. 2023's theory, evaluated by the learning-curve module)."""
    lam, v2 = LC.power_law_task(a, b, 4000)
    n = np.geomspace(16, 256, 12)
    fit = fit_scaling(n, LC.Task(lam, v2).risk(n, np.inf, 0.0).test, resamples=100)
    print(f"a={a} b={b}: alpha {fit.alpha:.4f} against b - 1 = {b - 1}")
    assert abs(fit.alpha - (b - 1)) < 0.05
    assert fit.intervals["c"][0] == 0.0 and fit.n_irreducible == np.inf  # no floor: the curve never flattens


def test_regions_from_an_exact_curve():
    """a = 10, alpha = 1, c = 0.01: the power-law term meets c at n = (a/c)^(1/alpha) = 1000; the fit reaches the
    best guess 1 at n = a/(1 - c)."""
    n = np.geomspace(16, 16384, 11)
    fit = fit_scaling(n, 10.0 / n + 0.01, resamples=50, guess=1.0)
    assert fit.n_irreducible == pytest.approx(1000.0, rel=1e-3)
    assert fit.n_small == pytest.approx(10.0 / 0.99, rel=1e-3)
    unguessed = fit_scaling(n, 10.0 / n + 0.01, resamples=50)
    assert unguessed.n_small == 0.0 and np.isnan(unguessed.guess)  # no best guess: no small-data region
    lo, hi = fit.band(n)
    np.testing.assert_allclose(fit.predict(n), 10.0 / n + 0.01, rtol=1e-6)
    assert np.all(lo <= fit.predict(n) * (1 + 1e-9)) and np.all(hi >= fit.predict(n) * (1 - 1e-9))


def test_bad_input_is_refused_clearly():
    n, y = np.array([64.0, 128.0, 256.0, 512.0]), np.array([0.4, 0.3, 0.2, 0.15])
    with pytest.raises(ValueError, match="^n: .*at least 4 distinct sizes, got 3"):
        fit_scaling([64, 64, 128, 256], y)
    with pytest.raises(ValueError, match="^n: every entry must be positive"):
        fit_scaling(n * [0, 1, 1, 1], y)
    with pytest.raises(ValueError, match="^n: "):
        fit_scaling(-n, y)
    with pytest.raises(ValueError, match="^y: holds NaN"):
        fit_scaling(n, y * [1, np.nan, 1, 1])
    with pytest.raises(ValueError, match="^y: every entry must be positive"):
        fit_scaling(n, y * [1, 1, 0, 1])
    with pytest.raises(ValueError, match=r"^y: every entry must be in \[0.0"):
        fit_scaling(n, -y)
    with pytest.raises(ValueError, match="^resamples: "):
        fit_scaling(n, y, resamples=5)


def synthetic_sweep(db: RunDB, grid: dict, seeds=(0, 1), loss=lambda n, seed: 3.0 * n**-0.5 + 0.01) -> int:
    """A sweep written as `sweep.run` writes one: its row, then one finished run per point."""
    sweep_id = db.sweep("workbench.experiments.teacher_fit", {}, grid, list(seeds), False)
    for config in (dict(zip(grid, values), seed=s) for values in zip(*grid.values()) for s in seeds):
        metrics = {"test_loss": loss(config["n_train"], config["seed"]), "train_loss": 0.0}
        db.save_point(
            sweep_id, "workbench.experiments.teacher_fit", config, [Record(1, 1, "steps", metrics, "finished")]
        )
    return sweep_id


def test_bad_sweeps_metrics_and_fields_are_named(tmp_path):
    db = RunDB(tmp_path / "runs.sqlite")
    with pytest.raises(ValueError, match="^sweep_id: .* holds no sweep"):
        sweep_points(db, None, "test_loss")
    good = synthetic_sweep(db, {"n_train": [64, 128, 256, 512, 1024]})
    with pytest.raises(ValueError, match="^sweep_id: no sweep 99 .*its sweeps: 1"):
        sweep_points(db, 99, "test_loss")
    with pytest.raises(ValueError, match="^metric: run 1 of sweep 1 holds no 'nope'; it holds test_loss, train_loss"):
        sweep_points(db, good, "nope")
    with pytest.raises(ValueError, match="^axis: 'widht' is no field .* numeric fields: n_train, seed"):
        sweep_points(db, good, "test_loss", "widht")
    assert held(db, good) == (good, ["test_loss", "train_loss"], ["n_train"])
    few = synthetic_sweep(db, {"n_train": [64, 128, 256]})
    with pytest.raises(ValueError, match="^axis: n_train of sweep 2: .*at least 4 distinct sizes"):
        fit_sweep(db, few, "test_loss")
    nan = synthetic_sweep(db, {"n_train": [8, 16, 32, 64]}, loss=lambda n, s: np.nan if n == 16 and s else 1.0 / n)
    with pytest.raises(ValueError, match=r"^metric: test_loss is NaN or infinite in runs \[\d+\]"):
        fit_sweep(db, nan, "test_loss")
    zero = synthetic_sweep(db, {"n_train": [8, 16, 32, 64]}, seeds=(5,), loss=lambda n, s: 0.0)
    with pytest.raises(ValueError, match="^metric: train_loss of sweep 4: every entry must be positive"):
        fit_sweep(db, zero, "train_loss")
    two = synthetic_sweep(db, {"n_train": [64, 128, 256, 512], "width": [8, 16, 8, 16]})
    with pytest.raises(ValueError, match="^axis: the sweep's grid varies"):
        sweep_points(db, two, "test_loss")
    with pytest.raises(ValueError, match="^axis: the sweep also varies width"):
        sweep_points(db, two, "test_loss", "n_train")
    assert db.fits() == []  # nothing refused was stored


def test_a_real_sweep_is_fitted_and_stored(tmp_path, capsys):
    """A tiny teacher_fit sweep over n_train (2 seeds) through the sweep machinery; its stored fit is the fit of the
    runs' last test losses (read back independently) by scipy's least squares; `runs fit` prints it."""
    from distributed import Client, LocalCluster

    from workbench.experiments import teacher_fit as T

    base = T.Config().replace(**{"model.width": 16, "model.depth": 1, "train.steps": 60, "train.record_every": 60})
    path = tmp_path / "runs.sqlite"
    with Client(LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0")) as client:
        last = list(sweep.run(T, base, grid={"n_train": [16, 32, 64, 128]}, seeds=[0, 1], client=client, db=path))
    sweep_id = last[-1].metrics["sweep_id"]
    db = RunDB(path)
    fit, points = fit_sweep(db, sweep_id, "test_loss", "n_train", resamples=200)
    n, y = [], []
    for info in db.runs(sweep_id=sweep_id):
        n.append(info["config"]["n_train"])
        y.append(db.load(info["id"])[1][-1].metrics["test_loss"])
    assert sorted(zip(n, y)) == sorted(zip(points.n.tolist(), points.y.tolist()))
    np.testing.assert_allclose([fit.a, fit.alpha, fit.c], scipy_fit(np.array(n), np.array(y)), rtol=1e-2, atol=1e-3)
    (stored,) = db.fits(sweep_id)
    assert (stored["metric"], stored["axis"]) == ("test_loss", "n_train")
    assert stored["fit"]["alpha"] == pytest.approx(fit.alpha)
    assert sorted(stored["fit"]["runs"]) == sorted(points.run_ids) and len(points.run_ids) == 8
    argv = ["runs", "fit", "--db", str(path), "--axis", "n_train", "--resamples", "200"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"alpha = {fit.alpha:<10.4g}" in out and f"stored with sweep {sweep_id}" in out
    assert len(db.fits(sweep_id)) == 1  # the same fit replaced, not added


def test_a_schema_1_database_still_opens(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:  # a database as the workbench wrote it before the fits table
        for statement in rundb.MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
    old = RunDB(path)
    assert old.schema == rundb.SCHEMA_VERSION == 2  # migrated on a writable open
    old.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE fits")
        conn.execute("PRAGMA user_version = 1")
    run = RunDB(path).save_run("x", {"n": 1}, [Record(1, 1, status="finished")])  # schema 1 again, then migrated
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE fits")
        conn.execute("PRAGMA user_version = 1")
    reader = RunDB(path, readonly=True)  # read-only: read as it is
    assert reader.schema == 1 and [r["id"] for r in reader.runs()] == [run] and reader.fits() == []
    reader.close()
    writer = RunDB(path)
    sweep_id = writer.sweep("x", {}, {"n": [1]}, [], False)
    writer.save_fit(sweep_id, "loss", "n", {"alpha": 0.5})
    assert [f["fit"] for f in writer.fits()] == [{"alpha": 0.5}] and [r["id"] for r in writer.runs()] == [run]
    with pytest.raises(ValueError, match="^sweep_id: no sweep 7"):
        writer.save_fit(7, "loss", "n", {})
