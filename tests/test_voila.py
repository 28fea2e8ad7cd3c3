"""The tour served by Voila (the Binder "app" link) in a real browser: the app's widgets render and respond."""

import shutil
from pathlib import Path

import pytest

from widgets.panels import TOPICS

from browser_util import VIEWPORT, chromium_page, drag_slider, jupyter_server, wait_for_change

ROOT = Path(__file__).resolve().parents[1]
CANVAS = ".jupyter-matplotlib-canvas-div canvas"
COLOURS = """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, s = new Set();
                    for (let i = 0; i < d.length; i += 4 * 97) s.add(d[i] << 16 | d[i + 1] << 8 | d[i + 2]);
                    return s.size; }"""


@pytest.mark.browser
def test_voila_renders_the_app_and_a_slider_redraws(tmp_path):
    shutil.copy(ROOT / "notebooks" / "00_tour.ipynb", tmp_path / "00_tour.ipynb")
    with jupyter_server("voila", tmp_path, notebook="00_tour.ipynb", timeout=240) as server, chromium_page() as page:
        page.goto(server.link(""), timeout=240_000)
        page.wait_for_selector(".widget-tab .lm-TabBar-tab", timeout=240_000)
        tabs = page.locator(".widget-tab .lm-TabBar-tab").all_inner_texts()  # the first topic's tabs
        assert tabs == [cls.title for cls in next(iter(TOPICS.values()))], tabs
        assert page.locator(".wb-topics button").all_inner_texts() == list(TOPICS)
        rows = page.evaluate("""() => [".wb-topics button", ".wb-app > .lm-TabBar .lm-TabBar-tab"].map(s =>
            new Set([...document.querySelectorAll(s)].map(e => Math.round(e.getBoundingClientRect().top))).size)""")
        assert rows == [1, 1], rows  # issue 23, item 4: navigation in one row each, the same as in JupyterLab
        canvas = page.locator(CANVAS).first
        canvas.wait_for(state="visible", timeout=120_000)
        page.wait_for_function(
            f"() => {{ const c = document.querySelector('{CANVAS}'); return c && ({COLOURS})(c) > 8; }}", timeout=60_000
        )  # the kernel's first image arrived: the canvas is not blank
        assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
        box = canvas.bounding_box()
        assert box is not None and box["y"] < VIEWPORT[1] - 200  # the first figure in view without scrolling
        before = canvas.screenshot()
        assert drag_slider(page, "depth", 0.4) not in ("", "3")  # a few layers more (the slider spans 1 .. 16)
        wait_for_change(canvas.screenshot, before, timeout=60)
        page.locator(".wb-panel .wb-status-text[data-state=finished]").first.wait_for(timeout=180_000)
        page.wait_for_timeout(500)  # the last stage's image reaches the canvas
        page.locator(".wb-panel").first.screenshot(
            path=str(ROOT / "docs" / "screenshots" / "voila_kernel_explorer.png")
        )
        assert not [e for e in page.errors if "matplotlib" in e or "widget" in e.lower()]
