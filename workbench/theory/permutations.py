"""Exact learning of permutations by ensembles of wide two-layer ReLU networks (Giapitzakis, Back de Luca &
Fountoulakis 2025, arXiv 2502.16763; code `opallab/permlearn`).

The task: f(x) = W2 relu(W1 x), no bias, trained by MSE gradient descent on the k basis vectors e_i -> P e_i;
tested on inputs with two ones, normalised, x = (e_a + e_b)/sqrt 2, whose target is P(e_a + e_b). M networks
trained independently are averaged and the average thresholded at 0; a test input is right when all k
coordinates are. "Models needed" is the first M whose accuracy over `n_tests` drawn test inputs is >= 1 - delta
(the repository's loop, `experiment.py`).

At infinite width each trained member is a draw from a Gaussian process over the test inputs (its k output
coordinates independent, each with the same covariance), so an ensemble of any size costs one sample per member:

- "ntk": NTK parametrization, both layers trained to convergence: the NTK-GP of gradient flow at t = inf
  (`kernels.gradient_flow`, Lee et al. 2019), the paper's model;
- "sp": the repository's training (`model.py`: init std sigma/sqrt(fan_in), plain SGD, lr 1e-3 at width 50 000).
  Its tangent kernel is width x NNGP + O(1), so the readout dominates and the converged member is a draw of the
  NNGP posterior (`kernels.nngp_posterior`).

The law is computed for P = identity: the kernels are equivariant, so another P relabels the output coordinates
and their targets alike and leaves every accuracy unchanged.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from workbench.core import float64
from workbench.core.declare import Array, Choice, Int, Real, declare
from workbench.theory.kernels import Kernels, Prediction, gradient_flow, mlp_kernels, nngp_posterior

__all__ = [
    "MAX_K",
    "Law",
    "PARAMETRIZATIONS",
    "REPOSITORY",
    "ensemble_accuracy",
    "infinite_ensemble",
    "member_law",
    "models_needed",
    "rate_curves",
    "draw_counts",
    "two_hot_inputs",
]

PARAMETRIZATIONS = ("sp", "ntk")
MAX_K = 40  # C(40, 2) = 780 test inputs: the member law's covariance is 780 x 780
BLOCK = 32  # members sampled at once by `infinite_ensemble`
COSINES = (0.0, 0.5, 1.0 / math.sqrt(2.0), 1.0)  # between two-hot inputs and basis vectors

# opallab/permlearn results/experiment_1/<k>/0/results.csv, last row: the first M with accuracy >= 0.9
# (delta = 0.1, width 50 000, 10 000 epochs at lr 1e-3, torch seed 2, one trial per k, 1000 test inputs)
REPOSITORY = {2: 1, 3: 2, 4: 10, 5: 43, 6: 34, 7: 29, 8: 40, 9: 37, 10: 69, 11: 70, 12: 62, 13: 72, 14: 56, 15: 103,
              16: 89, 17: 105, 18: 105, 19: 106, 20: 117, 21: 131, 22: 128, 23: 124, 24: 150, 25: 157, 26: 157,
              27: 162, 28: 165, 29: 174, 30: 175}  # fmt: skip

_K = Int(2, MAX_K)


class Law(NamedTuple):
    """One member's outputs on the C(k, 2) two-hot inputs: mean (T, k); covariance (T, T) of each coordinate."""

    mean: np.ndarray
    cov: np.ndarray


@declare(k=_K)
def two_hot_inputs(k: int) -> tuple[np.ndarray, np.ndarray]:
    """All C(k, 2) test inputs of the paper: (pairs (T, 2) of the two ones, x (T, k) = (e_a + e_b)/sqrt 2)."""
    pairs = np.array(list(itertools.combinations(range(k), 2)))
    x = np.zeros((len(pairs), k))
    x[np.arange(len(pairs))[:, None], pairs] = 1.0 / math.sqrt(2.0)
    return pairs, x


@functools.lru_cache(maxsize=16)
def _law(k: int, parametrization: str, weight_std: float) -> Prediction:
    """`member_law` in float64 (run through `float64.call`). Every input has unit norm, so a kernel entry depends
    only on the inputs' cosine, one of COSINES: the kernels are computed once on representatives in R^2 with those
    cosines, scaled by sqrt(2/k) so that the input kernel x.x'/d is the task's cosine/k, and read off by cosine."""
    cos = np.asarray(COSINES)
    scale = math.sqrt(2.0 / k)
    reps = mlp_kernels(
        scale * np.array([[1.0, 0.0]]),
        scale * np.stack([cos, np.sqrt(1.0 - cos**2)], 1),
        depth=1,
        weight_std=weight_std,
        bias_std=None,
        parametrization="ntk",
    )
    nngp, ntk = np.asarray(reps.nngp[0]), np.asarray(reps.ntk[0])  # numpy: indexing compiles nothing per k
    _, x = two_hot_inputs(k)
    train = np.eye(k)

    def kernels(gram: np.ndarray) -> Kernels:
        which = np.abs(gram[..., None] - cos).argmin(-1)  # each entry's cosine
        return Kernels(jnp.asarray(nngp[which]), jnp.asarray(ntk[which]))

    return _predict(parametrization, kernels(train), kernels(x @ train.T), kernels(x @ x.T), train)


@functools.partial(jax.jit, static_argnums=0)
def _predict(parametrization: str, k_train: Kernels, k_cross: Kernels, k_test: Kernels, y: jax.Array) -> Prediction:
    """The converged member's law from its kernels (one compilation per k instead of one per operation)."""
    if parametrization == "sp":
        return nngp_posterior(k_train.nngp, k_cross.nngp, y, k_test=k_test.nngp)
    return gradient_flow(k_train, k_cross, y, jnp.inf, k_test=k_test)


