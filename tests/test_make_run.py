"""The README's first command: `make run` serves JupyterLab with the tour notebook open (also as root)."""

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from browser_util import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.browser
def test_make_run_serves_jupyterlab_on_the_tour(tmp_path):
    port, token = free_port(), secrets.token_hex(8)
    log = tmp_path / "make_run.log"
    opened = tmp_path / "opened"  # a stand-in browser records the page it is asked to open
    browser = f"{sys.executable} -c 'import sys; open(sys.argv[1], \"w\").write(sys.argv[2])' {opened} %s"
    env = {
        **os.environ,
        "JUPYTER_TOKEN": token,
        "BROWSER": browser,
        "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
    }
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"PORT={port}"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"make run exited with {proc.returncode}:\n{log.read_text()[-2000:]}"
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5)
                break
            except OSError:
                assert time.monotonic() < end, f"JupyterLab did not answer:\n{log.read_text()[-2000:]}"
                time.sleep(0.5)
        with urllib.request.urlopen(f"{base}/api/contents/00_tour.ipynb?content=0&token={token}") as r:
            assert json.load(r)["type"] == "notebook"  # served from notebooks/
        with urllib.request.urlopen(f"{base}/lab/tree/00_tour.ipynb?token={token}") as r:
            assert r.status == 200 and b"JupyterLab" in r.read()
        while not opened.exists():
            assert time.monotonic() < end, "no browser was asked to open the tour"
            time.sleep(0.5)
        page = opened.read_text()  # a local redirect page (file://...) or the URL itself
        target = Path(page.removeprefix("file://")).read_text() if page.startswith("file://") else page
        assert f"127.0.0.1:{port}/lab/tree/00_tour.ipynb" in target
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
