"""Intrinsic dimension on the digits (issue 27 A; Li, Farkhoor, Liu & Yosinski 2018), measured and printed.

    python -m benchmarks.bench_intrinsic_dimension [--quick] [--part NAME ...]

Parts (each a `workbench.experiments.intrinsic_dimension` run; d_int90 +- its bootstrap std over seeds):
1. widths: the MLP (64-w-w-10) at three widths: d_int90 and the largest / smallest ratio (paper: about the same);
2. cnn: the small CNN against the MLP (paper: LeNet 290 below FC 750 on MNIST);
3. shuffled: shuffled labels (train accuracy) against true labels at one width, the factor (paper: far larger);
4. kinds: dense, sparse and fastfood projections at one width (paper: the same within error bars);
5. memory: peak memory of fastfood subspace training at D = 1e6, d = 1e3 (a child process, ru_maxrss) beside the
   dense projection's estimate and the memory guard's verdict on it;
6. speed: time per training step, fastfood against dense, at D = 1e5, d = 1e3 (both fit).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

from workbench.core.memory import available_bytes, require
from workbench.experiments import intrinsic_dimension as E
from workbench.nets import subspace as S

PARTS = ("widths", "cnn", "shuffled", "kinds", "memory", "speed")


def search(**fields) -> list[dict]:
    """The points of one run (one per architecture and width), printed as they come."""
    config = E.Config(**fields)
    start, points = time.perf_counter(), []
    for record in E.run(config):
        if record.kind == "point":
            m = record.metrics
            points.append(m)
            print(
                f"  {m['arch']:4s} width {m['width']:4d} D = {m['n_params']:6,d}  full acc "
                f"{np.mean(m['full_acc']):.3f}  d_int90 = {m['d_int90']:7.1f} +- {m['d_int90_err']:5.1f}  "
                f"({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    return points


def child(code: str) -> dict:
    """Run `code` in a fresh interpreter; it prints one JSON line (its last)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


MEMORY_CHILD = """
import json, resource, jax, jax.numpy as jnp, numpy as np
from workbench.nets.models import MLPConfig, build_mlp
from workbench.nets import subspace as S
from workbench.nets.engine import Program, runs
from flax import nnx
x = jnp.asarray(np.random.default_rng(0).normal(size=(1, 64, 64)), jnp.float32)
y = jnp.asarray(np.arange(64) % 10)[None]
model = build_mlp(MLPConfig(in_dim=64, out_dim=10, width={width}, depth=2, parametrization="sp"))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if {subspace}:
    model = S.subspace(model, {d}, kind="fastfood")
graphdef, state = nnx.split(model)
state = jax.tree.map(lambda a: a[None], state)
runs(Program(graphdef, model.config, "adam", loss="xent"), 5, state, {{"lr": [0.01]}}, x, y)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(dict(before=before, peak=peak)))
"""


def memory(width: int, d: int) -> None:
    """Part 5."""
    n = 64 * width + width * width + 10 * width + 2 * width + 10
    full = child(MEMORY_CHILD.format(width=width, d=d, subspace=False))
    fast = child(MEMORY_CHILD.format(width=width, d=d, subspace=True))
    dense = S.projection_bytes(n, d, "dense")
    print(f"  D = {n:,}, d = {d:,}")
    print(f"  full training (Adam on D):        peak RSS {full['peak'] / 2**30:.2f} GiB")
    print(f"  fastfood subspace training:       peak RSS {fast['peak'] / 2**30:.2f} GiB "
          f"(+{(fast['peak'] - full['peak']) / 2**20:.0f} MiB over full training)")  # fmt: skip
    print(f"  fastfood stored (estimate):       {S.projection_bytes(n, d, 'fastfood') / 2**20:.0f} MiB")
    print(f"  dense P + theta_0 (estimate):     {dense / 2**30:.2f} GiB; free here {available_bytes() / 2**30:.1f} GiB")
    for dd in (d, 10 * d):
        try:  # the check `subspace` makes before it allocates P
            require(S.projection_bytes(n, dd, "dense"), "subspace", f"dense P of D = {n:,} x d = {dd:,}")
            verdict = "fits here: the guard lets it through"
        except ValueError as err:
            verdict = f"refused: {err}"
        print(f"  memory guard on dense d = {dd:,}: {verdict}")


