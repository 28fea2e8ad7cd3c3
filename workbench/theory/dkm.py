"""Deep kernel machines (Yang, Robeyns, Milsom, Anson, Schoots & Aitchison, "A theory of representation learning
gives a deep generalisation of kernel methods", ICML 2023, arXiv 2108.13097), with inducing points (their Sec. 6 and
the `dkm` library of Milsom et al., ICLR 2024).

Each of the L layers holds one learned Gram matrix over P inducing points, G_l = V_l V_l^T. Its prior is the kernel
map of the layer below, K(G) = sigma_w^2 E_{(u, v) ~ N(0, G)}[phi(u) phi(v)] + sigma_b^2 (the dual of any activation
of the registry: `workbench.theory.kernels.dual`), starting from the first pre-activations' Gram
G_0 = sigma_w^2 x x'/d + sigma_b^2 (neural-tangents' conventions). The objective (their Eq. 20) is

    L = E_q[log p(Y | F)] - sum_l nu KL(N(0, G_l) || N(0, K(G_{l-1}))) - KL(q(f_u) || N(0, K(G_L))),

and as nu -> infinity every G_l tends to the NNGP Gram K(G_{l-1}) of an MLP of L + 1 hidden layers (their Sec. 4).
Train and test points are conditioned on the inducing points layer by layer, as in the `dkm` library's GramLayer:
G_ti = K_ti K_ii^-1 G_ii and g_t = k_t - diag(K_ti K_ii^-1 K_it) + diag(K_ti K_ii^-1 G_ii K_ii^-1 K_it) (only the
diagonal of the test block is needed: each point's likelihood is its own).

V_l is whitened, V_l = chol(K_ii) M_l with M_l = I + tril(D_l) / max(nu, 1) lower triangular: D_l = 0 is the NNGP
exactly, the KL term is 0.5 (||M_l||^2 - P - 2 sum log |diag M_l|), and the optimum's D_l stays of order one at
every nu (M_l - I = O(1/nu)), so Adam's steps of about lr in D resolve it whatever nu (with D unscaled they are
steps of lr in M, and the distance from the NNGP would stop near lr, not fall as 1/nu), and the KL's curvature does
not grow with the conditioning of K_ii (the same objective in other coordinates).

Likelihoods: "gaussian" (variance `noise`) with the optimal q(f_u) in closed form (Titsias 2009's collapsed bound,
the exact marginal likelihood log N(Y; 0, K + noise I) when every training point is an inducing point);
"categorical" (softmax) with q(f_u) = N(chol(K_ii) mu, chol(K_ii) S S^T chol(K_ii)^T) shared over classes and a
learned output variance (prior c^2 K(G_L): the NNGP's scale is learned too), its expected log-likelihood a Monte
Carlo average over fixed draws (the objective is deterministic). The inducing inputs and nu ride in the parameters
with their gradients stopped (fixed; one compiled program trains every nu). Train in float64
(`workbench.core.float64.call`): Cholesky factors of Gram matrices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.scipy.linalg import solve_triangular
from numpy.typing import ArrayLike

from workbench.core import checks
from workbench.core.activations import get_activation
from workbench.core.config import spec
from workbench.core.declare import Array, Flag, Instance, Int, Real, declare
from workbench.core.fields import ACTIVATION
from workbench.core.memory import require
from workbench.nets.models import ModelConfig
from workbench.theory.kernels.dual import Dual, dual_of

__all__ = [
    "LIKELIHOODS",
    "NU_RANGE",
    "DKM",
    "DKMConfig",
    "Predictive",
    "build_dkm",
    "grams",
    "loss",
    "objective_terms",
    "penalties",
    "predict",
]

LIKELIHOODS = ("gaussian", "categorical")
NU_RANGE = (1e-4, 1e12)  # nu: below, the Grams leave the prior's scale; above, nu KL loses float64 precision


@dataclass(frozen=True)
class DKMConfig(ModelConfig):
    """Sizes, kernel and likelihood of a deep kernel machine."""

    in_dim: int = spec(2, lo=1, hi=100_000, doc="input dimension d")
    inducing: int = spec(32, lo=1, hi=4096, log=True, doc="inducing points P")
    layers: int = spec(2, lo=1, hi=16, doc="learned Gram layers L (the limit: NNGP of L + 1 hidden layers)")
    out_dim: int = spec(1, lo=1, hi=1000, doc="outputs (classes of the categorical likelihood)")
    activation: str = ACTIVATION("relu")
    weight_std: float = spec(1.0, lo=0.01, hi=10.0, doc="sigma_w of the kernel map")
    bias_std: float = spec(0.0, lo=0.0, hi=10.0, doc="sigma_b of the kernel map")
    likelihood: str = spec("gaussian", choices=LIKELIHOODS, doc="regression or softmax classification")
    noise: float = spec(0.1, lo=1e-6, hi=100.0, log=True, doc="Gaussian noise variance sigma^2")
    samples: int = spec(32, lo=1, hi=4096, log=True, doc="fixed Monte Carlo draws of the categorical likelihood")
    jitter: float = spec(1e-6, lo=0.0, hi=0.1, doc="added to K_ii's diagonal, relative to its mean")

    def param_labels(self, params: nnx.State) -> nnx.State:
        """Grams "hidden", the output distribution "output", the fixed inducing inputs and nu "input"."""
        roles = {"m": "hidden", "mu": "output", "s": "output", "log_scale": "output"}
        return jax.tree_util.tree_map_with_path(lambda path, _: roles.get(path[0].key, "input"), params)


class DKM(nnx.Module):
    """Parameters of a DKM: inducing inputs z (P, d), nu, the Grams' whitened nu-scaled deviations D = m (L, P, P)
    and, for the categorical likelihood, the whitened output mean mu (P, C), covariance factor s (P, P) and the log
    of the output's prior scale."""

    def __init__(self, config: DKMConfig, z: ArrayLike, nu: float, *, rngs: nnx.Rngs):
        c = self.config = config
        self.z = nnx.Param(jnp.asarray(z))
        dtype = self.z[...].dtype
        self.nu = nnx.Param(jnp.asarray(nu, dtype))
        self.m = nnx.Param(jnp.zeros((c.layers, c.inducing, c.inducing), dtype))
        if c.likelihood == "categorical":
            self.mu = nnx.Param(jnp.zeros((c.inducing, c.out_dim), dtype))
            self.s = nnx.Param(jnp.eye(c.inducing, dtype=dtype))
            self.log_scale = nnx.Param(jnp.zeros((), dtype))


