"""What infinite width and depth predict: kernels, criticality, infinite depth, scale mixtures,
finite-width corrections, learning curves, linear dynamics, neural collapse, Fourier features."""

__all__: list[str] = []
