"""Binder budget: peak memory and wall time of executing each notebook on one CPU.

    python -m benchmarks.bench_notebooks [--quick] [notebooks/NAME.ipynb ...]

Each notebook runs in a fresh kernel (nbclient) pinned to CPU 0 with XLA and BLAS limited to one
thread, as binder/start sets up on a 1-core mybinder container. Peak memory is the largest resident
set of any process of the run (the kernel), from getrusage(RUSAGE_CHILDREN). Target: <= 1.5 GB each.
--quick runs with WORKBENCH_CI=1 (the notebooks' small CI parameters).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import subprocess
import sys
import time

DRIVER = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": "notebooks"}}).execute()
"""


def one_cpu_env(ci: bool) -> dict:
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
        MPLBACKEND="agg",
    )
    if ci:
        env["WORKBENCH_CI"] = "1"
    return env


def measure(path: pathlib.Path, ci: bool) -> tuple[float, float, int]:
    """(peak resident GB, wall seconds, exit code) of executing one notebook in its own process."""
    cmd = [sys.executable, "-c", DRIVER, str(path)]
    if hasattr(os, "sched_setaffinity"):
        cmd = ["taskset", "-c", "0", *cmd]
    start = time.perf_counter()
    code = subprocess.run(cmd, env=one_cpu_env(ci), capture_output=True).returncode
    wall = time.perf_counter() - start
    # ru_maxrss of RUSAGE_CHILDREN: the largest descendant so far (KiB on Linux); one process per call
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, wall, code


def main(argv=None):
    assert __doc__ is not None  # the module docstring is the command's description
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="run with the notebooks' CI parameters")
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(pathlib.Path("notebooks").glob("*.ipynb"))
    print(f"{'notebook':<32} {'peak GB':>8} {'1-core s':>9} {'ok':>4}")
    for path in paths:
        # a fresh interpreter per notebook, so RUSAGE_CHILDREN's maximum belongs to this notebook alone
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                "import benchmarks.bench_notebooks as b, pathlib, sys; "
                "print(*b.measure(pathlib.Path(sys.argv[1]), sys.argv[2] == '1'))",
                str(path),
                "1" if args.quick else "0",
            ],
            capture_output=True,
            text=True,
        )
        peak, wall, code = out.stdout.split()
        print(f"{path.name:<32} {float(peak):>8.2f} {float(wall):>9.1f} {'yes' if code == '0' else 'NO':>4}")
    print("target: peak <= 1.5 GB per notebook on a 1-core, 2 GB Binder")


if __name__ == "__main__":
    main()
