"""Locality and hierarchy (issue 26): learning-curve exponents of LC, CN, FC and deep hierarchical CNN students.

    python -m benchmarks.bench_locality [--quick] [--part timing|local|eigen|deep] [--n-max N] [--trials T]
        [--points M]

1. timing: one learning curve (LC teacher t = 2, LC student s = 2, d = 8; 8 values of n from 128 to 4096, 8 trials,
   1024 test points; per trial compiled float64 Gram matrices, LAPACK factorizations through scipy); target <= 60 s
   on a 2-core CPU; then the memory guard refusing n = 32768 before allocating.
2. local: Laplace teacher t = 2 (LC for the LC students, CN for the CN students, whose RKHS holds only translation-
   invariant targets), students LC / CN with s = 2, 3 and FC, d in {8, 12, 16}: fitted beta +- its standard error
   against alpha_t / s and alpha_t / d (2106.08619).
3. eigen: the eigenlearning slope from the student's spectrum on M = 1024, 2048, 4096 points against the
   simulation's (EIGEN_TRIALS trials) at n = 32..256 (n <= M / 16), and the predicted / simulated MSE. The
   prediction is the error at an unseen point of the M-point measure (`eigen_prediction`); unconverged in M, the
   slope is too steep.
4. deep: the hierarchical CNN NTK student (s = 2, 3 layers, d = 8, patches on circles) on NTK teachers reading the
   meta-patch of layer 1 (d_eff = 1), of layer 2 (d_eff = 2) and the whole input (d_eff = 4): beta against
   alpha_t / d_eff (2208.01003).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from workbench.theory import locality as L


def show(name: str, curve: L.Curve, predicted: float, seconds: float) -> None:
    n = curve.n.astype(int)
    print(
        f"{name:<34} n = {n[0]}..{n[-1]} ({len(n)}), {len(curve.test)} trials: beta = {curve.beta:.3f} +- "
        f"{curve.beta_err:.3f}, predicted {predicted:.3f}, diff {curve.beta - predicted:+.3f} ({seconds:.0f} s)"
    )


def timed(teacher: L.Spec, student: L.Spec, d: int, ns: np.ndarray, trials: int, test: int) -> tuple[L.Curve, float]:
    start, cpu = time.perf_counter(), time.process_time()
    curve = L.learning_curve(teacher, student, d, ns, trials=trials, test=test)
    LAST_CPU[0] = time.process_time() - cpu
    return curve, time.perf_counter() - start


LAST_CPU = [0.0]  # CPU seconds (all threads) of the last timed curve: the machine's load does not inflate them


def timing(quick: bool) -> None:
    ns = np.geomspace(128, 1024 if quick else 4096, 8).round().astype(int)
    teacher = student = L.spec("lc", 2)
    L.learning_curve(teacher, student, 8, ns[:2], trials=2, test=64)  # compile the small shapes' path once
    curve, seconds = timed(teacher, student, 8, ns, 8, 1024)
    print(
        f"one learning curve: n = {ns.tolist()}, 8 trials, 1024 test points: {seconds:.1f} s wall, "
        f"{LAST_CPU[0]:.1f} s CPU on all threads (target <= 60 s wall on 2 idle cores)"
    )
    show("  LC t=2 -> LC s=2, d=8", curve, L.predicted_beta(teacher, student, 8), seconds)
    try:
        L.learning_curve(teacher, student, 8, [32768], trials=8, test=8192)
    except ValueError as err:
        print(f"memory guard: {err}")


def local(quick: bool) -> None:
    dims = (8,) if quick else (8, 12, 16)
    for d in dims:
        for kind in ("lc", "cn"):
            teacher = L.spec(kind, 2)
            ns = np.geomspace(128, N_MAX[0] // (4 if quick else 1), 6).round().astype(int)
            for s in (2, 3):
                student = L.spec(kind, s)
                curve, seconds = timed(teacher, student, d, ns, TRIALS[0], 512)
                show(
                    f"d={d} {kind.upper()} t=2 -> {kind.upper()} s={s}",
                    curve,
                    L.predicted_beta(teacher, student, d),
                    seconds,
                )
        teacher, student = L.spec("lc", 2), L.spec("fc", 1)
        ns = np.geomspace(128, N_MAX[0] // (4 if quick else 1), 6).round().astype(int)
        curve, seconds = timed(teacher, student, d, ns, TRIALS[0], 512)
        show(f"d={d} LC t=2 -> FC", curve, L.predicted_beta(teacher, student, d), seconds)


def eigen(quick: bool) -> None:
    top = POINTS[0] // (4 if quick else 1)
    ns = np.geomspace(32, top // 16, 4).round().astype(int)  # n <= M / 16 at the largest M
    for t, s, d in ((L.spec("lc", 2), L.spec("lc", 2), 8), (L.spec("cn", 2), L.spec("cn", 3), 8),
                    (L.spec("lc", 2), L.spec("fc", 1), 8)):  # fmt: skip
        curve, seconds = timed(t, s, d, ns, EIGEN_TRIALS, 512)
        name = f"{t.kind.upper()} t={t.size} -> {s.kind.upper()} s={s.size}, d={d}, n = {ns[0]}..{ns[-1]}"
        print(f"{name}: simulation beta = {curve.beta:.3f} +- {curve.beta_err:.3f} ({seconds:.0f} s)", flush=True)
        for points in (top // 4, top // 2, top):
            start = time.perf_counter()
            pred, _, _ = L.eigen_prediction(t, s, d, ns, points=points)
            slope = L.fit_exponent(ns, pred[None])[0]
            ratio = pred / curve.test.mean(0)
            print(
                f"  eigenlearning on M = {points}: slope {slope:.3f}, diff {slope - curve.beta:+.3f} "
                f"({(slope - curve.beta) / max(curve.beta_err, 1e-12):+.1f} sigma); predicted / simulated MSE "
                f"{ratio.min():.2f}..{ratio.max():.2f} ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )


def deep(quick: bool) -> None:
    ns = np.geomspace(64, N_MAX[0] // (4 if quick else 1), 7).round().astype(int)
    student = L.spec("deep", 2, depth=3)
    for name, teacher in (
        ("meta-patch of layer 1 (d_eff 1)", L.spec("deep", 2, depth=1, span=2)),
        ("meta-patch of layer 2 (d_eff 2)", L.spec("deep", 2, depth=2, span=4)),
        ("whole input (d_eff 4)", L.spec("deep", 2, depth=3)),
    ):
        curve, seconds = timed(teacher, student, 8, ns, TRIALS[0], 512)
        show(f"deep s=2 L=3, d=8, target on {name}", curve, L.predicted_beta(teacher, student, 8), seconds)


N_MAX, TRIALS, POINTS = [4096], [8], [4096]  # set from the command line
EIGEN_TRIALS = 80  # n <= 256 is cheap; CN s=3 at 8 trials gave 0.256 +- 0.020, at 80 0.328 +- 0.010
PARTS = {"timing": timing, "local": local, "eigen": eigen, "deep": deep}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller n (a smoke run)")
    parser.add_argument("--part", choices=tuple(PARTS), action="append")
    parser.add_argument("--n-max", type=int, default=4096, help="largest n of the local (CN: half) and deep curves")
    parser.add_argument("--trials", type=int, default=8, help="trials of the local, deep and eigen curves")
    parser.add_argument("--points", type=int, default=4096, help="inputs of the eigenlearning spectrum")
    args = parser.parse_args()
    N_MAX[0], TRIALS[0], POINTS[0] = args.n_max, args.trials, args.points
    for part in args.part or tuple(PARTS):
        print(f"--- {part}", flush=True)
        PARTS[part](args.quick)


if __name__ == "__main__":
    main()
