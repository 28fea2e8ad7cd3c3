"""Grokking panel: train and test accuracy on a log-step axis with the steps of memorisation and
generalisation, losses, weight norm and the live Fourier spectrum of the embeddings
(`workbench.experiments.grokking`); a preset menu loads the settings of the papers."""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Patch
from matplotlib.ticker import NullFormatter

from widgets.live import PALETTE
from widgets.panel import Help, LivePanel
from workbench.core.experiment import Record
from workbench.experiments import grokking
from workbench.theory.fourier import random_spectrum

ALT = (
    "Top left: train (solid) and test (dashed) accuracy against step on a log axis, dotted lines at the "
    "steps of memorisation and generalisation. Top right: train and test loss against step. Bottom left: "
    "global weight norm against step. Bottom right: each neuron's Fourier power shares sorted largest "
    "first and averaged over neurons, against rank 1..p/2 (bars), with their expectation at random "
    "initialisation as a grey staircase (modular tasks)."
)

HELP = Help(
    what="On a + b mod p with a fraction of the pairs for training, an MLP reaches 100% train accuracy within a "
    "few hundred steps and, thousands of steps later, ~100% test accuracy (Power et al. 2022); the live "
    "Fourier spectrum of each neuron's embedding concentrates on one frequency: the bottom-right bars, each "
    "neuron's power shares sorted largest first, grow from the random staircase to a first bar of about 0.8.",
    try_="Weight decay 0 (no grokking within the run), or the XOR-cluster preset with label noise (Xu et al. 2024).",
    theory="Generalisation comes with a Fourier (circuit) solution that weight decay favours over memorisation "
    "(Nanda et al. 2023): each neuron's embedding concentrates on one frequency. At random initialisation "
    "the sorted shares of p = 59 are H_29 / 29 = 0.14, 0.10, 0.08, ... (uniform spacings); after grokking the "
    "first is about 0.8. Different neurons pick different frequencies, so the spectrum summed over neurons "
    "stays nearly flat for the MLP (Gromov 2023); the transformer's holds a few key frequencies (Nanda et al.).",
)


class GrokkingPanel(LivePanel[grokking.Config]):
    title = "Grokking"
    help = HELP
    quick = dict(p=11, train_fraction=0.5, width=16, steps=80, record_every=20)
    experiment = grokking
    form_options = dict(
        exclude=("top_k",),
        visible={
            **{name: (lambda c: c.task == "modular") for name in ("p", "op", "train_fraction", "model")},
            **{name: (lambda c: c.task == "xor") for name in ("xor_dim", "xor_n_train", "label_flip")},
            "n_heads": lambda c: c.task == "modular" and c.model == "transformer",
            "activation": lambda c: c.task == "modular" and c.model == "mlp",
        },
    )
    figure_options = dict(nrows=2, ncols=2, figsize=(5.0, 4.8), min_interval=0.25)
    alt = ALT

    def header(self) -> w.Widget:
        self.preset = w.Dropdown(
            options=["(custom)"] + list(grokking.PRESETS),
            value="(custom)",
            description="preset",
            layout=w.Layout(width="600px"),
        )
        self.preset.observe(self._load_preset, names="value")
        return w.VBox([super().header(), self.preset])

    def _load_preset(self, change: dict[str, Any]) -> None:
        if change["new"] in grokking.PRESETS:
            self.form.set_config(grokking.PRESETS[change["new"]])

    def setup(self, axes: list[Axes]) -> None:
        self.acc = [
            axes[0].plot([], [], ls=ls, color=PALETTE[0], label=name)[0]
            for name, ls in (("train", "-"), ("test", "--"))
        ]
        self.marks = [
            axes[0].plot([], [], ls=":", color=PALETTE[i], label=label)[0]
            for i, label in ((1, "memorised"), (2, "generalised"))
        ]
        axes[0].set(xscale="log", xlabel="step", ylabel="accuracy", ylim=(0, 1.02), title="accuracy")
        axes[0].legend(loc="center", fontsize=7)  # between the early train rise and the late test rise
        self.loss = [
            axes[1].plot([], [], ls=ls, color=PALETTE[1], label=name)[0]
            for name, ls in (("train", "-"), ("test", "--"))
        ]
        axes[1].set(xscale="log", yscale="log", xlabel="step", ylabel="cross-entropy / MSE", title="loss")
        axes[1].legend(loc="lower left")
        (self.norm,) = axes[2].plot([], [], color=PALETTE[2])
        axes[2].set(xscale="log", xlabel="step", ylabel="||theta||", title="weight norm")
        self.bars = None
        for ax in axes[:3]:
            ax.xaxis.set_minor_formatter(NullFormatter())
        (self.random,) = axes[3].plot([], [], drawstyle="steps-mid", color="grey", label="random init")
        axes[3].set(xlabel="rank of the frequency", ylabel="share of a neuron's power", ylim=(0, 1.02))
        axes[3].legend(handles=[Patch(color=PALETTE[4], label="trained"), self.random], loc="upper right")

    def clear(self) -> None:
        config = self.running_config or self.config
        for line in self.acc + self.loss + self.marks + [self.norm]:
            line.set_data([], [])
        if self.bars is not None:
            self.bars.remove()
            self.bars = None
        self.random.set_data([], [])
        if config.task == "modular":
            k = np.arange(1, config.p // 2 + 1)
            self.bars = self.live.axes[3].bar(k, np.zeros(len(k)), color=PALETTE[4])
            self.random.set_data(k, random_spectrum(len(k)))
            self.live.axes[3].set_xlim(0.4, len(k) + 0.6)
        self.live.axes[3].set_title(
            "neurons' sorted spectra" if config.task == "modular" else "(no embedding: XOR task)"
        )
        for ax in self.live.axes[:3]:  # log-step axes need positive limits before the first record (auto: the
            ax.set_xlim(1, max(config.train.steps, 10), auto=True)  # data's limits take over once there is data)
        self.live.axes[1].set_ylim(1e-3, 10, auto=True)
        self.live.axes[2].set_ylim(0, 1, auto=True)

    @staticmethod
    def _positive(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = steps > 0
        return steps[keep], values[keep]

    def draw(self, record: Record) -> None:
        m = record.metrics
        if "weight_norm" not in m:
            return
        axes = self.live.axes
        for line, name in zip(self.acc, ("train_acc", "test_acc")):
            line.set_data(*self._positive(*self.history(name)))
        for line, name in zip(self.loss, ("train_loss", "test_loss")):
            line.set_data(*self._positive(*self.history(name)))
        self.norm.set_data(*self._positive(*self.history("weight_norm")))
        for mark, name in zip(self.marks, ("step_memorised", "step_generalised")):
            if np.isfinite(m[name]) and m[name] > 0:
                mark.set_data([m[name], m[name]], [0, 1.02])
        if self.bars is not None and "fourier_neuron_spectrum" in m:
            shares = np.asarray(m["fourier_neuron_spectrum"])
            for bar, h in zip(self.bars, shares):
                bar.set_height(h)
            random = float(np.asarray(self.random.get_ydata())[0])
            axes[3].set_title(f"top share {shares[0]:.2f} (random {random:.2f})")
        for ax in axes[:3]:
            self.rescale(ax)
        axes[0].set_ylim(0, 1.02)
