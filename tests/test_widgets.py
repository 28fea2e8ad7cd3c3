"""Headless tests of the widget building blocks: controls from specs, live figure, run controller, panel."""

import gc
import threading
import time
from dataclasses import dataclass

import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from widgets import ConfigForm, LiveFigure, LivePanel, RunController, Workbench
from widgets.live import nice_ceil, round_limits
from widgets.panel import records_csv, records_json
from workbench import data as D
from workbench.core.config import Config, spec
from workbench.core.experiment import Record
from workbench.nets.engine import TrainConfig, train
from workbench.nets.models import MLPConfig, build_mlp


@dataclass(frozen=True)
class TinyConfig(Config):
    width: int = spec(16, lo=4, hi=256, log=True, doc="hidden width")
    depth: int = spec(1, lo=1, hi=4, doc="hidden layers")
    activation: str = spec("tanh", check="activation", doc="nonlinearity")
    lr: float = spec(0.05, lo=0.0, lo_open=True, hi=1e4, log=True, doc="learning rate")
    steps: int = spec(200, lo=1, hi=100_000, log=True, doc="steps")
    record_every: int = spec(5, lo=1, hi=1000, doc="steps per chunk")
    widths: tuple[int, ...] = spec((8, 16), lo=1, hi=1024, doc="widths")
    parametrization: str = spec("ntk", choices=("ntk", "mup"), doc="parametrization")
    bias: bool = spec(True, doc="biases")


def tiny_run(config: TinyConfig, stop=None):
    """A real (small) training run through the engine, as a panel would start it."""
    model = build_mlp(
        MLPConfig(
            in_dim=1,
            width=config.width,
            depth=config.depth,
            activation=config.activation,
            parametrization=config.parametrization,
            base_width=16,
        ),
        seed=0,
    )
    yield from train(
        model,
        D.sine(n_train=16, n_test=32),
        TrainConfig(lr=config.lr, steps=config.steps, record_every=config.record_every),
        stop=stop,
    )


class TinyExperiment:
    """An experiment as an object (a module works the same): Config, run and METRICS."""

    Config = TinyConfig
    METRICS: dict[str, type] = {}

    @staticmethod
    def run(config, stop=None):
        return tiny_run(config, stop)


class TinyPanel(LivePanel):
    title = "Tiny"
    experiment = TinyExperiment()
    figure_options = dict(figsize=(3, 2))
    alt = "training loss against step"

    def setup(self, axes):
        (self.line,) = axes[0].plot([], [])

    def draw(self, record):
        self.line.set_data(*self.history("train_loss"))

    def clear(self):
        self.line.set_data([], [])


def wait_for(predicate, timeout=60.0):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


@pytest.fixture
def panel():
    p = TinyPanel()
    yield p
    p.close()


def test_controls_follow_the_spec_ranges():
    form = ConfigForm(TinyConfig)
    c = {**form.controls, **form.sliders}  # a number's slider (over the declared range: TinyConfig has no soft)
    assert isinstance(c["width"], w.SelectionSlider) and c["width"].options == (4, 8, 16, 32, 64, 128, 256)
    assert isinstance(c["depth"], w.IntSlider) and (c["depth"].min, c["depth"].max) == (1, 4)
    assert isinstance(c["lr"], w.FloatLogSlider) and c["lr"].max == pytest.approx(4.0)
    assert isinstance(c["parametrization"], w.Dropdown) and c["parametrization"].options == ("ntk", "mup")
    assert isinstance(c["activation"], w.Combobox) and isinstance(c["bias"], w.Checkbox)
    assert isinstance(c["steps"], w.SelectionSlider)
    assert c["width"].tooltip == "hidden width"


def test_setting_controls_updates_the_config_and_notifies():
    form = ConfigForm(TinyConfig)
    seen = []
    form.observe(seen.append)
    form.controls["width"].value = 64
    form.controls["lr"].value = 0.5
    form.controls["widths"].value = "4, 32,128"
    form.controls["parametrization"].value = "mup"
    assert form.config == TinyConfig(width=64, lr=0.5, widths=(4, 32, 128), parametrization="mup")
    assert len(seen) == 4 and seen[-1] is form.config


def test_bad_expression_shows_an_inline_error_and_keeps_the_last_valid_config():
    form = ConfigForm(TinyConfig)
    form.controls["activation"].value = "x * sigmoid(x"
    assert form.config.activation == "tanh"
    assert "activation: cannot parse" in form.errors["activation"].value
    assert 'role="alert"' in form.errors["activation"].value
    form.controls["activation"].value = "__import__('os')"
    assert "not allowed" in form.errors["activation"].value
    form.controls["activation"].value = "x * sigmoid(x)"
    assert form.config.activation == "x * sigmoid(x)" and form.errors["activation"].value == ""


