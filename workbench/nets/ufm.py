"""Deep linear unconstrained-features model (Mixon et al. 2020; Dang et al. 2023): free features
h_i (one trainable vector per training sample) followed by `depth` bias-free linear layers,
f(i) = W_M ... W_1 h_i. The input of the model is the sample index i.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from numpy.typing import ArrayLike

from workbench.core.config import spec
from workbench.core.declare import Array, Instance, Int, declare
from workbench.data import Dataset
from workbench.nets.models import ModelConfig

__all__ = ["UFM", "UFMConfig", "build_ufm", "index_dataset"]


@dataclass(frozen=True)
class UFMConfig(ModelConfig):
    """Sizes of a deep linear unconstrained-features model."""

    n_samples: int = spec(400, lo=2, hi=100_000, log=True, doc="number of free feature vectors N")
    dim: int = spec(16, lo=1, hi=4096, log=True, doc="feature and hidden dimension d")
    depth: int = spec(1, lo=1, hi=8, doc="number of linear layers M after the features")
    n_classes: int = spec(4, lo=2, hi=1000, doc="number of classes C")
    init_std: float = spec(0.1, lo=0.0, hi=10.0, doc="init std of every entry of the features and layers")


class UFM(nnx.Module):
    """f(i) = h_i W_1 ... W_M (row-vector convention: W_m has shape (fan_in, fan_out))."""

    def __init__(self, config: UFMConfig, *, rngs: nnx.Rngs):
        c = config
        self.config = c
        self.features = nnx.Param(c.init_std * jax.random.normal(rngs.params(), (c.n_samples, c.dim)))
        dims = [c.dim] * c.depth + [c.n_classes]
        self.layers = nnx.List(
            [nnx.Param(c.init_std * jax.random.normal(rngs.params(), (c.dim, d_out))) for d_out in dims[1:]]
        )

    def classifier(self) -> tuple[jax.Array, None]:
        """(W (C, d), no bias): the logits are W h of the last features h."""
        return self.layers[-1][...].T, None

    def __call__(self, idx: jax.Array, *, return_hidden: bool = False):
        x = self.features[...][jnp.reshape(idx, (-1,))]
        features = [x]
        for w in self.layers[:-1]:
            x = x @ w[...]
            features.append(x)
        out = x @ self.layers[-1][...]
        return (out, {"features": features}) if return_hidden else out


@declare(config=Instance(UFMConfig), seed=Int(0, 2**31 - 1))
def build_ufm(config: UFMConfig, seed: int = 0) -> UFM:
    """A freshly initialised UFM; the same config and seed give the same features and layers."""
    return UFM(config, rngs=nnx.Rngs(params=seed))


@declare(class_sizes=Array("classes", lo=1, hi=100_000, integer=True))  # UFMConfig's range of n_samples
def index_dataset(class_sizes: Sequence[int] | ArrayLike) -> Dataset:
    """The UFM's data: inputs are the sample indices 0..N-1, labels in blocks of `class_sizes`;
    the test set is the training set (free features exist only for training samples)."""
    class_sizes = np.asarray(class_sizes)
    y = np.repeat(np.arange(len(class_sizes)), class_sizes).astype(np.int32)
    x = np.arange(len(y), dtype=np.int32)[:, None]
    return Dataset(x, y, x, y, len(class_sizes))
