"""neural-tangents side of the pooled-CNN entries of benchmarks/bench_kernels.py; runs in the side venv (/work/ntvenv,
jax 0.4.23). Imports nothing from workbench (it needs a newer jax).

    /work/ntvenv/bin/python benchmarks/nt_cnn_peer.py '{"n": 128, "repeats": 3, "mode": "time"}'

mode "time": best wall time of the jitted NNGP + NTK after warm-up; mode "memory": the peak resident memory of one
call (compilation included) above the resident size before it, in a fresh process. Prints one JSON object.
"""

import json
import resource
import sys

import jax
import jax.numpy as jnp
import numpy as np
from neural_tangents import stax  # pyright: ignore[reportMissingImports]  # installed only in the side venv
from timing import best_time  # benchmarks/timing.py: this script's folder is on sys.path


def pooled_cnn(w_std, b_std, channels):
    """The 2-D pooled architecture of tests/data/nt_cnn_kernels.json (conv2d_same_avgpool_gap)."""
    conv = lambda: stax.Conv(channels, (3, 3), padding="SAME", W_std=w_std, b_std=b_std)  # noqa: E731
    return stax.serial(
        conv(), stax.Relu(), stax.AvgPool((2, 2), strides=(2, 2)), conv(), stax.Gelu(), stax.GlobalAvgPool(),
        stax.Dense(1, W_std=w_std, b_std=b_std),
    )  # fmt: skip


def rss():
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()


def main():
    job = json.loads(sys.argv[1])
    _, _, kernel_fn = pooled_cnn(job["weight_std"], job["bias_std"], job["channels"])
    kernel_fn = jax.jit(kernel_fn, static_argnames="get")
    x = jnp.asarray(np.random.default_rng(0).normal(size=[job["n"]] + job["shape"]), jnp.float32)
    if job["mode"] == "time":
        print(json.dumps({"seconds": best_time(lambda: kernel_fn(x, None, get=("nngp", "ntk")), job["repeats"])}))
        return
    before = rss()
    jax.block_until_ready(kernel_fn(x, None, get=("nngp", "ntk")))
    hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
    print(json.dumps({"peak": int(hwm.split()[1]) * 1024 - before}))


if __name__ == "__main__":
    main()
