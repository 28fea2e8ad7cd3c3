"""Infinite-width and empirical kernels of MLPs: NNGP, NTK, predictions and utilities."""

from workbench.kernels.analytic import Kernels, mlp_kernels
from workbench.kernels.dual import gaussian_expectations

__all__ = ["Kernels", "mlp_kernels", "gaussian_expectations"]
