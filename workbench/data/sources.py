"""Your own data as a `Dataset` for every training experiment: arrays, `.npz` and `.csv` files, scikit-learn's
bundled sets and the workbench's own, checked before anything trains (shapes, dtypes, NaN / inf, label range,
empty or constant inputs) and refused when it would not fit in memory.

A source is named by text so that configs, share codes and sweeps can carry it: 'digits', 'modular:<p>',
'sklearn:<iris|wine|breast_cancer|digits|diabetes>', a path ending in .npz (arrays x, y, or x_train, y_train,
x_test, y_test) or .csv (the last column is the label or target), or a name given to arrays with `register`.
"""

from __future__ import annotations

import os
import zipfile
from typing import Any

import numpy as np

from workbench.core import checks
from workbench.core.declare import Given, Int, Real, declare
from workbench.core.memory import require
from workbench.data import Dataset, digits, modular

__all__ = ["SKLEARN", "from_arrays", "load", "register", "registered"]

SKLEARN = ("iris", "wine", "breast_cancer", "digits", "diabetes")  # bundled with scikit-learn (no download)
DEVICE_COPIES = 3  # float32 copies of the inputs while training (host, device, one batch or gradient buffer)
_REGISTRY: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}  # checked (x, y, n_classes)
_FRACTION = Real(0.0, 1.0, lo_open=True)
_FLOAT32_MAX = float(np.finfo(np.float32).max)  # inputs and targets are trained in float32
_SEED = Int(0, 2**31 - 1)


def _features(x: Any) -> np.ndarray:
    """Inputs as a (N, d) array (images and sequences flattened) of finite reals, not all equal; refused before
    any pass over them when they would not fit in memory."""
    if isinstance(x, np.ndarray):
        require(DEVICE_COPIES * 4 * x.size, "x", f"{x.shape[0]:,} points x {x.size // max(x.shape[0], 1):,} features")
    x = checks.array("x", x, ndim=(1, 2, 3, 4), max_abs=_FLOAT32_MAX)
    x = np.asarray(x)
    x = x.reshape(len(x), -1) if x.ndim > 1 else x[:, None]
    if x.shape[0] < 2:
        raise ValueError(f"x: needs at least 2 points, got {x.shape[0]}")
    if np.all(x == x[:1]):
        raise ValueError("x: every input is the same; there is nothing to learn")
    return x


