"""An LR-transfer sweep on a Dask LocalCluster against the same points run one after another in one process.

    python -m benchmarks.bench_sweep [--quick] [--workers 2] [--steps 30]

Sweep: `teacher_fit` (lr_transfer's task and defaults: muP, Adam, depth 3, 1024 teacher points, T = 30 steps),
widths 64, 128, 256, 512 x 8 base learning rates 2^-11 .. 2^-4 x 2 seeds = 64 points.
- sequential (the peer): every point's `run(config)` in this process, in grid order, compiles included;
- Dask: `workbench.sweep.run` on a LocalCluster of `--workers` processes (one thread each), results written
  into a fresh run database as they arrive, compiles included (each worker compiles each width it meets);
  the cluster's start-up (workers up, JAX imported in each) is timed apart.
Ratio = sequential / Dask (expect close to the number of workers when the machine's cores are free).
Overhead per task: 64 tiny points (width 8, 1 step, already compiled on every worker) through the Dask path
(task round trip plus the database write) against the same points in this process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from workbench import sweep
from workbench.experiments import teacher_fit as T
from workbench.runtime import available_cpus


def sequential(configs) -> float:
    """Seconds to run every config to its end in this process, one after another."""
    start = time.perf_counter()
    for config in configs:
        for _ in T.run(config):
            pass
    return time.perf_counter() - start


def on_dask(client, base, grid, seeds, folder: Path, name: str) -> float:
    """Seconds for `workbench.sweep.run` of the grid on `client` into a fresh database; checks every point ran."""
    start = time.perf_counter()
    last = list(sweep.run(T, base, grid=grid, seeds=seeds, client=client, db=folder / f"{name}.sqlite"))[-1]
    assert last.metrics["failed"] == 0 and last.metrics["skipped"] == 0, last
    return time.perf_counter() - start


def main(argv=None):
    assert __doc__ is not None
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 widths x 4 lrs x 1 seed, 10 steps")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args(argv)
    from distributed import Client, LocalCluster

    widths, n_lrs, seeds = ((64, 128), 4, [0]) if args.quick else ((64, 128, 256, 512), 8, [0, 1])
    base = T.Config(steps=10 if args.quick else args.steps)
    grid = {"width": list(widths), "lr": sweep.values({"from": 2.0**-11, "to": 2.0**-4, "n": n_lrs, "log": True})}
    configs = sweep.grid_configs(base, grid, seeds)
    print(f"{len(configs)} points (widths {widths} x {n_lrs} lrs x {len(seeds)} seeds, T = {base.steps})")
    print(f"CPUs available: {available_cpus()}; LocalCluster of {args.workers} processes, 1 thread each")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        with (
            LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address=":0", env=sweep.ONE_THREAD, silence_logs=40) as cluster,
            Client(cluster) as client,
        ):  # fmt: skip
            client.run(lambda: T.__name__)  # workers import JAX and the experiment, as this process did
            start_up = time.perf_counter() - t
            dask_s = on_dask(client, base, grid, seeds, Path(tmp), "sweep")
            tiny = T.Config(width=8, depth=1, steps=1, record_every=1, n_train=32)
            tiny_grid = {"lr": [round(1e-3 * 1.01**k, 10) for k in range(64)]}
            client.run(lambda: list(T.run(tiny)))  # compile the tiny point on every worker
            tiny_dask = on_dask(client, tiny, tiny_grid, None, Path(tmp), "tiny")
        seq_s = sequential(configs)
        sequential(sweep.grid_configs(tiny, {"lr": [0.5]}))
        tiny_seq = sequential(sweep.grid_configs(tiny, tiny_grid))
    n = len(configs)
    print(f"{'':<34}{'seconds':>9}{'per point':>11}")
    print(f"{'sequential, one process (peer)':<34}{seq_s:>9.1f}{seq_s / n:>10.2f}s")
    print(f"{f'Dask LocalCluster, {args.workers} processes':<34}{dask_s:>9.1f}{dask_s / n:>10.2f}s")
    print(f"{'cluster start-up (apart)':<34}{start_up:>9.1f}")
    print(f"speed-up sequential / Dask: {seq_s / dask_s:.2f}x (with start-up: {seq_s / (dask_s + start_up):.2f}x)")
    per_task = (tiny_dask * args.workers - tiny_seq) / 64
    print(
        f"tiny tasks (64, compiled): Dask {tiny_dask / 64 * 1e3:.1f} ms per point, in-process "
        f"{tiny_seq / 64 * 1e3:.1f} ms; overhead per task of the Dask path ~{per_task * 1e3:.0f} ms of a worker "
        f"(round trip, scheduling, database write)"
    )


if __name__ == "__main__":
    main()
