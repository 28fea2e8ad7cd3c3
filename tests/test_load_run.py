"""An exported run loads back into a panel (issue 12, item 5): the JSON of the "JSON" export restores the config
and, for a training panel, the records (under past runs, drawn); anything wrong is a message and changes nothing."""

import json

import numpy as np
import pytest

from widgets.panels import GrokkingPanel, SeluFlowPanel
from workbench.runs.rundb import RunDB
from workbench.runs.runfile import read_run


@pytest.fixture(scope="module")
def exported():
    panel = GrokkingPanel(GrokkingPanel.experiment.Config(**GrokkingPanel.quick).replace(seed=5))
    panel.controller.start()
    assert panel.wait(300) and panel.controller.state == "finished"
    text = panel.export("json").decode()
    config, history = panel.config, panel.history("test_acc")
    panel.close()
    return text, config, history


def test_exported_run_loads_back_into_a_new_panel(exported):
    text, config, (steps, test_acc) = exported
    panel = GrokkingPanel()
    try:
        assert panel.config != config
        panel.load(text)
        assert panel.message.value == ""
        assert panel.config == config  # the controls moved to the run's settings
        assert "loaded" in panel.past.options[-1][0] and panel.past.value == len(panel.past_runs) - 1
        got_steps, got_acc = panel.history("test_acc")
        np.testing.assert_array_equal(got_steps, steps)
        np.testing.assert_allclose(got_acc, test_acc)
        assert panel.export("json").decode() == text  # the same run, record for record
        saved = RunDB().runs()[0]  # and in the run database, as a run computed here would be
        assert "loaded" in saved["label"] and GrokkingPanel.experiment.Config.from_dict(saved["config"]) == config
        assert len(RunDB().records(saved["id"])) == len(json.loads(text)["records"])
    finally:
        panel.close()


def _broken(text, change):
    run = json.loads(text)
    change(run)
    return json.dumps(run)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda run: run["records"][1].update(status="exploded"), "status must be one of"),
        (lambda run: run["records"][1].update(done=-1), "done must be in"),
        (lambda run: run["records"][2]["metrics"].update(bogus=1.0), "undeclared bogus"),
        (lambda run: run["records"][2]["metrics"].pop("train_loss"), "missing train_loss"),
        (lambda run: run["config"].update(p=10**9), "p"),
        (lambda run: run.update(records=[]), "no record with metrics"),
        (lambda run: run["records"][2]["metrics"].update(train_loss=[[1.0, 2.0], [3.0]]), "cannot be drawn"),
        (lambda run: run["records"].append([1]), "record"),
    ],
)
def test_a_bad_run_is_a_message_and_changes_nothing(exported, change, message):
    text, _, _ = exported
    panel = GrokkingPanel()
    try:
        before = (panel.config, list(panel.past_runs), list(panel.records))
        panel.load(_broken(text, change))
        assert message in panel.message.value
        assert (panel.config, list(panel.past_runs), list(panel.records)) == before
    finally:
        panel.close()


def test_unreadable_text_is_refused_before_parsing_deeper():
    for text, message in [
        ('{"config": {}, "records": [', "not valid JSON"),
        ('{"records": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        ('{"config": 5, "records": []}', "must be a JSON object"),
    ]:
        with pytest.raises(ValueError, match=message):
            read_run(text)


def test_a_view_takes_the_run_config_and_computes_it_again():
    view = SeluFlowPanel()
    try:
        assert view.wait(120)
        config = view.config.replace(mu0=0.25)
        view.load(json.dumps({"config": config.to_dict(), "records": []}))  # refused whole: no records
        assert "no record" in view.message.value and view.config != config
        run = json.loads(view.export("json").decode())
        run["config"] = config.to_dict()
        view.load(json.dumps(run))
        assert view.config == config and view.wait(120)
    finally:
        view.close()
