"""Grokking and neural-collapse presets: steps and wall time (compilation included) to the milestone,
against a bare jitted optax loop of the same model and steps (the peer, measured in the same run).

    python -m benchmarks.bench_collapse_grokking

Targets (2 CPU cores): the grokking preset (a+b mod 59, 40% train, width 256, AdamW lr 3e-3, wd 1)
reaches test accuracy >= 95% with train accuracy 100% long before, within 15 s; the neural-collapse
preset (Gaussian mixture, MLP) lowers NC1 by >= 20x within 15 s.
"""

from __future__ import annotations

import dataclasses
import os
import time

from benchmarks.bench_engine import bare_loop
from workbench.experiments import grokking as G
from workbench.experiments import neural_collapse as NC
from workbench.nets.engine import TrainConfig


def bare_seconds(model, data, tc: TrainConfig, steps: int) -> float:
    """Wall time (compilation included) of `steps` optimizer steps as one jitted lax.scan, no records."""
    start = time.perf_counter()
    bare_loop(model, data, dataclasses.replace(tc, steps=steps))()
    return time.perf_counter() - start


def first(records, test):
    return next(((r.step, r.elapsed) for r in records if r.metrics and test(r.metrics)), (None, float("nan")))


def timed(run):
    """(records, wall seconds, CPU seconds of this process over all threads) of a whole run."""
    wall, cpu = time.perf_counter(), os.times()
    records = list(run)
    after = os.times()
    return records, time.perf_counter() - wall, (after.user + after.system) - (cpu.user + cpu.system)


def grokking_row():
    cfg = G.Config()
    records, total, cpu = timed(G.run(cfg))
    memorised = first(records, lambda m: m["train_acc"] == 1.0)
    generalised = first(records, lambda m: m["test_acc"] >= 0.95)
    bare = bare_seconds(G.make_model(cfg), G.make_data(cfg), cfg.train, generalised[0] or cfg.train.steps)
    return (
        "grokking a+b mod 59",
        f"train 100% @ {memorised[0]} ({memorised[1]:.1f} s)",
        f"test >= 95% @ {generalised[0]}",
        generalised[1],
        total,
        cpu,
        bare,
    )


def collapse_row():
    cfg = NC.Config()
    records, total, cpu = timed(NC.run(cfg))
    nc1_0 = next(r.metrics["nc1"] for r in records if r.metrics)
    fell = first(records, lambda m: m["nc1"] <= nc1_0 / 20)
    final = records[-1].metrics["nc1"]
    data = NC.make_data(cfg)
    bare = bare_seconds(NC.make_model(cfg, data), data, cfg.train, fell[0] or cfg.train.steps)
    return (
        "neural collapse (gaussian)",
        f"NC1 {nc1_0:.3g} -> {final:.3g} ({nc1_0 / final:.0f}x)",
        f"NC1/20 @ {fell[0]}",
        fell[1],
        total,
        cpu,
        bare,
    )


def main():
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(
        f"{'preset':<28} {'first milestone':<32} {'target':<20} {'to target':>9} {'run':>7} {'run CPU':>8} "
        f"{'bare':>7} {'ratio':>6}"
    )
    for name, note, target, seconds, total, cpu, bare in (grokking_row(), collapse_row()):
        print(
            f"{name:<28} {note:<32} {target:<20} {seconds:>8.1f}s {total:>6.1f}s {cpu:>7.1f}s {bare:>6.1f}s "
            f"{seconds / bare:>5.2f}x"
        )
    print(
        "to target: wall time of the experiment (compilation, records and metrics included) to the milestone;"
        " run CPU: user+system seconds of the whole run over all threads; bare: a jitted optax lax.scan of the"
        " same steps, compilation included; ratio = to target / bare. Target: to target <= 15 s on 2 idle cores."
    )


if __name__ == "__main__":
    main()
