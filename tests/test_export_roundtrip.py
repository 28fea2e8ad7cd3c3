"""Issue 23, item 3: a training panel's JSON export loads back into a fresh panel as the same figure, and its size
follows what is drawn. A Training-dynamics export did not load ("records cannot be drawn (AttributeError: 'list'
object has no attribute 'shape')"), nor did Neural collapse's ("list indices must be integers or slices, not
tuple"): arrays came back as nested lists. A 1000-step run on a 2-D task exported 7.9 MB (every record's learned
function on the 48 x 48 grid, at float64's 20 digits), over the share box's 2 MB."""

import json

import numpy as np
import pytest

from widgets.panel import LivePanel, records_json
from widgets.panels import PANELS, TrainingDynamicsPanel
from workbench.core.experiment import Record
from workbench.experiments import training_dynamics
from workbench.runs.store import array_from, as_declared, plain, restore

LIVE = [cls for cls in PANELS if issubclass(cls, LivePanel)]


def figure(panel) -> list[dict]:
    """What a reader sees of each axes: texts, legend, lines, images, scatter offsets and bar heights."""
    out = []
    for ax in panel.live.fig.axes:
        legend = ax.get_legend()
        out.append(
            dict(
                texts=(ax.get_title(), ax.get_xlabel(), ax.get_ylabel()),
                legend=[t.get_text() for t in legend.get_texts()] if legend else None,
                lines=[
                    (line.get_label(), np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float))
                    for line in ax.get_lines()
                ],
                images=[np.asarray(im.get_array(), float) for im in ax.get_images() if im.get_visible()],
                offsets=[np.asarray(c.get_offsets(), float) for c in ax.collections if hasattr(c, "get_offsets")],
                bars=[p.get_height() for p in ax.patches if hasattr(p, "get_height")],
            )
        )
    return out


def close(a, b) -> None:
    """Equal within float32 rounding (the export stores floats at float32)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    scale = float(np.nanmax(np.abs(a))) if np.isfinite(a).any() else 1.0
    np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6 * scale, equal_nan=True)


def same_figure(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want), "axes count"
    for i, (g, e) in enumerate(zip(got, want)):
        assert g["texts"] == e["texts"] and g["legend"] == e["legend"], f"axes {i}"
        assert [n for n, _, _ in g["lines"]] == [n for n, _, _ in e["lines"]], f"axes {i}: lines"
        for (_, gx, gy), (_, ex, ey) in zip(g["lines"], e["lines"]):
            close(ex, gx)
            close(ey, gy)
        for key in ("images", "offsets"):
            assert len(g[key]) == len(e[key]), f"axes {i}: {key}"
            for ga, ea in zip(g[key], e[key]):
                close(ea, ga)
        close(e["bars"], g["bars"])


def nested(value):
    """An export as written before arrays were tagged: every array as nested lists, floats at float64."""
    if isinstance(value, dict):
        if "$array" in value:
            return array_from(value).astype(float if value["dtype"].startswith("float") else object).tolist()
        return {k: nested(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nested(v) for v in value]
    return value


@pytest.mark.parametrize("cls", LIVE, ids=[cls.__name__ for cls in LIVE])
def test_an_exported_run_loads_back_as_the_same_figure(cls):
    panel = cls(cls.experiment.Config().replace(**cls.quick))
    try:
        panel.controller.start()
        assert panel.wait(120) and panel.controller.state == "finished", panel.controller.state
        text, want = panel.export("json").decode(), figure(panel)
    finally:
        panel.close()
    assert any(len(x) for axes in want for _, x, _ in axes["lines"]), "the run drew nothing"
    for form in (text, json.dumps(nested(json.loads(text)))):  # today's export and one of nested lists
        fresh = cls()
        try:
            fresh.load(form)
            assert fresh.message.value == "", fresh.message.value
            same_figure(figure(fresh), want)
        finally:
            fresh.close()


def test_arrays_round_trip_with_dtype_and_shape():
    metrics = {
        "f": np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3),
        "g": np.array([0.1, np.nan, np.inf]),
        "i": np.arange(4, dtype=np.int64),
        "b": np.array([True, False]),
        "empty": np.zeros((0, 3), np.float32),
        "x": 0.5,
    }
    back = restore(json.loads(json.dumps(plain(metrics))))
    for name in ("f", "i", "b", "empty"):
        assert back[name].dtype == metrics[name].dtype and back[name].shape == metrics[name].shape
        np.testing.assert_array_equal(back[name], metrics[name])
    assert back["g"].dtype == np.float32 and np.isnan(back["g"][1]) and back["g"][2] == np.inf
    np.testing.assert_array_equal(back["g"], metrics["g"].astype(np.float32))
    assert back["x"] == 0.5
    for bad in (
        {"$array": [1.0, 2.0], "dtype": "float32", "shape": [3]},
        {"$array": [1.0], "dtype": "object", "shape": [1]},
        {"$array": ["x"], "dtype": "float32", "shape": [1]},
    ):
        with pytest.raises(ValueError, match="run: an array"):
            restore(bad)
    legacy = Record(1, 1, "steps", {"t": 1.0, "train_loss": [1.0, 2.0], "f_grid": [[1], [2, 3]]}, "finished")
    record = as_declared(legacy, training_dynamics.METRICS)  # declared arrays, given as lists; a ragged one kept
    assert isinstance(record.metrics["train_loss"], np.ndarray) and isinstance(record.metrics["f_grid"], list)


def test_a_1000_step_2d_run_exports_well_under_1_mb():
    """The learned function on the 48 x 48 grid is drawn at the latest step only: the export keeps it there."""
    config = training_dynamics.Config().replace(task="xor", widths=(8,), ntk_points=2)
    assert config.train.steps == 1000 and config.grid == 48
    records = list(training_dynamics.run(config))
    assert records[-1].status == "finished"
    text = records_json(records, config, TrainingDynamicsPanel.export_latest)
    assert len(text) < 0.5 * 2**20, f"{len(text) / 2**20:.2f} MB"
    everything = records_json(records, config)  # every record's grid, as before (at float32: still ~4 MB)
    assert len(everything) > 5 * len(text)
