"""Depth-1e4 NNGP classifiers on the sphere against the official code's approach, in the same run.

    python -m benchmarks.bench_infinite_depth [--quick] [--depth 10000] [--n 2000] [--peer-layers 20]
    python -m benchmarks.bench_infinite_depth --official [--n 10000]

--official: the official code's default run (main.py: d = 2, n_train = n_test = 10,000, seed 1717 drawn by its
sampler and re-draw rule, `dirichlet_task(sampler="official")`) with the 2d_opt NNGP at depth 100: time, peak
resident memory of the chunked classifier against its estimate (`classify._memory`, what the memory guard asks
for), and the test accuracies of Bayes, 1-NN, majority vote, the Hilbert estimate and 2d_opt.

Task: the official code's Dirichlet task on S^1 (d = 2), n_train = n_test = n, seeded. For each dual:
- workbench (`workbench.theory.infinite_depth.DepthClassifier`): the flow of K(X, X) and K(X, x) (log space,
  exact tails),
  the ridgeless NNGP classifier at `depth` and the L = infinity limit classifier, best of 2 after a warm-up;
- peer: the official code's `nngp_kernel` + `solve_kr` (uhlerlab/inf_depth_ntks, models.py) written in numpy: a
  plain float64 loop rho <- clip(k(rho), -1, 1) over the same two matrices, then solve. Its per-layer cost is
  constant, so at size n it is timed over `peer-layers` layers and scaled to `depth` (said in the output). Its
  accuracy at `depth` is measured by running the whole loop at a small size (`--peer-n`, same depth, same task law):
  by then every off-diagonal entry has underflowed to 0 (the peer answers +1 everywhere) or, when k(rho) ~ lambda
  rho with lambda > 1/2, is stuck at the smallest subnormal +-5e-324 (the peer answers majority vote).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_info

from benchmarks.timing import best_time
from workbench.data.sphere import dirichlet_task
from workbench.theory import infinite_depth as I
from workbench.theory.infinite_depth.classify import _memory


def resident_gib() -> float:
    """The current resident set of this process (VmRSS), GiB."""
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kib / 2**20


def official(n: int, depth: int = 100, seed: int = 1717) -> None:
    """The official default run at n training and n test points (module doc)."""
    t0 = time.perf_counter()
    task = dirichlet_task(2, n, n, seed=seed, sampler="official")
    xt, yt, xs, ys = task.x_train, task.y_train, task.x_test, task.y_test
    print(f"official draw (seed {seed}, n_train = n_test = {n}): {time.perf_counter() - t0:.1f} s")
    base = resident_gib()
    t0 = time.perf_counter()
    c = I.DepthClassifier("2d_opt", xt, yt, xs, (depth,), ntk=False, limit=False)
    labels = c.labels(depth)
    took = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20 - base
    print(
        f"2d_opt NNGP at depth {depth}: {took:.1f} s, peak resident {peak:.2f} GiB above the {base:.2f} GiB before, "
        f"estimate {_memory(n, n, 1, False, c.chunk) / 2**30:.2f} GiB; notes: {c.notes_for(depth) or 'none'}"
    )
    acc = {
        "Bayes": I.accuracy(task.bayes(xs), ys),
        "1-NN": I.accuracy(I.nearest_neighbour(xt, yt, xs), ys),
        "majority": I.accuracy(I.majority_vote(yt, len(ys)), ys),
        "Hilbert": I.accuracy(I.hilbert_classify(xt, yt, xs), ys),
        f"2d_opt L={depth}": I.accuracy(labels, ys),
    }
    print("test accuracy: " + "  ".join(f"{k} {v:.4f}" for k, v in acc.items()))


def peer_layers(dual, rho, layers: int) -> np.ndarray:
    """The official loop: `layers` applications of rho <- clip(k(rho), -1, 1) in float64."""
    for _ in range(layers):
        rho = np.clip(dual.k(rho), -1, 1)
    return rho


def peer_labels(k_train, k_test, y) -> np.ndarray:
    """The official `solve_kr`: unit diagonal, solve, sign (0 -> +1)."""
    k_train = k_train.copy()
    np.fill_diagonal(k_train, 1.0)
    out = scipy.linalg.solve(k_train, y, check_finite=False) @ k_test
    return np.where(out < 0, -1, 1)


def main(argv=None):
    assert __doc__ is not None  # the module docstring names the benchmark
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 500 (a smoke run)")
    parser.add_argument("--depth", type=int, default=10_000)
    parser.add_argument("--n", type=int, default=None, help="points (2000; 10,000 with --official)")
    parser.add_argument("--peer-layers", type=int, default=20, help="layers over which the peer loop is timed")
    parser.add_argument("--peer-n", type=int, default=150, help="size at which the whole peer loop is run")
    parser.add_argument("--duals", default="2d_opt,erf")
    parser.add_argument("--official", action="store_true", help="the official default run (n = 10,000 unless --n)")
    args = parser.parse_args(argv)
    if args.official:
        official(args.n or 10_000)
        return
    n = 500 if args.quick else args.n or 2000
    depth = args.depth
    task = dirichlet_task(2, n, n, seed=0)
    xt, yt, xs, ys = task.x_train, task.y_train, task.x_test, task.y_test
    small = dirichlet_task(2, args.peer_n, args.peer_n, seed=1)
    threads = sum(t.get("num_threads", 0) for t in threadpool_info() if t.get("user_api") == "blas")
    print(f"Dirichlet task d = 2, n_train = n_test = {n}, depth {depth}, float64, BLAS threads {threads}")
    print(
        f"Bayes {I.accuracy(task.bayes(xs), ys):.4f}  1-NN {I.accuracy(I.nearest_neighbour(xt, yt, xs), ys):.4f}  "
        f"majority {I.accuracy(I.majority_vote(yt, len(ys)), ys):.4f}  "
        f"Hilbert {I.accuracy(I.hilbert_classify(xt, yt, xs), ys):.4f}  share of +1 {np.mean(ys == 1):.4f}"
    )
    print(
        f"{'dual':>8} {'workbench s':>12} {'peer s':>9} {'ratio':>6} {'acc':>7} {'limit':>7} {'limit s':>8} "
        f"{'small: ours':>12} {'peer':>7}  peer timing"
    )
    rho_train = np.clip(I.to_sphere(xt) @ I.to_sphere(xt).T, -1, 1)
    rho_test = np.clip(I.to_sphere(xt) @ I.to_sphere(xs).T, -1, 1)
    for name in args.duals.split(","):
        dual = I.get_dual(name)
        result = {}

        def ours(dual=dual, result=result):
            c = I.DepthClassifier(dual, xt, yt, xs, (depth,), ntk=False, limit=False, duplicates="drop")
            result["acc"] = I.accuracy(c.labels(depth), ys)
            return np.zeros(())

        def limit(dual=dual, result=result):
            result["limit"] = I.accuracy(I.limit_classify(dual, xt, yt, xs, duplicates="drop"), ys)
            return np.zeros(())

        t_ours = best_time(ours, repeats=2)
        t_limit = best_time(limit, repeats=2)
        layers = min(args.peer_layers, depth)
        t0 = time.perf_counter()
        peer_layers(dual, rho_train, layers)
        peer_layers(dual, rho_test, layers)
        t_layers = time.perf_counter() - t0
        t_peer = t_layers * depth / layers
        # the whole peer loop at the small size, against the workbench on the same data
        s_xt, s_xs = I.to_sphere(small.x_train), I.to_sphere(small.x_test)
        k_train = peer_layers(dual, np.clip(s_xt @ s_xt.T, -1, 1), depth)
        k_test = peer_layers(dual, np.clip(s_xt @ s_xs.T, -1, 1), depth)
        small_peer = I.accuracy(peer_labels(k_train, k_test, small.y_train.astype(float)), small.y_test)
        small_ours = I.accuracy(I.classify(dual, small.x_train, small.y_train, small.x_test, depth), small.y_test)
        print(
            f"{name:>8} {t_ours:12.2f} {t_peer:9.0f} {t_peer / t_ours:6.0f} {result['acc']:7.4f} "
            f"{result['limit']:7.4f} {t_limit:8.2f} {small_ours:12.4f} {small_peer:7.4f}  "
            f"{layers} layers took {t_layers:.2f} s, scaled x {depth / layers:g}"
        )
    print(
        f"'small': the whole peer loop run to depth {depth} at n = {args.peer_n} (seed 1) against the workbench on "
        f"the same points (share of +1 there: {np.mean(small.y_test == 1):.4f}, majority vote "
        f"{I.accuracy(I.majority_vote(small.y_train, len(small.y_test)), small.y_test):.4f})"
    )


if __name__ == "__main__":
    main()
