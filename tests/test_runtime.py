"""Thread-pool sizing for small containers (binder/start)."""

import os
import subprocess
import sys
from pathlib import Path

from workbench.core import runtime

ROOT = Path(__file__).resolve().parents[1]


def test_available_cpus_respects_the_affinity_mask(monkeypatch):
    n = runtime.available_cpus()
    assert 1 <= n <= (os.cpu_count() or 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert runtime.available_cpus() == 1


def test_binder_start_limits_xla_and_blas_threads_to_the_available_cpus():
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    out = subprocess.run(
        ["bash", str(ROOT / "binder" / "start"), "env"], capture_output=True, text=True, env=env, check=True, cwd=ROOT
    ).stdout
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    cpus = str(runtime.available_cpus())
    assert values["OMP_NUM_THREADS"] == values["OPENBLAS_NUM_THREADS"] == cpus
    assert f"intra_op_parallelism_threads={cpus}" in values["XLA_FLAGS"]
