"""Kernels against neural-tangents 0.6.5, measured in the same run on the same machine.

    python -m benchmarks.bench_kernels [--quick] [--nt-python /work/ntvenv/bin/python]

1. Analytic NNGP + NTK of a depth-5 ReLU MLP (W_std 1.4, b_std 0.1), d = 64, float32, jitted, after warm-up,
   N = 1000, 2000, 4000: `workbench.theory.kernels.mlp_kernels` vs `stax` kernel_fn. Target: >= 3x at N = 4000.
   Also the float32 NTK diagonal error of both against our float64 diagonal (exact at angle 0).
2. Empirical NTK of a width-512 depth-3 ReLU MLP at N = 200: `empirical_ntk` (structured) vs NT's three
   implementations (Jacobian contraction, NTK-vector products, structured derivatives). Target: <= NT's fastest.
neural-tangents needs jax 0.4.23, so it runs in its side venv through benchmarks/nt_kernels_peer.py.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
from typing import TypedDict

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.timing import best_time
from workbench.nets.models import MLPConfig, build_mlp
from workbench.theory.kernels import empirical_ntk, mlp_kernels


class Network(TypedDict):
    """The keyword arguments of `mlp_kernels` that fix the benchmarked network."""

    depth: int
    weight_std: float
    bias_std: float


NETWORK: Network = {"depth": 5, "weight_std": 1.4, "bias_std": 0.1}
DIM = 64


def peer(python, job):
    """Timings from neural-tangents in its own interpreter (None if it cannot run)."""
    script = pathlib.Path(__file__).with_name("nt_kernels_peer.py")
    try:
        done = subprocess.run([python, str(script), json.dumps(job)], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as err:
        print(f"neural-tangents peer failed ({python}): {getattr(err, 'stderr', err)}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    assert __doc__ is not None  # the module docstring is the command's description
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--nt-python", default="/work/ntvenv/bin/python", help="interpreter with neural-tangents")
    args = parser.parse_args(argv)
    sizes = [250, 500] if args.quick else [1000, 2000, 4000]
    emp_n, emp_width, emp_depth = (50, 128, 3) if args.quick else (200, 512, 3)
    repeats = 2 if args.quick else 3
    job = dict(
        analytic=sizes,
        empirical=[emp_n, emp_width, emp_depth],
        dim=DIM,
        repeats=repeats,
        depth=NETWORK["depth"],
        weight_std=NETWORK["weight_std"],
        bias_std=NETWORK["bias_std"],
    )
    nt = peer(args.nt_python, job)

    kernels = jax.jit(lambda x: mlp_kernels(x, **NETWORK))
    print(f"analytic depth-{NETWORK['depth']} ReLU NNGP+NTK, d={DIM}, float32, jitted (seconds, best of {repeats})")
    print(f"{'N':>6} {'workbench':>10} {'neural-tangents':>16} {'speed-up':>9}")
    for n in sizes:
        x = jnp.asarray(np.random.default_rng(0).normal(size=(n, DIM)), jnp.float32)
        ours = best_time(lambda x=x: kernels(x), repeats)
        theirs = nt["analytic"][str(n)] if nt else float("nan")
        print(f"{n:>6} {ours:>10.3f} {theirs:>16.3f} {theirs / ours:>8.2f}x")
    print("target: >= 3x at the largest N")

    x = jnp.asarray(np.random.default_rng(0).normal(size=(sizes[0], DIM)), jnp.float32)
    with jax.enable_x64(True):
        exact = np.diag(np.asarray(mlp_kernels(np.asarray(x, np.float64), **NETWORK).ntk))
    ours32 = np.diag(np.asarray(kernels(x).ntk))
    print(
        f"float32 NTK diagonal, max relative error vs float64: workbench {np.max(np.abs(ours32 / exact - 1)):.1e}"
        + (f", neural-tangents {np.max(np.abs(np.asarray(nt['diag']) / exact - 1)):.1e}" if nt else "")
    )

    cfg = MLPConfig(
        in_dim=DIM,
        width=emp_width,
        depth=emp_depth,
        parametrization="ntk",
        base_width=emp_width,
        weight_std=NETWORK["weight_std"],
        bias_std=NETWORK["bias_std"],
    )
    model = build_mlp(cfg, 0)
    xe = jnp.asarray(np.random.default_rng(1).normal(size=(emp_n, DIM)), jnp.float32)
    ours = best_time(lambda: empirical_ntk(model, xe, scaling="nt"), repeats)
    print(f"\nempirical NTK, width {emp_width}, depth {emp_depth}, N={emp_n} (seconds, best of {repeats})")
    print(f"{'implementation':>26} {'seconds':>9} {'ours vs it':>11}")
    print(f"{'workbench structured':>26} {ours:>9.4f}")
    for name, t in (nt["empirical"] if nt else {}).items():
        print(f"{'nt ' + name:>26} {t:>9.4f} {t / ours:>10.2f}x")
    if nt:
        fastest = min(nt["empirical"].values())
        print(f"target: <= neural-tangents' fastest ({fastest:.4f} s): ours/fastest = {ours / fastest:.2f}")


if __name__ == "__main__":
    main()
