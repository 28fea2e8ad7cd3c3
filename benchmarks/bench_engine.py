"""Training-engine overhead: `workbench.nets.engine.train` against a bare jitted lax.scan of the same steps.

    python -m benchmarks.bench_engine [--quick]

Both run the same model, optimizer, data and number of steps after warm-up; the engine additionally
yields a Record (train/test loss and accuracy) every `record_every` steps. Target: ratio <= 1.1.
"""

from __future__ import annotations

import argparse
import functools

import jax
import optax
from flax import nnx

from benchmarks.timing import best_time
from workbench import data as D
from workbench.nets.engine import TrainConfig, model_loss, optimizer_for, targets, train
from workbench.nets.models import MLPConfig, build_mlp


def bare_loop(model, data, cfg: TrainConfig):
    """The same optimizer steps as one jitted lax.scan, no records: the floor the engine is held to."""
    graphdef, params = nnx.split(model, nnx.Param)
    tx = optimizer_for(model.config, cfg)
    grad = jax.grad(functools.partial(model_loss, graphdef, loss=cfg.loss))
    x, y = jax.numpy.asarray(data.x_train), targets(data, data.y_train, cfg.loss)

    @jax.jit
    def run(params, opt_state):
        def step(carry, _):
            p, s = carry
            updates, s = tx.update(grad(p, x, y), s, p)
            return (optax.apply_updates(p, updates), s), None

        return jax.lax.scan(step, (params, opt_state), None, length=cfg.steps)[0]

    return lambda: jax.block_until_ready(run(params, tx.init(params)))


def main(argv=None):
    assert __doc__ is not None  # the module docstring is the command's description
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    quick = parser.parse_args(argv).quick
    steps = 500 if quick else 2000
    data = D.playground("spiral", n=256)
    print(f"{'width':>6} {'steps':>6} {'bare steps/s':>13} {'engine steps/s':>15} {'overhead':>9}")
    for width in (64, 256) if quick else (64, 256, 512):
        mcfg = MLPConfig(in_dim=2, out_dim=2, width=width, depth=3, parametrization="mup")
        cfg = TrainConfig(optimizer="adam", lr=1e-3, steps=steps, record_every=100, loss="xent")
        bare = best_time(bare_loop(build_mlp(mcfg), data, cfg))
        engine = best_time(lambda mcfg=mcfg, cfg=cfg: list(train(build_mlp(mcfg), data, cfg)))
        print(f"{width:>6} {steps:>6} {steps / bare:>13.0f} {steps / engine:>15.0f} {engine / bare:>8.2f}x")
    print("target: engine overhead <= 1.10x (records every 100 steps with train/test metrics)")


if __name__ == "__main__":
    main()
