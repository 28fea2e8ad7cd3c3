"""Issue 23, item 5: a number's slider spans its soft range (what a demo needs, `spec(soft=...)`); its typed entry
reaches the whole declared range; nothing is clamped: a value beyond the declared range is refused with the field's
name and range, and a loaded config beyond the soft range shows on a slider widened to it."""

import math
from dataclasses import dataclass
from typing import Any, cast

import ipywidgets as w
import numpy as np
import pytest

from widgets.controls import ConfigForm
from widgets.panel import LivePanel
from widgets.panels.training_dynamics import TrainingDynamicsPanel
from workbench.core.config import Config, spec
from workbench.core.experiment import Record
from workbench.core.fields import STEPS
from workbench.experiments import kernel_explorer, lazy_rich, training_dynamics


@dataclass(frozen=True)
class SoftConfig(Config):
    steps: int = spec(100, lo=1, hi=100_000, log=True, soft=(2, 64), doc="steps")
    lr: float = spec(0.01, lo=0.0, lo_open=True, hi=1e4, log=True, soft=(1e-3, 1.0), doc="learning rate")
    depth: int = spec(3, lo=1, hi=256, soft=(1, 16), doc="hidden layers")
    scale: float = spec(0.5, lo=0.0, hi=100.0, soft=(0.0, 2.0), doc="init scale")
    seed: int = spec(0, lo=0, hi=2**31 - 1, doc="seed")


def test_the_slider_spans_the_soft_range():
    form = ConfigForm(SoftConfig)
    s: dict[str, Any] = dict(form.sliders)
    assert isinstance(s["steps"], w.SelectionSlider)  # powers of two in (2, 64), and the default 100 shown
    assert s["steps"].options == (2, 4, 8, 16, 32, 64, 100) and s["steps"].value == 100
    assert isinstance(s["lr"], w.FloatLogSlider)
    assert (s["lr"].min, s["lr"].max) == pytest.approx((-3.0, 0.0)) and s["lr"].value == pytest.approx(0.01)
    assert isinstance(s["depth"], w.IntSlider) and (s["depth"].min, s["depth"].max) == (1, 16)
    assert isinstance(s["scale"], w.FloatSlider) and (s["scale"].min, s["scale"].max) == (0.0, 2.0)
    assert "seed" not in s and isinstance(form.controls["seed"], w.IntText)  # 2^31 values: typed only
    for name in s:  # the entry beside each slider is the field's control: unbounded, so never clamped
        assert isinstance(form.controls[name], (w.IntText, w.FloatText)), name
        assert not s[name].readout, name  # the entry is the readout (a slider's own clamps what is typed)


def test_a_typed_value_beyond_the_soft_range_reaches_the_config_and_widens_the_slider():
    form = ConfigForm(SoftConfig)
    seen = []
    form.observe(seen.append)
    form.controls["steps"].value = 5000
    form.controls["lr"].value = 50.0
    form.controls["depth"].value = 200
    form.controls["scale"].value = 40.0
    form.controls["seed"].value = 2**31 - 1
    assert form.config == SoftConfig(steps=5000, lr=50.0, depth=200, scale=40.0, seed=2**31 - 1)
    assert len(seen) == 5 and not any(e.value for e in form.errors.values())
    s: dict[str, Any] = dict(form.sliders)
    assert s["steps"].value == 5000 and s["steps"].options[-1] == 5000
    assert s["lr"].max == pytest.approx(math.log10(50.0)) and s["lr"].value == pytest.approx(50.0)
    assert s["depth"].max == 200 and s["depth"].value == 200 and s["scale"].value == 40.0


def test_out_of_the_declared_range_is_refused_with_the_field_and_its_range_never_clamped():
    form = ConfigForm(SoftConfig)
    for name, bad, message in [
        ("steps", 200_000, "steps: must be in [1, 100000], got 200000"),
        ("lr", 0.0, "lr: must be in (0.0, 10000.0], got 0.0"),
        ("depth", 0, "depth: must be in [1, 256], got 0"),
        ("scale", 101.0, "scale: must be in [0.0, 100.0], got 101.0"),
        ("seed", -1, "seed: must be in [0, 2147483647], got -1"),
    ]:
        form.controls[name].value = bad
        assert message in form.errors[name].value, (name, form.errors[name].value)
        assert form.controls[name].value == bad  # what was typed stays in view, next to its message
    assert form.config == SoftConfig()  # the last valid config stays in force
    assert form.sliders["steps"].value == 100 and form.sliders["depth"].value == 3


