"""A real scaling law: a `teacher_fit` sweep over the training-set size on Dask, fitted as L(n) = a n^-alpha + c with
bootstrap intervals and stored with the sweep in the run database.

    python -m benchmarks.bench_scaling [--quick] [--db PATH] [--steps 1000] [--resamples 2000]

Sweep: `teacher_fit` (targets of a random depth-2 tanh network on 16-dimensional Gaussian inputs, 256 test points),
n_train = 64, 128, ..., 2048 x seeds 0, 1, 2 = 18 runs of a depth-2, width-128 MLP trained full batch with Adam
(lr 2^-9, `--steps` steps), through `workbench.runs.sweep.run` (a local cluster, one worker per CPU) into the run
database (default: $WORKBENCH_DB or the user's data folder, so the Scaling panel lists it); a rerun finds every point
finished and only fits again. The fit is `workbench.runs.scaling.fit_sweep` of test_loss against n_train, the same as
`python -m workbench runs fit --sweep ID --metric test_loss --axis n_train --guess G`, with Hestness et al.'s best
guess G = the loss of predicting the targets' mean, 0.5 Var(y). `--quick`: 100 steps, 2 seeds.

The teacher and its 256 test points are the same at every n_train and the training sets are nested
(`workbench.data.teacher` draws them from separate random streams): one task, the seeds varying the initialisation.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from workbench.data import teacher
from workbench.experiments import teacher_fit as T
from workbench.runs import sweep
from workbench.runs.rundb import RunDB
from workbench.runs.scaling import fit_sweep, summary

SIZES = [64, 128, 256, 512, 1024, 2048]


def base_config(steps: int) -> T.Config:
    """The sweep's fixed settings: a depth-2, width-128 MLP, Adam at 2^-9, full batch, one record at the end."""
    return T.Config().replace(
        **{"model.width": 128, "model.depth": 2, "train.lr": 2.0**-9, "train.steps": steps, "train.record_every": steps}
    )


def best_guess() -> float:
    """The loss of predicting the test targets' mean, 0.5 Var(y) (teacher_fit's test set, the same at every size)."""
    return 0.5 * float(np.var(teacher(2, 256, 16, depth=2, seed=1234).y_test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="100 steps, 2 seeds")
    parser.add_argument("--db", help="run database (default: $WORKBENCH_DB or the user's data folder)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    steps, seeds = (100, [0, 1]) if args.quick else (args.steps, [0, 1, 2])
    db = RunDB(args.db)
    start = time.perf_counter()
    records = list(sweep.run(T, base_config(steps), grid={"n_train": SIZES}, seeds=seeds, db=db))
    last = records[-1].metrics
    print(
        f"sweep {last['sweep_id']}: {len(SIZES)} sizes x {len(seeds)} seeds, {steps} steps; ran {last['ran']}, "
        f"skipped {last['skipped']} (already in {db.path}), failed {last['failed']}; "
        f"{time.perf_counter() - start:.1f} s"
    )
    start = time.perf_counter()
    guess = best_guess()
    fit, points = fit_sweep(db, last["sweep_id"], "test_loss", "n_train", resamples=args.resamples, guess=guess)
    print(summary(fit, points))
    print(f"fitted and stored with sweep {points.sweep_id} in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
