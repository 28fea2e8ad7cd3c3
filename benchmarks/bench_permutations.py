"""Models needed to learn a permutation exactly (issue 28 B; arXiv 2502.16763, code `opallab/permlearn`).

    python -m benchmarks.bench_permutations [--quick] [--parts infinite,law,widths,finite] [--width N] [--seeds S]

1. infinite: models needed at delta = 0.1 for k = 5, 10, 20, 30 from infinite-width members, mean and sd over
   10 trials, for "sp" (the repository's training) and "ntk" (the paper's parametrization), beside the repository's
   counts (results/experiment_1, one trial each) and the z-score of each against the trials' spread.
2. law: one member's law at infinite width against 64 finite "sp" networks per width at k = 10: the mean output
   on the wrong coordinates (the margin the ensemble must resolve) and the members' sd, by width.
3. widths: models needed at k = 10 by width (finite networks through `engine.runs`), 10 trials each.
4. finite: models needed at k = 5, 10, 20, 30 from finite networks at `--width`, 10 trials each.
5. ntk: models needed at k = 10 by finite "ntk" networks (the paper's parametrization) at widths 256 and 1024.
6. percentiles: where the repository's single-trial counts at k = 5 and 10 fall among 300 trials of the sp law.
Times are wall seconds on this machine.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from workbench.experiments import permutations as E
from workbench.nets.engine import Program, runs, stacked_params
from workbench.nets.models import MLP
from workbench.theory import permutations as PM

KS = (5, 10, 20, 30)


def counts(config: E.Config, ks, label: str) -> None:
    """Models needed per k for `config` (width 0: infinite), against the repository's."""
    for k in ks:
        t = time.perf_counter()
        p = E.measure(config.replace(k=k), k)
        repo = PM.REPOSITORY.get(k, np.nan)
        z = (repo - p["needed_mean"]) / p["needed_sd"]
        reached, trials = np.isfinite(p["needed"]), np.nan_to_num(p["needed"]).astype(int).tolist()
        print(
            f"{label:>22} k={k:2d}: {p['needed_mean']:7.1f} +- {p['needed_sd']:5.1f} (sd, "
            f"{reached.sum()}/{config.seeds} reached) repository {repo:4.0f} (z = {z:+.1f})  per-trial {trials}"
            f"  train loss <= {p['train_loss']:.1e}  [{time.perf_counter() - t:.0f} s]",
            flush=True,
        )


def law_by_width(widths, k: int = 10, members: int = 64) -> None:
    """Mean output on the wrong and right coordinates and the members' sd: finite widths against the law."""
    law = PM.member_law(k, "sp")
    pairs, x_test = PM.two_hot_inputs(k)
    right = np.zeros(law.mean.shape, bool)
    right[np.arange(len(pairs))[:, None], pairs] = True
    print(
        f"{'infinite':>10}: wrong {law.mean[~right].mean():+.5f}  right {law.mean[right].mean():.4f}  "
        f"sd {np.sqrt(np.diag(law.cov)).mean():.4f}",
        flush=True,
    )
    for width in widths:
        mc = E.model_config(E.Config(width=width), k)
        lr, steps = E.schedule(mc)
        graphdef, params0 = stacked_params(MLP, mc, np.arange(members))
        x = jnp.broadcast_to(jnp.eye(k), (members, k, k))
        final, _, _ = runs(Program(graphdef, mc), steps, params0, {"lr": [lr]}, x, x)
        out = np.asarray(E._outputs(graphdef, jax.tree.map(lambda a: a[:, 0], final), jnp.asarray(x_test)), float)
        margin = out[:, ~right].mean(1)  # per member: its mean output on the wrong coordinates (members independent)
        se = margin.std(ddof=1) / np.sqrt(members)
        print(
            f"{width:>10}: wrong {margin.mean():+.5f} (+- {se:.5f} se)  right {out[:, right].mean():.4f}  "
            f"sd {out.std(0).mean():.4f}",
            flush=True,
        )


def percentiles(ks=(5, 10), trials: int = 300) -> None:
    """The share of the sp law's trials needing at least the repository's count."""
    for k in ks:
        found = np.array([PM.infinite_ensemble(k, 0.1, seed=s)[0] for s in range(trials)])
        repo = PM.REPOSITORY[k]
        print(
            f"k={k:2d}: {trials} trials, median {np.median(found):.0f}, 5-95% {np.percentile(found, [5, 95])}, "
            f"share >= repository's {repo}: {np.mean(found >= repo):.3f}",
            flush=True,
        )


def main(argv=None):
    assert __doc__ is not None
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="k = 5, 10, 3 trials, widths 256 and 1024")
    parser.add_argument("--parts", default="infinite,law,widths,finite,ntk,percentiles")
    parser.add_argument("--width", type=int, default=2048, help="width of part 4")
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    ks = KS[:2] if args.quick else KS
    seeds = 3 if args.quick else args.seeds
    widths = (256, 1024) if args.quick else (256, 1024, 4096, 16384)
    base = E.Config(seeds=seeds, delta=0.1, max_models=5000)
    if "infinite" in parts:
        print("1. infinite-width members, delta = 0.1", flush=True)
        for p in PM.PARAMETRIZATIONS:
            counts(base.replace(parametrization=p), ks, f"infinite {p}")
    if "law" in parts:
        print("2. one member's outputs at k = 10, 64 finite sp networks per width", flush=True)
        law_by_width(widths)
    if "widths" in parts:
        print("3. models needed at k = 10 by width (sp)", flush=True)
        counts(base, (10,), "infinite sp")
        for width in widths:
            counts(base.replace(width=width), (10,), f"width {width} sp")
    if "finite" in parts:
        print(f"4. finite sp networks of width {args.width}", flush=True)
        counts(base.replace(width=args.width), ks, f"width {args.width} sp")
    if "ntk" in parts:
        print("5. finite ntk networks at k = 10", flush=True)
        counts(base.replace(parametrization="ntk"), (10,), "infinite ntk")
        for width in widths[:2]:
            counts(base.replace(parametrization="ntk", width=width), (10,), f"width {width} ntk")
    if "percentiles" in parts:
        print("6. the repository's counts among the sp law's trials", flush=True)
        percentiles(trials=30 if args.quick else 300)


if __name__ == "__main__":
    main()