def test_bad_tuple_text_is_an_inline_error():
    form = ConfigForm(TinyConfig)
    form.controls["widths"].value = "8, lots"
    assert "widths: expected comma-separated numbers" in form.errors["widths"].value
    form.controls["widths"].value = "8, 4096"
    assert "widths: must be in [1, 1024]" in form.errors["widths"].value
    assert form.config.widths == (8, 16)


def test_advanced_fields_go_in_a_collapsed_section():
    form = ConfigForm(TinyConfig, advanced=("record_every", "bias"))
    accordion = form.widget.children[-1]
    assert isinstance(accordion, w.Accordion) and accordion.selected_index is None
    assert form.controls["bias"] in accordion.children[0].children
    form.controls["record_every"].value = 7
    assert form.config.record_every == 7


def test_set_config_moves_the_controls_and_notifies_once():
    form = ConfigForm(TinyConfig)
    seen = []
    form.observe(seen.append)
    form.set_config(TinyConfig(width=128, depth=3, widths=(4,)))
    assert form.controls["width"].value == 128 and form.controls["depth"].value == 3
    assert form.controls["widths"].value == "4" and len(seen) == 1


def test_live_figure_throttles_draws_and_exports_with_alt_text():
    live = LiveFigure(figsize=(2, 2), alt="a test figure", min_interval=10.0)
    assert live.draw() and not live.draw() and live.draws == 1
    live.flush()
    assert live.draws == 2
    png, svg = live.to_bytes("png"), live.to_bytes("svg")
    assert png[:4] == b"\x89PNG" and b"a test figure" in png and b"a test figure" in svg
    assert "a test figure" in live.caption.value and not live.canvas.tooltip  # a tooltip breaks ipympl's view
    assert plt.get_fignums() == []  # never registered with pyplot
    live.close()


def test_dynamic_artists_redraw_over_the_cached_frame_with_the_same_pixels():
    live = LiveFigure(1, 2, figsize=(4, 2))
    live.canvas.syncing_data_url = False
    lines = [ax.plot([0, 1], [0, 1])[0] for ax in live.axes]
    for ax in live.axes:
        ax.set(xlim=(0, 1), ylim=(0, 2), title="t")
    live.dynamic = lines
    live.render()
    assert live.full_renders == 1
    lines[0].set_data([0, 1], [1, 0])
    live.render()
    assert live.full_renders == 1  # limits unchanged: only the lines are drawn, over the cached frame
    fast = np.asarray(live.canvas.get_renderer().buffer_rgba()).copy()
    live.dynamic = lines  # a new list forgets the cache
    live.render()
    assert live.full_renders == 2
    np.testing.assert_array_equal(np.asarray(live.canvas.get_renderer().buffer_rgba()), fast)
    live.axes[1].set_ylim(0, 5)  # new ticks: a full render
    live.render()
    assert live.full_renders == 3
    live.close()


def test_round_limits_include_zero_and_move_in_steps():
    live = LiveFigure(1, 2)
    ax, lg = live.axes
    (line,) = ax.plot([0, 3], [-0.3, 7.2])
    round_limits(ax)
    assert ax.get_xlim() == pytest.approx((-0.15, 5.15)) and ax.get_ylim() == pytest.approx((-0.815, 10.315))
    line.set_ydata([-0.3, 9.9])
    round_limits(ax, "y")
    assert ax.get_ylim() == pytest.approx((-0.815, 10.315))  # same step: same limits, same ticks
    lg.semilogy([1, 2], [3e-4, 0.5])
    round_limits(lg, "y")
    assert lg.get_ylim() == pytest.approx((1e-4, 1.0))
    assert [nice_ceil(v) for v in (0.7, 1.0, 1.5, 3, 2e-3)] == pytest.approx([1, 1, 2, 5, 2e-3])
    live.close()


def test_run_updates_artist_data_and_finishes(panel):
    panel.form.controls["steps"].value = 16
    panel.form.controls["record_every"].value = 4
    panel.controller.start()
    assert panel.controller.thread is not None  # start() made it
    panel.controller.thread.join(60)
    assert panel.controller.state == "finished"
    assert panel.controller.status.value.count("finished: 16 steps in")
    assert [r.step for r in panel.records] == [0, 4, 8, 12, 16]
    x, y = panel.line.get_data()
    assert list(x) == [0, 4, 8, 12, 16] and y[-1] < y[0]
    assert panel.controller.progress.value == 1.0


