"""An LR-transfer sweep on a Dask LocalCluster against the same points run one after another in one process.

    python -m benchmarks.bench_sweep [--quick] [--workers 2] [--steps 30]

Sweep: `teacher_fit` (lr_transfer's task and defaults: muP, Adam, depth 3, 1024 teacher points, T = 30 steps),
widths 64, 128, 256, 512 x 8 base learning rates 2^-11 .. 2^-4 x 2 seeds = 64 points.
- sequential (the peer): every point's `run(config)` in this process, in grid order, compiles included; and
  the same in a fresh process with the workers' one-thread settings (XLA's default uses every core for one run);
- Dask: `workbench.runs.sweep.run` on a LocalCluster of `--workers` processes (one thread each), results written
  into a fresh run database as they arrive, compiles included (each worker compiles each width it meets);
  the cluster's start-up (workers up, JAX imported in each) is timed apart.
Ratio = sequential / Dask (expect close to the number of workers when the machine's cores are free).
Overhead per task: 64 tiny points (width 8, 1 step, already compiled on every worker) through the Dask path;
the workers' own time per task (from the database's timestamps) is subtracted from workers x wall time per point.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workbench.core.runtime import available_cpus
from workbench.experiments import teacher_fit as T
from workbench.runs import sweep
from workbench.runs.rundb import RunDB


def sequential(configs) -> float:
    """Seconds to run every config to its end in this process, one after another."""
    start = time.perf_counter()
    for config in configs:
        for _ in T.run(config):
            pass
    return time.perf_counter() - start


def on_dask(client, base, grid, seeds, db: Path) -> float:
    """Seconds for `workbench.runs.sweep.run` of the grid on `client` into a fresh database; checks every point ran."""
    start = time.perf_counter()
    last = list(sweep.run(T, base, grid=grid, seeds=seeds, client=client, db=db))[-1]
    assert last.metrics["failed"] == 0 and last.metrics["skipped"] == 0, last
    return time.perf_counter() - start


def one_thread_sequential(quick: bool, steps: int) -> float:
    """`sequential` of the sweep in a fresh process with the workers' one-thread settings, pinned to one CPU as a
    worker is (compiles included)."""
    code = f"from benchmarks.bench_sweep import points, sequential; print(sequential(points({quick}, {steps})[0]))"
    one_cpu = ["taskset", "-c", str(min(os.sched_getaffinity(0)))] if shutil.which("taskset") else []  # as a worker
    out = subprocess.run([*one_cpu, sys.executable, "-c", code], env={**os.environ, **sweep.ONE_THREAD},
                         capture_output=True, text=True, check=True)  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def points(quick: bool, steps: int):
    """(configs, base, grid, seeds) of the benchmark's sweep."""
    widths, n_lrs, seeds = ((64, 128), 4, [0]) if quick else ((64, 128, 256, 512), 8, [0, 1])
    base = T.Config().replace(steps=10 if quick else steps)
    grid = {"width": list(widths), "lr": sweep.values({"from": 2.0**-11, "to": 2.0**-4, "n": n_lrs, "log": True})}
    return sweep.grid_configs(base, grid, seeds), base, grid, seeds


def main(argv=None):
    assert __doc__ is not None
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 widths x 4 lrs x 1 seed, 10 steps")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args(argv)
    from distributed import Client, LocalCluster

    configs, base, grid, seeds = points(args.quick, args.steps)
    n, tiny_n = len(configs), 64
    print(
        f"{n} points ({len(grid['width'])} widths x {len(grid['lr'])} lrs x {len(seeds)} seeds, T = {base.train.steps})"
    )
    print(f"CPUs available: {available_cpus()}; LocalCluster of {args.workers} processes, 1 thread each")
    tiny = T.Config().replace(width=8, depth=1, steps=1, record_every=1, n_train=32)
    tiny_grid = {"lr": [round(1e-3 * 1.01**k, 10) for k in range(tiny_n)]}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        with (
            LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address="127.0.0.1:0", env=sweep.ONE_THREAD, silence_logs=40) as cluster,
            Client(cluster) as client,
        ):  # fmt: skip
            sweep.pin_workers(client)  # as sweep.local_client does
            client.run(lambda: T.__name__)  # workers import JAX and the experiment, as this process did
            start_up = time.perf_counter() - t
            load = {"Dask": os.getloadavg()[0]}
            dask_s = on_dask(client, base, grid, seeds, Path(tmp) / "sweep.sqlite")
            busy = sum(r["ended"] - r["created"] for r in RunDB(Path(tmp) / "sweep.sqlite").runs())
            client.run(lambda: list(T.run(tiny)))  # compile the tiny point on every worker
            tiny_dask = on_dask(client, tiny, tiny_grid, None, Path(tmp) / "tiny.sqlite")
            work = sum(r["ended"] - r["created"] for r in RunDB(Path(tmp) / "tiny.sqlite").runs())
        load["sequential"] = os.getloadavg()[0]
        seq_s = sequential(configs)
    load["one thread"] = os.getloadavg()[0]
    seq_one = one_thread_sequential(args.quick, args.steps)
    print(f"{'':<40}{'seconds':>9}{'per point':>11}")
    for label, secs in (
        ("sequential, this process (peer)", seq_s),
        ("sequential, one XLA thread (peer)", seq_one),
        (f"Dask LocalCluster, {args.workers} processes", dask_s),
    ):
        print(f"{label:<40}{secs:>9.1f}{secs / n:>10.2f}s")
    print(f"{'cluster start-up (apart)':<40}{start_up:>9.1f}")
    print(
        f"workers busy {busy:.1f} s in all ({busy / n:.2f} s a point, {busy / dask_s / args.workers:.0%} of "
        f"{args.workers} x wall); load average at the start of each: "
        + ", ".join(f"{k} {v:.1f}" for k, v in load.items())
    )
    print(
        f"speed-up over sequential: {seq_s / dask_s:.2f}x (one-thread peer: {seq_one / dask_s:.2f}x; with start-up: "
        f"{seq_s / (dask_s + start_up):.2f}x)"
    )
    overhead = (tiny_dask * args.workers - work) / tiny_n
    print(
        f"tiny tasks ({tiny_n}, compiled, {work / tiny_n * 1e3:.1f} ms of work each on a worker): "
        f"{tiny_dask / tiny_n * 1e3:.1f} ms per point through Dask and the database, i.e. ~{overhead * 1e3:.0f} ms "
        f"of overhead per task per worker (scheduling, transfer, database write)"
    )


if __name__ == "__main__":
    main()
