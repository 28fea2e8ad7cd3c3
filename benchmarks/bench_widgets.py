"""Live-dashboard latency: control changes never block the kernel, views fill in from the background, and the
cost of live plotting in training.

    python -m benchmarks.bench_widgets [--quick]

1. Views (kernel explorer, phase diagram) at their default and at their largest allowed settings: how long
   a control change holds the kernel's thread (target <= 100 ms: the computation runs in the panel's
   background worker), how long the tab takes to open (target <= 1 s for the phase diagram), and when
   the first stage (analytic curves / the diagram) and the last (finite networks) are drawn.
2. Kernel explorer at N = 200 points: median over control changes (new sigma_w / sigma_b values) of
   the time from the change to the rendered analytic curves (background recompute + set_data + Agg
   render). Peer: neural-tangents' stax kernel_fn for the same NNGP/NTK on the same 200 points
   (subprocess in /work/ntvenv, if present). Also: when the empirical-NTK overlay arrived, the 90th
   percentile, and how many changes needed a full render (`widgets.live.LiveFigure.dynamic`).
3. Training dynamics: steps/s of `training_dynamics.run` alone versus inside the panel with every
   throttled redraw rendered synchronously (as the browser would ask). Target: plotting costs <= 20%.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import threading
import time

import numpy as np

from widgets.panels.criticality import PhaseDiagramPanel
from widgets.panels.kernel_explorer import KernelExplorerPanel
from widgets.panels.training_dynamics import TrainingDynamicsPanel
from workbench.experiments import training_dynamics
from workbench.experiments.kernel_explorer import Config as KernelConfig
from workbench.experiments.kernel_explorer import inputs

NT_PYTHON = "/work/ntvenv/bin/python"
NT_SCRIPT = """
import json, sys, time, numpy as np
from neural_tangents import stax
x = np.array(json.loads(sys.argv[1]), np.float32)
times = []
for i in range(21):
    w = 1.2 + 0.04 * i
    layers = [stax.Dense(512, W_std=w, b_std=0.1), stax.Relu()] * 3
    kernel_fn = stax.serial(*layers, stax.Dense(1, W_std=w, b_std=0.1))[2]
    t = time.perf_counter()
    k = kernel_fn(x, None, ("nngp", "ntk"))
    np.asarray(k.ntk)
    times.append(time.perf_counter() - t)
print(json.dumps(times[1:]))
"""


def largest(cls) -> dict:
    """Every numeric field of a panel's Config at its upper bound (the heaviest settings a user can pick)."""
    return {
        f.name: f.metadata["hi"]
        for f in dataclasses.fields(cls.experiment.Config)
        if f.metadata.get("hi") is not None and isinstance(f.default, int | float) and not isinstance(f.default, bool)
    }


def view_responsiveness(cls, config, changes) -> dict:
    """Seconds: opening the panel, each control change's hold on the caller, first and last stage drawn."""
    stages: list[float] = []
    t = time.perf_counter()
    panel = cls(config)
    opened = time.perf_counter() - t
    draw = panel.draw
    panel.draw = lambda record: (stages.append(time.perf_counter() - t), draw(record))
    holds = []
    for name, value in changes:
        t0 = time.perf_counter()
        panel.form.controls[name].value = value
        holds.append(time.perf_counter() - t0)
    t = time.perf_counter()
    finished = panel.wait(600)
    status = panel.controller.state
    panel.close()
    return {
        "open": opened,
        "hold": max(holds),
        "first": stages[0] if stages else float("nan"),
        "last": stages[-1] if stages else float("nan"),
        "status": status if finished else "running",
    }


def kernel_explorer_latency(changes: int = 20) -> dict:
    panel = KernelExplorerPanel(KernelConfig(n_points=200))
    panel.live.canvas.syncing_data_url = False  # what ipympl does once a front end reports "initialized"
    controls = panel.form.controls
    controls["weight_std"].value = 1.5  # warm-up: compile once for this depth and activation
    panel.wait()
    panel.live.render()
    analytic = threading.Event()
    draw = panel.draw

    def draw_and_signal(record):
        draw(record)
        analytic.set()

    panel.draw = draw_and_signal
    total, overlay, full = [], [], []
    for i in range(changes):
        name, value = ("weight_std", 1.2 + 0.04 * i) if i % 2 == 0 else ("bias_std", 0.05 + 0.02 * i)
        panel.wait()
        analytic.clear()
        full_renders = panel.live.full_renders
        t0 = time.perf_counter()
        controls[name].value = round(value, 3)
        analytic.wait(60)
        panel.live.render()
        total.append(time.perf_counter() - t0)
        if panel.live.full_renders > full_renders:
            full.append(total[-1])
        panel.wait()
        overlay.append(time.perf_counter() - t0)
    panel.close()
    return {
        "total": statistics.median(total),
        "overlay": statistics.median(overlay),
        "p90": statistics.quantiles(total, n=10)[-1],
        "full": len(full),
        "full_total": statistics.median(full) if full else float("nan"),
    }


