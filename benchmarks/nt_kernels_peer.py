"""neural-tangents side of benchmarks/bench_kernels.py; runs in the side venv (/work/ntvenv, jax 0.4.23).

    /work/ntvenv/bin/python benchmarks/nt_kernels_peer.py '{"analytic": [1000], "empirical": [200, 512, 3], ...}'

Prints one JSON object of timings (seconds, best of `repeats` after warm-up) and the NTK diagonal of the
first analytic size. Imports nothing from workbench (it needs a newer jax).
"""

import json
import sys

import jax
import jax.numpy as jnp
import neural_tangents as nt  # pyright: ignore[reportMissingImports]  # installed only in the side venv
import numpy as np
from neural_tangents import stax  # pyright: ignore[reportMissingImports]  # installed only in the side venv
from timing import best_time  # benchmarks/timing.py: this script's folder is on sys.path


def mlp(width, depth, w_std, b_std):
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(width, W_std=w_std, b_std=b_std), stax.Relu()]
    return stax.serial(*layers, stax.Dense(1, W_std=w_std, b_std=b_std))


def main():
    job = json.loads(sys.argv[1])
    out = {"analytic": {}, "empirical": {}}
    _, _, kernel_fn = mlp(512, job["depth"], job["weight_std"], job["bias_std"])
    kernel_fn = jax.jit(kernel_fn, static_argnames="get")
    for n in job["analytic"]:
        x = jnp.asarray(np.random.default_rng(0).normal(size=(n, job["dim"])), jnp.float32)
        out["analytic"][n] = best_time(lambda x=x: kernel_fn(x, None, get=("nngp", "ntk")), job["repeats"])
        if "diag" not in out:
            out["diag"] = np.diag(np.asarray(kernel_fn(x, None, get="ntk"))).tolist()
    n, width, depth = job["empirical"]
    init_fn, apply_fn, _ = mlp(width, depth, job["weight_std"], job["bias_std"])
    x = jnp.asarray(np.random.default_rng(1).normal(size=(n, job["dim"])), jnp.float32)
    _, params = init_fn(jax.random.PRNGKey(0), x.shape)
    for impl in (
        nt.NtkImplementation.JACOBIAN_CONTRACTION,
        nt.NtkImplementation.NTK_VECTOR_PRODUCTS,
        nt.NtkImplementation.STRUCTURED_DERIVATIVES,
    ):
        fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0, implementation=impl))
        out["empirical"][impl.name.lower()] = best_time(lambda fn=fn: fn(x, None, params), job["repeats"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
