"""Issue 25's measurements on the zoo's examples (`python -m benchmarks.bench_own_model [part ...]`, parts: coord,
width, depth, lazy): coordinate-check slopes under muP and SP (transformer, CNN), the best learning rate against
width (transformer) and depth (residual MLP, transformer; none / depth-muP / CompleteP), and the empirical NTK's
relative change under NTK vs muP at two widths. Prints tables; sizes fit a 2-core CPU in minutes."""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from workbench.experiments import model_lab as M
from workbench.nets.engine import TrainConfig

EXAMPLES: dict[str, dict[str, Any]] = {  # model, data, a learning rate near the optimum at the base width under Adam
    "transformer": dict(model="zoo:transformer", data="modular:31", train=TrainConfig(optimizer="adam", lr=1e-2)),
    "cnn": dict(model="zoo:cnn", data="digits", train=TrainConfig(optimizer="adam", lr=3e-3)),
    "resmlp": dict(model="zoo:resmlp", data="digits", train=TrainConfig(optimizer="adam", lr=1e-2)),
}


def summary(config: M.Config) -> tuple[list[dict], dict]:
    records = list(M.run(config))
    return [r.metrics for r in records if r.kind == "point"], records[-1].metrics


def coord(names: tuple[str, ...] = ("transformer", "cnn")) -> None:
    """TP V Fig. 5's check: slopes of every module's change against width after 4 Adam steps at lr 3e-3 (small
    steps: at 1e-2 higher-order terms tilt even muP's slopes; see the Your model panel's theory)."""
    for name in names:
        ex = EXAMPLES[name]
        for par in ("mup", "sp"):
            config = M.Config(
                **{**ex, "train": ex["train"].replace(steps=4, lr=3e-3)},
                parametrization=par,
                widths=(64, 128, 256, 512),
                base_width=64,
                depths=(2,) if name == "transformer" else (0,),
                seeds=2,
                n_samples=64,
            )
            _, s = summary(config)
            slopes = dict(zip(s["modules"].split(","), np.round(s["slopes"], 3)))
            worst = max(slopes.items(), key=lambda kv: abs(kv[1]))
            print(f"coord {name:11s} {par:4s} max |slope| {abs(worst[1]):.3f} ({worst[0]}); all: {slopes}")


def transfer(name: str, axis: str, scalings: tuple[str, ...], sizes: tuple[int, ...], steps: int, n: int = 128) -> None:
    """The best learning rate against width or depth, in grid steps of a factor 2."""
    ex = EXAMPLES[name]
    for scaling in scalings:
        pars = ("mup", "sp") if axis == "width" else ("mup",)
        for par in pars:
            widths, depths = (sizes, (1,) if name == "transformer" else (2,)) if axis == "width" else ((128,), sizes)
            config = M.Config(
                **{**ex, "train": ex["train"].replace(steps=steps)},
                study="lr_transfer",
                parametrization=par,
                widths=widths,
                base_width=64,
                depths=depths,
                base_depth=depths[0],
                depth_scaling=scaling,
                n_lrs=7,
                seeds=1 if name == "transformer" else 2,
                n_samples=n,
            )
            start = time.perf_counter()
            points, s = summary(config)
            print(
                f"lr-transfer {name:11s} over {axis} {sizes} {par:4s} depth-scaling {scaling:8s}: optima log2 lr "
                f"{np.round(s['optima'], 2).tolist()} shift {s['shift']:+.0f} grid steps "
                f"({time.perf_counter() - start:.0f} s)"
            )
            for p in points:
                print(f"    {axis} {p[axis]:5d} loss per lr {np.round(p['loss'], 3).tolist()}")


def lazy() -> None:
    """Relative change of the empirical NTK under NTK vs muP at two widths (same base learning rate)."""
    for name, ex in EXAMPLES.items():
        config = M.Config(
            **{**ex, "train": TrainConfig(optimizer="sgd", lr=0.1, steps=20)},
            study="lazy_rich",
            widths=(64, 256),
            base_width=64,
            depths=(1,) if name == "transformer" else (2,) if name == "resmlp" else (0,),
            seeds=1,
            n_samples=64,
            probe=16,
        )
        points, _ = summary(config)
        for p in points:
            ntk, mup = p["ntk_change"]
            print(f"lazy {name:11s} width {p['width']:4d}: NTK change ntk {ntk:.4f}  mup {mup:.4f}")


PARTS = {
    "coord": coord,
    "tcoord": lambda: coord(("transformer",)),
    "width": lambda: transfer("transformer", "width", ("none",), (64, 256, 1024), 30),
    "transdepth": lambda: transfer("transformer", "depth", ("sqrt", "complete", "none"), (1, 2, 4), 30),
    "resdepth": lambda: transfer("resmlp", "depth", ("sqrt", "none"), (2, 8, 32), 20, 512),
    "depth": lambda: (
        transfer("resmlp", "depth", ("sqrt", "none"), (2, 8, 32), 20, 512),
        transfer("transformer", "depth", ("sqrt", "complete", "none"), (1, 2, 4), 30),
    ),
    "lazy": lazy,
}

if __name__ == "__main__":
    for part in sys.argv[1:] or list(PARTS):
        PARTS[part]()
