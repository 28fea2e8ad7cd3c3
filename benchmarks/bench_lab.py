"""LR-transfer sweep (4 widths x 8 learning rates x 200 Adam steps): one vmapped compiled call per width
(`workbench.experiments.lr_transfer`) against the training engine run once per learning rate (its compiled
chunk is reused across learning rates, so the peer pays one compilation per width as well).

    python -m benchmarks.bench_lab [--quick]

Target: the whole sweep, compilation included, <= 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from workbench.data import Dataset
from workbench.experiments import lr_transfer as lt
from workbench.nets.engine import train
from workbench.nets.models import build_mlp


def engine_sweep(config: lt.Config) -> np.ndarray:
    """Final losses (widths, lrs) from `workbench.nets.engine.train`, one run per learning rate."""
    x, y, _, loss = lt.data(config)
    data = Dataset(x, y, x[:1], y[:1])
    out = np.zeros((len(config.widths), config.n_lrs))
    for i, width in enumerate(config.widths):
        for j, log2_lr in enumerate(config.log2_lrs):
            steps = config.train.steps
            cfg = config.train.replace(lr=2.0**log2_lr, record_every=steps, loss=loss)
            out[i, j] = [r for r in train(build_mlp(lt.model_config(config, width)), data, cfg)][-1].metrics[
                "train_loss"
            ]
    return out


def main(argv=None):
    assert __doc__ is not None  # the module docstring is the command's description
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    quick = parser.parse_args(argv).quick
    steps = 50 if quick else 200
    print(f"{'param':>6} {'vmapped sweep s':>16} {'engine per-lr s':>16} {'speed-up':>9}  optima (log2 lr) by width")
    for param in ("mup", "sp"):
        config = lt.Config().replace(parametrization=param, steps=steps, seeds=1, n_samples=256)
        t = time.perf_counter()
        records = list(lt.run(config))
        ours = time.perf_counter() - t
        t = time.perf_counter()
        peer = engine_sweep(config)
        theirs = time.perf_counter() - t
        same = np.nanargmin(np.where(np.isfinite(peer), peer, np.nan), 1)
        optima = records[-1].metrics["optima"]
        print(
            f"{param:>6} {ours:>16.1f} {theirs:>16.1f} {theirs / ours:>8.2f}x  {optima} "
            f"(engine: {config.log2_lrs[same]})"
        )
    print(f"target: vmapped sweep (4 widths x 8 lrs x {steps} steps, compilation included) <= 60 s on 2 cores")


if __name__ == "__main__":
    main()
