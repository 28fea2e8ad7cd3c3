"""Parametrizations as one table of abc exponents (Yang & Hu 2021, Tensor Programs IV; Yang et al. 2022, TP V).

Every trainable tensor belongs to a *role*: "input" (first-layer weights, fan_in = d fixed), "hidden"
(width x width weights), "output" (readout weights), "bias" (biases of the hidden layers) and
"output_bias". For a width n and base width n0, with m = n / n0, a role with exponents (a, b, c) gives

    forward multiplier  m**-a,      init std  sigma / sqrt(fan_in at n0) * m**-b,      lr  eta * m**-c

with separate c for SGD and for Adam. All exponents are relative to SP, so **every parametrization is
exactly SP at the base width** (m = 1). The rows:

| role    | sp (a,b,c_sgd,c_adam) | ntk              | mup (TP V Table 3) | mf               |
|---------|-----------------------|------------------|--------------------|------------------|
| input   | 0, 0,   0, 0          | 0,   0, 0, 1/2   | 0, 0,   -1, 0      | 0,   0, -1, 0    |
| hidden  | 0, 1/2, 0, 0          | 1/2, 0, 0, 1     | 0, 1/2,  0, 1      | 1/2, 0, -1, 1/2  |
| output  | 0, 1/2, 0, 0          | 1/2, 0, 0, 1/2   | 0, 1,    1, 1      | 1,   0, -1, 0    |
| bias    | 0, 0,   0, 0          | 0,   0, 0, 1/2   | 0, 0,   -1, 0      | 0,   0, -1, 0    |

(output_bias is (0, 0, 0, 0) everywhere.)

- sp: standard parametrization with a width-independent learning rate (PyTorch default init).
- ntk: NTK parametrization (Jacot et al. 2018): unit-variance weights behind a 1/sqrt(fan_in)
  multiplier; Adam learning rates scaled so that features move by O(n^-1/2) (the kernel regime).
- mup: Maximal Update Parametrization in the form of TP V Table 3 (no multipliers; init variance
  1/fan_in, 1/fan_in^2 for the readout; SGD lr x fan_out for input weights and biases, / fan_in for
  the readout; Adam lr / fan_in for hidden and readout weights).
- mf: mean-field parametrization (Mei et al. 2018; Chizat & Bach 2018): unit-variance weights, a
  1/n readout multiplier and an SGD learning rate x n. It is muP moved along the abc symmetry
  (a, b, c) -> (a + t, b - t, c - 2t) for SGD and (a + t, b - t, c - t) for Adam (TP IV, Sec. 3), so
  mf and mup train to the same functions (exactly under SGD and Adam up to epsilon; not under
  decoupled weight decay, which is not invariant).
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.core.declare import Choice, Int, Real, declare

__all__ = [
    "MAX_WIDTH",
    "NAMES",
    "OPTIMIZER_FAMILY",
    "ROLES",
    "TABLE",
    "DEPTH_SCALINGS",
    "Scaling",
    "branch_multiplier",
    "check_name",
    "depth_lr_scale",
    "free_scaling",
    "init_std",
    "lr_scale",
    "multiplier",
    "width_ratio",
]

ROLES = ("input", "hidden", "output", "bias", "output_bias")
OPTIMIZER_FAMILY = {"sgd": "sgd", "momentum": "sgd", "adam": "adam", "adamw": "adam"}


@dataclass(frozen=True)
class Scaling:
    """abc exponents of one role: multiplier m^-a, init std m^-b, lr m^-c (TP IV Def. 3.1)."""

    a: float
    b: float
    c_sgd: float
    c_adam: float


def _rows(
    input: tuple[float, float, float, float],
    hidden: tuple[float, float, float, float],
    output: tuple[float, float, float, float],
    bias: tuple[float, float, float, float],
) -> dict[str, Scaling]:
    return {
        "input": Scaling(*input),
        "hidden": Scaling(*hidden),
        "output": Scaling(*output),
        "bias": Scaling(*bias),
        "output_bias": Scaling(0, 0, 0, 0),
    }


TABLE: dict[str, dict[str, Scaling]] = {
    "sp": _rows((0, 0, 0, 0), (0, 0.5, 0, 0), (0, 0.5, 0, 0), (0, 0, 0, 0)),
    "ntk": _rows((0, 0, 0, 0.5), (0.5, 0, 0, 1), (0.5, 0, 0, 0.5), (0, 0, 0, 0.5)),
    "mup": _rows((0, 0, -1, 0), (0, 0.5, 0, 1), (0, 1, 1, 1), (0, 0, -1, 0)),
    "mf": _rows((0, 0, -1, 0), (0.5, 0, -1, 0.5), (1, 0, -1, 0), (0, 0, -1, 0)),
}
NAMES = tuple(TABLE)


MAX_WIDTH = 65_536  # the range of the configs' width and base_width (`workbench.core.fields.WIDTH`)
_PARAMETRIZATION = Choice(NAMES)
_ROLE = Choice(ROLES)
_M = Real(1.0 / MAX_WIDTH, float(MAX_WIDTH))  # n / n0 for widths in [1, MAX_WIDTH]


@declare(parametrization=_PARAMETRIZATION)
def check_name(parametrization: str) -> str:
    """Return the parametrization name or raise ValueError listing the allowed ones."""
    return parametrization


@declare(width=Int(1, MAX_WIDTH), base_width=Int(1, MAX_WIDTH))
def width_ratio(width: int, base_width: int) -> float:
    """m = n / n0, the width multiplier the exponents act on."""
    return width / base_width


@declare(parametrization=_PARAMETRIZATION, role=_ROLE, m=_M)
def multiplier(parametrization: str, role: str, m: float) -> float:
    """Forward multiplier m^-a of a role."""
    return m ** -TABLE[parametrization][role].a


@declare(parametrization=_PARAMETRIZATION, role=_ROLE, m=_M, base_std=Real(0.0, 1e6))
def init_std(parametrization: str, role: str, m: float, base_std: float) -> float:
    """Init std m^-b times the SP std at the base width (sigma / sqrt(fan_in at n0))."""
    return base_std * m ** -TABLE[parametrization][role].b


@declare(parametrization=_PARAMETRIZATION, role=_ROLE, m=_M, optimizer=Choice(tuple(OPTIMIZER_FAMILY)))
def lr_scale(parametrization: str, role: str, m: float, optimizer: str) -> float:
    """Per-role learning-rate factor m^-c for the optimizer's family (SGD-like or Adam-like)."""
    s = TABLE[parametrization][role]
    return m ** -(s.c_sgd if OPTIMIZER_FAMILY[optimizer] == "sgd" else s.c_adam)


