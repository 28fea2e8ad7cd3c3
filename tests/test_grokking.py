"""Grokking: Fourier measures, the pair MLP and transformer against direct implementations, modular
grokking and the XOR-cluster one-step overfitting then generalisation (Xu et al. 2024)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from workbench import data as D
from workbench.experiments import grokking as G
from workbench.nets.engine import TrainConfig, optimizer_for, train
from workbench.nets.engine import _compiled_chunk as compiled_chunk
from workbench.nets.toy_models import PairMLP, PairMLPConfig
from workbench.nets.transformer import Transformer, TransformerConfig
from workbench.theory.fourier import fourier_power, neuron_concentration, top_share


@pytest.mark.parametrize("p", [59, 60])
def test_fourier_power_finds_the_frequencies_of_cosine_embeddings(p):
    a = np.arange(p)
    wave = lambda k, phase: np.cos(2 * np.pi * k * a / p + phase)
    e = np.stack([wave(5, 0.3), 2 * wave(11, 1.0), wave(5, 2.0)], 1)
    power = fourier_power(e)
    assert power.shape == (p // 2 + 1,) and power.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(power[[5, 11]], [1 / 3, 2 / 3], atol=1e-12)
    assert top_share(power, 2) == pytest.approx(1.0) and top_share(power, 1) == pytest.approx(2 / 3)
    assert neuron_concentration(e) == pytest.approx(1.0)
    assert neuron_concentration(np.random.default_rng(0).normal(size=(p, 256))) < 0.3


def test_pair_mlp_gather_equals_one_hot_matmul():
    cfg = PairMLPConfig(p=7, width=16, activation="tanh")
    model = PairMLP(cfg, rngs=nnx.Rngs(params=0))
    model.bias[...] = jnp.linspace(-1, 1, 16)
    pairs = jnp.array(D.modular(7, "*", 0.5).x_train)
    onehot = jnp.concatenate([jax.nn.one_hot(pairs[:, 0], 7), jax.nn.one_hot(pairs[:, 1], 7)], 1)
    w1 = model.embeddings()  # (2p, width): E_a over E_b
    expected = jnp.tanh(onehot @ w1 + model.bias[...]) @ model.unembed[...] + model.out_bias[...]
    np.testing.assert_allclose(model(pairs), expected, rtol=1e-5, atol=1e-6)


def test_transformer_matches_full_causal_attention_written_out():
    cfg = TransformerConfig(p=11, d_model=16, n_heads=2, d_mlp=32)
    m = Transformer(cfg, rngs=nnx.Rngs(params=1))
    pairs = jnp.array(D.modular(11, "+", 0.5).x_train[:20])

    @jax.jit
    def reference(pairs):
        tokens = jnp.concatenate([pairs, jnp.full((20, 1), 11)], 1)
        x = m.W_E[...][tokens] + m.W_pos[...]
        heads = []
        for h in range(2):  # all positions, causal mask, then read position 2
            q, k, v = (x @ w[...][h] for w in (m.W_Q, m.W_K, m.W_V))
            s = jnp.einsum("npe,nqe->npq", q, k) / math.sqrt(8) + jnp.where(jnp.tril(jnp.ones((3, 3))) > 0, 0, -1e30)
            heads.append(jnp.einsum("npq,nqe->npe", jax.nn.softmax(s, -1), v) @ m.W_O[...][h])
        r = (x + sum(heads))[:, 2]
        r = r + jax.nn.relu(r @ m.W_in[...] + m.b_in[...]) @ m.W_out[...] + m.b_out[...]
        return r @ m.W_U[...]

    np.testing.assert_allclose(jax.jit(lambda x: m(x))(pairs), reference(pairs), rtol=1e-4, atol=1e-5)
    assert m.embeddings().shape == (11, 16)
    with pytest.raises(ValueError, match="n_heads: must divide d_model"):
        TransformerConfig(d_model=10, n_heads=4)


def test_engine_trains_other_modules_with_injected_beta2_and_no_recompile():
    data = D.modular(7, "+", 0.5)
    model = PairMLP(PairMLPConfig(p=7, width=8), rngs=nnx.Rngs(params=0))
    tx = optimizer_for(model.config, TrainConfig(optimizer="adamw", beta2=0.9))
    state = tx.init(nnx.state(model, nnx.Param))
    assert isinstance(state, (optax.InjectHyperparamsState, optax.InjectStatefulHyperparamsState))
    assert float(np.asarray(state.hyperparams["b2"])) == pytest.approx(0.9)

    def final_loss(beta2):
        m = PairMLP(PairMLPConfig(p=7, width=8), rngs=nnx.Rngs(params=0))
        recs = list(
            train(m, data, TrainConfig(optimizer="adamw", lr=1e-2, beta2=beta2, steps=20, record_every=10, loss="xent"))
        )
        return recs[-1].metrics["train_loss"], [r.status for r in recs]

    a, _ = final_loss(0.98)
    misses = compiled_chunk.cache_info().misses
    b, statuses = final_loss(0.999)
    assert a != b and "compiling" not in statuses and compiled_chunk.cache_info().misses == misses


def test_modular_addition_memorises_then_generalises():
    cfg = G.Config().replace(p=31, train_fraction=0.6, width=128, steps=2500, record_every=250)
    recs = [r for r in G.run(cfg) if r.status != "compiling"]
    last, first = recs[-1].metrics, recs[0].metrics
    assert last["train_acc"] == 1.0 and last["test_acc"] > 0.95
    assert last["step_memorised"] <= 500 and last["step_generalised"] >= 4 * last["step_memorised"]
    early = next(r for r in recs if r.step == last["step_memorised"]).metrics
    assert early["test_acc"] < 0.2  # memorised, not generalised
    assert last["fourier_power"].shape == (16,) and last["fourier_neuron_share"] > 2 * first["fourier_neuron_share"]
    assert math.isnan(first["step_generalised"]) and last["weight_norm"] > 0


def test_xor_clusters_fit_noisy_labels_after_one_step_then_generalise():
    cfg = next(c for name, c in G.PRESETS.items() if "XOR" in name).replace(steps=40, record_every=1)
    acc = {r.step: (r.metrics["train_acc"], r.metrics["test_acc"]) for r in G.run(cfg) if r.metrics}
    assert acc[1][0] == 1.0 and acc[1][1] < 0.6  # 100% on 10% flipped labels, test near chance
    assert acc[40][0] == 1.0 and acc[40][1] > 0.85  # still interpolating, now generalising


def test_bad_grokking_configs_raise_errors_naming_the_field():
    with pytest.raises(ValueError, match="op: must be one of"):
        G.Config().replace(op="^")
    with pytest.raises(ValueError, match="train_fraction: must be in"):
        G.Config().replace(train_fraction=1.0)
    with pytest.raises(ValueError, match="p: division needs a prime"):
        list(G.run(G.Config().replace(p=12, op="/", steps=1)))
