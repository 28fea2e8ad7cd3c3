"""Locality and hierarchy in teacher-student kernel regression: the learning-curve exponents of local (LC),
convolutional (CN) and deep hierarchical CNN kernels.

- Favero, Cagnetta & Wyart 2021, "Locality defeats the curse of dimensionality in convolutional teacher-student
  scenarios" (arXiv 2106.08619; code fracagnetta/local_kernels): inputs x uniform on the sphere S^(d-1), patches
  x_i = (x_i, ..., x_(i+s-1)) with periodic boundaries, a base kernel C on patches and
  K^LC(x, y) = 1/d sum_i C(x_i, y_i), K^CN(x, y) = 1/d^2 sum_(i,j) C(x_i, y_j) (sec. 2, the kernels of eq. 3).
  Main result (sec. 3, heuristic, confirmed numerically there): a teacher of filter size t and a local or
  convolutional student of filter size s >= t give a ridgeless test error ~ n^-beta with beta = alpha_t / s (when
  alpha_t <= 2 (alpha_s + s)), independent of d; a fully connected student has beta = alpha_t / d. alpha = 1 for
  the Laplace kernel exp(-|u - v| / sigma) (sigma = s as in the code; fc: sigma = 1 as `gram_lap_1d`).
- Cagnetta, Favero & Wyart 2023, "What can be learnt with wide convolutional neural networks?" (arXiv 2208.01003;
  code alesfav/convolutional_neural_kernels, `dcntk` / `dcrfk`): the NTK / NNGP of a deep CNN with non-overlapping
  patches (filter = stride), ReLU, no bias, each input patch on its own unit sphere. Its spectrum follows the tree
  of meta-patches; a meta-patch of layer l has effective dimension d_eff(l) = (s - 1) s^(l - 1) (patches of size s
  on S^(s-1)). The statement checked (abstract, and the teacher-student section): "if the target function depends
  on low-dimensional subsets of adjacent input variables, then the decay of the error is controlled by the
  effective dimensionality of these subsets; if it depends on the full set of input variables, the error decay is
  controlled by the input dimension", in the 2021 form beta = alpha_t / d_eff (alpha = 2 nu: 1 for the ReLU NTK,
  whose cusp is Laplace's, 3 for the NNGP).

Simulations (`learning_curve`): per trial, n_max + test inputs, the target a Gaussian field with the teacher's
covariance (Cholesky of the teacher Gram), the student's Cholesky on the first n_max points, whose leading n x n
blocks solve every nested n at once. The Gram matrices are compiled jax (float64, `core.float64`), the
factorizations and solves LAPACK through scipy, one trial at a time: it releases the GIL and uses every core, and
avoids jaxlib's batched CPU kernels, which can deadlock the XLA pool (`core/float64.py`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg as sla
from numpy.typing import ArrayLike

from workbench.core.analysis import loglog_slope, sem
from workbench.core.declare import Array, Choice, Instance, Int, Real, declare
from workbench.core.float64 import call
from workbench.core.memory import require
from workbench.theory import learning_curves as LC

__all__ = [
    "BASES",
    "KINDS",
    "Curve",
    "Spec",
    "curve_bytes",
    "eigen_prediction",
    "fit_exponent",
    "gaussian_field",
    "local_kernel",
    "meta_patch_levels",
    "patch_sphere",
    "learning_curve",
    "predicted_beta",
    "spec",
]

KINDS = ("fc", "lc", "cn", "deep")
BASES = ("laplace", "gaussian", "ntk", "nngp")  # laplace / gaussian: patch kernels of fc, lc, cn; ntk / nngp: deep
ALPHA = {"laplace": 1.0, "gaussian": math.inf, "ntk": 1.0, "nngp": 3.0}  # smoothness exponents alpha = 2 nu
BLOCK = 128  # rows of a Gram matrix computed at once (bounded intermediates: positions x BLOCK x columns)
JITTER = 1e-12  # relative diagonal shift of the teacher's Cholesky (round-off only)
SHARED_RIDGE = 1e-8  # a student equal to the teacher shares its factor up to this ridge (a white noise below it)
MAX_D = 1024
MAX_POINTS = 1 << 15


@dataclass(frozen=True)
class Spec:
    """A teacher or student kernel: `kind` fc / lc / cn (base kernel on patches of size `size`) or deep (the
    hierarchical CNN with `depth` layers of filter = stride = `size`, base ntk or nngp); `span` > 0: it reads only
    the first `span` inputs (a target on one meta-patch)."""

    kind: str
    size: int
    base: str
    depth: int = 1
    span: int = 0

    @property
    def filters(self) -> tuple[int, ...]:
        """The deep kernel's filter sizes, first layer first."""
        return (self.size,) * self.depth

    def reads(self, d: int) -> int:
        """How many leading inputs the kernel reads."""
        return self.span or d


