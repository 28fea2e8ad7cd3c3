"""Issue 23, item 5 in a real browser (JupyterLab + Debian Chromium, as tests/test_browser.py): a number's slider
spans its soft range; a value typed into the entry beside it, beyond that range, reaches the panel's config (read
back through the share box's 'as JSON'); a value beyond the declared range is refused in the panel, naming the
field and its range, and the config keeps the last valid value."""

import json
import re
import shutil
from pathlib import Path

import pytest

from browser_util import ACTIVE, chromium_page, jupyter_server, open_notebook, output_errors, run_all_cells, slider

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "controls.ipynb"  # the Training dynamics panel alone, at its defaults (it is not run)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    tour = json.loads((ROOT / "notebooks" / "00_tour.ipynb").read_text())  # its kernelspec, no kernel dialog
    source = "from widgets.panels.training_dynamics import TrainingDynamicsPanel\n\nTrainingDynamicsPanel().widget"
    tour["cells"] = [dict(cell_type="code", metadata={}, execution_count=None, outputs=[], source=source)]
    (root / NOTEBOOK).write_text(json.dumps(tour))
    shutil.copy(ROOT / "notebooks" / "00_tour.ipynb", root / "00_tour.ipynb")
    with jupyter_server("lab", root) as server:
        yield server


@pytest.mark.browser
def test_typing_beyond_the_soft_range_reaches_the_config(lab):
    with chromium_page() as page:
        open_notebook(page, lab, NOTEBOOK)
        run_all_cells(page)
        assert output_errors(page) == []
        panel = page.locator(f"{ACTIVE} .wb-panel").first
        steps = slider(page, "steps").first  # train.steps: slider over 1..10000, declared 1..10,000,000
        steps.wait_for(timeout=60_000)
        entry = steps.locator("xpath=following-sibling::*[1]").locator("input")
        assert entry.input_value() == "1000"
        assert not steps.locator(".widget-readout").is_visible()  # the entry is the readout
        rows = panel.evaluate("p => [...p.querySelectorAll('.wb-soft')].map(r => r.scrollWidth - r.clientWidth)")
        assert rows and max(rows) <= 1, rows  # slider and entry fit their row: no scrollbar, nothing cut

        def shared_config() -> dict:
            """The kernel's config, as the share box shows it."""
            tools = panel.locator(".wb-tools")
            if not tools.get_by_role("button", name="as JSON").is_visible():
                tools.locator(".jupyter-widget-Collapse-header").first.click()
            tools.get_by_role("button", name="as JSON").click()
            box = tools.locator("input[placeholder^='config code or JSON']")
            page.wait_for_function("b => b.value.startsWith('{')", arg=box.element_handle(), timeout=30_000)
            text = box.input_value()
            box.fill("")  # the next read waits for a fresh JSON
            return json.loads(text)

        entry.fill("50000")
        entry.press("Enter")
        page.wait_for_timeout(500)
        assert shared_config()["train"]["steps"] == 50_000
        assert entry.input_value() == "50000"  # not clamped to the slider's span

        entry.fill("20000000")
        entry.press("Enter")
        alert = panel.locator("[role=alert]", has_text=re.compile(r"train\.steps: must be in \[1, 10000000\]"))
        alert.wait_for(timeout=30_000)
        assert "got 20000000" in alert.inner_text()
        assert shared_config()["train"]["steps"] == 50_000  # the last valid config stays in force
        assert not [e for e in page.errors if "widget" in e.lower()]
