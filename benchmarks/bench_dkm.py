"""Deep kernel machines (issue 28 A): the measurements behind the claims, printed.

    python -m benchmarks.bench_dkm [limit | toy | digits | cost] [--quick]

limit:  the two-sines toy at the panel's defaults swept over nu (1e-2 .. 1e6, 9 values): each layer's relative Frobenius
        distance of the learned Gram from the NNGP's with its log-log slope over nu >= 10 (theory: -1), and the
        largest fall of the objective between two Adam steps at the chosen nu (plain gradient descent never lowers
        it: tests/test_dkm.py).
toy:    the `dkm` library's two-sines toy (1000 training and 1000 test points, 50 inducing points, 3 layers): test
        accuracy at each nu and the NNGP's, mean and standard error over seeds (300 steps of Adam at lr 0.03, the
        experiment's default).
digits: the same on the digits (500 training images, 539 test images, 50 inducing points, 2 layers).
cost:   time per gradient-descent step (after compilation) and the compiled step's memory against the number of
        inducing points (1000 training points, 3 layers, two-sines toy), float64 on this machine's CPU.
"""

from __future__ import annotations

import argparse
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from workbench.core import float64
from workbench.experiments import deep_kernel_machine as E
from workbench.nets import engine
from workbench.theory import dkm


def sweep(config: E.Config) -> list:
    """Run the experiment, printing each point; (points, summary)."""
    points, summary, start = [], {}, time.perf_counter()
    for record in E.run(config):
        m = record.metrics
        if record.kind == "point":
            points.append(m)
            score = f"acc {m['test_acc']:.4f} +- {m['test_acc_sem']:.4f}, " if "test_acc" in m else ""
            label = "NNGP" if m["nu"] >= E.NNGP_NU else f"nu = {m['nu']:.3g}"
            print(
                f"  {label:>12}: {score}NLL {m['test_nll']:.4f} +- {m['test_nll_sem']:.4f}, distance "
                + ", ".join(f"{d:.3g}" for d in m["distance"])
                + f"  [{time.perf_counter() - start:.0f} s]",
                flush=True,
            )
        elif record.kind == "summary":
            summary = m
    return [points, summary]


def limit(quick: bool) -> None:
    config = E.Config(nus=5 if quick else 9, steps=200)
    sizes = f"n = {config.n_train}, P = {config.inducing}, L = {config.layers}, {config.seeds} seeds"
    print(f"limit: {config.task}, {sizes}")
    points, summary = sweep(config)
    print("  slope of the distance against nu >= 10, per layer:", np.round(summary["slope"], 4))
    chosen = next(p for p in points if "trace_objective" in p)
    trace = chosen["trace_objective"]
    fall = max(0.0, -float(np.min(np.diff(trace[:-1]))))  # the engine's float32 log of the objective
    print(f"  objective at nu = {chosen['nu']:g}: {trace[0]:.5f} -> {trace[-1]:.5f}, largest fall {fall:.2e}")


def scores(task: str, quick: bool) -> None:
    n_train, n_test, inducing, layers = {"two_sines": (1000, 1000, 50, 3), "digits": (500, 539, 50, 2)}[task]
    config = E.Config(task=task, n_train=n_train, n_test=n_test, inducing=inducing, layers=layers, nus=4)
    config = config.replace(steps=100 if quick else 300, seeds=2 if quick else 3, samples=16)
    sizes = f"n_train {n_train}, n_test {n_test}, P = {inducing}, L = {layers}"
    print(
        f"{task}: {sizes}, {config.steps} steps of {config.optimizer} at lr {config.lr}, {config.seeds} seeds",
        flush=True,
    )
    _, s = sweep(config)
    print(f"  best nu {s['best_nu']:.3g}: {s['best']:.4f} +- {s['best_sem']:.4f}; NNGP {s['nngp']:.4f} +- "
          f"{s['nngp_sem']:.4f}")  # fmt: skip


def _step_cost(p: int, steps: int) -> tuple[float, float]:
    """(seconds per step, compiled chunk's temporary + argument bytes) at p inducing points."""
    config = E.Config(n_train=1000, n_test=8, inducing=p, layers=3, samples=16)
    data, index = E._task_data(config.task, config.n_train, config.n_test, p, 0)
    c = E._model_config(config)
    x, y = np.asarray(data.x_train, np.float64), np.eye(2)[data.y_train]
    graphdef, params = nnx.split(dkm.build_dkm(c, x[index], 1.0), nnx.Param)
    program = engine.Program(graphdef, c, optimizer="sgd", objective=dkm.loss)
    lift = lambda a: jax.tree.map(lambda v: jnp.asarray(v)[None], a)
    run = lambda n: engine.runs(program, n, lift(params), {"lr": np.array([1.0])}, lift(x), lift(y))[1]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "scatter inputs have incompatible types", FutureWarning)
        jax.block_until_ready(run(steps))
        start = time.perf_counter()
        jax.block_until_ready(run(steps))
        seconds = (time.perf_counter() - start) / steps
        grad = jax.jit(jax.grad(lambda q: dkm.loss(graphdef, q, x, y)))
        memory = grad.lower(params).compile().memory_analysis()
    used = memory.temp_size_in_bytes + memory.argument_size_in_bytes if memory is not None else float("nan")
    return seconds, used


def cost(quick: bool) -> None:
    print("cost: n = 1000, L = 3, two-sines toy, float64; seconds per step and the gradient's compiled memory")
    for p in (16, 32, 64) if quick else (16, 32, 64, 128, 256):
        seconds, used = float64.call(_step_cost, p, 10 if quick else 20)
        print(f"  P = {p:4d}: {1e3 * seconds:8.2f} ms per step, {used / 2**20:8.2f} MiB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", default=["limit", "toy", "digits", "cost"])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for part in args.parts:
        start = time.perf_counter()
        {
            "limit": limit,
            "toy": lambda q: scores("two_sines", q),
            "digits": lambda q: scores("digits", q),
            "cost": cost,
        }[part](args.quick)
        print(f"  ({part}: {time.perf_counter() - start:.0f} s)\n", flush=True)


if __name__ == "__main__":
    main()
