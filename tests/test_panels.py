"""Every panel of the registry, headless: it builds, runs to completion with its `quick` settings, ends at
100% with a status that says what finished, and a Stop mid-run says where it stopped. A new panel in
`widgets.panels.PANELS` is covered here without a test edit."""

import re
import threading

import pytest

from widgets.panels import PANELS
from workbench.core.experiment import KINDS, STATUSES, UNITS, Record, schema_errors


def quick_panel(cls):
    return cls(cls.experiment.Config(**cls.quick))


@pytest.mark.parametrize("cls", PANELS, ids=[c.title for c in PANELS])
def test_panel_runs_to_completion_at_full_progress(cls):
    panel = quick_panel(cls)
    try:
        if not panel.auto:
            panel.controller.start()
        assert panel.wait(300), panel.controller.status.value
        c = panel.controller
        assert c.state == "finished", c.status.value
        assert re.search(r"finished: \d+ (steps?|jobs?|stages?) in [\d.]+ s", c.status.value)
        assert c.progress.value == 1.0
        last = panel.records[-1]
        assert last.status == "finished" and last.done == last.total
        assert "error" not in panel.message.value
        for record in panel.records:  # the contract's vocabulary, and the experiment's declared metrics
            assert record.status in STATUSES and record.kind in KINDS and record.unit in UNITS, record
            assert not schema_errors(record, cls.experiment.METRICS), (
                record.kind,
                schema_errors(record, cls.experiment.METRICS),
            )
    finally:
        panel.close()


@pytest.mark.parametrize("cls", [c for c in PANELS if not c.auto], ids=[c.title for c in PANELS if not c.auto])
def test_stop_mid_run_says_where_it_stopped(cls):
    """The run is held at its second record until Stop is pressed, so the stop lands mid-run."""
    panel = quick_panel(cls)
    reached, original = threading.Event(), panel.run

    def held(config, stop):
        for record in original(config, stop):
            yield record
            if record.status == "running" and record.done > 0:
                reached.set()
                stop.wait(30)

    panel.run = held
    try:
        panel.controller.start()
        assert reached.wait(300)
        panel.controller.stop_button.click()
        assert panel.wait(60)
        last = panel.records[-1]
        assert panel.controller.state == "stopped"
        match = re.search(r"stopped at (step|job) (\d+) of (\d+)", panel.controller.status.value)
        assert match and int(match.group(2)) < int(match.group(3)) == last.total
        assert 0 < panel.controller.progress.value < 1
    finally:
        panel.close()


def test_a_superseded_view_drops_its_records():
    """A view asked twice in quick succession draws only the latest settings."""
    from widgets.panels import SeluFlowPanel

    panel = SeluFlowPanel(SeluFlowPanel.experiment.Config(steps=3))
    try:
        panel.wait(60)
        drawn = []
        panel.draw = lambda record: drawn.append(record)
        for steps in (4, 5, 6, 7):
            panel.form.controls["steps"].value = steps
        assert panel.wait(60)
        assert panel.running_config is not None
        assert panel.running_config.steps == 7 and len(drawn) == 1 and len(drawn[0].metrics["path"]) == 8
    finally:
        panel.close()


def test_record_step_is_only_for_training_records():
    assert Record(5, 10, "steps").step == 5
    with pytest.raises(AttributeError, match="counts jobs, not steps"):
        _ = Record(2, 10, "jobs").step