def test_stop_ends_the_thread_within_half_a_second(panel):
    panel.form.controls["steps"].value = 65536
    panel.controller.start()
    wait_for(lambda: panel.controller.state == "running" and len(panel.records) > 2)
    panel.controller.stop_button.click()
    assert panel.controller.thread is not None  # start() made it
    panel.controller.thread.join(0.5)
    assert not panel.controller.thread.is_alive()
    assert panel.controller.state == "stopped"
    assert "stopped at step" in panel.controller.status.value


def test_diverging_learning_rate_gives_status_diverged(panel):
    panel.form.controls["lr"].value = 1e4
    panel.form.controls["activation"].value = "relu"
    panel.controller.start()
    assert panel.controller.thread is not None  # start() made it
    panel.controller.thread.join(60)
    assert panel.controller.state == "diverged"
    assert "diverged at step" in panel.controller.status.value
    assert panel.records[-1].status == "diverged"


def test_errors_in_the_run_are_shown_not_raised():
    def broken(stop):
        yield Record(0, 10, "steps", {"loss": 1.0})
        raise ValueError("batch_size: must be in [0, 16]")

    controller = RunController(broken, on_record=lambda r: None)
    controller.start()
    assert controller.thread is not None  # start() made it
    controller.thread.join(10)
    assert controller.state == "error" and "batch_size: must be in [0, 16]" in controller.status.value
    assert not controller.run_button.disabled and controller.stop_button.disabled


def _live_figures():
    gc.collect()
    return sum(isinstance(o, Figure) for o in gc.get_objects())


def test_fifty_run_reset_cycles_leave_no_threads_or_figures(panel):
    panel.form.controls["steps"].value = 8
    panel.form.controls["record_every"].value = 4
    panel.controller.start()
    assert panel.controller.thread is not None  # start() made it
    panel.controller.thread.join(60)  # compile once
    threads, figures = threading.active_count(), _live_figures()
    for _ in range(50):
        panel.controller.run_button.click()
        panel.controller.reset_button.click()
    assert threading.active_count() == threads
    assert _live_figures() == figures and plt.get_fignums() == []
    assert panel.records == [] and len(panel.line.get_data()[0]) == 0


def test_share_code_and_json_round_trip(panel):
    panel.form.controls["depth"].value = 3
    panel.form.controls["activation"].value = "erf"
    code_button, json_button, load_button = panel.share_buttons
    code_button.click()
    code = panel.share_text.value
    panel.form.set_config(TinyConfig())
    panel.load(code)
    assert panel.config == TinyConfig(depth=3, activation="erf")
    json_button.click()
    assert '"depth": 3' in panel.share_text.value
    panel.share_text.value = "not a code"
    load_button.click()
    assert "not a config code" in panel.message.value and panel.config.depth == 3


def test_exports(panel):
    panel.form.controls["steps"].value = 8
    panel.form.controls["record_every"].value = 4
    panel.controller.start()
    assert panel.controller.thread is not None  # start() made it
    panel.controller.thread.join(60)
    csv_text = panel.export("csv").decode().splitlines()
    assert csv_text[0].startswith("done,total,unit,kind,status,elapsed,train_loss") and len(csv_text) == 4
    assert '"train_loss"' in panel.export("json").decode()
    assert panel.export("png")[:4] == b"\x89PNG"
    panel._offer("csv")
    assert 'download="tiny.csv"' in panel.download.value and "data:text/csv;base64," in panel.download.value
    with pytest.raises(ValueError, match="format: must be one of png, svg, csv, json"):
        panel.export("gif")


def test_records_csv_flattens_short_vectors():
    text = records_csv([Record(0, 1, "steps", {"loss": np.array([1.0, 2.0]), "big": np.zeros(100), "acc": 0.5})])
    assert text.splitlines()[0] == "done,total,unit,kind,status,elapsed,loss[0],loss[1],acc"
    assert '"big"' in records_json([Record(0, 1, "steps", {"big": np.zeros(3)})])


def test_workbench_builds_tabs_lazily():
    app = Workbench(panels=[TinyPanel, TinyPanel])
    assert list(app.panels) == [0] and [tab.titles for tab in app.tabs] == [("Tiny", "Tiny")]
    assert app.topics.layout.display == "none"  # one topic ("More", not in TOPICS): its tabs alone
    app.tabs[0].selected_index = 1
    assert list(app.panels) == [0, 1] and app.selected == 1
    app.close()