def _example_config() -> DKMConfig:
    return DKMConfig(in_dim=2, inducing=4, layers=1, out_dim=2)


def _example_z() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(4, 2))


@declare(
    config=Instance(DKMConfig, example=_example_config),
    z=Array("P d", lo=-1e6, hi=1e6, example=_example_z),
    nu=Real(*NU_RANGE),
    seed=Int(0, 2**31 - 1),
)
def build_dkm(config: DKMConfig, z: ArrayLike, nu: float, seed: int = 0) -> DKM:
    """A DKM at its NNGP initialisation (every M_l = I; q(f_u) the prior) on inducing inputs z (P, d)."""
    z = np.asarray(z)
    if z.shape != (config.inducing, config.in_dim):
        raise ValueError(f"z: must have shape (inducing, in_dim) = {(config.inducing, config.in_dim)}, got {z.shape}")
    if config.bias_std == 0 and not np.any(z):
        raise ValueError("z: every inducing point is 0 and bias_std is 0, so every kernel is 0; move them or add bias")
    if config.jitter == 0 and len(np.unique(z, axis=0)) < len(z):
        raise ValueError("z: repeated inducing points make the Grams singular with jitter 0; drop them or add jitter")
    return DKM(config, z, nu, rngs=nnx.Rngs(params=seed))