@declare(k=_K, parametrization=Choice(PARAMETRIZATIONS), weight_std=Real(0.1, 10.0))
def member_law(k: int, parametrization: str = "sp", weight_std: float = 1.0) -> Law:
    """Law of one converged infinite-width member on the two-hot inputs (module docstring): mean (T, k) and the
    covariance (T, T) shared by the k output coordinates, for P = identity (float64)."""
    mean, cov = float64.call(_law, k, parametrization, weight_std)
    return Law(mean.copy(), cov.copy())  # copies: the cached law stays as it is


@declare(k=_K, n_tests=Int(1, 1_000_000), seed=Int(0, 2**31 - 1))
def draw_counts(k: int, n_tests: int, seed: int = 0) -> np.ndarray:
    """How often each two-hot input (in `two_hot_inputs` order) is among `n_tests` uniform draws (the repository's
    `generate_test`, nnz = 2)."""
    t = k * (k - 1) // 2
    return np.bincount(np.random.default_rng(seed).integers(0, t, n_tests), minlength=t).astype(float)


@declare(
    outputs=Array("m t k", example=lambda: np.ones((2, 3, 3))),
    targets=Array("t k", lo=0.0, hi=1.0, integer=True, example=lambda: np.eye(3, dtype=int)),
    weights=Array("t", lo=0.0, example=lambda: np.ones(3)),
)
def ensemble_accuracy(outputs: ArrayLike, targets: ArrayLike, weights: ArrayLike) -> np.ndarray:
    """Accuracy (M,) of the averages of the first 1..M members' outputs (M, T, k), thresholded at 0, against 0/1
    targets (T, k): the `weights`-weighted share of inputs with every coordinate right (repository's rule)."""
    w = np.asarray(weights, float)
    w = w / max(float(w.max()), np.finfo(float).tiny)  # the same shares, and a sum that cannot overflow
    if not w.sum() > 0:
        raise ValueError("weights: must not all be zero")
    running = np.cumsum(np.asarray(outputs, float), axis=0)  # the mean's sign is the running sum's
    right = np.all((running > 0) == (np.asarray(targets) > 0), axis=-1)
    return np.minimum(right @ w / w.sum(), 1.0)  # a share: rounding may not push it above 1


@declare(accuracy=Array("m", lo=0.0, hi=1.0, example=lambda: np.array([0.2, 0.95])), delta=Real(0.0, 1.0))
def models_needed(accuracy: ArrayLike, delta: float) -> int:
    """The first ensemble size M (1-based) whose accuracy is >= 1 - delta; 0 when none of those given is."""
    hits = np.flatnonzero(np.asarray(accuracy) >= 1.0 - delta)
    return int(hits[0]) + 1 if hits.size else 0


@declare(
    k=_K,
    delta=Real(1e-4, 1.0),
    parametrization=Choice(PARAMETRIZATIONS),
    weight_std=Real(0.1, 10.0),
    n_tests=Int(1, 1_000_000),
    max_models=Int(1, 100_000),
    seed=Int(0, 2**31 - 1),
)
def infinite_ensemble(
    k: int,
    delta: float,
    *,
    parametrization: str = "sp",
    weight_std: float = 1.0,
    n_tests: int = 1000,
    max_models: int = 5000,
    seed: int = 0,
) -> tuple[int, np.ndarray]:
    """(models needed, accuracy against ensemble size) of infinite-width members drawn from `member_law`, members
    added `BLOCK` at a time until the accuracy reaches 1 - delta or `max_models` (needed = 0: not reached)."""
    law = member_law(k, parametrization, weight_std)
    pairs, _ = two_hot_inputs(k)
    weights = draw_counts(k, n_tests, seed)
    keep = weights > 0
    w, v = np.linalg.eigh(law.cov)
    root = (v * np.sqrt(np.clip(w, 0.0, None)))[keep]  # cov = root root^T on the drawn inputs
    mean, weights = law.mean[keep], weights[keep]
    targets = np.zeros(mean.shape, int)
    targets[np.arange(len(mean))[:, None], pairs[keep]] = 1
    rng = np.random.default_rng([seed, 1])
    total, curve = np.zeros_like(mean), []
    while len(curve) * BLOCK < max_models:
        noise = root @ rng.standard_normal((len(w), BLOCK * k))  # (T', BLOCK k): one BLAS call
        draws = mean + noise.reshape(len(mean), BLOCK, k).transpose(1, 0, 2)
        draws[0] += total  # continue the running sum of the members before this block
        curve.append(ensemble_accuracy(draws, targets, weights))
        total = draws.sum(0)
        if models_needed(curve[-1], delta):
            break
    accuracy = np.concatenate(curve)[:max_models]
    return models_needed(accuracy, delta), accuracy


@declare(ks=Array("n", lo=2.0, hi=1e6), counts=Array("n", lo=0.0))
def rate_curves(ks: ArrayLike, counts: ArrayLike) -> dict[str, np.ndarray]:
    """The paper's ensemble complexities, c k log k (one test input) and c k^2 (all inputs at once; abstract and
    Thms. of arXiv 2502.16763), each c fitted to the positive `counts` by least squares in log space."""
    ks, counts = np.asarray(ks, float), np.asarray(counts, float)
    ok = counts > 0
    if not ok.any():
        raise ValueError("counts: needs at least one positive count to fit the constants")
    out = {}
    for name, shape in (("k log k", ks * np.log(ks)), ("k^2", ks**2)):
        out[name] = shape * math.exp(float(np.mean(np.log(counts[ok] / shape[ok]))))
    return out
