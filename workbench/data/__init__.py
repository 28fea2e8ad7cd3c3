"""Small seeded data sets: regression, TensorFlow-Playground 2-D sets, Gaussian mixtures, XOR clusters,
modular arithmetic and scikit-learn's bundled digits. All return a `Dataset` of numpy arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from workbench.core.declare import Activation, Array, Choice, Int, Real, declare
from workbench.core.memory import require

__all__ = [
    "MODULAR_OPS",
    "PLAYGROUND",
    "Dataset",
    "digits",
    "gaussian_mixture",
    "modular",
    "playground",
    "sine",
    "teacher",
    "xor_cluster",
]


@dataclass(frozen=True)
class Dataset:
    """Train/test arrays; y holds targets (regression, shape (N, k)) or integer labels (classification)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int = 0  # 0 for regression

    @property
    def task(self) -> str:
        return "classification" if self.n_classes else "regression"

    @property
    def in_dim(self) -> int:
        return self.x_train.shape[1]

    @property
    def out_dim(self) -> int:
        return self.n_classes or self.y_train.shape[1]


_POINTS = Int(1, 10_000_000)  # points of a split (or of a class)
_SEED = Int(0, 2**31 - 1)  # the range of the configs' seed field (`workbench.core.fields.SEED`)
_FRACTION = Real(0.0, 1.0, lo_open=True)  # a share of the points, in (0, 1): 1 is refused by `_below_one`


def _below_one(name: str, value: float) -> float:
    """The open upper end of a _FRACTION (a declared Real's upper end is closed)."""
    if value >= 1.0:
        raise ValueError(f"{name}: must be in (0.0, 1.0), got {value!r}")
    return value


_BYTES_PER_DRAWN = 32  # float64 draws, their sum and the float32 copy: peak bytes per generated number


def _fits(numbers: float, what: str, sizes: str) -> None:
    """Refuse a data set whose generation would not fit in memory (`workbench.core.memory.require`)."""
    require(_BYTES_PER_DRAWN * numbers, what, sizes, "use fewer points or dimensions")


def _split(x: np.ndarray, y: np.ndarray, n_train: int, rng: np.random.Generator, n_classes: int = 0) -> Dataset:
    order = rng.permutation(len(x))
    tr, te = order[:n_train], order[n_train:]
    return Dataset(x[tr].astype(np.float32), y[tr], x[te].astype(np.float32), y[te], n_classes)


@declare(n_train=_POINTS, n_test=_POINTS, noise=Real(0.0, 10.0), frequency=Real(0.0, 1000.0), seed=_SEED)
def sine(n_train: int = 32, n_test: int = 256, noise: float = 0.0, frequency: float = 1.0, seed: int = 0) -> Dataset:
    """1-D regression y = sin(pi f x) + noise on x in [-1, 1]; the test set is a uniform grid."""
    _fits(n_train + n_test, "sine", f"{n_train} + {n_test} points")
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n_train, 1))
    grid = np.linspace(-1, 1, n_test)[:, None]
    f = lambda t: np.sin(math.pi * frequency * t)
    y = f(x) + noise * rng.normal(size=x.shape)
    return Dataset(x.astype(np.float32), y.astype(np.float32), grid.astype(np.float32), f(grid).astype(np.float32))


@declare(
    n_train=_POINTS,
    n_test=_POINTS,
    in_dim=Int(1, 100_000),
    width=Int(1, 100_000),
    depth=Int(0, 16),
    activation=Activation(),
    noise=Real(0.0, 10.0),
    seed=_SEED,
)
def teacher(
    n_train: int = 64,
    n_test: int = 256,
    in_dim: int = 2,
    width: int = 64,
    depth: int = 1,
    activation: str = "tanh",
    noise: float = 0.0,
    seed: int = 0,
) -> Dataset:
    """Regression on the outputs of a random SP teacher MLP with Gaussian inputs. The teacher and the test set
    depend on the seed only, and the training sets are nested in n_train (separate random streams), so a sweep
    over n_train measures one task (a scaling law's premise)."""
    from workbench.core.activations import get_activation

    n = n_train + n_test
    _fits(n * (in_dim + 2 * width) + in_dim * width, "teacher", f"{n} points x in_dim {in_dim}, width {width}")
    stream = lambda k: np.random.default_rng([seed, k])
    phi, weights = get_activation(activation), stream(0)
    layers = [weights.normal(size=(in_dim if i == 0 else width, width)) for i in range(depth)]
    readout = weights.normal(size=(width if depth else in_dim, 1))

    def labelled(x: np.ndarray, noise_stream: np.random.Generator) -> np.ndarray:
        h = x
        for w in layers:
            h = np.asarray(phi(h @ w / math.sqrt(h.shape[1])))
        y = h @ readout / math.sqrt(h.shape[1])
        return (y + noise * noise_stream.normal(size=y.shape)).astype(np.float32)

    x_tr, x_te = stream(1).normal(size=(n_train, in_dim)), stream(2).normal(size=(n_test, in_dim))
    y_tr, y_te = labelled(x_tr, stream(3)), labelled(x_te, stream(4))
    return Dataset(x_tr.astype(np.float32), y_tr, x_te.astype(np.float32), y_te, 0)


