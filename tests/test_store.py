"""RunStore keeps every record of a run on disk, arrays and non-finite values included."""

import numpy as np

from workbench import data as D
from workbench.models import MLPConfig, build_mlp
from workbench.store import RunStore
from workbench.training import TrainConfig, train


def test_records_round_trip_through_the_store(tmp_path):
    cfg = TrainConfig(steps=40, record_every=20)
    store = RunStore(tmp_path / "run.jsonl", cfg)
    records = list(
        train(
            build_mlp(MLPConfig(in_dim=1)),
            D.sine(n_train=8),
            cfg,
            metrics_fn=lambda m: {"norms": np.array([1.0, np.nan])},
        )
    )
    for r in records:
        store.append(r)
    head, loaded = RunStore.load(tmp_path / "run.jsonl")
    assert TrainConfig.from_dict(head["fields"]) == cfg
    assert [r.step for r in loaded] == [r.step for r in records]
    assert loaded[-1].metrics["train_loss"] == records[-1].metrics["train_loss"]
    assert np.isnan(loaded[0].metrics["batch_loss"]) and np.isnan(loaded[-1].metrics["norms"][1])