@declare(
    kind=Choice(KINDS),
    size=Int(1, MAX_D, example=2),
    base=Choice(("laplace", "gaussian")),
    get=Choice(("ntk", "nngp")),
    depth=Int(1, 10),
    span=Int(0, MAX_D),
)
def spec(kind: str, size: int, base: str = "laplace", get: str = "ntk", depth: int = 1, span: int = 0) -> Spec:
    """A kernel of the scenarios: fc / lc / cn of a base kernel (laplace or gaussian) on patches of `size`, or
    deep (its `get` kernel: ntk or nngp) with `depth` layers of filter `size`, reading the first `span` inputs
    (0: all)."""
    if kind == "deep" and size < 2:
        raise ValueError(f"size: a deep kernel's filter must be >= 2 (a patch on a sphere), got {size}")
    if kind == "deep" and span and span % size**depth:
        raise ValueError(f"span: must be a multiple of size^depth = {size**depth}, got {span}")
    return Spec(kind, size, get if kind == "deep" else base, depth, span)


def _check(s: Spec, d: int, name: str) -> None:
    """Refuse a kernel that does not fit inputs of dimension d (naming `name`)."""
    if s.reads(d) > d:
        raise ValueError(f"{name}: span = {s.span} must be <= d = {d}")
    if s.kind in ("lc", "cn") and s.size > d:
        raise ValueError(f"{name}: filter size {s.size} must be <= d = {d}")
    if s.kind == "deep" and s.reads(d) % s.size**s.depth:
        raise ValueError(
            f"{name}: d = {s.reads(d)} must be a multiple of the patch tree {s.size}^{s.depth} = {s.size**s.depth}"
        )


# ---------------------------------------------------------------- Gram matrices (traceable)


def _base(sq: jax.Array, base: str, sigma: float) -> jax.Array:
    """C(u, v) of the squared distance |u - v|^2: exp(-|u - v| / sigma) or exp(-|u - v|^2 / (2 sigma^2))."""
    return jnp.exp(-jnp.sqrt(sq) / sigma) if base == "laplace" else jnp.exp(-sq / (2 * sigma**2))


def _periodic(x: jax.Array, size: int) -> jax.Array:
    """(N, d, size) patches x_i = (x_i, ..., x_(i+size-1)), indices mod d (the code's `pbc=True`)."""
    d = x.shape[-1]
    return x[:, (np.arange(d)[:, None] + np.arange(size)[None, :]) % d]


def _sq(u: jax.Array, v: jax.Array) -> jax.Array:
    """|u - v|^2 summed over the last axis of (B, ..., c) and (M, ..., c): (B, M, ...), as differences (no
    cancellation near u = v, where the Laplace kernel's cusp is)."""
    out = (u[:, None, ..., 0] - v[None, ..., 0]) ** 2
    for c in range(1, u.shape[-1]):
        out = out + (u[:, None, ..., c] - v[None, ..., c]) ** 2
    return out


def _local(xb: jax.Array, y: jax.Array, s: Spec) -> jax.Array:
    """K^FC, K^LC or K^CN of rows xb against y (2106.08619 sec. 2)."""
    if s.kind == "fc":
        return _base(_sq(xb, y), s.base, 1.0)
    xp, yp = _periodic(xb, s.size), _periodic(y, s.size)

    def shifted(k: jax.Array) -> jax.Array:  # 1/P sum_i C(x_i, y_(i+k))
        return jnp.mean(_base(_sq(xp, jnp.roll(yp, -k, axis=1)), s.base, float(s.size)), -1)

    if s.kind == "lc":
        return shifted(jnp.asarray(0))
    shifts = xp.shape[1]
    return jax.lax.fori_loop(0, shifts, lambda k, acc: acc + shifted(k), jnp.zeros((xb.shape[0], y.shape[0]))) / shifts


