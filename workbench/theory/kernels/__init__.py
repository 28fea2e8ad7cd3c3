"""Infinite-width and empirical kernels of MLPs: NNGP, NTK, predictions and utilities.

- `mlp_kernels`: analytic NNGP/NTK (neural-tangents stax conventions), `gaussian_expectations`: dual maps;
- `empirical_ntk`, `jacobian_ntk`, `limit_kernels`: finite-width NTKs and their infinite-width limits;
- `nngp_posterior`, `gradient_flow`: infinite-width predictions (MSE);
- `kernel_vs_angle`, `kernel_eigenvalues`, `mc_empirical_ntk`: utilities for the panels.
"""

from workbench.theory.kernels.analytic import Kernels, mlp_kernels
from workbench.theory.kernels.dual import gaussian_expectations
from workbench.theory.kernels.empirical import empirical_ntk, jacobian_ntk, limit_kernels
from workbench.theory.kernels.predict import Prediction, gradient_flow, nngp_posterior
from workbench.theory.kernels.utils import kernel_eigenvalues, kernel_vs_angle, mc_empirical_ntk

__all__ = [
    "Kernels",
    "mlp_kernels",
    "gaussian_expectations",
    "empirical_ntk",
    "jacobian_ntk",
    "limit_kernels",
    "Prediction",
    "gradient_flow",
    "nngp_posterior",
    "kernel_vs_angle",
    "kernel_eigenvalues",
    "mc_empirical_ntk",
]
