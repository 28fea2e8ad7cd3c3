"""Real-browser test helpers: a Jupyter server (lab or voila) on 127.0.0.1 with a token, and Debian's
Chromium driven by Playwright (its own browser download is not reachable here).

    with jupyter_server("lab", root_dir) as server:      # or "voila", notebook=path
        with chromium_page() as page:
            open_notebook(page, server, "00_tour.ipynb"); run_all_cells(page)

Fixtures in tests/test_browser.py build on these; a missing Chromium or a server that does not come up
is a clear failure, never a skip. Servers are stopped by their own PID.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ACTIVE = ".jp-NotebookPanel:not(.lm-mod-hidden)"
VIEWPORT = (1280, 800)  # a laptop screen; JupyterLab's file browser (open by default) takes 250 px of it


@dataclass
class Server:
    url: str
    token: str = field(repr=False)
    pid: int
    log: Path

    def link(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.url}/{path.lstrip('/')}{sep}token={self.token}"


def redact(text: str, token: str | None = None) -> str:
    """Server output with its token hidden: `token=...` in URLs, and the token itself wherever it appears."""
    text = re.sub(r"(token=)[^\s&\"'<>]+", r"\1<redacted>", text)
    return text.replace(token, "<redacted>") if token else text


def _log_tail(log_path: Path, token: str, n: int = 3000) -> None:
    """Print the end of a server's log, redacted, to stderr (pytest shows it with the failure); never put
    the log in an exception message."""
    with contextlib.suppress(OSError):
        print(
            f"--- end of {log_path.name} (token redacted) ---\n{redact(log_path.read_text()[-n:], token)}",
            file=sys.stderr,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_path() -> str:
    """Debian's Chromium, or a clear error saying how to install it (`make browser-deps`)."""
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not path:
        raise RuntimeError(
            f"Chromium not found at {CHROMIUM}: run `make browser-deps` "
            "(apt-get install -y chromium) or set WORKBENCH_CHROMIUM"
        )
    return path


@contextlib.contextmanager
def jupyter_server(app: str, root_dir, *, notebook: str | None = None, timeout: float = 90.0):
    """Start `jupyter lab` or `voila` on a free 127.0.0.1 port with a random token; stop it by PID."""
    port, token = free_port(), secrets.token_hex(16)
    root_dir = Path(root_dir)
    log_path = root_dir / f"{app}_server.log"
    exe = str(Path(sys.executable).with_name("jupyter" if app == "lab" else "voila"))
    if app == "lab":
        cmd = [
            exe,
            "lab",
            "--no-browser",
            f"--ServerApp.token={token}",
            f"--port={port}",
            "--ip=127.0.0.1",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={root_dir}",
            f"--LabApp.workspaces_dir={tempfile.mkdtemp(prefix='wb-ws-')}",
        ]
    else:
        cmd = [
            exe,
            str(notebook or ""),
            "--no-browser",
            f"--port={port}",
            "--Voila.ip=127.0.0.1",
            f"--token={token}",
            "--ServerApp.port_retries=0",
        ]
    if app == "lab" and os.geteuid() == 0:  # voila has no root check (and no such flag)
        cmd.append("--allow-root")
    env = {**os.environ, "WORKBENCH_CI": "1", "JUPYTER_PLATFORM_DIRS": "1"}
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=root_dir, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                _log_tail(log_path, token)
                raise RuntimeError(f"{app} server exited with {proc.returncode} (log: {log_path})")
            try:
                urllib.request.urlopen(
                    f"{url}/api/status?token={token}" if app == "lab" else f"{url}/?token={token}",
                    timeout=5 if app == "lab" else 60,
                )
                break
            except Exception:
                if time.monotonic() > end:
                    _log_tail(log_path, token)
                    raise RuntimeError(f"{app} server did not answer in {timeout:.0f} s (log: {log_path})") from None
                time.sleep(0.5)
        yield Server(url, token, proc.pid, log_path)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


if TYPE_CHECKING:
    from playwright.sync_api import Page

    class CollectingPage(Page):
        """A Playwright page with the `errors` list that `chromium_page` attaches to it."""

        errors: list[str]