class Blocks(NamedTuple):
    """A Gram matrix by blocks: inducing-inducing (P, P), points-inducing (n, P), the points' diagonal (n,)."""

    ii: jax.Array
    ti: jax.Array
    t: jax.Array


def _pairs(dual: Dual, q11: jax.Array, q12: jax.Array, q22: jax.Array) -> jax.Array:
    """E[phi(u) phi(v)] with |correlation| <= 1 - 16 eps: finite gradients where two points coincide (the angular
    closed forms take a square root of 1 - cos)."""
    bound = (1.0 - 16 * jnp.finfo(q12.dtype).eps) * jnp.sqrt(q11 * q22)
    return dual.expectations(q11, jnp.clip(q12, -bound, bound), q22)[0]


def _diagonal(dual: Dual, q: jax.Array) -> jax.Array:
    """E[phi(u)^2], u ~ N(0, q); for the angular families q^k j(0), whose gradient the closed form at correlation 1
    would not give."""
    if dual.angular is not None:
        return q**dual.angular.degree * dual.angular.j0
    return dual.diagonal(q)[0]


def _kernel(c: DKMConfig, g: Blocks) -> Blocks:
    """K(G) = sigma_w^2 E[phi(u) phi(v)] + sigma_b^2 by blocks (Yang et al. Eq. 4), the diagonals exact."""
    dual = dual_of(get_activation(c.activation))
    w2, b2 = c.weight_std**2, c.bias_std**2
    d = jnp.diagonal(g.ii)
    eye = jnp.eye(d.shape[0], dtype=bool)
    ii = jnp.where(eye, _diagonal(dual, d)[:, None], _pairs(dual, d[:, None], g.ii, d[None, :]))
    ti = _pairs(dual, g.t[:, None], g.ti, d[None, :])
    return Blocks(w2 * ii + b2, w2 * ti + b2, w2 * _diagonal(dual, g.t) + b2)


def _input_gram(c: DKMConfig, z: jax.Array, x: jax.Array) -> Blocks:
    """G_0 = sigma_w^2 x x'/d + sigma_b^2, the first pre-activations' covariance."""
    w2, b2, d = c.weight_std**2, c.bias_std**2, z.shape[1]
    return Blocks(w2 * z @ z.T / d + b2, w2 * x @ z.T / d + b2, w2 * jnp.sum(x * x, -1) / d + b2)


class _Layer(NamedTuple):
    chol: jax.Array  # chol(K_ii + jitter)
    a: jax.Array  # K_ti chol^-T (n, P)
    k_t: jax.Array  # diag K_tt (n,)


def _whiten(c: DKMConfig, k: Blocks) -> _Layer:
    """chol(K_ii + jitter mean(diag) I) and K_ti chol^-T."""
    chol = jnp.linalg.cholesky(
        k.ii + c.jitter * jnp.mean(jnp.diagonal(k.ii)) * jnp.eye(k.ii.shape[0], dtype=k.ii.dtype)
    )
    return _Layer(chol, k.ti @ _inverse(chol).T, k.t)


def _inverse(chol: jax.Array) -> jax.Array:
    """The inverse of a lower-triangular (P, P) factor: jaxlib's CPU triangular solve is ~300x slower with n >> P
    right-hand sides than with P of them (27 ms against 80 us at P = 50, n = 1000), so solves are products with it."""
    return solve_triangular(chol, jnp.eye(chol.shape[0], dtype=chol.dtype), lower=True)


def _kl_white(m: jax.Array) -> jax.Array:
    """KL(N(0, L M M^T L^T) || N(0, L L^T)) = 0.5 (||M||^2 - P - 2 sum log |M_jj|), M lower triangular."""
    return 0.5 * (jnp.sum(m * m) - m.shape[0] - 2 * jnp.sum(jnp.log(jnp.abs(jnp.diagonal(m)))))


