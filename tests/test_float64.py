"""The float64 simulations cannot deadlock on jaxlib's batched LAPACK kernels (`workbench.core.float64`): one batched
solve per step, one simulation at a time, and the app sequence that hung at 0% CPU before (a tab computed, then
Learning curves opened) finishing. The hangs are run in a child process with a deadline, so a regression fails
instead of stalling the suite."""

import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np

from workbench.core.float64 import map_batches


def _point(a, b):
    return jnp.linalg.solve(a, b)


def _system(points: int):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(points, 6, 6)) + 6 * np.eye(6)
    return jnp.asarray(a, jnp.float32), jnp.asarray(rng.normal(size=(points, 6)), jnp.float32)


def test_map_batches_equals_lax_map_with_one_lu_call():
    a, b = _system(10)  # 10 points in batches of 4: lax.map leaves a remainder of 2
    ours = map_batches(_point, (a, b), 4)
    theirs = jax.lax.map(lambda p: _point(*p), (a, b), batch_size=4)
    assert ours.shape == (10, 6)
    np.testing.assert_allclose(ours, np.linalg.solve(np.asarray(a), np.asarray(b)[..., None])[..., 0], rtol=1e-4)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)

    def lu_calls(fn):
        return jax.jit(fn).lower(a, b).as_text().count("getrf")

    assert lu_calls(lambda a, b: jax.lax.map(lambda p: _point(*p), (a, b), batch_size=4)) == 2  # loop + remainder
    assert lu_calls(lambda a, b: map_batches(_point, (a, b), 4)) == 1


def _child(code: str, timeout: float = 400) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return out.stdout


def test_learning_curves_tab_after_another_tab_finishes():
    out = _child(
        """
        import faulthandler, os
        faulthandler.dump_traceback_later(200, exit=True)
        from widgets.panels import DoubleDescentPanel, InfiniteDepthPanel, LearningCurvesPanel
        panels = []
        for cls in (InfiniteDepthPanel, LearningCurvesPanel, DoubleDescentPanel):  # defaults: the stalled sizes
            panels.append(cls())
            print(cls.title, panels[-1].wait(150), panels[-1].controller.state, flush=True)
        os._exit(0)
        """
    )
    assert out.split("\n")[:3] == [
        "Infinite depth True finished",
        "Learning curves True finished",
        "Double descent in time True finished",
    ], out


def test_simulations_in_two_threads_at_once():
    out = _child(
        """
        import faulthandler, threading
        import numpy as np
        faulthandler.dump_traceback_later(200, exit=True)
        from workbench.theory import learning_curves as LC, linear_dynamics as LD
        lam = np.arange(1, 257) ** -1.5
        task = LC.Task(lam, lam, 0.5)  # v_i^2 = lam_i
        done = []
        def rf():
            for seed in range(6):
                LC.simulate_rf(task, 64, np.geomspace(8, 128, 9).round(), 1e-3, trials=4, seed=seed)
            done.append("rf")
        def linear():
            for seed in range(6):
                LD.simulate(np.geomspace(0.5, 1e3, 12), 128, 1.5, [1.0, 4.0], trials=4, seed=seed)
            done.append("linear")
        threads = [threading.Thread(target=f) for f in (rf, linear)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print(sorted(done))
        """
    )
    assert out.strip() == "['linear', 'rf']", out
