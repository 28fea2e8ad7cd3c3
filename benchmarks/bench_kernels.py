"""Kernels against neural-tangents 0.6.5, measured in the same run on the same machine.

    python -m benchmarks.bench_kernels [--quick] [--part all|mlp|cnn] [--nt-python /work/ntvenv/bin/python]

1. Analytic NNGP + NTK of a depth-5 ReLU MLP (W_std 1.4, b_std 0.1), d = 64, float32, jitted, after warm-up,
   N = 1000, 2000, 4000: `workbench.theory.kernels.mlp_kernels` vs `stax` kernel_fn. Target: >= 3x at N = 4000.
   Also the float32 NTK diagonal error of both against our float64 diagonal (exact at angle 0).
2. Empirical NTK of a width-512 depth-3 ReLU MLP at N = 200: `empirical_ntk` (structured) vs NT's three
   implementations (Jacobian contraction, NTK-vector products, structured derivatives). Target: <= NT's fastest.
3. Pooled CNN (`workbench.stax`): NNGP + NTK of the 2-D pooled architecture of tests/data/nt_cnn_kernels.json
   (Conv(64, 3x3, SAME) Relu AvgPool(2x2) Conv(64, 3x3, SAME) Gelu GlobalAvgPool Dense(1), W_std 1.5, b_std 0.1) on
   N = 128 random 8x8x2 images, float32: kernel_fn vs NT's jitted kernel_fn (goal >= 2x), and the peak memory of one
   call (compilation included) of each in a fresh process (goal: ours <= NT's), with our estimate against our peak
   (goal: within 1.5x).
neural-tangents needs jax 0.4.23, so it runs in its side venv through benchmarks/nt_kernels_peer.py and
benchmarks/nt_cnn_peer.py.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
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
CNN = {"weight_std": 1.5, "bias_std": 0.1, "channels": 64, "shape": [8, 8, 2]}  # nt_cnn_kernels.json's 2-D case

CNN_CHILD = """
import json, resource, sys
import numpy as np
from benchmarks.bench_kernels import pooled_cnn
from workbench.stax.kernel import estimate
job = json.loads(sys.argv[1])
net = pooled_cnn()
x = np.random.default_rng(0).normal(size=[job["n"]] + job["shape"]).astype(np.float32)
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
before = rss()
k = net.kernel_fn(x, None, ("nngp", "ntk"))
k.ntk.block_until_ready()
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
need = estimate(net, tuple(job["shape"]), job["n"], None, 4, True, False)[0]
print(json.dumps({"peak": int(hwm.split()[1]) * 1024 - before, "estimate": need}))
"""


def pooled_cnn():
    """The 2-D pooled architecture of tests/data/nt_cnn_kernels.json in `workbench.stax`."""
    from workbench import stax

    conv = lambda: stax.Conv(CNN["channels"], (3, 3), padding="SAME", W_std=CNN["weight_std"], b_std=CNN["bias_std"])  # noqa: E731
    return stax.serial(
        conv(), stax.Relu(), stax.AvgPool((2, 2), strides=(2, 2)), conv(), stax.Gelu(), stax.GlobalAvgPool(),
        stax.Dense(1, W_std=CNN["weight_std"], b_std=CNN["bias_std"]),
    )  # fmt: skip


def peer(python, job, script="nt_kernels_peer.py"):
    """Timings from neural-tangents in its own interpreter (None if it cannot run)."""
    script = pathlib.Path(__file__).with_name(script)
    try:
        done = subprocess.run([python, str(script), json.dumps(job)], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as err:
        print(f"neural-tangents peer failed ({python}): {getattr(err, 'stderr', err)}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def cnn_part(args):
    """Section 3 of the module doc: pooled-CNN time and peak memory against neural-tangents."""
    n, repeats = (32, 2) if args.quick else (128, 3)
    job = dict(CNN, n=n, repeats=repeats)
    x = jnp.asarray(np.random.default_rng(0).normal(size=[n] + CNN["shape"]), jnp.float32)
    net = pooled_cnn()
    ours = best_time(lambda: net.kernel_fn(x, None, ("nngp", "ntk")), repeats)
    nt = peer(args.nt_python, dict(job, mode="time"), "nt_cnn_peer.py")
    theirs = nt["seconds"] if nt else float("nan")
    print(f"\npooled CNN NNGP+NTK, N={n} random 8x8x2 images, float32 (seconds, best of {repeats} after warm-up)")
    print(f"{'workbench':>10} {'neural-tangents':>16} {'speed-up':>9}")
    print(f"{ours:>10.3f} {theirs:>16.3f} {theirs / ours:>8.2f}x   (goal >= 2x)")
    child = [sys.executable, "-c", CNN_CHILD, json.dumps(job)]
    done = subprocess.run(child, capture_output=True, text=True, check=True, cwd=pathlib.Path(__file__).parents[1])
    mine = json.loads(done.stdout.strip().splitlines()[-1])
    nt_mem = peer(args.nt_python, dict(job, mode="memory"), "nt_cnn_peer.py")
    theirs_mem = nt_mem["peak"] if nt_mem else float("nan")
    gib = 2.0**30
    print("peak memory of one call, compilation included, fresh process (GiB above the resident size before it):")
    print(f"  workbench {mine['peak'] / gib:.3f}, neural-tangents {theirs_mem / gib:.3f}: ours / NT's = "
          f"{mine['peak'] / theirs_mem:.2f} (goal <= 1)")  # fmt: skip
    print(f"  our estimate {mine['estimate'] / gib:.3f} GiB = {mine['estimate'] / mine['peak']:.2f} x our peak "
          "(goal: within 1.5x)")  # fmt: skip


def main(argv=None):
    assert __doc__ is not None  # the module docstring is the command's description
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--part", choices=("all", "mlp", "cnn"), default="all", help="which sections to run")
    parser.add_argument("--nt-python", default="/work/ntvenv/bin/python", help="interpreter with neural-tangents")
    args = parser.parse_args(argv)
    if args.part != "cnn":
        mlp_part(args)
    if args.part != "mlp":
        cnn_part(args)


def mlp_part(args):
    """Sections 1 and 2 of the module doc: MLP kernels and the empirical NTK against neural-tangents."""
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