def _forward(model: DKM, x: jax.Array, nngp: bool = False) -> tuple[_Layer, jax.Array, jax.Array]:
    """(the output layer's whitened kernel, KL of each layer (L,), learned Grams at the inducing points (L, P, P)),
    each point of x conditioned on the inducing points layer by layer; `nngp`: every M_l = I."""
    c = model.config
    z, nu = (jax.lax.stop_gradient(v[...]) for v in (model.z, model.nu))
    g = _input_gram(c, z, x)
    kls, gs = [], []
    for delta in model.m[...]:
        layer = _whiten(c, _kernel(c, g))
        m = jnp.eye(delta.shape[0], dtype=delta.dtype) + (0.0 if nngp else jnp.tril(delta) / jnp.maximum(nu, 1.0))
        v = layer.chol @ m
        am = layer.a @ m
        g = Blocks(v @ v.T, am @ v.T, layer.k_t - jnp.sum(layer.a**2, -1) + jnp.sum(am**2, -1))
        kls.append(_kl_white(m))
        gs.append(g.ii)
    return _whiten(c, _kernel(c, g)), jnp.stack(kls), jnp.stack(gs)


def _collapsed(c: DKMConfig, out: _Layer, y: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Titsias's bound log N(y; 0, A A^T + s2 I) - tr(K - A A^T) / (2 s2) summed over y's columns, with the chol of
    B = I + A^T A / s2 and B^-1 A^T y / s2 (the optimal whitened mean of q(f_u))."""
    s2, (n, p), k = c.noise, out.a.shape, y.shape[1]
    b = jnp.eye(p, dtype=out.a.dtype) + out.a.T @ out.a / s2
    lb = jnp.linalg.cholesky(b)
    w = solve_triangular(lb, out.a.T @ y, lower=True) / s2
    logdet = 2 * jnp.sum(jnp.log(jnp.diagonal(lb))) + n * jnp.log(s2)
    quad = jnp.sum(y * y) / s2 - jnp.sum(w * w)
    bound = -0.5 * (k * (n * jnp.log(2 * jnp.pi) + logdet) + quad)
    trace = jnp.sum(out.k_t - jnp.sum(out.a**2, -1)) / (2 * s2)
    mean = solve_triangular(lb.T, w, lower=False)
    return bound - k * trace, lb, mean


def _draws(c: DKMConfig, n: int, dtype: jnp.dtype) -> jax.Array:
    """The fixed standard normal draws (samples, n, C) of the categorical likelihood."""
    return jax.random.normal(jax.random.key(0), (c.samples, n, c.out_dim), dtype)


def _latent(model: DKM, out: _Layer) -> tuple[jax.Array, jax.Array]:
    """Mean (n, C) and variance (n,) of f under the categorical model's q(f_u), its prior K(G_L) scaled by the
    learned output variance exp(2 log_scale) (the `dkm` library learns its kernels' variances)."""
    s, scale = jnp.tril(model.s[...]), jnp.exp(model.log_scale[...])
    var = out.k_t - jnp.sum(out.a**2, -1) + jnp.sum((out.a @ s) ** 2, -1)
    return scale * (out.a @ model.mu[...]), scale**2 * var


def _output_kl(model: DKM) -> jax.Array:
    """KL(q(f_u) || N(0, K_ii)) summed over classes, whitened: 0.5 ||mu||^2 + C KL(N(0, S S^T) || N(0, I)); 0 for
    the Gaussian likelihood (its optimal q is in the bound)."""
    if model.config.likelihood == "gaussian":
        return jnp.zeros((), model.m[...].dtype)
    return 0.5 * jnp.sum(model.mu[...] ** 2) + model.config.out_dim * _kl_white(jnp.tril(model.s[...]))


def _terms(model: DKM, x: jax.Array, y: jax.Array) -> dict[str, jax.Array]:
    """Expected log-likelihood, nu sum_l KL_l and the output KL (the three terms of the objective)."""
    c = model.config
    out, kls, _ = _forward(model, x)
    nu = jax.lax.stop_gradient(model.nu[...])
    if c.likelihood == "gaussian":
        ll = _collapsed(c, out, y)[0]
    else:
        mean, var = _latent(model, out)
        f = mean + jnp.sqrt(jnp.maximum(var, 0.0))[:, None] * _draws(c, x.shape[0], mean.dtype)
        ll = jnp.sum(y * jax.nn.log_softmax(f, -1)) / c.samples
    return {"log_likelihood": ll, "kl": nu * jnp.sum(kls), "kl_layers": kls, "kl_output": _output_kl(model)}


def _model(graphdef: nnx.GraphDef, params: nnx.State) -> DKM:
    try:
        model = nnx.merge(graphdef, params)
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"params: do not fit graphdef ({type(err).__name__}: {str(err)[:200]})") from None
    if not isinstance(model, DKM):
        raise ValueError(f"graphdef: must be a DKM's (build_dkm), got a {type(model).__name__}")
    c = model.config
    want = jax.eval_shape(lambda: nnx.state(DKM(c, jnp.zeros((c.inducing, c.in_dim)), 1.0, rngs=nnx.Rngs(0))))
    for (path, w), g in zip(jax.tree.leaves_with_path(want), jax.tree.leaves(nnx.state(model))):
        if tuple(w.shape) != tuple(g.shape):
            name = jax.tree_util.keystr(path)
            raise ValueError(f"params: {name} has shape {tuple(g.shape)}, the graphdef's DKM needs {tuple(w.shape)}")
        if not checks.is_traced(g) and not bool(jnp.all(jnp.isfinite(g))):
            raise ValueError(f"params: {jax.tree_util.keystr(path)} holds NaN or infinite entries")
    return model


def _checked(model: DKM, name: str, x: ArrayLike) -> jax.Array:
    x = jnp.asarray(x)
    c = model.config
    if x.shape[1] != c.in_dim:
        raise ValueError(f"{name}: the DKM takes {c.in_dim} input columns, got shape {tuple(x.shape)}")
    # per point: (n, P) blocks of every layer (kernel, whitened, M products) and the likelihood's draws
    need = x.dtype.itemsize * x.shape[0] * (8 * (c.layers + 1) * c.inducing + 3 * c.samples * c.out_dim)
    require(need, name, f"{x.shape[0]:,} points against {c.inducing} inducing points", "use fewer points at once")
    return x


def _targets(model: DKM, name: str, y: ArrayLike, n: int) -> jax.Array:
    y = jnp.asarray(y)
    if y.shape != (n, model.config.out_dim):
        raise ValueError(f"{name}: must have shape ({n}, {model.config.out_dim}) (points, outputs), got {y.shape}")
    one_hot = checks.is_traced(y) or bool(jnp.all((y == 0) | (y == 1)) and jnp.all(jnp.sum(y, -1) == 1))
    if model.config.likelihood == "categorical" and not one_hot:
        raise ValueError(f"{name}: the categorical likelihood takes one-hot rows (one 1 per row, 0 elsewhere)")
    return y


def _example_graph() -> tuple[nnx.GraphDef, nnx.State]:
    return nnx.split(build_dkm(_example_config(), _example_z(), 1.0), nnx.Param)


_GRAPH = Instance(nnx.GraphDef, example=lambda: _example_graph()[0])
_PARAMS = Instance(nnx.State, example=lambda: _example_graph()[1])
_X = Array("n d", lo=-1e6, hi=1e6, example=lambda: np.random.default_rng(1).normal(size=(5, 2)))
_Y = Array("n k", lo=-1e6, hi=1e6, example=lambda: np.eye(2)[np.arange(5) % 2])


@declare(graphdef=_GRAPH, params=_PARAMS, x=_X, y=_Y)
def objective_terms(graphdef: nnx.GraphDef, params: nnx.State, x: ArrayLike, y: ArrayLike) -> dict[str, jax.Array]:
    """The objective's terms on training inputs x (n, d) and targets y (n, C) (one-hot classes under the categorical
    likelihood): log_likelihood, kl = nu sum_l KL_l, kl_layers (L,), kl_output (Yang et al. Eq. 20)."""
    model = _model(graphdef, params)
    x = _checked(model, "x", x)
    return _terms(model, x, _targets(model, "y", y, x.shape[0]))


@declare(graphdef=_GRAPH, params=_PARAMS, x=_X, y=_Y)
def loss(graphdef: nnx.GraphDef, params: nnx.State, x: ArrayLike, y: ArrayLike) -> jax.Array:
    """-objective / n, the engine's `Program(objective=loss)` (the `dkm` library's per-point normalisation)."""
    terms = objective_terms(graphdef, params, x, y)
    return -(terms["log_likelihood"] - terms["kl"] - terms["kl_output"]) / jnp.asarray(x).shape[0]


@declare(graphdef=_GRAPH, params=_PARAMS)
def grams(graphdef: nnx.GraphDef, params: nnx.State) -> tuple[jax.Array, jax.Array]:
    """(learned Grams G_l, the NNGP's K(G_{l-1}) chain) at the inducing points, each (L, P, P)."""
    model = _model(graphdef, params)
    z = model.z[...]
    return _forward(model, z)[2], _forward(model, z, nngp=True)[2]


@declare(graphdef=_GRAPH, params=_PARAMS)
def penalties(graphdef: nnx.GraphDef, params: nnx.State) -> jax.Array:
    """(nu sum_l KL_l, the output KL): the objective's terms that need no data (an engine observer's)."""
    model = _model(graphdef, params)
    kls = _forward(model, jax.lax.stop_gradient(model.z[...]))[1]
    return jnp.stack([jax.lax.stop_gradient(model.nu[...]) * jnp.sum(kls), _output_kl(model)])


class Predictive(NamedTuple):
    """Mean (n*, C) and variance (n*,) of the latent f at test points; class probabilities (n*, C) (categorical)."""

    mean: jax.Array
    var: jax.Array
    probs: jax.Array | None


@declare(
    graphdef=_GRAPH,
    params=_PARAMS,
    x_train=_X,
    y_train=_Y,
    x_test=Array("m d", lo=-1e6, hi=1e6, example=lambda: np.random.default_rng(2).normal(size=(3, 2))),
    nngp=Flag(),
)
def predict(
    graphdef: nnx.GraphDef,
    params: nnx.State,
    x_train: ArrayLike,
    y_train: ArrayLike,
    x_test: ArrayLike,
    nngp: bool = False,
) -> Predictive:
    """Predictions at x_test; the Gaussian likelihood's q(f_u) is the optimal one for (x_train, y_train), the
    categorical's the trained one (x_train unused there). `nngp`: with every Gram at its NNGP value."""
    model = _model(graphdef, params)
    x_train, x_test = _checked(model, "x_train", x_train), _checked(model, "x_test", x_test)
    y_train = _targets(model, "y_train", y_train, x_train.shape[0])
    out, _, _ = _forward(model, x_test, nngp)
    if model.config.likelihood == "gaussian":
        _, lb, mean_w = _collapsed(model.config, _forward(model, x_train, nngp)[0], y_train)
        spread = _inverse(lb) @ out.a.T
        var = out.k_t - jnp.sum(out.a**2, -1) + jnp.sum(spread**2, 0)
        return Predictive(out.a @ mean_w, var, None)
    mean, var = _latent(model, out)
    f = mean + jnp.sqrt(jnp.maximum(var, 0.0))[:, None] * _draws(model.config, x_test.shape[0], mean.dtype)
    return Predictive(mean, var, jnp.mean(jax.nn.softmax(f, -1), 0))
