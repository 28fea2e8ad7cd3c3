"""The tour notebook in a real browser: JupyterLab + Debian Chromium (Playwright), controls -> plots -> Run/Stop.

Screenshots go to docs/screenshots/ (used in the README)."""

import re
import shutil
from pathlib import Path

import pytest

from browser_util import (chromium_page, drag_slider, jupyter_server, open_notebook, output_errors, run_all_cells,
                          wait_for_change)

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "screenshots"
CANVAS = ".jupyter-matplotlib-canvas-div canvas"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a copy of the tour notebook (so autosave never touches the repository)."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "notebooks" / "00_tour.ipynb", root / "00_tour.ipynb")
    with jupyter_server("lab", root) as server:
        yield server


@pytest.fixture(scope="module")
def page():
    with chromium_page() as page:
        yield page


@pytest.mark.browser
def test_tour_notebook_slider_redraws_and_run_stop(lab, page):
    SHOTS.mkdir(parents=True, exist_ok=True)
    open_notebook(page, lab, "00_tour.ipynb")
    run_all_cells(page)
    assert output_errors(page) == []
    canvas = page.locator(CANVAS).first
    canvas.wait_for(state="visible", timeout=60_000)
    page.wait_for_timeout(1500)  # first image round trip (front end asks, kernel renders)
    before = canvas.screenshot()
    page.locator(".wb-panel").first.screenshot(path=str(SHOTS / "kernel_explorer.png"))

    readout = drag_slider(page, "depth", 0.1)  # a few layers more: deep kernels take long to compile
    assert readout not in ("", "3"), "the depth slider did not move"
    wait_for_change(canvas.screenshot, before, timeout=60)  # canvas pixels changed after the redraw

    page.locator(".widget-tab .lm-TabBar-tab", has_text="Training dynamics").click()
    panel = page.locator(".wb-panel", has=page.get_by_role("button", name="Run"))
    assert drag_slider(page, "steps", 1.0) not in ("", "1000")  # long enough to be stopped by hand
    panel.get_by_role("button", name="Run").click()
    status = panel.locator(".wb-status-text")
    page.wait_for_function(
        "() => /running: step [1-9]/.test(document.querySelector('.wb-panel .wb-status-text[data-state=running]')"
        "?.textContent ?? '')", timeout=90_000)
    page.wait_for_timeout(5000)  # a few live redraws (spaced by the adaptive throttle) for the screenshot
    panel.screenshot(path=str(SHOTS / "training_dynamics.png"))
    panel.get_by_role("button", name="Stop").click()
    page.wait_for_function(
        "() => document.querySelector('.wb-panel .wb-status-text[data-state=stopped]') !== null", timeout=30_000)
    assert re.match(r"stopped at step \d+", status.inner_text())
    assert panel.get_by_role("button", name="Run").is_enabled()
    assert not [e for e in page.errors if "matplotlib" in e or "widget" in e.lower()]


@pytest.mark.browser
@pytest.mark.parametrize("title, run_seconds", [("Coordinate check", 15), ("LR transfer", 0), ("Lazy vs rich", 0),
                                                ("Phase diagram", 0), ("SELU flow", 0), ("Neural collapse", 8),
                                                ("Grokking", 12)])
def test_every_tab_builds_its_panel(lab, page, title, run_seconds):
    """Each tab's panel draws in the browser; training panels run for a while, then stop by hand."""
    page.locator(".widget-tab .lm-TabBar-tab", has_text=title).click()
    panel = page.locator(".wb-panel", has=page.locator(".widget-html b", has_text=re.compile(f"^{title}$")))
    panel.wait_for(state="visible", timeout=120_000)
    canvas = panel.locator(CANVAS).first
    canvas.wait_for(state="visible", timeout=60_000)
    page.wait_for_timeout(1500)
    if run_seconds:
        panel.get_by_role("button", name="Run").click()
        page.wait_for_timeout(1000 * run_seconds)
        stop = panel.get_by_role("button", name="Stop")
        if stop.is_enabled():
            stop.click()
        panel.locator(".wb-status-text", has_text=re.compile(r"^(stopped|finished)")).wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
    assert not [m for m in panel.locator("[role=status]").all_inner_texts() if m.startswith("error")]
    panel.screenshot(path=str(SHOTS / f"{title.lower().replace(' ', '_')}.png"))
