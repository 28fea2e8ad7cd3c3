"""The foundation: validated configs and shared fields, the experiment contract, activations, the
parametrization table, argument checks, the memory guard, the runtime, float64 simulations and fits."""

__all__: list[str] = []