def test_dragging_the_slider_types_into_the_entry():
    """A log slider moves in steps of 10^0.05: its value goes to the config at 3 significant digits."""
    form = ConfigForm(SoftConfig)
    form.sliders["lr"].value = 10**-1.05
    assert form.controls["lr"].value == 0.0891 and form.config.lr == 0.0891
    form.sliders["steps"].value = 32
    assert form.controls["steps"].value == 32 and form.config.steps == 32


def test_a_loaded_config_beyond_the_soft_range_shows_on_the_slider():
    panel = TrainingDynamicsPanel()
    try:
        lr, steps = cast(Any, panel.form.sliders["train.lr"]), cast(Any, panel.form.sliders["train.steps"])
        assert 10**lr.max < 1000 and steps.options[-1] < 50_000  # the soft spans: a shorter run, a smaller lr
        loaded = training_dynamics.Config().replace(**{"train.steps": 50_000, "train.lr": 1000.0})
        panel.load(loaded.to_code())
        assert panel.config == loaded
        assert panel.form.controls["train.steps"].value == 50_000 and steps.value == 50_000
        assert panel.form.controls["train.lr"].value == 1000.0 and lr.value == pytest.approx(1000.0)
        assert lr.max == pytest.approx(3.0)
    finally:
        panel.close()


def test_the_demos_soft_ranges():
    """What the issue met: a drag to the end of steps started a 10,000,000-step run; Lazy vs rich's lr went to
    1000; the kernel explorer's depth 1-256 put depth 1 to 10 in 3 px. The declared ranges stay (typed)."""
    steps = ConfigForm(training_dynamics.Config).sliders["train.steps"]
    assert isinstance(steps, w.SelectionSlider) and max(steps.options) <= 10_000
    lr = ConfigForm(lazy_rich.Config).sliders["train.lr"]
    assert isinstance(lr, w.FloatLogSlider) and 10**lr.max <= 10.0
    depth = ConfigForm(kernel_explorer.Config).sliders["depth"]
    assert isinstance(depth, w.IntSlider) and (depth.min, depth.max) == (1, 16)
    form = ConfigForm(kernel_explorer.Config)
    form.controls["depth"].value = 256
    assert form.config.depth == 256


def test_spec_refuses_a_soft_range_outside_the_declared_one():
    with pytest.raises(ValueError, match=r"soft: must be a pair \(a, b\) with 1 <= a < b <= 10"):
        spec(2, lo=1, hi=10, soft=(0, 5))
    with pytest.raises(ValueError, match="soft: must be a pair"):
        spec(2, lo=1, hi=10, soft=(5, 5))
    with pytest.raises(ValueError, match="soft: must be a pair"):
        STEPS(10, soft=(1, 10**9))


class _Counting:
    """An experiment as an object: Config, METRICS and a run of three records, no training (fast)."""

    Config = SoftConfig
    METRICS = {"step": dict}

    @staticmethod
    def run(config, stop=None):
        for step in range(3):
            status = "finished" if step == 2 else "running"
            yield Record(done=step, total=2, metrics=dict(train_loss=1.0 / (1 + step)), status=status)


class _CountingPanel(LivePanel):
    title = "Counting"
    experiment = _Counting()
    figure_options = dict(nrows=1, ncols=2, figsize=(4, 2))

    def setup(self, axes):
        (self.line,) = axes[0].plot([], [])
        axes[1].text(0.5, 0.5, "its own note")  # an axes with the panel's own text gets no second one

    def draw(self, record):
        self.line.set_data(*self.history("train_loss"))

    def clear(self):
        self.line.set_data([], [])


def test_before_a_first_run_and_after_reset_empty_axes_say_press_run():
    """Issue 23, item 5: before a first run the axes were empty at -0.05..0.05 and looked broken."""

    def notes(panel):
        return [[t.get_text() for t in ax.texts if t.get_text() == "press Run"] for ax in panel.live.axes]

    panel = TrainingDynamicsPanel()
    try:  # every axes of the training-dynamics panel waits for the run
        assert notes(panel) == [["press Run"]] * len(panel.live.axes)
    finally:
        panel.close()
    panel = _CountingPanel()
    try:
        assert notes(panel) == [["press Run"], []]
        panel.controller.start()
        assert panel.wait(30) and panel.controller.state == "finished", panel.controller.status.value
        assert notes(panel) == [[], []] and np.size(panel.line.get_xdata()) == 3
        panel.controller.reset()
        assert notes(panel) == [["press Run"], []]
    finally:
        panel.close()