def _checked(x: Any, y: Any, n_classes: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(x, y, n_classes) checked: integer labels make a classification set (`n_classes` 0: one more than the
    largest label), real targets a regression one; inputs keep an integer dtype (token ids)."""
    x = _features(x)
    try:
        kind = np.asarray(y).dtype.kind
    except ValueError:  # ragged
        kind = "O"
    y = np.asarray(checks.array("y", y, ndim=(1, 2), integer_valued=kind in "iub", max_abs=_FLOAT32_MAX))
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"y: needs one label or target per point ({x.shape[0]}), got {y.shape[0]}")
    if y.dtype.kind in "iub":
        n_classes = n_classes or int(y.max()) + 1
        y = checks.labels("y", y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y, x.shape[0], n_classes)
        if n_classes < 2:
            raise ValueError("y: a classification set needs at least 2 classes")
    elif n_classes:
        raise ValueError(f"y: n_classes = {n_classes} needs integer labels, got dtype {y.dtype}")
    else:
        y = (y[:, None] if y.ndim == 1 else y).astype(np.float32)
    return (x if x.dtype.kind in "iu" else x.astype(np.float32)), y, n_classes


@declare(
    x=Given(why="an array of inputs (N, ...); checked in the body", example=lambda: np.eye(4)),
    y=Given(why="labels (N,) or targets (N, k); checked in the body", example=lambda: np.arange(4) % 2),
    n_classes=Int(0, 100_000),
    test_fraction=_FRACTION,
    seed=_SEED,
)
def from_arrays(x: Any, y: Any, n_classes: int = 0, test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """A seeded train/test split of checked (x, y) (`_checked`)."""
    x, y, n_classes = _checked(x, y, n_classes)
    n_test = int(round(test_fraction * len(x)))
    if not 1 <= n_test < len(x):
        raise ValueError(f"test_fraction: {test_fraction} of {len(x)} points leaves no train or no test points")
    order = np.random.default_rng(seed).permutation(len(x))
    tr, te = order[n_test:], order[:n_test]
    return Dataset(x[tr], y[tr], x[te], y[te], n_classes)


def _sklearn(name: str) -> tuple[np.ndarray, np.ndarray]:
    import sklearn.datasets as sets

    x, y = getattr(sets, f"load_{name}")(return_X_y=True)
    x = np.asarray(x, np.float64)
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)  # standardised features
    return x, np.asarray(y) if name != "diabetes" else np.asarray(y, np.float64) / np.std(y)


def _file(path: str) -> tuple[Any, Any] | Dataset:
    if not os.path.isfile(path):
        raise ValueError(f"data: no file {path!r}")
    require(DEVICE_COPIES * os.path.getsize(path), "data", f"the file {path!r}")
    try:
        return _npz(path) if path.endswith(".npz") else _csv(path)
    except (OSError, EOFError, UnicodeDecodeError, zipfile.BadZipFile) as err:
        raise ValueError(f"data: cannot read {path!r} ({type(err).__name__}: {str(err)[:200]})") from None


def _npz(path: str) -> tuple[Any, Any] | Dataset:
    """Arrays x, y of a .npz file, or its own split as a Dataset (both splits checked to agree)."""
    try:
        f = np.load(path, allow_pickle=False)
    except ValueError as err:  # not a zip archive (numpy would unpickle it) or object arrays
        raise ValueError(f"data: {path!r} is not a .npz archive of numeric arrays ({str(err)[:120]})") from None
    with f:
        keys = set(f.files)
        try:
            if {"x_train", "y_train", "x_test", "y_test"} <= keys:  # the user's own split
                x_tr, y_tr, c_tr = _checked(f["x_train"], f["y_train"], 0)
                x_te, y_te, c_te = _checked(f["x_test"], f["y_test"], c_tr)
                if x_te.shape[1:] != x_tr.shape[1:] or y_te.shape[1:] != y_tr.shape[1:]:
                    raise ValueError(
                        f"x_test: the test split (x {x_te.shape}, y {y_te.shape}) does not match the train split's "
                        f"features and targets (x {x_tr.shape}, y {y_tr.shape}) in {path!r}"
                    )
                return Dataset(x_tr, y_tr, x_te, y_te, max(c_tr, c_te))
            if not {"x", "y"} <= keys:
                raise ValueError(
                    f"data: {path!r} must hold arrays x and y (or x_train, y_train, x_test, y_test), has {sorted(keys)}"
                )
            return f["x"], f["y"]
        except ValueError as err:
            if "allow_pickle" not in str(err):
                raise
            raise ValueError(f"data: {path!r} holds object arrays; save numeric arrays only") from None


def _csv(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(features, last column) of a numeric .csv file with at most one header row; a column of at most 100
    distinct integers is a class label, numbered 0.. in sorted order (so -1/+1 or 1..K labels work)."""
    try:
        try:
            table = np.loadtxt(path, delimiter=",", ndmin=2)
        except ValueError:
            table = np.loadtxt(path, delimiter=",", ndmin=2, skiprows=1)  # a header row
    except ValueError as err:
        raise ValueError(
            f"data: {path!r} must be comma-separated numbers, one row per point, at most one header row "
            f"({str(err)[:160]})"
        ) from None
    if table.shape[1] < 2:
        raise ValueError(f"data: {path!r} needs at least one feature column and a label column")
    labels = table[:, -1]
    classes, index = np.unique(labels, return_inverse=True)
    y = index.astype(np.int64) if np.all(classes == np.round(classes)) and len(classes) <= 100 else labels
    return table[:, :-1], y


@declare(
    source=Given(why="a source name: checked in the body", example="sklearn:iris"), test_fraction=_FRACTION, seed=_SEED
)
def load(source: str, test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """The Dataset a source names, checked by `from_arrays`."""
    if not isinstance(source, str) or not source:
        raise ValueError(f"data: must be a source name (see workbench.data.sources), got {source!r:.80}")
    if source in _REGISTRY:
        return from_arrays(*_REGISTRY[source], test_fraction=test_fraction, seed=seed)
    if source == "digits":
        return digits(test_fraction, seed)
    kind, _, arg = source.partition(":")
    if kind == "modular":
        if not arg.isdigit():
            raise ValueError(f"data: 'modular:<p>' needs an integer modulus p, got {source!r}")
        return modular(int(arg), "+", 1 - test_fraction, seed)
    if kind == "sklearn":
        if arg not in SKLEARN:
            raise ValueError(f"data: scikit-learn's bundled sets are {', '.join(SKLEARN)}, got {arg!r}")
        return from_arrays(*_sklearn(arg), test_fraction=test_fraction, seed=seed)
    if source.endswith((".npz", ".csv")):
        found = _file(source)
        return found if isinstance(found, Dataset) else from_arrays(*found, test_fraction=test_fraction, seed=seed)
    raise ValueError(
        f"data: {source!r} is not 'digits', 'modular:<p>', 'sklearn:<name>', a .npz or .csv path or a registered name"
    )


@declare(
    name=Given(why="a name: checked in the body", example="mine"),
    x=Given(why="an array of inputs; checked by from_arrays", example=lambda: np.eye(4)),
    y=Given(why="labels or targets; checked by from_arrays", example=lambda: np.arange(4) % 2),
    n_classes=Int(0, 100_000),
)
def register(name: str, x: Any, y: Any, n_classes: int = 0) -> str:
    """Check arrays and make them a source called `name` in this process (a sweep on Dask workers needs a file)."""
    if not isinstance(name, str) or not name or ":" in name or name == "digits" or name.endswith((".npz", ".csv")):
        raise ValueError(f"name: must be non-empty, without ':' and not a file name or 'digits', got {name!r}")
    from_arrays(x, y, n_classes)  # refused now, by name, rather than when a study loads it
    _REGISTRY[name] = _checked(x, y, n_classes)  # split by `load`, with its test_fraction and seed
    return name


@declare(source=Given(any_value=True, why="any value: a name is registered or not", example="mine"))
def registered(source: str) -> bool:
    """Whether `source` names arrays registered in this process (read afresh by every `load`)."""
    return isinstance(source, str) and source in _REGISTRY
