"""The typed contract: most function parameters in workbench/ and widgets/ carry a type annotation.

Every ``def`` and ``async def`` is counted, nested ones and methods included; lambdas are not.
``self`` and ``cls`` are left out; ``*args`` and ``**kwargs`` count like any other parameter.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MIN_SHARE = 0.90
SKIPPED_NAMES = {"self", "cls"}


def parameter_counts(source: str, filename: str = "<source>") -> tuple[int, int]:
    """(annotated, total) parameters over every function defined in ``source``."""
    tree = ast.parse(source, filename=filename)
    annotated = total = 0
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        args = node.args
        params = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        params += [a for a in (args.vararg, args.kwarg) if a is not None]
        for param in params:
            if param.arg in SKIPPED_NAMES:
                continue
            total += 1
            annotated += param.annotation is not None
    return annotated, total


def package_counts(package: str) -> dict[str, tuple[int, int]]:
    """{relative path: (annotated, total)} for every .py file under the package folder."""
    return {
        str(path.relative_to(ROOT)): parameter_counts(path.read_text(encoding="utf-8"), str(path))
        for path in sorted((ROOT / package).rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def test_parameter_counts_rules():
    source = (
        "def f(a, b: int, *args, c, d: str = '', **kwargs: int): pass\n"
        "class C:\n"
        "    def m(self, x: int, y): pass\n"
        "    @classmethod\n"
        "    def k(cls, z): pass\n"
        "def outer(p: int):\n"
        "    def inner(q): pass\n"
        "    return lambda r, s: r\n"
        "async def co(t: float, /, u): pass\n"
    )
    # f: a b args c d kwargs (annotated: b d kwargs); m: x y (x); k: z; outer: p (p); inner: q; co: t u (t);
    # self, cls and the lambda's r s are not counted
    assert parameter_counts(source) == (6, 13)


@pytest.mark.parametrize("package", ["workbench", "widgets"])
def test_parameters_are_annotated(package):
    counts = package_counts(package)
    annotated = sum(a for a, _ in counts.values())
    total = sum(t for _, t in counts.values())
    assert total > 0, f"no function parameters found under {package}/"
    share = annotated / total
    print(f"{package}/: {annotated}/{total} parameters annotated ({share:.1%})")
    if share < MIN_SHARE:
        worst = sorted(counts.items(), key=lambda item: item[1][1] - item[1][0], reverse=True)[:10]
        lines = [f"  {path}: {t - a} of {t} unannotated" for path, (a, t) in worst if t > a]
        pytest.fail(
            f"{package}/: {annotated}/{total} parameters annotated ({share:.1%}), below {MIN_SHARE:.0%}; "
            "files with the most unannotated parameters:\n" + "\n".join(lines)
        )