@declare(parametrization=_PARAMETRIZATION, role=_ROLE)
def free_scaling(parametrization: str, role: str) -> Scaling:
    """The row moved to a = 0 along the abc symmetry (TP IV Sec. 3): (a, b, c) -> (0, b + a, c_sgd + 2a, c_adam + a),
    the same training (exactly under SGD, up to Adam's epsilon) without touching a model's forward pass."""
    s = TABLE[parametrization][role]
    return Scaling(0.0, s.b + s.a, s.c_sgd + 2 * s.a, s.c_adam + s.a)


# Residual branches multiplied by (L / L0)^-alpha: none, depth-muP (Yang et al. 2023, TP VI, arXiv 2310.02244;
# Bordelon et al., ICLR 2024) and CompleteP (Dey et al. 2025, arXiv 2505.01618).
DEPTH_SCALINGS = {"none": 0.0, "sqrt": 0.5, "complete": 1.0}
_DEPTH_SCALING = Choice(tuple(DEPTH_SCALINGS))
_DEPTH_RATIO = Real(1.0 / 256, 256.0)  # L / L0 for depths in [1, 256]


@declare(depth_scaling=_DEPTH_SCALING, ratio=_DEPTH_RATIO)
def branch_multiplier(depth_scaling: str, ratio: float) -> float:
    """Residual-branch multiplier (L / L0)^-alpha of a depth scaling (TP VI Sec. 3; CompleteP Table 1)."""
    return ratio ** -DEPTH_SCALINGS[depth_scaling]


@declare(depth_scaling=_DEPTH_SCALING, ratio=_DEPTH_RATIO, optimizer=Choice(tuple(OPTIMIZER_FAMILY)))
def depth_lr_scale(depth_scaling: str, ratio: float, optimizer: str) -> float:
    """Learning-rate factor of the weights inside residual branches: (L / L0)^(2 alpha - 1) under SGD and
    (L / L0)^(alpha - 1) under Adam for alpha > 0 (TP VI Sec. 3: constant SGD lr and Adam lr / sqrt(L) at
    alpha = 1/2; CompleteP Table 1: constant Adam lr at alpha = 1); 1 without branch scaling. Only learning rates
    are scaled: CompleteP's depth corrections of Adam's epsilon and of weight decay are not applied."""
    alpha = DEPTH_SCALINGS[depth_scaling]
    if alpha == 0:
        return 1.0
    return ratio ** ((2 * alpha - 1) if OPTIMIZER_FAMILY[optimizer] == "sgd" else (alpha - 1))
