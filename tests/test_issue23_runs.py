"""Issue 23, items 2 and 10: Compare runs draws what training runs hold (per-width arrays), says so when nothing can
be drawn and offers the metrics the chosen runs hold; progress weighs jobs by their cost; Reset and errored runs."""

import html
import threading

import numpy as np
import pytest

from widgets.panels import CompareRunsPanel, LRTransferPanel, TrainingDynamicsPanel
from workbench.core.experiment import Record, sweep
from workbench.runs.rundb import RunDB


@pytest.fixture
def two_training_runs(tmp_path, monkeypatch):
    """Two short Training-dynamics runs saved through the panel (Run, then the run database), in a SQLite file."""
    path = tmp_path / "runs.sqlite"
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    cls = TrainingDynamicsPanel
    base = cls.experiment.Config().replace(**cls.quick).replace(steps=50)
    panel = cls(base)
    losses = []
    try:
        for lr in (0.02, 0.05):
            panel.form.set_config(base.replace(lr=lr))
            panel.controller.start()
            assert panel.wait(120) and panel.controller.state == "finished"
            losses.append(panel.history("train_loss"))
    finally:
        panel.close()
    runs = RunDB(path).runs()
    assert len(runs) == 2 and all(r["experiment"].endswith("training_dynamics") for r in runs)
    return sorted(r["id"] for r in runs), losses, base.widths


def test_compare_runs_draws_two_training_dynamics_runs_per_width(two_training_runs):
    """'What to try' of Compare runs: two Training-dynamics runs gave "no chosen run holds 'train_loss'" (their loss
    is one number per width), left the previous legend on screen under a green status, and the metric was free text."""
    ids, losses, widths = two_training_runs
    panel = CompareRunsPanel()
    try:
        assert panel.wait(60)
        panel.choices.value = tuple(ids)
        assert panel.wait(60) and panel.controller.state == "finished", panel.controller.status.value
        assert {"train_loss", "test_loss", "ntk_change", "t"} <= set(panel.held.options)
        assert "f_grid" not in panel.held.options  # (W, G) per record: not a curve against progress
        assert panel.held.value == "train_loss" == panel.config.metric
        labels = [str(line.get_label()) for line in panel.lines]
        assert len(panel.lines) == 2 * len(widths)  # one line per run x width, labelled
        assert [label.split(":")[0] for label in labels] == [f"run {i}" for i in ids for _ in widths]
        assert [label.rsplit(" ", 1)[1] for label in labels] == [f"n={n}" for _ in ids for n in widths]
        legend = panel.live.axes[0].get_legend()
        assert legend is not None and [t.get_text() for t in legend.get_texts()] == labels
        for k, (steps, loss) in enumerate(losses):
            for i in range(len(widths)):
                line = panel.lines[k * len(widths) + i]
                np.testing.assert_array_equal(line.get_xdata(), steps)
                np.testing.assert_allclose(np.asarray(line.get_ydata(), float), loss[:, i], rtol=1e-6)

        panel.form.controls["metric"].value = "nothing"  # typed: no chosen run holds it
        assert panel.wait(60) and panel.controller.state == "error"
        status = html.unescape(panel.controller.status.value)
        assert "no chosen run holds 'nothing'" in status and "they hold" in status and "train_loss" in status
        ax = panel.live.axes[0]
        assert not panel.lines and not ax.get_lines() and ax.get_legend() is None  # nothing stale left on screen
        assert "no chosen run holds" in ax.get_title()

        panel.held.value = "ntk_change"  # picked from the list
        assert panel.wait(60) and panel.controller.state == "finished" and panel.config.metric == "ntk_change"
        assert len(panel.lines) == 2 * len(widths) and ax.get_title() == ""
    finally:
        panel.close()


def test_sweep_progress_is_weighted_by_the_cost_of_each_job():
    """LR transfer's bar sat at 7/8 while its last (widest) job took 28 of 46 s: the bar counted jobs. With costs,
    the bar is the share of the work done; the status text still counts jobs."""
    records = list(sweep([1, 1, 2, 4], lambda x: {"x": x}, costs=[1, 1, 2, 4]))
    points = [r for r in records if r.kind == "point"]
    assert [(r.done, r.total, r.unit) for r in points] == [
        (1, 4, "jobs"),
        (2, 4, "jobs"),
        (3, 4, "jobs"),
        (4, 4, "jobs"),
    ]
    assert [r.fraction for r in points] == pytest.approx([1 / 8, 2 / 8, 4 / 8, 1.0])
    assert records[-1].fraction == 1.0
    stopped = threading.Event()
    stopped.set()
    assert list(sweep([1, 2], lambda x: {}, stopped, costs=[1, 3]))[0].fraction == 0.0
    with pytest.raises(ValueError, match="costs: must be one positive number per item"):
        list(sweep([1, 2], lambda x: {}, costs=[1]))
    plain = list(sweep([1, 2], lambda x: {"x": x}))  # no costs: every job weighs the same
    assert [r.fraction for r in plain] == [0.5, 1.0, 1.0]


def test_lr_transfer_progress_weighs_widths():
    cls = LRTransferPanel
    config = cls.experiment.Config().replace(**cls.quick).replace(widths=(16, 48))
    points = [r for r in cls.experiment.run(config) if r.kind == "point"]
    assert [r.done for r in points] == [1, 2]  # "job 1 of 2"
    assert points[0].fraction == pytest.approx(16 / 64)  # the first job is a quarter of the work, not half


def test_reset_forgets_the_previous_run_x_limits():
    """Reset kept the previous run's x-limits (a 100-step run's axes stayed 0..100 for the next, longer run)."""
    cls = TrainingDynamicsPanel
    panel = cls(cls.experiment.Config().replace(**cls.quick))
    try:
        ax = panel.live.axes[0]
        empty = ax.get_xlim()
        panel.controller.start()
        assert panel.wait(120) and panel.controller.state == "finished"
        assert ax.get_xlim()[1] >= 100
        panel.controller.reset()
        assert ax.get_xlim()[1] < 1 and ax.get_autoscalex_on(), (ax.get_xlim(), empty)
    finally:
        panel.close()


def test_an_errored_run_is_listed_with_its_own_progress(monkeypatch):
    """An errored run was listed under past runs as 'step 0/10000000' (its compiling record's total)."""
    cls = TrainingDynamicsPanel
    panel = cls(cls.experiment.Config().replace(**cls.quick))

    def failing(config, stop):
        yield Record(0, config.train.steps, "steps", {}, "compiling", "status")
        yield Record(25, config.train.steps, "steps", {"t": 0.5}, "running", "step")
        raise RuntimeError("boom")

    monkeypatch.setattr(panel, "run", failing)
    try:
        panel.controller.start()
        assert panel.wait(60) and panel.controller.state == "error"
        label = panel.past.options[-1][0]
        assert "error at step 25/100" in label, label
    finally:
        panel.close()


def test_past_run_labels_name_group_fields_by_their_short_names():
    """A past run of a nested config is labelled 'lr=0.05, steps=40', not with the whole train group dumped."""
    from widgets.panels.training_dynamics import TrainingDynamicsPanel
    from workbench.experiments import training_dynamics as T

    panel = TrainingDynamicsPanel(
        T.Config().replace(widths=(8,), steps=40, record_every=20, n_train=8, grid=8, lr=0.05)
    )
    try:
        panel.controller.start()
        assert panel.controller.thread is not None
        panel.controller.thread.join()
        label = panel.past_runs[-1][0]
        assert "lr=0.05" in label and "steps=40" in label and "{" not in label, label
    finally:
        panel.close()
