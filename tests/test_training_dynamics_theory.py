"""Training dynamics against the theory it draws (issue 12, item 1), checked with independent numpy code.

In the panel's default config (sine, one hidden ReLU layer, ntk parametrization, SGD at lr 0.02) each finite
network approaches its own kernel-regime prediction as it widens: the RMS gap on the plotting grid falls with
a log-log slope near -1/2, and the widest network's loss curve lies on its prediction. The reference here is
written from the definitions, not with the code under test: the arc-cosine NTK of a one-hidden-layer ReLU
net in closed form (Cho & Saul 2009; Jacot et al. 2018), the linearised network stepped by plain gradient
descent f <- f - (lr/N) Theta (f(X) - y) (Lee et al. 2019, Sec. 2.2), and the network trained by
hand-written backpropagation in float64 from the experiment's initial weights.
"""

import math

import numpy as np
import pytest

from workbench.experiments import training_dynamics as T
from workbench.nets.models import build_mlp

WIDTHS = (64, 256, 1024, 4096)
CONFIG = T.Config().replace(widths=WIDTHS)  # every other field at its default


@pytest.fixture(scope="module")
def records():
    return [r for r in T.run(CONFIG) if r.status != "compiling"]


def _stack(records, name):
    return np.array([r.metrics[name] for r in records])


def _relu_ntk(x1, x2, weight_std, bias_std, base_width):
    """Infinite-width NTK of training of f = sqrt(n0/n) relu(x W1 + b1) W2 + b2, W1 ~ N(0, s_w^2/d),
    W2 ~ N(0, s_w^2/n0), biases ~ N(0, s_b^2), every tensor trained by SGD at the same rate: n0 E[relu relu] +
    s_w^2 E[relu' relu'] (x.x' + 1) + 1, the expectations in closed form (Cho & Saul 2009)."""
    d = x1.shape[1]
    q1 = weight_std**2 * np.sum(x1**2, 1) / d + bias_std**2
    q2 = weight_std**2 * np.sum(x2**2, 1) / d + bias_std**2
    cross = weight_std**2 * x1 @ x2.T / d + bias_std**2
    norm = np.sqrt(np.outer(q1, q2))
    angle = np.arccos(np.clip(cross / norm, -1.0, 1.0))
    e_phi = norm * (np.sin(angle) + (math.pi - angle) * np.cos(angle)) / (2 * math.pi)
    e_dphi = (math.pi - angle) / (2 * math.pi)
    return base_width * e_phi + weight_std**2 * e_dphi * (x1 @ x2.T + 1.0) + 1.0


def _reference(width):
    """(network losses per record, kernel-regime losses per record, network and prediction on the grid at the
    end) for one width, from the experiment's initial weights."""
    c, mc, tc = CONFIG, CONFIG.model, CONFIG.train
    assert (mc.depth, mc.activation, mc.parametrization, tc.optimizer, c.task) == (1, "relu", "ntk", "sgd", "sine")
    data = T.dataset(c)
    x, y = np.asarray(data.x_train, np.float64), np.asarray(data.y_train, np.float64)
    grid = np.linspace(-1.0, 1.0, c.grid)[:, None]
    model = build_mlp(T.model_config(c, data, width), seed=c.seed)
    w1, w2 = (np.asarray(k[...], np.float64) for k in model.kernels)
    b1, b2 = (np.asarray(b[...], np.float64) for b in model.biases)
    m = math.sqrt(mc.base_width / width)  # NTK parametrization: readout multiplier (n / n0)^-1/2
    n, lr = len(x), tc.lr

    def forward(x):
        h = x @ w1 + b1
        return h, m * np.maximum(h, 0.0) @ w2 + b2

    x_all = np.concatenate([x, grid])
    theta = _relu_ntk(x_all, x, mc.weight_std, mc.bias_std, mc.base_width)
    f_lin = forward(x_all)[1]  # the linearised network starts at the network's own f_0
    net_losses, lin_losses = [], []
    for step in range(tc.steps + 1):
        h, f = forward(x)
        if step % tc.record_every == 0:
            net_losses.append(0.5 * np.mean(np.sum((f - y) ** 2, 1)))
            lin_losses.append(0.5 * np.mean(np.sum((f_lin[:n] - y) ** 2, 1)))
        if step == tc.steps:
            break
        r = (f - y) / n  # dL/df for L = 0.5 mean ||f - y||^2
        delta = m * (r @ w2.T) * (h > 0)
        w2, b2, w1, b1 = (
            w2 - lr * m * np.maximum(h, 0.0).T @ r,
            b2 - lr * r.sum(0),
            w1 - lr * x.T @ delta,
            b1 - lr * delta.sum(0),
        )
        f_lin = f_lin - lr / n * theta @ (f_lin[:n] - y)
    return np.array(net_losses), np.array(lin_losses), forward(grid)[1][:, 0], f_lin[n:, 0]


@pytest.fixture(scope="module")
def reference():
    return {w: _reference(w) for w in WIDTHS}


def _slope(widths, gaps):
    return np.polyfit(np.log(widths), np.log(gaps), 1)[0]


def test_experiment_matches_the_independent_network_and_prediction(records, reference):
    assert [r.step for r in records] == list(range(0, CONFIG.train.steps + 1, CONFIG.train.record_every))
    loss, ntk_loss = _stack(records, "train_loss"), _stack(records, "ntk_train_loss")
    last = records[-1].metrics
    for i, w in enumerate(WIDTHS):
        net, lin, f_net, f_lin = reference[w]
        np.testing.assert_allclose(ntk_loss[:, i], lin, rtol=1e-3)  # float32 kernel and eigh vs float64
        np.testing.assert_allclose(last["ntk_f_grid"][i], f_lin, atol=2e-4)
        np.testing.assert_allclose(loss[:, i], net, rtol=1e-3)  # float32 training vs float64
        np.testing.assert_allclose(last["f_grid"][i], f_net, atol=2e-4)


def test_prediction_follows_each_networks_own_initial_outputs(records):
    first = records[0].metrics  # step 0: the prediction is the network itself (not the ensemble mean f_0 = 0)
    np.testing.assert_array_equal(first["ntk_f_grid"], first["f_grid"])
    np.testing.assert_allclose(first["ntk_train_loss"], first["train_loss"], rtol=1e-5)
    assert not any("ensemble" in name for name in records[-1].metrics)  # no f_0 = 0 curve to mislabel


def test_gap_to_the_ntk_prediction_falls_with_width(records, reference):
    gaps = records[-1].metrics["ntk_distance"]
    independent = [np.sqrt(np.mean((f_net - f_lin) ** 2)) for _, _, f_net, f_lin in reference.values()]
    np.testing.assert_allclose(gaps, independent, rtol=0.02)
    assert np.all(np.diff(gaps) < 0), gaps
    for g in (gaps, independent):
        assert -0.7 <= _slope(WIDTHS, g) <= -0.3, (g, _slope(WIDTHS, g))  # lazy training: ~ n^-1/2


def test_widest_network_loss_lies_on_its_prediction(records, reference):
    loss, ntk_loss = _stack(records, "train_loss")[:, -1], _stack(records, "ntk_train_loss")[:, -1]
    assert np.max(np.abs(loss / ntk_loss - 1)) < 0.1  # at every recorded step
    net, lin, _, _ = reference[WIDTHS[-1]]
    assert np.max(np.abs(net / lin - 1)) < 0.1
    assert loss[-1] < 0.2 * loss[0]  # and it did train (0.14 -> 0.019)
