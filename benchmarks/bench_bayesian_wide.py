"""Bayesian wide networks (issue 14): a gradient-descent ensemble of Flax networks in one vmapped compiled call
against a Python loop over its members, in the same run; the full-size checks the unit tests run small.

    python -m benchmarks.bench_bayesian_wide [--quick] [--members 500] [--width 512] [--loop-members 50]

1. Ensemble: `members` NTK-parametrized one-hidden-layer ReLU networks of width `width`, sigma^2 ~ InvGamma(2, 2)
   each, all layers trained by 400 full-batch GD steps on the issue's data (4 angles on the circle, y = sin(3 angle)).
   workbench: all members in one call of the engine's `runs` (vmap over members, jit); peer: the same
   compiled program for one member called in a Python loop (timed over `loop-members` members, scaled to all;
   said in the output). Memory: the members' parameters, gradients and optimizer state, estimated and measured
   (peak RSS growth). Then the issue's check: KS of the outputs at angle 0.7 against t_4(mu_NTK, Sigma_NTK)
   (and at initialisation / last layer only).
2. Excess kurtosis of random critical Flax MLPs at (L, n) pairs with L / n from 0.01 to 0.3, ReLU and tanh:
   Monte Carlo (`networks` per pair) against the book's leading order 3 V / (n K^2) and, for ReLU, the exact
   3 ((1 + 5/n)^L - 1).
"""

from __future__ import annotations

import argparse
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from benchmarks.timing import best_time
from workbench.experiments import bayesian_wide as bw
from workbench.nets.engine import Program, runs
from workbench.nets.models import TRAINING_COPIES, n_params
from workbench.theory import finite_width as fw
from workbench.theory import scale_mixture as sm

ANGLES = np.array([-1.2, -0.4, 0.3, 1.1])
PAIRS = ((1, 100), (1, 30), (2, 32), (1, 10), (2, 16), (6, 32), (2, 8), (3, 10))  # L / n from 0.01 to 0.3
STEPS, LR = 400, 1.0


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ensemble(members: int, width: int, loop_members: int) -> None:
    y = np.sin(3 * ANGLES)
    x, xs = bw.embed(ANGLES), bw.embed([0.7])
    mc = bw.ensemble_config(bw.Config().replace(width=width, depth=1))
    sigma2 = sm.sample_invgamma(np.random.default_rng(1), 2.0, 2.0, members)
    graphdef, params = bw.init_members(mc, members, seed=0)
    targets = jnp.asarray(y[None, :, None] / np.sqrt(sigma2)[:, None, None], jnp.float32)
    xb = jnp.broadcast_to(jnp.asarray(x), (members,) + x.shape)
    program = Program(graphdef, mc)
    fn = lambda p, lrs, x, y: runs(program, STEPS, p, {"lr": lrs}, x, y)  # noqa: E731
    lrs = jnp.array([LR])
    before = rss_mib()
    t_vmap = best_time(lambda: fn(params, lrs, xb, targets)[0], repeats=3)
    grown = rss_mib() - before
    one = lambda i: jax.tree.map(lambda a: a[i : i + 1], params)  # noqa: E731
    singles = [one(i) for i in range(loop_members)]
    jax.block_until_ready(fn(singles[0], lrs, xb[:1], targets[:1])[0])  # compile the one-member program
    start = time.perf_counter()
    for i, p in enumerate(singles):
        jax.block_until_ready(fn(p, lrs, xb[i : i + 1], targets[i : i + 1])[0])
    t_loop = (time.perf_counter() - start) * members / loop_members
    need = 4 * TRAINING_COPIES * members * n_params(mc)
    print(f"ensemble: {members} members, width {width}, {n_params(mc):,} parameters each, {STEPS} GD steps")
    print(f"  vmapped compiled call : {t_vmap:8.3f} s")
    print(f"  Python loop (peer)    : {t_loop:8.3f} s  (timed over {loop_members} members, scaled to {members})")
    print(f"  ratio loop / vmapped  : {t_loop / t_vmap:8.1f} x")
    print(f"  memory: estimate {need / 2**20:.1f} MiB (params, grads, optimizer state), peak RSS grew {grown:.0f} MiB")
    outs = bw.train_members(mc, x, y, xs, sigma2, steps=STEPS, lr=LR)
    laws = bw.member_laws(mc, x, y, xs, 2.0, 2.0, steps=STEPS, lr=LR)
    for name, law in laws.items():
        ks = stats.kstest(outs[name], law.cdf)
        print(f"  KS {name:4s} vs t_4({law.loc:.4f}, {law.scale:.4f}^2): D = {ks.statistic:.4f}, p = {ks.pvalue:.3f}")


def kurtosis(networks: int) -> None:
    print(f"\nexcess kurtosis of random critical Flax MLPs, {networks} networks per pair")
    print(" act    L    n   L/n     MC       SE   theory  |z|   exact(ReLU)")
    for activation, C_W in (("relu", 2.0), ("tanh", 1.0)):
        within = 0
        for L, n in PAIRS:
            f = fw.random_outputs(fw.network_config(activation, L, n, C_W, 0.0), np.ones((1, 2)), networks, seed=7)
            k, se = fw.excess_kurtosis(f[:, 0])
            theory = fw.excess_kurtosis_theory(activation, L, n, C_W)
            z = abs(k - theory) / se
            within += z < 3
            exact = f"{fw.relu_exact_kurtosis(L, n):8.3f}" if activation == "relu" else ""
            print(f" {activation:5s} {L:2d} {n:4d}  {L / n:.3f} {k:8.3f} {se:7.3f} {theory:7.3f} {z:5.2f} {exact}")
        print(f" {activation}: theory within 3 SE at {within} of {len(PAIRS)} pairs")


def main(argv=None):
    assert __doc__ is not None
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 members of width 128, 2000 networks per pair")
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--loop-members", type=int, default=50)
    parser.add_argument("--networks", type=int, default=20_000)
    args = parser.parse_args(argv)
    members, width, networks = (64, 128, 2000) if args.quick else (args.members, args.width, args.networks)
    print(f"JAX {jax.__version__} on {jax.devices()[0].platform}")
    ensemble(members, width, min(args.loop_members, members))
    kurtosis(networks)


if __name__ == "__main__":
    main()
