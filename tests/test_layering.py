"""The layering of docs/architecture.md: imports point downwards only (widgets -> experiments -> theory -> nets ->
data -> core, runs -> core), no experiment imports another, one parameter update in the tree, and workbench/ imports
no ipywidgets, IPython or pyplot at module level."""

import ast
import pathlib
import pkgutil
import re
import subprocess
import sys

import workbench

ROOT = pathlib.Path(workbench.__path__[0])
LEVEL = {"core": 0, "data": 1, "runs": 1, "nets": 2, "theory": 3, "stax": 3.5, "experiments": 4, "__main__": 5}


def imported(path: pathlib.Path) -> list[str]:
    """Every workbench module or package a file imports (module level or inside functions)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return [n for n in names if n.split(".")[0] == "workbench"]


def package(path: pathlib.Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def test_every_module_is_in_a_package_of_the_drawing():
    loose = [p.name for p in ROOT.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert loose == [], f"modules outside the packages of docs/architecture.md: {loose}"
    assert {p.name for p in ROOT.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(LEVEL) - {"__main__"}


def test_imports_point_downwards_only():
    bad = []
    for path in ROOT.rglob("*.py"):
        own = package(path)
        if own == "__init__":
            continue
        for name in imported(path):
            parts = name.split(".")
            if len(parts) < 2 or parts[1] not in LEVEL:
                continue  # `workbench` itself, or a name imported from a package's __init__
            other = parts[1]
            if other != own and LEVEL[other] >= LEVEL[own]:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert bad == [], "imports against the layering of docs/architecture.md:\n" + "\n".join(sorted(set(bad)))


def test_no_experiment_imports_another():
    experiments = {p.stem for p in (ROOT / "experiments").glob("*.py") if p.stem != "__init__"}
    bad = []
    for path in (ROOT / "experiments").glob("*.py"):
        for name in imported(path):
            parts = name.split(".")
            if parts[:2] == ["workbench", "experiments"] and len(parts) > 2 and parts[2] in experiments:
                bad.append(f"{path.name} imports {name}")
    assert bad == []


def test_one_parameter_update_in_the_tree():
    sources = list(ROOT.rglob("*.py")) + list((ROOT.parent / "widgets").rglob("*.py"))
    users = [str(p.relative_to(ROOT.parent)) for p in sources if "apply_updates" in p.read_text()]
    assert users == ["workbench/nets/engine.py"]


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
    offenders = [str(p) for p in ROOT.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