def test_the_app_holds_every_panel_and_each_builds_without_error():
    """The app's topics and tabs are the registry (`TOPICS`), in its order, with unique full titles; each tab builds
    its panel, and only when shown."""
    from widgets.panels import PANELS, TOPICS

    app = Workbench()
    assert app.topics.options == tuple(TOPICS) and list(app.panels) == [0]
    titles = [title for tab in app.tabs for title in tab.titles]
    assert titles == [cls.title for cls in PANELS] and len(set(titles)) == len(PANELS)
    assert {"Kernel explorer", "Training dynamics", "Phase diagram", "Grokking"} <= set(titles)
    for i, title in enumerate(titles):
        panel = app.panel(title)
        assert app.selected == i and panel.title == title and list(app.panels)[-1] == i
        topic, name = app.topics.index, list(TOPICS)[app.topics.index or 0]
        assert app.stack.selected_index == topic and app.topics.value == name
        assert type(panel) in TOPICS[name]
        assert "error" not in panel.message.value
        assert app.slots[i].children == (panel.widget,)
    app.close()


def test_choosing_a_topic_shows_its_selected_tab():
    """Issue 23, item 4: a topic button shows that topic's tabs and builds the panel of its selected tab."""
    from widgets.panels import TOPICS

    app = Workbench()
    try:
        app.topics.value = "Runs"
        assert app.stack.selected_index == list(TOPICS).index("Runs")
        shown = app.selected
        assert shown is not None and app.panels[shown].title == TOPICS["Runs"][0].title == "Sweeps"
        app.topics.value = "Kernels"
        assert app.selected == 0 and sorted(app.panels) == [0, [c.title for c in app.panel_classes].index("Sweeps")]
    finally:
        app.close()


def test_past_runs_survive_reset_and_a_new_run(panel):
    panel.form.controls["steps"].value = 16
    panel.controller.start()
    assert panel.controller.thread is not None  # start() made it
    panel.controller.thread.join()
    first_losses = panel.line.get_ydata().copy()
    panel.form.controls["lr"].value = 0.2
    panel.controller.reset()
    assert len(panel.line.get_ydata()) == 0 and len(panel.past_runs) == 1
    panel.controller.start()
    assert panel.controller.thread is not None  # start() made it
    panel.controller.thread.join()
    assert len(panel.past_runs) == 2 and panel.past.value == 1
    assert "steps=16" in panel.past_runs[0][0] and "lr=0.2" in panel.past_runs[1][0]
    panel.show_run(0)  # the first run's settings, plots and records come back
    assert panel.config.lr == 0.05 and panel.config.steps == 16
    np.testing.assert_array_equal(panel.line.get_ydata(), first_losses)
    assert [r.step for r in panel.records] == [r.step for r in panel.past_runs[0][2]]
    assert panel.controller.status.value.count("showing the run of") == 1


def test_past_runs_keep_the_latest_and_refuse_to_show_while_running(panel, monkeypatch):
    monkeypatch.setattr("widgets.panel.PAST_RUNS", 2)
    panel.form.controls["steps"].value = 8
    for _ in range(3):
        panel.controller.start()
        assert panel.controller.thread is not None  # start() made it
        panel.controller.thread.join()
    assert len(panel.past_runs) == 2 and len(panel.past.options) == 2
    panel.form.controls["steps"].value = 65536
    panel.controller.start()
    wait_for(lambda: panel.controller.state == "running")
    panel.show_run(0)
    assert "stop the current run" in panel.message.value and panel.config.steps == 65536
    panel.controller.stop(wait=True)


def test_log_sliders_span_their_soft_range_and_typing_the_accepted_one():
    """A log slider reaches both ends of its soft range, even when they are not powers of two, and its typed
    entry the range the code accepts (depth of the infinite-depth view: slider 1 .. 10000, typed 1 .. 100000)."""
    from workbench.experiments import infinite_depth

    form = ConfigForm(infinite_depth.Config)
    depth = form.sliders["depth"]
    assert isinstance(depth, w.SelectionSlider) and depth.options[0] == 1 and depth.options[-1] == 10_000
    form.controls["depth"].value = 100_000
    assert form.config.depth == 100_000 and depth.value == 100_000


def test_a_render_waits_for_a_draw_in_progress(panel):
    """A front-end render never sees a figure half-updated by the worker's draw (one axes new, another old)."""
    started, release = threading.Event(), threading.Event()

    def slow_draw():
        with panel.live.lock:
            started.set()
            release.wait(5)

    worker = threading.Thread(target=slow_draw)
    worker.start()
    started.wait(5)
    timer = threading.Timer(0.3, release.set)
    timer.start()
    t = time.perf_counter()
    panel.live.render()
    assert time.perf_counter() - t >= 0.25
    worker.join(5)
