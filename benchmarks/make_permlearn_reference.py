"""Make tests/data/permlearn_members.npz from a clone of opallab/permlearn (MIT License, (c) 2025 Opal Lab).

    python -m benchmarks.make_permlearn_reference PATH_TO_PERMLEARN

For k = 5 and 10, results/experiment_1/<k>/0 holds every trained member's outputs on the 1000 test inputs
(predictions.pt), the inputs and their targets (torch zip archives of float32 storages, read here without torch).
A member's output depends only on the input, so each distinct input is kept once with its count: `k<k>_outputs`
(M, T, k), `k<k>_targets` (T, k), `k<k>_counts` (T,), `k<k>_pairs` (T, 2), the CSV's count `k<k>_needed`.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np

KS = {5: 43, 10: 69}  # k: the repository's models needed (results.csv, last row)


def storage(path: Path) -> np.ndarray:
    """The float32 storage of a one-tensor torch archive."""
    with zipfile.ZipFile(path) as z:
        return np.frombuffer(z.read(next(n for n in z.namelist() if n.endswith("data/0"))), "<f4")


def main(argv=None):
    root = Path((argv or sys.argv[1:])[0]) / "results" / "experiment_1"
    out = {}
    for k, needed in KS.items():
        d = root / str(k) / "0"
        x = storage(d / "test_set_X.pt").reshape(1000, k)
        y = storage(d / "test_set_Y.pt").reshape(k, 1000).T  # saved as the transposed view (P @ X.T).T
        pred = storage(d / "predictions.pt").reshape(needed, 1000, k)
        _, first, counts = np.unique(x > 0, axis=0, return_index=True, return_counts=True)
        out[f"k{k}_outputs"] = pred[:, first]
        out[f"k{k}_targets"] = (y[first] > 0).astype(np.int8)
        out[f"k{k}_counts"] = counts
        out[f"k{k}_pairs"] = np.array([np.flatnonzero(row) for row in x[first] > 0])
        out[f"k{k}_needed"] = np.array(needed)
    target = Path(__file__).resolve().parent.parent / "tests" / "data" / "permlearn_members.npz"
    np.savez_compressed(target, **out)
    print(f"wrote {target} ({target.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