def speed(width: int, d: int, steps: int) -> None:
    """Part 6: seconds per step of the engine's compiled chunk (minibatch 128), warm."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from workbench.data import digits
    from workbench.nets.engine import Program, runs
    from workbench.nets.models import MLPConfig, build_mlp

    data = digits()
    x, y = jnp.asarray(data.x_train)[None], jnp.asarray(data.y_train)[None]
    base = build_mlp(MLPConfig(in_dim=64, out_dim=10, width=width, depth=2, parametrization="sp"))
    times = {}
    for kind in ("full", "fastfood", "dense"):
        model = base if kind == "full" else S.subspace(base, d, kind=kind)
        graphdef, state = nnx.split(model)
        state = jax.tree.map(lambda a: a[None], state)
        program = Program(graphdef, model.config, "adam", loss="xent", batch_size=128)
        timed = []
        for n in (steps, 2 * steps):
            runs(program, n, state, {"lr": [0.01]}, x, y)  # compiles this length
            t = time.perf_counter()
            jax.block_until_ready(runs(program, n, state, {"lr": [0.01]}, x, y))
            timed.append(time.perf_counter() - t)
        times[kind] = (timed[1] - timed[0]) / steps
        print(f"  {kind:8s} {1e3 * times[kind]:7.2f} ms/step", flush=True)
    print(f"  D = {S.subspace(base, 1).config.n_params:,}, d = {d}: dense / fastfood = "
          f"{times['dense'] / times['fastfood']:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--part", nargs="*", choices=PARTS, default=list(PARTS))
    args = parser.parse_args()
    q = args.quick
    common = dict(seeds=2 if q else 4, steps=60 if q else 300, points=3 if q else 6, refine=0 if q else 2, d_min=8)
    widths = (8, 16, 32) if q else (16, 32, 64)
    print(f"rss at start {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB; {time.ctime()}")
    if "widths" in args.part:
        print("1. MLP at three widths (fastfood, global):", flush=True)
        points = search(arch="mlp", widths=widths, d_max=1024, **common)
        values = np.array([p["d_int90"] for p in points])
        print(f"  ratio largest / smallest d_int90 over widths {widths}: {values.max() / values.min():.2f}")
    if "cnn" in args.part:
        print("2. CNN (stax, 3x3 convs of 8 and 16 channels) against the MLP:", flush=True)
        search(arch="cnn", widths=(4,) if q else (8,), d_max=1024, **common)
    if "shuffled" in args.part:
        print("3. shuffled labels (train accuracy) against true labels, MLP width 64:", flush=True)
        # memorising needs many steps and, at d in the thousands, a smaller lr of theta_d: the same for both
        long = dict(common, steps=100 if q else 1500, lr=0.01)
        true = search(arch="mlp", widths=(widths[-1],), d_max=4096, **long)[0]
        fake = search(arch="mlp", widths=(widths[-1],), labels="shuffled", **dict(long, d_min=256), d_max=100_000)[0]
        print(f"  factor shuffled / true: {fake['d_int90'] / true['d_int90']:.1f}")
    if "kinds" in args.part:
        print("4. projections at MLP width 32 (the same d grid):", flush=True)
        for kind in S.KINDS:
            for layout in ("global",) if kind == "fastfood" else S.LAYOUTS:
                print(f"  {kind} / {layout}:")
                search(arch="mlp", widths=(widths[1],), kind=kind, layout=layout, d_max=1024, **common)
    if "memory" in args.part:
        print("5. memory at D = 1e6 (MLP 64-963-963-10), d = 1e3:", flush=True)
        memory(100 if q else 963, 1000)
    if "speed" in args.part:
        print("6. time per step at D = 1e5 (MLP 64-280-280-10), d = 1e3:", flush=True)
        speed(100 if q else 280, 200 if q else 1000, 20 if q else 100)


if __name__ == "__main__":
    main()
