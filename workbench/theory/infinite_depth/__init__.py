"""Wide and deep networks at infinite depth (Radhakrishnan, Belkin & Uhler, "Wide and deep neural networks achieve
consistency for classification", PNAS 2023, arXiv 2204.14126; official code uhlerlab/inf_depth_ntks).

Conventions (those of the official code, `models.py`): inputs on the unit sphere, no biases, and an activation
enters only through its *normalized dual*. With phi = sum_k a_k h_k (h_k = He_k / sqrt(k!), orthonormal under
N(0, 1); a_k by Gauss-Hermite quadrature for a typed activation),

    k(rho) = E[phi(u) phi(v)] / E[phi(u)^2] = sum_k b_k rho^k,    b_k = a_k^2 / sum_j a_j^2,

so k(1) = 1 and the mean of phi enters as b_0 = k(0) = a_0^2 / E[phi^2] (it is not removed: an activation with
a nonzero mean pulls every correlation towards a positive fixed point). For u, v ~ N(0, 1) with correlation rho
this is the NNGP map of one Dense(W_std = 1, b_std = 0) + phi layer after dividing by E[phi^2].

    NNGP: rho_0 = <x, z>, rho_{l+1} = k(rho_l);    NTK: Theta_0 = rho_0, Theta_{l+1} = k(rho_l) + Theta_l k'(rho_l)

The classifier is ridgeless kernel regression, sign(y^T K(X, X)^{-1} K(X, x)) (argmax for one-hot y). With
lambda_0 = k(0) = b_0, lambda = k'(0) = b_1 and mu = k'(1), depth L -> infinity gives (the taxonomy of the paper):

- b_0 > 0: majority vote. Precisely: when mu > 1 the correlations converge geometrically to the attracting fixed
  point rho* in (0, 1) and both kernels tend to c 11^T + (1 - c) I; when mu = 1 (ReLU, |x|) every correlation tends
  to 1 like 1 / L^2, alike for all pairs at leading order, and both kernels tend to majority vote slowly (the
  official code needs depth > 5e4 for more than 1000 samples); when mu < 1 (a large mean: sigmoid, softplus) the
  correlations tend to 1 geometrically with a pair-dependent deficit and the limit is not majority vote (found
  here numerically, not a case of the paper's examples) - `regime` says which.
- b_0 = b_1 = 0: 1-nearest neighbour in the kernel's own order (the Boettcher coordinate of k at 0): by rho, by
  |rho| when k is even, by |rho| with the label times sign(rho) when k is odd.
- b_0 = 0 < b_1 < 1: the singular kernel classifier sign(sum_i y_i sigma(<x_i, x>)) with sigma the Koenigs
  eigenfunction of k at 0 (sigma o k = lambda sigma, sigma'(0) = 1, sigma = lim k^L / lambda^L), and
  sigma(rho) ~ (1 - rho)^(-alpha) as rho -> 1 with alpha = ln(1/k'(0)) / ln(k'(1)); as ||x - z||^2 = 2 (1 - rho)
  this is a Hilbert-kernel estimate, consistent for data on S^(d-1) when d = 1 + 2 alpha (Devroye et al. 1998).
- b_1 = 1: the linear kernel at every depth.

Numerics. A float64 loop over layers underflows (lambda^L sigma, and rho^(2^L) for the rho^2 dual: its Gram matrix has
condition ~1e17 by depth 4 and the classifier falls to chance) and costs n^2 L. Here every kernel entry is carried
as (sign, log|.|), with 1 - |rho| kept without cancellation near +-1 (from ||x -+ z||^2 / 2 and closed forms of
1 - k(1 - delta)), and leaves the layer loop as soon as it reaches a region where the rest of the depth is exact in
closed form: the Koenigs / Poincare series at 0 (singular duals: k^L(rho) = psi(lambda^L sigma(rho)), and a
matching closed form of the NTK), the Boettcher recursion (duals with b_0 = b_1 = 0) or the attracting fixed point
(b_0 > 0, mu > 1). Entries near a repelling +-1 take O(log(1 / delta) / log mu) layers, all others a few, so any
depth up to 1e5 (and infinity) costs about the same. Duals with b_0 > 0 and mu <= 1 (ReLU, |x|, sigmoid) have no
such shortcut: log(1 - rho_L) and log(1 - Theta_L / Theta_L(1)) are iterated on a table of angles (JAX, float64,
cost proportional to L: ~6 s for L = 1e5) and interpolated, and their classifiers are solved in that complement
form (K = 11^T - Delta). The classifier needs kernels only up to a positive factor per test point, so each column
of K(X, x) is divided by its largest entry. `DepthClassifier` flows the entries in chunks (training rows against the
later ones, then blocks of test points reduced at once to scores), so it holds 8 bytes per training pair and (depth,
kernel), one n x n system solved in place and a chunk: the official code's n = 10,000 default in 1.3 GiB. Checked
against 50-digit iteration (tests/test_infinite_depth.py)."""

from workbench.theory.infinite_depth.classify import (
    DepthClassifier,
    accuracy,
    classify,
    find_duplicates,
    hilbert_classify,
    limit_classify,
    majority_vote,
    naive_nngp,
    nearest_neighbour,
    pair_geometry,
    to_sphere,
)
from workbench.theory.infinite_depth.duals import (
    Dual,
    DualArg,
    consistent_dual,
    design_dual,
    dual_from_activation,
    dual_from_hermite,
    dual_from_series,
    get_dual,
    hermite_expression,
)
from workbench.theory.infinite_depth.flow import (
    Depth,
    Layer,
    deep_kernel,
    deep_kernels,
    diagonal_log_ntk,
    koenigs,
    koenigs_log,
)
from workbench.theory.infinite_depth.taxonomy import FixedPoint, Regime, cobweb, fixed_points, regime

__all__ = [
    "Depth",
    "DepthClassifier",
    "Dual",
    "DualArg",
    "FixedPoint",
    "Layer",
    "Regime",
    "accuracy",
    "classify",
    "cobweb",
    "consistent_dual",
    "deep_kernel",
    "deep_kernels",
    "design_dual",
    "diagonal_log_ntk",
    "dual_from_activation",
    "dual_from_hermite",
    "dual_from_series",
    "find_duplicates",
    "fixed_points",
    "get_dual",
    "hermite_expression",
    "hilbert_classify",
    "koenigs",
    "koenigs_log",
    "limit_classify",
    "majority_vote",
    "naive_nngp",
    "nearest_neighbour",
    "pair_geometry",
    "regime",
    "to_sphere",
]