def nt_peer(x: np.ndarray) -> float | None:
    """Median seconds of neural-tangents' kernel_fn (NNGP and NTK) on the same points, or None."""
    if not os.path.exists(NT_PYTHON):
        return None
    out = subprocess.run(
        [NT_PYTHON, "-c", NT_SCRIPT, json.dumps(x.tolist())],
        capture_output=True,
        text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
        timeout=600,
    )
    if out.returncode != 0:
        return None
    return statistics.median(json.loads(out.stdout.strip().splitlines()[-1]))


def training_rates(config) -> tuple[float, float, int]:
    """(steps/s without plotting, steps/s in the panel with every throttled redraw rendered, redraws)."""
    for _ in training_dynamics.run(config):  # warm-up: compilation
        pass
    t = time.perf_counter()
    for _ in training_dynamics.run(config):
        pass
    off = config.train.steps / (time.perf_counter() - t)
    panel = TrainingDynamicsPanel(config)
    panel.live.canvas.syncing_data_url = False
    panel.live.canvas.draw_idle = panel.live.canvas.draw  # render as the front end's draw request would
    panel.controller.start()
    assert panel.controller.thread is not None  # start() made it
    panel.controller.thread.join()
    panel.controller.start()
    t = time.perf_counter()
    assert panel.controller.thread is not None
    panel.controller.thread.join()
    on = config.train.steps / (time.perf_counter() - t)
    draws = panel.live.draws
    panel.close()
    return off, on, draws


def main(argv=None):
    assert __doc__ is not None  # the module docstring is the command's description
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer changes and steps, for a smoke run")
    quick = parser.parse_args(argv).quick
    print(
        "views: a control change's hold on the kernel (target <= 100 ms), opening the tab (phase diagram "
        "target <= 1 s), first and last stage drawn"
    )
    print(
        f"{'panel':<16} {'settings':<9} {'open ms':>8} {'max hold ms':>12} {'first stage s':>14} {'last stage s':>13} "
        f"{'ended':>9}"
    )
    views = [
        (KernelExplorerPanel, [("weight_std", 1.5), ("bias_std", 0.2), ("depth", 4)]),
        (PhaseDiagramPanel, [("sigma_w2", 2.0), ("sigma_b2", 0.1), ("depth", 20)]),
    ]
    for cls, changes in views:
        for label, config in (("default", cls.experiment.Config()), ("largest", cls.experiment.Config(**largest(cls)))):
            r = view_responsiveness(cls, config, changes)
            print(
                f"{cls.title:<16} {label:<9} {1e3 * r['open']:8.0f} {1e3 * r['hold']:12.1f} {r['first']:14.2f} "
                f"{r['last']:13.2f} {r['status']:>9}"
            )
    k = kernel_explorer_latency(5 if quick else 20)
    peer = None if quick else nt_peer(inputs(KernelConfig(n_points=200)))
    print("\nkernel explorer, N = 200, median over control changes: change -> analytic curves rendered")
    print(
        f"{'total ms':>9} {'neural-tangents kernel_fn ms':>29} {'total / peer':>13} {'empirical overlay ms':>21} "
        f"{'p90 total ms':>13} {'full renders':>13} {'full-render total ms':>21}"
    )
    peer_ms = f"{1e3 * peer:.1f}" if peer else "n/a"
    ratio = f"{k['total'] / peer:.2f}" if peer else "n/a"
    full = f"{k['full']}/{5 if quick else 20}"
    print(
        f"{1e3 * k['total']:9.1f} {peer_ms:>29} {ratio:>13} {1e3 * k['overlay']:21.0f} {1e3 * k['p90']:13.1f} "
        f"{full:>13} {1e3 * k['full_total']:21.1f}"
    )
    config = training_dynamics.Config().replace(widths=(64, 256), steps=1000 if quick else 10_000, record_every=25)
    off, on, draws = training_rates(config)
    print("\ntraining dynamics (1-D sine), widths (64, 256), a record every 25 steps")
    print(f"{'plot off steps/s':>17} {'plot on steps/s':>16} {'redraws':>8} {'on / off':>9} {'plotting cost':>14}")
    print(f"{off:17.0f} {on:16.0f} {draws:8d} {on / off:9.2f} {1 - on / off:14.0%}")


if __name__ == "__main__":
    main()
