"""Estimate before allocating (workbench.memory): requests that would not fit are refused up front with
the sizes, the estimate and the limit; the limit honours RLIMIT_AS, which a container or Binder sets."""

import subprocess
import sys

import numpy as np
import pytest

from workbench.kernels import mlp_kernels
from workbench.memory import available_bytes
from workbench.models import MLPConfig, build_mlp, n_params


def test_n_params_counts_weights_and_biases():
    c = MLPConfig(in_dim=3, width=5, depth=2, out_dim=2)
    model = build_mlp(c)
    from workbench.models import count_params

    assert n_params(c) == count_params(model) == 3 * 5 + 5 + 5 * 5 + 5 + 5 * 2 + 2


def test_huge_models_and_kernels_are_refused_before_allocating():
    with pytest.raises(ValueError, match=r"MLPConfig: width 65536 x depth 64 .* needs about [\d.]+ GiB but only"):
        build_mlp(MLPConfig(width=65536, depth=64))
    with pytest.raises(ValueError, match=r"mlp_kernels: 200000 x 200000 kernel entries needs about"):
        mlp_kernels(np.ones((200_000, 2), np.float32), depth=1)


def test_the_address_space_limit_is_the_limit():
    """Under RLIMIT_AS = 6 GiB (set on a subprocess; JAX maps ~3 GiB of address space at start) the free
    memory reads below it, a kernel that needs
    more is refused, and one that passes the guard completes."""
    code = """
import resource
resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))
import numpy as np
from workbench.memory import available_bytes
from workbench.kernels import mlp_kernels
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