PLAYGROUND = ("circle", "xor", "gauss", "spiral")


@declare(name=Choice(PLAYGROUND), n=Int(4, 10_000_000), noise=Real(0.0, 1.0), test_fraction=_FRACTION, seed=_SEED)
def playground(
    name: str = "spiral", n: int = 400, noise: float = 0.1, test_fraction: float = 0.5, seed: int = 0
) -> Dataset:
    """TensorFlow Playground's 2-D classification sets (Smilkov & Carter 2016), labels 0/1."""
    _below_one("test_fraction", test_fraction)
    n_test = int(round(test_fraction * n))
    if not 1 <= n_test < n:
        raise ValueError(f"test_fraction: {test_fraction} of {n} points leaves no train or no test points")
    _fits(4 * n, "playground", f"{n} points")
    rng = np.random.default_rng(seed)
    half = n // 2
    if name == "circle":
        r = np.concatenate([rng.uniform(0, 2.5, half), rng.uniform(3.5, 5, n - half)])
        a = rng.uniform(0, 2 * math.pi, n)
        x = np.stack([r * np.sin(a), r * np.cos(a)], 1)
        y = (np.arange(n) >= half).astype(np.int32)
    elif name == "xor":
        x = rng.uniform(-5, 5, (n, 2))
        x += np.where(x > 0, 0.3, -0.3)
        y = (x[:, 0] * x[:, 1] < 0).astype(np.int32)
    elif name == "gauss":
        y = (np.arange(n) >= half).astype(np.int32)
        x = rng.normal(size=(n, 2)) + np.where(y[:, None] == 1, 2.0, -2.0)
    else:
        t = np.concatenate([np.linspace(0, 1, half), np.linspace(0, 1, n - half)])
        y = (np.arange(n) >= half).astype(np.int32)
        r, a = 5 * t, 1.75 * t * 2 * math.pi + math.pi * y
        x = np.stack([r * np.sin(a), r * np.cos(a)], 1)
    x = (x + noise * 5 * rng.normal(size=x.shape)) / 5.0
    return _split(x, y, n - n_test, rng, 2)


