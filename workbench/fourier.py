"""Fourier spectrum of token embeddings over Z_p (Nanda et al. 2023, Sec. 4 and Fig. 3; Gromov 2023):
networks that grok modular addition embed token a through cos(2 pi k a / p), sin(2 pi k a / p) for a
few key frequencies k.

`fourier_power(E)` of an embedding E (p, d) (rows indexed by the token) is the power of the discrete
Fourier transform along the token axis, summed over the d columns and folded onto the frequencies
k = 0..p//2 (k and p - k are the cos/sin pair of one frequency), normalised to sum to one.
"""

from __future__ import annotations

import numpy as np


def column_power(embedding) -> np.ndarray:
    """Squared DFT modulus of every column of `embedding` (p, d) folded onto k = 0..p//2: (p//2 + 1, d)."""
    e = np.asarray(embedding, np.float64)
    p = e.shape[0]
    power = np.abs(np.fft.fft(e, axis=0)) ** 2
    folded = power[: p // 2 + 1].copy()
    folded[1 : (p + 1) // 2] += power[p - 1 : p // 2 : -1]  # add k = p - 1 .. to k = 1 .. (not k = p/2 twice)
    return folded


def fourier_power(embedding) -> np.ndarray:
    """Share of the squared DFT norm of `embedding` (p, d) at each frequency k = 0..p//2."""
    folded = column_power(embedding).sum(1)
    return folded / max(folded.sum(), 1e-300)


def neuron_concentration(embedding) -> float:
    """Mean over columns (neurons) of the share of a column's non-constant power at its strongest
    frequency: about 2/(p-1)*log p for random weights, 1 when every neuron uses one frequency
    (the single-frequency neurons of Gromov 2023 and He et al. 2026)."""
    power = column_power(embedding)[1:]
    return float(np.mean(power.max(0) / np.maximum(power.sum(0), 1e-300)))


def top_share(power: np.ndarray, k: int) -> float:
    """Share of the non-constant power (k >= 1) held by the `k` strongest frequencies."""
    nonconstant = np.asarray(power)[1:]
    return float(np.sort(nonconstant)[::-1][:k].sum() / max(nonconstant.sum(), 1e-300))
