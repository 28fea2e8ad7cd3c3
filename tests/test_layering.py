"""Layering of DESIGN.md: workbench/ imports no ipywidgets, IPython or pyplot at module level."""

import pathlib
import pkgutil
import re
import subprocess
import sys

import workbench


def test_importing_workbench_pulls_in_no_ui_modules():
    modules = [m.name for m in pkgutil.walk_packages(workbench.__path__, "workbench.")]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(','.join(m for m in ('ipywidgets', 'matplotlib.pyplot', 'ipympl') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"workbench imported UI modules: {out.stdout}"
    assert len(modules) >= 8


def test_workbench_source_never_imports_ipython_or_widgets_at_module_level():
    # flax.nnx itself imports IPython (through treescope); our own modules must not.
    pattern = re.compile(r"^(import|from)\s+(IPython|ipywidgets|ipympl|matplotlib\.pyplot)\b", re.M)
    offenders = [str(p) for p in pathlib.Path(workbench.__path__[0]).rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