@declare(
    class_sizes=Array("classes", lo=1, hi=10_000_000, integer=True),
    dim=Int(1, 100_000),
    separation=Real(0.0, 1000.0),
    test_per_class=_POINTS,
    seed=_SEED,
)
def gaussian_mixture(
    class_sizes: Sequence[int] | ArrayLike = (100, 100, 100),
    dim: int = 10,
    separation: float = 3.0,
    test_per_class: int = 100,
    seed: int = 0,
) -> Dataset:
    """K isotropic Gaussians with random unit-norm means times `separation`; train sizes per class
    as given (imbalanced when they differ), a balanced test set."""
    sizes = tuple(int(s) for s in np.asarray(class_sizes))
    if len(sizes) < 2:
        raise ValueError(f"class_sizes: need at least 2 classes, got {sizes!r}")
    n = sum(sizes) + test_per_class * len(sizes)
    _fits(n * dim, "gaussian_mixture", f"{n} points x dim {dim}")
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(len(sizes), dim))
    means = separation * means / np.linalg.norm(means, axis=1, keepdims=True)

    def draw(counts: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        y = np.repeat(np.arange(len(counts)), counts)
        return (means[y] + rng.normal(size=(len(y), dim))).astype(np.float32), y.astype(np.int32)

    x_tr, y_tr = draw(sizes)
    x_te, y_te = draw([test_per_class] * len(sizes))
    return Dataset(x_tr, y_tr, x_te, y_te, len(sizes))


@declare(
    n_train=_POINTS,
    n_test=_POINTS,
    dim=Int(2, 10_000_000),
    label_flip=Real(0.0, 0.5),
    signal=Real(0.0, 1e6, none_ok=True),
    seed=_SEED,
)
def xor_cluster(
    n_train: int = 200,
    n_test: int = 1000,
    dim: int = 1000,
    label_flip: float = 0.1,
    signal: float | None = None,
    seed: int = 0,
) -> Dataset:
    """XOR cluster data (Xu, Wang, Frei, Vardi & Hu 2024): x = +-mu_1 or +-mu_2 plus N(0, I) noise,
    label 1 on the +-mu_1 clusters and 0 on +-mu_2, a fraction `label_flip` of training labels flipped.
    mu_1 and mu_2 are orthogonal with norm `signal` (default dim**0.3, their benign-overfitting regime).
    The test labels are clean."""
    norm = dim**0.3 if signal is None else signal
    _fits((n_train + n_test) * dim, "xor_cluster", f"{n_train} + {n_test} points x dim {dim}")
    rng = np.random.default_rng(seed)
    mu = np.zeros((2, dim))
    mu[0, 0], mu[1, 1] = norm, norm

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        cluster, sign = rng.integers(0, 2, n), rng.choice([-1.0, 1.0], n)
        x = sign[:, None] * mu[cluster] + rng.normal(size=(n, dim))
        return x.astype(np.float32), (cluster == 0).astype(np.int32)

    x_tr, y_tr = draw(n_train)
    flip = rng.random(n_train) < label_flip
    y_tr = np.where(flip, 1 - y_tr, y_tr).astype(np.int32)
    x_te, y_te = draw(n_test)
    return Dataset(x_tr, y_tr, x_te, y_te, 2)


MODULAR_OPS = ("+", "-", "*", "/")


def _is_prime(p: int) -> bool:
    return p >= 2 and all(p % k for k in range(2, int(math.isqrt(p)) + 1))


@declare(p=Int(2, 1000), op=Choice(MODULAR_OPS), train_fraction=_FRACTION, seed=_SEED)
def modular(p: int = 59, op: str = "+", train_fraction: float = 0.4, seed: int = 0) -> Dataset:
    """All pairs (a, b) with label (a op b) mod p (Power et al. 2022); x holds the integer pair.
    Division is a * b^-1 mod p over b != 0 and needs p prime."""
    _below_one("train_fraction", train_fraction)
    if op == "/" and not _is_prime(p):
        raise ValueError(f"p: division needs a prime modulus, got {p}")
    a, b = (g.ravel() for g in np.meshgrid(np.arange(p), np.arange(p), indexing="ij"))
    if op == "/":
        a, b = a[b != 0], b[b != 0]
        c = a * np.array([pow(int(v), p - 2, p) for v in b]) % p
    else:
        c = {"+": a + b, "-": a - b, "*": a * b}[op] % p
    x = np.stack([a, b], 1).astype(np.int32)
    n_train = int(round(train_fraction * len(x)))
    if not 1 <= n_train < len(x):
        raise ValueError(f"train_fraction: leaves no train or no test pairs for p={p}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    tr, te = order[:n_train], order[n_train:]
    return Dataset(x[tr], c[tr].astype(np.int32), x[te], c[te].astype(np.int32), p)


@declare(test_fraction=_FRACTION, seed=_SEED)
def digits(test_fraction: float = 0.3, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images, 10 classes), pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    _below_one("test_fraction", test_fraction)
    pixels, labels = load_digits(return_X_y=True)
    x, y = np.asarray(pixels) / 16.0, np.asarray(labels).astype(np.int32)  # sklearn types them as frames too
    n_test = int(round(test_fraction * len(x)))
    if not 1 <= n_test < len(x):
        raise ValueError(f"test_fraction: {test_fraction} of {len(x)} images leaves no train or no test images")
    rng = np.random.default_rng(seed)
    return _split(x, y, len(x) - n_test, rng, 10)
