"""Memory guard against measurement: the peak memory of `mlp_kernels` against its estimate
(`workbench.theory.kernels.analytic.kernel_bytes`), each size in a fresh subprocess.

    python -m benchmarks.bench_memory [--quick] [--sizes 1000 2000 4000 6000 8000]

Peak = ru_maxrss after the call minus the resident size before it (imports and inputs done), so it counts
the compiled program, XLA's buffers and the output. Target: estimate / measured in [1, 1.5] for N = 1k..8k.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = """
import json, resource, sys
import numpy as np
from workbench.theory.kernels import mlp_kernels
from workbench.theory.kernels.analytic import kernel_bytes
n, n2, activation, depth = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
x = rng.normal(size=(n, 16)).astype(np.float32)
x2 = None if n2 is None else rng.normal(size=(n2, 16)).astype(np.float32)
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
before = rss()
k = mlp_kernels(x, x2, depth=depth, activation=activation, weight_std=1.4, bias_std=0.1)
k.ntk.block_until_ready()
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
peak = int(hwm.split()[1]) * 1024 - before  # VmHWM: this image own peak (ru_maxrss can carry the parent)
need = kernel_bytes(n, n if n2 is None else n2, 4, x2 is None, depth, activation)
print(json.dumps({"peak": peak, "estimate": need}))
"""


def measure(n: int, n2: int | None = None, activation: str = "relu", depth: int = 3) -> dict:
    """{"peak", "estimate"} in bytes of one `mlp_kernels` call in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps([n, n2, activation, depth])],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description="mlp_kernels peak memory against its estimate")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--sizes", type=int, nargs="*", default=None)
    args = parser.parse_args(argv)
    sizes = args.sizes or ([500, 1000] if args.quick else [1000, 2000, 4000, 6000, 8000])
    cases = [("relu", None), ("relu", "half"), ("erf", None), ("tanh", None)]
    print(f"{'N':>6} {'activation':>10} {'x2':>6} {'measured MB':>12} {'estimate MB':>12} {'ratio':>6}")
    worst = 0.0
    for n in sizes:
        for activation, x2 in cases:
            if activation == "tanh" and n > 4000:
                continue  # quadrature: minutes per size on two cores; its per-point terms are small
            m = measure(n, n // 2 if x2 else None, activation)
            ratio = m["estimate"] / m["peak"]
            worst = max(worst, ratio, 1 / ratio)
            print(
                f"{n:>6} {activation:>10} {'N/2' if x2 else '-':>6} {m['peak'] / 2**20:>12.0f} "
                f"{m['estimate'] / 2**20:>12.0f} {ratio:>6.2f}",
                flush=True,
            )
    print(f"worst estimate/measured (or its inverse): {worst:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
