"""An exported run loads back into a panel (issue 12, item 5): the JSON of the "JSON" export restores the config
and, for a training panel, the records (under past runs, drawn); anything wrong is a message and changes nothing."""

import json
import re
import time

import numpy as np
import pytest

from widgets.panels import GrokkingPanel, SeluFlowPanel
from workbench.runs.rundb import RunDB
from workbench.runs.runfile import read_run


@pytest.fixture(scope="module")
def exported():
    panel = GrokkingPanel(GrokkingPanel.experiment.Config().replace(**GrokkingPanel.quick).replace(seed=5))
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


def _big_run(text, megabytes=24):
    """The exported run with its records repeated to `megabytes` MB (valid: every record still a Grokking record)."""
    run = json.loads(text)
    copies = megabytes * 2**20 // len(json.dumps(run["records"])) + 1
    return json.dumps(dict(run, records=run["records"] * copies))


def _press_load(panel, text):
    panel.share_text.value = text
    start = time.perf_counter()
    panel.share_buttons[2].click()
    return time.perf_counter() - start


def test_a_24_mb_run_is_refused_by_its_size_at_once(exported, tmp_path):
    """Issue 22, item 4: a 24 MB exported run was parsed and checked (8-13 s) before it was refused; the text, or
    the file named in the share box (checked with os.stat before reading), is refused by its size."""
    text, _, _ = exported
    big = _big_run(text)
    path = tmp_path / "big_run.json"
    path.write_text(big)
    panel = GrokkingPanel()
    try:
        before = (panel.config, list(panel.past_runs))
        elapsed = _press_load(panel, big)
        assert re.search(r"the text is 24\.\d MB", panel.message.value) and "at most 2 MB" in panel.message.value
        assert "runs import" in panel.message.value  # where a bigger run goes instead
        assert elapsed < 3, f"Load held the kernel's thread {elapsed:.1f} s"
        elapsed = _press_load(panel, str(path))
        assert re.search(r"big_run\.json&#x27; is 24\.\d MB", panel.message.value), panel.message.value
        assert elapsed < 3, f"Load held the kernel's thread {elapsed:.1f} s"
        assert (panel.config, list(panel.past_runs)) == before
    finally:
        panel.close()


def test_an_exported_run_file_loads_by_its_path(exported, tmp_path):
    text, config, (steps, _) = exported
    path = tmp_path / "grokking.json"
    path.write_text(text)
    panel = GrokkingPanel()
    try:
        _press_load(panel, f"  {path}  ")
        assert panel.message.value == "" and panel.config == config
        np.testing.assert_array_equal(panel.history("test_acc")[0], steps)
        _press_load(panel, str(tmp_path / "missing.json"))
        assert "run file: cannot open" in panel.message.value and "No such file" in panel.message.value
        (tmp_path / "folder.json").mkdir()
        _press_load(panel, str(tmp_path / "folder.json"))
        assert "folder.json&#x27; is not a file" in panel.message.value
    finally:
        panel.close()