@contextlib.contextmanager
def chromium_page(viewport=VIEWPORT) -> Iterator[CollectingPage]:
    """A Playwright page in headless Debian Chromium at `viewport` (width, height) CSS pixels; page errors are
    collected in `page.errors`."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            page = cast("CollectingPage", browser.new_page(viewport={"width": viewport[0], "height": viewport[1]}))
            page.errors = []
            page.on("pageerror", lambda e: page.errors.append(str(e)))
            yield page
        finally:
            browser.close()


def dismiss_popups(page) -> None:
    """Accept JupyterLab's 'Select Kernel' dialog and decline the news toast, if they show up."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count() and "Select Kernel" in dialog.first.inner_text():
        dialog.locator(".jp-mod-accept").first.click()
        dialog.first.wait_for(state="detached", timeout=30_000)
    no = page.locator(".jp-toast-button", has_text=re.compile(r"^No$"))
    if no.count():
        with contextlib.suppress(Exception):
            no.first.click(timeout=3000)


def open_notebook(page, server: Server, name: str, timeout: float = 90_000) -> None:
    """Open a notebook in JupyterLab and wait until its kernel is idle."""
    page.goto(server.link(f"lab/tree/{name}"))
    page.wait_for_selector(f"{ACTIVE} .jp-Cell", timeout=timeout)
    page.wait_for_timeout(1500)
    dismiss_popups(page)
    page.wait_for_selector(f'{ACTIVE} .jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=timeout)


def run_all_cells(page, timeout: float = 120_000) -> None:
    """Run > Run All Cells, then wait until every code cell has an execution count and the kernel is idle."""
    page.locator(f"{ACTIVE} .jp-InputPrompt").first.click()
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    dismiss_popups(page)
    page.wait_for_function(
        f"""() => {{
        const p = [...document.querySelectorAll('{ACTIVE} .jp-CodeCell .jp-InputPrompt')];
        return p.length && p.every(e => /\\[\\d+\\]/.test(e.textContent));
    }}""",
        timeout=timeout,
    )
    page.wait_for_selector(f'{ACTIVE} .jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=timeout)


def output_errors(page) -> list[str]:
    """Text of error outputs (tracebacks) in the open notebook."""
    return page.locator(
        f"{ACTIVE} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'], "
        f"{ACTIVE} .jp-RenderedText[data-mime-type='application/vnd.jupyter.error']"
    ).all_inner_texts()


def slider(page, label: str):
    """The ipywidgets slider whose description is `label`."""
    return page.locator(
        ".widget-slider", has=page.locator(".widget-label", has_text=re.compile(f"^{re.escape(label)}$"))
    )


def drag_slider(page, label: str, fraction: float) -> str:
    """Mouse-drag a slider's handle to `fraction` of its track; return the readout it then shows: a form's number
    (widgets.controls) shows its value in the typed entry beside the slider, which the kernel updates."""
    box = slider(page, label).first
    box.scroll_into_view_if_needed()  # the mouse only reaches what the viewport shows
    entry = box.locator("xpath=following-sibling::*[1]").locator("input")
    before = entry.input_value() if entry.count() else None
    track, handle = box.locator(".noUi-target"), box.locator(".noUi-handle")
    tb, hb = track.bounding_box(), handle.bounding_box()
    page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
    page.mouse.down()
    page.mouse.move(tb["x"] + tb["width"] * fraction, hb["y"] + hb["height"] / 2, steps=12)
    page.mouse.up()
    if before is None:
        return box.locator(".widget-readout").inner_text().strip()
    with contextlib.suppress(TimeoutError):  # a drag that did not move the value leaves the entry as it was
        wait_for_change(entry.input_value, before, timeout=15)
    return entry.input_value().strip()


def wait_for_change(read, before, timeout: float = 60.0, interval: float = 0.25):
    """Poll `read()` until it differs from `before`; return the new value (or raise TimeoutError)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        now = read()
        if now != before:
            return now
        time.sleep(interval)
    raise TimeoutError(f"no change within {timeout:.0f} s")