def _arccos(c: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(k0, k1): the normalised arc-cosine kernels of degree 0 and 1 (Cho & Saul 2009), as in the code."""
    c = jnp.clip(c, -1.0, 1.0)
    theta = jnp.arccos(c)
    return (jnp.pi - theta) / jnp.pi, (jnp.sqrt(1.0 - c**2) + (jnp.pi - theta) * c) / jnp.pi


def _tree(x: jax.Array, filters: tuple[int, ...]) -> jax.Array:
    """(N, P, f_L, ..., f_1) non-overlapping patch tree of x, each input patch normalised to the unit sphere."""
    x = x.reshape((x.shape[0], -1) + filters[::-1])
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


def _deep(xb: jax.Array, y: jax.Array, s: Spec) -> jax.Array:
    """The hierarchical CNN's NTK or NNGP: cos of input patches, then per layer rfk = mean k1(cos) over the filter,
    ntk = mean k0(cos) ntk + rfk (2208.01003 sec. 2; the code's `dcntk` / `dcrfk`)."""
    filters = s.filters
    xt, yt = _tree(xb, filters), _tree(y, filters)
    cos = jnp.einsum("b...k,m...k->...bm", xt, yt)
    ntk = cos
    for _ in filters:
        k0, k1 = _arccos(cos)
        rfk = jnp.mean(k1, -3)
        ntk = jnp.mean(k0 * ntk, -3) + rfk
        cos = rfk
    return cos if s.base == "nngp" else ntk


def _gram(x: jax.Array, y: jax.Array, s: Spec) -> jax.Array:
    """The kernel of `s` between the rows of x and y, BLOCK rows at a time (bounded intermediates)."""
    d = x.shape[1]
    x, y = x[:, : s.reads(d)], y[:, : s.reads(d)]
    one = functools.partial(_deep, s=s) if s.kind == "deep" else functools.partial(_local, s=s)
    rows, block = x.shape[0], min(BLOCK, x.shape[0])
    pad = -rows % block
    xs = jnp.concatenate([x, jnp.repeat(x[-1:], pad, 0)]).reshape(-1, block, x.shape[1])
    return jax.lax.map(lambda xb: one(xb, y), xs).reshape(-1, y.shape[0])[:rows]


def _sphere(key: jax.Array, n: int, d: int, patch: int) -> jax.Array:
    """n inputs of dimension d whose consecutive patches of size `patch` are uniform on their unit spheres."""
    z = jax.random.normal(key, (n, d // patch, patch), jnp.float64)
    return (z / jnp.linalg.norm(z, axis=-1, keepdims=True)).reshape(n, d)


def _example_x() -> np.ndarray:
    return np.asarray(np.random.default_rng(0).normal(size=(5, 8)))


@declare(
    x1=Array("n d", lo=-1e6, hi=1e6, example=_example_x),
    x2=Array("m d", lo=-1e6, hi=1e6, none_ok=True, example=_example_x),
    kind=Choice(("fc", "lc", "cn")),
    filter_size=Int(1, MAX_D),
    base=Choice(("laplace", "gaussian")),
)
def local_kernel(
    x1: ArrayLike, x2: ArrayLike | None = None, *, kind: str = "lc", filter_size: int = 2, base: str = "laplace"
) -> np.ndarray:
    """K^FC, K^LC = 1/d sum_i C(x_i, y_i) or K^CN = 1/d^2 sum_(i,j) C(x_i, y_j) of periodic patches of size
    `filter_size` (2106.08619 sec. 2; the code's `gram_lap_1d`, `gram_llap_1d`, `gram_clap_1d`), (N1, N2)."""
    x1 = np.asarray(x1, np.float64)
    x2 = x1 if x2 is None else np.asarray(x2, np.float64)
    s = spec(kind, filter_size, base)
    _check(s, x1.shape[1], "filter_size")
    return call(_gram_jit, x1, x2, s=s)


_gram_jit = jax.jit(_gram, static_argnames="s")


@declare(n=Int(1, MAX_POINTS), d=Int(1, MAX_D), patch=Int(1, MAX_D), seed=Int(0, 2**31 - 1))
def patch_sphere(n: int, d: int, patch: int, seed: int = 0) -> np.ndarray:
    """(n, d) inputs whose consecutive patches of size `patch` are uniform on unit spheres (patch = d: x on
    S^(d-1), 2106.08619's data; patch = f_1: 2208.01003's), float64."""
    if d % patch:
        raise ValueError(f"d: must be a multiple of the patch size {patch}, got {d}")
    return call(_sphere, jax.random.key(seed), n, d, patch)


# ---------------------------------------------------------------- Gaussian-field targets


def _min_eigenvalue(gram: np.ndarray) -> float:
    return float(np.linalg.eigvalsh(0.5 * (gram + gram.T))[0])


@declare(
    gram=Array("n n", lo=-1e12, hi=1e12, example=lambda: np.exp(-np.abs(np.subtract.outer(*[np.arange(5.0)] * 2)))),
    trials=Int(1, 100_000),
    seed=Int(0, 2**31 - 1),
)
def gaussian_field(gram: ArrayLike, trials: int = 1, seed: int = 0) -> np.ndarray:
    """(trials, N) centred Gaussian vectors with covariance `gram` (the teacher's Gram on the sample) through its
    Cholesky factor; ValueError with the smallest eigenvalue when it is not positive semi-definite."""
    gram = np.asarray(gram, np.float64)
    n = len(gram)
    require(8.0 * (3 * n * n + trials * n), "gram", f"a Cholesky factor of {n} x {n}")
    scale = max(float(np.abs(np.diag(gram)).mean()), 1e-300)
    if float(np.max(np.abs(gram - gram.T))) > 1e-10 * scale:
        raise ValueError("gram: must be symmetric (a covariance)")
    try:
        factor = np.linalg.cholesky(gram + JITTER * scale * np.eye(n))
    except np.linalg.LinAlgError:
        raise ValueError(
            f"gram: the teacher's Gram matrix is not positive semi-definite on the sample: its smallest eigenvalue "
            f"is {_min_eigenvalue(gram):.4g} (largest diagonal {np.max(np.diag(gram)):.4g})"
        ) from None
    return np.random.default_rng(seed).standard_normal((trials, n)) @ factor.T


# ---------------------------------------------------------------- learning curves


class Curve(NamedTuple):
    """Test MSE per trial (trials, len(n)) at the sample sizes n, with the fitted exponent beta and its error bar."""

    n: np.ndarray
    test: np.ndarray
    beta: float
    beta_err: float


@functools.partial(jax.jit, static_argnames=("teacher", "student", "d", "patch", "n_max", "test"))
def _draw(key, teacher, student, d, patch, n_max, test):
    """One draw: n_max + test inputs, the teacher's Gram on them, the student's of all of them against the first
    n_max (None: the student is the teacher), and the white noise the target is made of."""
    k_x, k_y = jax.random.split(key)
    x = _sphere(k_x, n_max + test, d, patch)
    kt = _gram(x, x, teacher)
    ks = None if student == teacher else _gram(x, x[:n_max], student)
    return kt, ks, jax.random.normal(k_y, (n_max + test,))


def _errors(kt: np.ndarray, ks: np.ndarray | None, noise: np.ndarray, ns: np.ndarray, ridge: float) -> np.ndarray:
    """Test MSE at every n of one draw (nested training sets) in LAPACK float64. The target is y = L_T noise (L_T the
    teacher's Cholesky factor); the leading n x n block of the student's factor of its largest Gram factors the
    n-point Gram: forward substitution of the masked targets reads only that block, and back substitution from zeros
    beyond n stays zero there, so one multi-column solve serves every n. A student equal to the teacher (ks None)
    with ridge <= SHARED_RIDGE reuses the leading block of L_T, factored with that ridge: the target then carries a
    white noise of variance ridge x mean diagonal. LinAlgError: the teacher is not PSD."""
    n_max = int(ns[-1])
    shared = ks is None and ridge <= SHARED_RIDGE
    shift = max(JITTER, ridge) if shared else JITTER
    lt = sla.cholesky(kt + shift * np.mean(np.diag(kt)) * np.eye(len(kt)), lower=True, check_finite=False)
    y = lt @ noise
    ks = kt[:, :n_max] if ks is None else ks
    try:
        chol = lt[:n_max, :n_max] if shared else _student_factor(ks[:n_max], ridge)
    except np.linalg.LinAlgError:
        raise ValueError(
            f"ridge: the student's Gram matrix is singular on the sample at ridge {ridge:g}; use a larger ridge"
        ) from None
    keep = (np.arange(n_max)[:, None] < ns[None, :]).astype(float)  # (n_max, K): the rows of each nested set
    z = sla.solve_triangular(chol, keep * y[:n_max, None], lower=True, check_finite=False)
    alpha = sla.solve_triangular(chol, z * keep, lower=True, trans=1, check_finite=False)
    return np.mean((ks[n_max:] @ alpha - y[n_max:, None]) ** 2, 0)


def _student_factor(train: np.ndarray, ridge: float) -> np.ndarray:
    """The Cholesky factor of the student's Gram plus ridge x its mean diagonal."""
    return sla.cholesky(train + ridge * np.mean(np.diag(train)) * np.eye(len(train)), lower=True, check_finite=False)


@declare(trials=Int(0, 4096), n_max=Int(1, MAX_POINTS), test=Int(0, MAX_POINTS), d=Int(1, MAX_D))
def curve_bytes(trials: int, n_max: int, test: int, d: int) -> float:
    """Bytes a learning-curve call holds at once: per trial the teacher Gram and its factor, the student's Gram
    and factor, and the Gram blocks' intermediates (d positions x BLOCK rows), times 1.5."""
    total = n_max + test
    per_trial = 2 * total**2 + total * n_max + 2 * n_max**2 + 2 * d * BLOCK * total
    return 1.5 * 8.0 * trials * per_trial


def _data_patch(teacher: Spec, student: Spec, d: int) -> int:
    """The data's patch: each patch of a deep kernel's first filter on its sphere, else x on S^(d-1)."""
    deep = [s.size for s in (student, teacher) if s.kind == "deep"]
    return deep[0] if deep else d


def _validate(teacher: Spec, student: Spec, d: int) -> int:
    _check(teacher, d, "teacher")
    _check(student, d, "student")
    patch = _data_patch(teacher, student, d)
    if d % patch:
        raise ValueError(f"d: must be a multiple of the patch size {patch}, got {d}")
    for name, s in (("teacher", teacher), ("student", student)):
        if s.kind == "deep" and s.size != patch:
            raise ValueError(f"{name}: a deep kernel's filter {s.size} must equal the data's patch size {patch}")
    return patch


N_VALUES = Array("k", lo=2, hi=MAX_POINTS, integer=True, example=lambda: np.array([8, 16, 32]))


@declare(
    teacher=Instance(Spec, example=lambda: spec("lc", 2)),
    student=Instance(Spec, example=lambda: spec("lc", 2)),
    d=Int(1, MAX_D, example=8),
    n=N_VALUES,
    trials=Int(2, 4096, example=2),
    test=Int(1, MAX_POINTS, example=16),
    ridge=Real(0.0, 1.0),
    seed=Int(0, 2**31 - 1),
)
def learning_curve(
    teacher: Spec,
    student: Spec,
    d: int,
    n: ArrayLike,
    *,
    trials: int = 8,
    test: int = 1024,
    ridge: float = 1e-10,
    seed: int = 0,
) -> Curve:
    """Test MSE of (vanishing-ridge) kernel regression with the student on n points of a Gaussian-field target
    whose covariance is the teacher (2106.08619 sec. 2), `trials` draws in float64, with beta from `fit_exponent`.
    `ridge` is relative to the student's mean diagonal."""
    ns = np.unique(np.asarray(n, np.int64))
    patch = _validate(teacher, student, d)
    n_max = int(ns.max())
    require(curve_bytes(1, n_max, test, d), "n", f"n = {n_max} + {test} test points (one trial at a time)",
            "use a smaller n or test set")  # fmt: skip
    errors = np.empty((trials, len(ns)))
    for i, key in enumerate(jax.random.split(jax.random.key(seed), trials)):
        kt, ks, noise = call(_draw, key, teacher=teacher, student=student, d=d, patch=patch, n_max=n_max, test=test)
        try:
            errors[i] = _errors(kt, ks, noise, ns, float(ridge))
        except np.linalg.LinAlgError:
            raise ValueError(
                f"teacher: its Gram matrix is not positive semi-definite on the sample (smallest eigenvalue "
                f"{_min_eigenvalue(kt):.4g})"
            ) from None
    if not np.all(np.isfinite(errors)):
        raise ValueError(f"ridge: the student's regression is not finite at ridge {ridge:g}; use a larger ridge")
    beta, err = fit_exponent(ns, errors)
    return Curve(ns.astype(float), errors, beta, err)


@declare(
    n=Array("k", lo=1.0, example=lambda: np.array([8.0, 16.0, 32.0, 64.0])),
    errors=Array("t k", lo=0.0, example=lambda: np.array([[1.0, 0.7, 0.5, 0.35], [1.1, 0.8, 0.5, 0.36]])),
)
def fit_exponent(n: ArrayLike, errors: ArrayLike) -> tuple[float, float]:
    """(beta, its standard error): minus the log-log slope of the trials' mean error against n, and the standard
    deviation of the single trials' slopes over sqrt(trials) (their scatter; nested samples make each curve smooth)."""
    n, errors = np.asarray(n, float), np.asarray(errors, float)
    if len(np.unique(n)) < 2 or np.any(errors <= 0):
        raise ValueError("n, errors: need at least two different n and positive errors to fit a power law")
    beta = -float(loglog_slope(n, errors.mean(0)))
    slopes = -loglog_slope(n, errors.T)
    return beta, float(sem(slopes))


@declare(teacher=Instance(Spec, example=lambda: spec("lc", 2)), student=Instance(Spec, example=lambda: spec("lc", 2)),
         d=Int(1, MAX_D, example=8))  # fmt: skip
def predicted_beta(teacher: Spec, student: Spec, d: int) -> float:
    """beta = min(alpha_t, 2 (alpha_s + D)) / D with D = s for a local or convolutional student whose filter covers
    the teacher's (2106.08619 sec. 3), D = d for fc, D = d_eff = (s - 1)/s x (inputs the teacher reads) for a deep
    student (2208.01003); 0 when the student cannot represent the target (s < t, or a cn student of an lc
    teacher)."""
    _validate(teacher, student, d)
    alpha_t, alpha_s = ALPHA[teacher.base], ALPHA[student.base]
    if math.isinf(alpha_t) and math.isinf(alpha_s):
        raise ValueError(
            "base: a Gaussian teacher and student give no power law (the error decays faster than any "
            "power of n); use a Laplace base for one (a deep student's NTK has a Laplace-like cusp)"
        )
    if student.kind == "fc":
        dim = float(d)
    elif student.kind == "deep":
        dim = teacher.reads(d) * (student.size - 1) / student.size
    else:
        covered = teacher.kind in ("lc", "cn") and teacher.size <= student.size
        if not covered or (student.kind == "cn" and teacher.kind != "cn"):
            return 0.0
        dim = float(student.size)
    return float(min(alpha_t, 2 * (alpha_s + dim)) / dim)


@functools.partial(jax.jit, static_argnames=("teacher", "student", "d", "patch", "points"))
def _grams(key, teacher, student, d, patch, points):
    x = _sphere(key, points, d, patch)
    return _gram(x, x, teacher), _gram(x, x, student)


@declare(
    teacher=Instance(Spec, example=lambda: spec("lc", 2)),
    student=Instance(Spec, example=lambda: spec("lc", 2)),
    d=Int(1, MAX_D, example=8),
    n=Array("k", lo=1.0, hi=MAX_POINTS, example=lambda: np.array([8.0, 16.0])),
    points=Int(32, 8192, example=64),
    ridge=Real(0.0, 1.0),
    seed=Int(0, 2**31 - 1),
)
def eigen_prediction(
    teacher: Spec, student: Spec, d: int, n: ArrayLike, *, points: int = 2048, ridge: float = 1e-10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(predicted test MSE at n, student eigenvalues lam_i, target power v_i^2): eigenlearning (Simon et al. 2023,
    `theory.learning_curves.Task`, k = inf) on the student's spectrum estimated on `points` inputs (K_S / M) with
    the teacher field's expected power in each eigenvector, v_i^2 = u_i^T K_T u_i / M. On that M-point measure a
    fresh point is one of the n i.i.d. training draws with probability p = 1 - (1 - 1/M)^n, where the ridgeless
    error vanishes, so the error at an unseen point, the simulation's, is the eigenlearning error / (1 - p).
    Valid for n well below M (bench_locality's eigen part: converged in M at n <= M / 16)."""
    patch = _validate(teacher, student, d)
    n = np.asarray(n, float)
    if n.max() >= points:
        raise ValueError(f"n: must be below points = {points} (the sample the spectrum is estimated on)")
    require(8.0 * 6 * points**2, "points", f"two {points} x {points} Gram matrices and an eigendecomposition")
    kt, ks = call(_grams, jax.random.key(seed), teacher=teacher, student=student, d=d, patch=patch, points=points)
    lam, u = np.linalg.eigh(ks / points)
    lam, u = lam[::-1], u[:, ::-1]
    v2 = np.sum(u * (kt @ u), 0) / points
    keep = lam > 1e-14 * lam[0]
    task = LC.Task(lam[keep], np.maximum(v2[keep], 0.0))
    delta = ridge * float(np.mean(np.diag(ks)))
    seen = -np.expm1(n * np.log1p(-1.0 / points))  # p = 1 - (1 - 1/M)^n
    return task.risk(n, np.inf, delta).test / (1.0 - seen), lam[keep], v2[keep]


def _meta_masks(student: Spec, d: int) -> np.ndarray:
    """(G, d) 0/1 masks of the inputs of every meta-patch, layer 1 (input patches of `size`) to layer `depth`."""
    widths = [student.size**layer for layer in range(1, student.depth + 1)]
    return np.array([np.arange(d) // w == g for w in widths for g in range(d // w)], np.float64)


@functools.partial(jax.jit, static_argnames=("student", "d", "points"))
def _redrawn_grams(key, masks, student, d, points):
    """The student's Gram of a sample against itself, and of fresh inputs and of their copies with one meta-patch
    redrawn (each row of `masks` in turn) against the sample: (M, M), (M, M), (G, M, M)."""
    k_x, k_f, k_r = jax.random.split(key, 3)
    x, fresh, other = (_sphere(k, points, d, student.size) for k in (k_x, k_f, k_r))

    def redrawn(mask: jax.Array) -> jax.Array:
        return _gram(fresh * (1 - mask) + other * mask, x, student)

    return _gram(x, x, student), _gram(fresh, x, student), jax.lax.map(redrawn, masks)


@declare(
    student=Instance(Spec, example=lambda: spec("deep", 2, depth=1)),  # any even d is valid
    d=Int(1, MAX_D, example=8),
    points=Int(32, 2048, example=64),
    modes=Int(1, 2048, example=16),
    seed=Int(0, 2**31 - 1),
)
def meta_patch_levels(
    student: Spec, d: int, *, points: int = 512, modes: int = 128, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(lam_i, l_i) for the leading `modes` eigenmodes of a deep student's K / M on M = `points` inputs: l_i is
    the smallest layer whose meta-patches the i-th eigenfunction is a sum of functions of (0: the constant mode;
    depth + 1: none). 2208.01003 (sec. 3): the eigenfunctions are products of spherical harmonics of the input
    patches, their eigenvalues set by the meta-patch that holds them (a sum over the meta-patches of one layer
    spans a degenerate eigenspace). Test of the sum: the Nystrom-extended eigenfunction f on fresh inputs, the
    halved mean squared change of f when one meta-patch alone is redrawn summed over the layer's meta-patches,
    equal to Var f for a sum (no interactions: Sobol's total indices), within 25%."""
    if student.kind != "deep":
        raise ValueError(f"student: must be a deep kernel (meta-patches), got kind {student.kind!r}")
    tree = student.size**student.depth
    if d % tree or student.reads(d) != d:
        raise ValueError(f"d: must be a multiple of the student's patch tree {tree}, read whole, got {d}")
    if modes > points:
        raise ValueError(f"modes: must be <= points = {points}, got {modes}")
    masks = _meta_masks(student, d)
    require(8.0 * (len(masks) + 4) * points**2, "points", f"{len(masks) + 2} Gram matrices of {points} x {points}")
    k, k_fresh, k_redrawn = call(_redrawn_grams, jax.random.key(seed), masks, student=student, d=d, points=points)
    lam, u = np.linalg.eigh(0.5 * (k + k.T) / points)
    lam, u = lam[::-1][:modes], u[:, ::-1][:, :modes]
    scale = points * np.maximum(lam, 1e-300)
    f = k_fresh @ u / scale  # (M, modes): the eigenfunctions on fresh inputs
    total = 0.5 * np.mean((np.einsum("gab,bi->gai", k_redrawn, u) / scale - f) ** 2, 1)  # (G, modes)
    variance = np.var(f, 0)
    layer_of = np.concatenate([[layer] * (d // student.size**layer) for layer in range(1, student.depth + 1)])
    level = np.full(modes, student.depth + 1)
    for layer in range(student.depth, 0, -1):
        additive = total[layer_of == layer].sum(0) <= 1.25 * variance
        level = np.where(additive, layer, level)
    return lam, np.where(variance < 1e-2 * np.mean(f**2, 0), 0, level)
