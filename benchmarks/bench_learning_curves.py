"""Learning-curve theory and simulations (issue 15), timed in the same run against their peers.

    python -m benchmarks.bench_learning_curves [--quick]

1. A full theory curve: predicted test MSE of RF ridge regression at 60 values of k (n = 256, delta = 1e-3) on the
   paper code's power-law task (M = 4000 modes); `workbench.theory.learning_curves.Task` (tabulated log-gamma grid +
   safeguarded Newton, vectorized over k) against a per-k scipy `brentq` solve of the same equations, with the
   largest relative difference between the two; then the same on the panel's 31 x 31 (n, k) theory map.
2. The simulated RF grid: 31 x 31 (n, k) points, 20 trials, as one vmapped compiled call (`simulate_rf` on the whole
   grid, nested draws per trial) against a Python loop calling `simulate_rf` point by point (compiled once per
   padded size, warmed up before timing).
3. The reproduction of the issue's numbers: n = 256, M = 4000, 20 trials at delta = 1e-3, k = 64, 256, 1024.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.optimize

from benchmarks.timing import best_time
from workbench.theory import learning_curves as LC


def brentq_curve(lam, v2, noise, ns, ks, ridge):
    """The peer: eq. 4 solved per (n, k) by brentq in gamma, then eqs. 5-6 (plain loop, float64)."""
    out = []
    for n, k in np.broadcast(ns, ks):

        def ridge_of(log_gamma, n=n, k=k):
            g = np.exp(log_gamma)
            z = np.sum(lam / (lam + g))
            return g * (1 - z / k) * (n - z) - ridge

        # the physical root: above the gamma where z = min(n, k) (delta = 0 there)
        top = min(n, k)
        if top < lam.size:
            low = scipy.optimize.brentq(lambda u, top=top: np.sum(lam / (lam + np.exp(u))) - top, -60, 20)
        else:  # fewer modes than min(n, k): delta > 0 for every gamma
            low = -60.0
        g = np.exp(float(scipy.optimize.brentq(ridge_of, low, 20, xtol=1e-14)))  # pyright: ignore[reportArgumentType]
        ell = lam / (lam + g)
        z, q = ell.sum(), (ell**2).sum()
        kappa = g * (1 - z / k)
        e0 = 1 / (1 - (q * (1 - 2 * z / k) + z**2 / k) / (n * (1 - q / k)))
        bias = (1 - ell) - kappa * ell / (lam + g) / (1 - q / k)
        out.append(e0 * (np.sum(bias * v2) + noise))
    return np.array(out).reshape(np.broadcast(ns, ks).shape)


def main(argv=None):
    assert __doc__ is not None
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 9 x 9 grid, 4 trials, no reproduction")
    args = parser.parse_args(argv)
    lam, v2 = LC.power_law_task(1.5, 1.5, 4000)
    ks = np.geomspace(10, 10_000, 60)

    task = LC.Task(lam, v2, 0.5)
    t_curve = best_time(lambda: task.risk(256, ks, 1e-3).test, repeats=5)
    t_task = best_time(lambda: LC.Task(lam, v2, 0.5).table, repeats=3)
    t_peer = best_time(lambda: brentq_curve(lam, v2, 0.5, 256, ks, 1e-3), repeats=2)
    diff = np.max(np.abs(task.risk(256, ks, 1e-3).test / brentq_curve(lam, v2, 0.5, 256, ks, 1e-3) - 1))
    print("theory curve, 60 k values, M = 4000 modes")
    print(f"  workbench Task.risk      {1e3 * t_curve:8.1f} ms  (+ {1e3 * t_task:.1f} ms to tabulate the task once)")
    print(f"  peer per-k brentq        {1e3 * t_peer:8.1f} ms  ratio {t_peer / t_curve:.1f}x; max rel. diff {diff:.1e}")
    grid_n, grid_k = np.meshgrid(np.geomspace(4, 4096, 31), np.geomspace(10, 10_000, 31), indexing="ij")
    t_map = best_time(lambda: task.risk(grid_n, grid_k, 1e-3).test, repeats=3)
    t_map_peer = best_time(lambda: brentq_curve(lam, v2, 0.5, grid_n, grid_k, 1e-3), repeats=1)
    print("theory map, 31 x 31 (n, k) points")
    print(f"  workbench Task.risk      {1e3 * t_map:8.1f} ms")
    print(f"  peer per-point brentq    {1e3 * t_map_peer:8.1f} ms  ratio {t_map_peer / t_map:.1f}x")

    side, trials = (9, 4) if args.quick else (31, 20)
    small, small_v2 = LC.power_law_task(1.5, 1.5, 500)
    grid = np.geomspace(4, 64, side).round()
    n, k = np.meshgrid(grid, grid, indexing="ij")
    small_task = LC.Task(small, small_v2, 0.5)

    def batched():
        return LC.simulate_rf(small_task, n, k, 1e-3, trials=trials)[0]

    def loop():
        return [LC.simulate_rf(small_task, a, b, 1e-3, trials=trials)[0] for a, b in zip(n.ravel(), k.ravel())]

    start = time.perf_counter()
    batched()
    first = time.perf_counter() - start
    t_batched = best_time(batched, repeats=2)
    t_loop = best_time(loop, repeats=1)
    print(f"simulated RF grid, {side} x {side} (n, k) points in [4, 64], {trials} trials, M = 500 modes")
    print(f"  one vmapped call         {t_batched:8.2f} s   (first call with compilation {first:.2f} s)")
    print(f"  per-point Python loop    {t_loop:8.2f} s   ratio {t_loop / t_batched:.1f}x")

    if args.quick:
        return
    k3 = np.array([64, 256, 1024])
    start = time.perf_counter()
    test, _ = LC.simulate_rf(task, 256, k3, 1e-3, trials=20, seed=0)
    elapsed = time.perf_counter() - start
    theory = task.risk(256, k3, 1e-3).test
    print(f"reproduction, n = 256, M = 4000, delta = 1e-3, 20 trials ({elapsed:.1f} s)")
    for i, kk in enumerate(k3):
        sem = test[:, i].std(ddof=1) / np.sqrt(len(test))
        gap = abs(test[:, i].mean() - theory[i]) / sem
        print(f"  k = {kk:5d}: theory {theory[i]:.3f}, simulation {test[:, i].mean():.3f} +- {sem:.3f} ({gap:.1f} SEM)")


if __name__ == "__main__":
    main()
