"""Estimate before allocating (workbench.core.memory): requests that would not fit are refused up front with
the sizes, the estimate and the limit; the limit honours RLIMIT_AS, which a container or Binder sets."""

import subprocess
import sys

import numpy as np
import pytest

from workbench.core.memory import available_bytes
from workbench.nets.models import MLPConfig, build_mlp, n_params
from workbench.theory.kernels import mlp_kernels


def test_n_params_counts_weights_and_biases():
    c = MLPConfig(in_dim=3, width=5, depth=2, out_dim=2)
    model = build_mlp(c)
    from workbench.nets.models import count_params

    assert n_params(c) == count_params(model) == 3 * 5 + 5 + 5 * 5 + 5 + 5 * 2 + 2


def test_huge_models_and_kernels_are_refused_before_allocating():
    with pytest.raises(ValueError, match=r"MLPConfig: width 65536 x depth 64 .* needs about [\d.]+ GiB but only"):
        build_mlp(MLPConfig(width=65536, depth=64))
    with pytest.raises(ValueError, match=r"mlp_kernels: 200000 x 200000 kernel entries, depth 1 needs about"):
        mlp_kernels(np.ones((200_000, 2), np.float32), depth=1)


def test_the_address_space_limit_is_the_limit():
    """Under RLIMIT_AS = 6 GiB (set on a subprocess; JAX maps ~3 GiB of address space at start) the free
    memory reads below it, a kernel that needs
    more is refused, and one that passes the guard completes."""
    code = """
import resource
resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))
import numpy as np
from workbench.core.memory import available_bytes
from workbench.theory.kernels import mlp_kernels
have = available_bytes()
assert have < 6 * 2**30, have
try:
    mlp_kernels(np.ones((12000, 2), np.float32), depth=1)
    print("computed")
except ValueError as err:
    print("refused", err)
k = mlp_kernels(np.random.default_rng(0).normal(size=(500, 2)).astype(np.float32), depth=1)
print("small ok", k.ntk.shape)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "refused mlp_kernels: 12000 x 12000" in out.stdout and "small ok (500, 500)" in out.stdout


def test_available_bytes_is_positive_and_below_the_host_total():
    total = int(open("/proc/meminfo").read().split("MemTotal:")[1].split()[0]) * 1024
    assert 0 < available_bytes() <= total


def test_kernel_estimate_is_within_1_5x_of_the_measured_peak():
    """`kernel_bytes` against the peak resident growth of `mlp_kernels` in a fresh interpreter (the same
    measurement as benchmarks/bench_memory.py, which covers N = 1k..8k), symmetric and x1 x x2."""
    from benchmarks.bench_memory import measure

    for n, n2 in ((1000, None), (1500, 750)):
        m = measure(n, n2)
        assert 1 / 1.5 <= m["estimate"] / m["peak"] <= 1.5, (n, n2, m)


CAPPED = """
import json, resource
import numpy as np
from workbench.theory import collapse
from workbench import data
from workbench.theory.kernels import mlp_kernels
from workbench.core.memory import _mapped_bytes, available_bytes
from workbench.nets.models import MLPConfig, build_mlp

mlp_kernels(np.ones((4, 2), np.float32), depth=1).ntk.block_until_ready()  # JAX started, then the cap
limit = _mapped_bytes() + 2 * 2**30
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
rng = np.random.default_rng(0)
requests = {
    "kernel 500": lambda: mlp_kernels(rng.normal(size=(500, 4)), depth=2).ntk.block_until_ready(),
    "kernel 1500": lambda: mlp_kernels(rng.normal(size=(1500, 4)), depth=2).ntk.block_until_ready(),
    "kernel 8000": lambda: mlp_kernels(rng.normal(size=(8000, 4)), depth=2),
    "mlp 1024 x 2": lambda: build_mlp(MLPConfig(width=1024, depth=2)),
    "mlp 16384 x 8": lambda: build_mlp(MLPConfig(width=16384, depth=8)),
    "xor 2000 x 1000": lambda: data.xor_cluster(2000, 10, 1000),
    "xor 1e5 x 1e5": lambda: data.xor_cluster(100_000, 10, 100_000),
    "teacher 100 x 1e4": lambda: data.teacher(100, 10, in_dim=10_000),
    "teacher 1e4 x 1e5": lambda: data.teacher(10_000, 10, in_dim=100_000),
    "nc 200 x 10": lambda: collapse.nc_metrics(rng.normal(size=(200, 8)), np.arange(200) % 10, 10,
                                               rng.normal(size=(10, 8))),
    "nc 1e5 x 1e5": lambda: collapse.nc_metrics(np.ones((100_000, 2)), np.arange(100_000) % 99_999, 99_999,
                                                np.ones((99_999, 2))),
}
for name, request in requests.items():
    before = _mapped_bytes()
    try:
        request()
        print(json.dumps([name, "completed", ""]), flush=True)
    except ValueError as err:
        grew = _mapped_bytes() - before
        print(json.dumps([name, "refused", str(err), grew]), flush=True)
"""


def test_under_a_2_gib_cap_every_request_that_passes_the_guard_completes():
    """A subprocess caps its address space (RLIMIT_AS, set after JAX has started: JAX's start-up maps ~3 GiB of
    address space it never touches) at 2 GiB above what it has mapped, then asks for kernels, models, data
    sets and collapse metrics of growing size: each either completes or is refused before allocating (mapped
    memory grows < 64 MiB) with a message naming the sizes, the estimate and the limit; the process never dies."""
    out = subprocess.run([sys.executable, "-c", CAPPED], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    results = {line[0]: line[1:] for line in map(json.loads, out.stdout.strip().splitlines())}
    completed = {"kernel 500", "kernel 1500", "mlp 1024 x 2", "xor 2000 x 1000", "teacher 100 x 1e4", "nc 200 x 10"}
    refused = set(results) - completed
    assert {k for k, v in results.items() if v[0] == "completed"} == completed, results
    for name in refused:
        status, message, grew = results[name]
        assert status == "refused" and grew < 64 * 2**20, (name, results[name])
        assert "needs about" in message and "GiB of memory is free (RLIMIT_AS" in message, message
