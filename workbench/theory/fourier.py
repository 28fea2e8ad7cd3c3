"""Fourier spectrum of token embeddings over Z_p (Nanda et al. 2023, Sec. 4 and Fig. 3; Gromov 2023):
networks that grok modular addition embed token a through cos(2 pi k a / p), sin(2 pi k a / p) for a
few key frequencies k.

`fourier_power(E)` of an embedding E (p, d) (rows indexed by the token) is the power of the discrete
Fourier transform along the token axis, summed over the d columns and folded onto the frequencies
k = 0..p//2 (k and p - k are the cos/sin pair of one frequency), normalised to sum to one.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from workbench.core.declare import Array, Int, declare

__all__ = ["column_power", "fourier_power", "neuron_concentration", "neuron_spectrum", "random_spectrum", "top_share"]

MAX_ENTRY = 1e15  # embedding entries (weights are O(1)); their squared DFT sums stay far from overflow


@declare(embedding=Array("p d", lo=-MAX_ENTRY, hi=MAX_ENTRY))
def column_power(embedding: ArrayLike) -> np.ndarray:
    """Squared DFT modulus of every column of `embedding` (p, d) folded onto k = 0..p//2: (p//2 + 1, d)."""
    e = np.asarray(embedding, np.float64)
    p = e.shape[0]
    power = np.abs(np.fft.fft(e, axis=0)) ** 2
    folded = power[: p // 2 + 1].copy()
    folded[1 : (p + 1) // 2] += power[p - 1 : p // 2 : -1]  # add k = p - 1 .. to k = 1 .. (not k = p/2 twice)
    return folded


@declare(embedding=Array("p d", lo=-MAX_ENTRY, hi=MAX_ENTRY))
def fourier_power(embedding: ArrayLike) -> np.ndarray:
    """Share of the squared DFT norm of `embedding` (p, d) at each frequency k = 0..p//2."""
    folded = column_power(embedding).sum(1)
    return folded / max(folded.sum(), 1e-300)


@declare(embedding=Array("rows d", lo=-MAX_ENTRY, hi=MAX_ENTRY), p=Int(2, none_ok=True))
def neuron_spectrum(embedding: ArrayLike, p: int | None = None) -> np.ndarray:
    """Each neuron's (column's) shares of its non-constant power at k = 1..p//2, sorted largest first, averaged
    over neurons and tables: (p//2,), summing to one; a single bar at rank 1 when every neuron is one wave (the
    single-frequency neurons of Gromov 2023 and Nanda et al. 2023, Fig. 3), `random_spectrum` at random init.

    `embedding` is (n * p, d): `n` tables of `p` rows stacked along the token axis, e.g. the pair MLP's
    [E_a; E_b] of `PairMLP.embeddings()` (n = 2), or the transformer's W_E (n = 1); `p` defaults to the
    number of rows. Each table is Fourier-transformed over Z_p on its own: a DFT over all 2p rows would
    work over Z_2p, where a pure wave in E_a and E_b is no longer a single frequency."""
    e = np.asarray(embedding, np.float64)
    rows = e.shape[0]
    period = rows if p is None else p
    if period < 2 or rows % period:
        raise ValueError(f"p: the {rows} embedding rows are not whole tables of p = {period} rows")
    shares = []
    for table in e.reshape(rows // period, period, -1):
        power = column_power(table)[1:]
        shares.append(np.sort(power / np.maximum(power.sum(0), 1e-300), axis=0)[::-1].mean(1))
    return np.mean(shares, axis=0)


@declare(embedding=Array("rows d", lo=-MAX_ENTRY, hi=MAX_ENTRY), p=Int(2, none_ok=True))
def neuron_concentration(embedding: ArrayLike, p: int | None = None) -> float:
    """Mean over neurons (columns) and tables of the share of a column's non-constant power at its
    strongest frequency (the first entry of `neuron_spectrum`); 1 when every neuron is a single wave
    cos(2 pi k a / p + phase) in every table.

    Random baseline: for i.i.d. Gaussian entries and odd p the folded powers at k = 1..m, m = (p-1)/2,
    are i.i.d. exponentials, whose max/sum is independent of the sum, so the expected share is exactly
    H_m / m (H_m = 1 + 1/2 + ... + 1/m; 0.137 at p = 59, 0.118 at p = 71, 0.082 at p = 113). For even p
    the lone real term k = p/2 puts it between H_{p/2} / (p/2) and H_{p/2-1} / (p/2-1)."""
    return float(neuron_spectrum(embedding, p)[0])


@declare(m=Int(1, 100_000))
def random_spectrum(m: int) -> np.ndarray:
    """Expected `neuron_spectrum` of i.i.d. Gaussian embeddings over m = (p - 1)/2 frequencies (odd p): the
    normalised powers are uniform spacings of [0, 1], whose j-th largest has mean (1/m) sum_{i=j}^m 1/i
    (Renyi's representation of exponential order statistics; David & Nagaraja 2003, Sec. 6.4)."""
    return np.cumsum(1.0 / np.arange(m, 0, -1))[::-1] / m


@declare(power=Array("k", lo=0.0), k=Int(1))
def top_share(power: np.ndarray, k: int) -> float:
    """Share of the non-constant power (k >= 1) held by the `k` strongest frequencies."""
    nonconstant = np.asarray(power)[1:]
    return float(np.sort(nonconstant)[::-1][:k].sum() / max(nonconstant.sum(), 1e-300))
