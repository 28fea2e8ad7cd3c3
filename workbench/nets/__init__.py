"""Finite networks and how they train: models, toy models, the transformer, the UFM, optimizers from the
parametrization table and the one training engine."""

__all__: list[str] = []
