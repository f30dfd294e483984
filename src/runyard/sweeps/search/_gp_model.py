"""Gaussian-process regression on the encoded space (private helper of :mod:`._gp`).

Kernel. With ``x`` the real and discrete dims and ``c`` the categorical dims::

    k_x(x, x') = Matérn-5/2(r²),  r² = Σ_j (x_j - x'_j)² / l_j²          (one l per dim: ARD)
    k_c(c, c') = exp(-Σ_j [c_j ≠ c'_j] / l_j²)                          (one l per dim)
    k          = s · (rho · k_x k_c + (1 - rho) · (k_x + k_c) / 2)

``k_c`` depends only on whether two levels are equal, so categories are *unordered*: every pair
of different levels is equally far apart, and how far is learnt per parameter. The product term
lets the effect of the real dims differ between levels; the additive term lets levels share
what was learnt about the real dims (a level that only shifts the metric, e.g. an optimiser
that is better everywhere, does not force the model to learn the real dims again for each
level). ``rho`` is fitted. Both terms are positive definite, so ``k`` is. With only real/discrete
dims (or only categorical dims) ``k`` is ``s · k_x`` (or ``s · k_c``). Discrete dims are floats
restricted to their points; the GP itself does not care.

Hyper-parameters (log l, log s, log σ²_noise, logit rho) are fitted by maximum a posteriori with
analytic gradients and L-BFGS-B. Priors (normal in log / logit space):

* real/discrete ``log l ~ N(√2 - 3 + ½ log D, √3)``: the mode of the dimension-scaled
  log-normal length-scale prior of Hvarfner et al. (2024, "Vanilla Bayesian optimization
  performs great in high dimensions"), about ``0.2 √D``;
* categorical ``log l ~ N(0, 1.5)`` (``l = 1``: two different levels correlate at e⁻¹);
* ``log s ~ N(0, 1)``: the targets are standardised;
* ``log σ² ~ N(log 1e-3, 2)``, floor 1e-6: small noise by default (many objectives are nearly
  deterministic) but noisy objectives can still pull it up;
* ``logit rho ~ N(0, 1.5)``.

Bounds on the hyper-parameters only keep the linear algebra sane; a value at a bound is used as
is (no fallback to random search).

All matrix products go through scipy's BLAS: numpy and scipy wheels each bundle their own
OpenBLAS with its own thread pool, and alternating big calls between the two leaves one pool
spinning while the other works, which on a 2-core machine made suggestions 2-5x slower and
erratic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import linalg as sla
from scipy import optimize
from scipy.linalg import blas, lapack

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_LOG_2PI = math.log(2.0 * math.pi)
#: added to the noise variance on the diagonal, relative to the kernel scale
_JITTER = 1e-8
_NOISE_FLOOR = 1e-8
_LOG_LS_BOUNDS = (math.log(5e-3), math.log(1e3))
_LOG_SCALE_BOUNDS = (math.log(1e-2), math.log(1e2))
_LOG_NOISE_BOUNDS = (math.log(_NOISE_FLOOR), math.log(1.0))
_LOGIT_MIX_BOUNDS = (-8.0, 8.0)
_NOISE_PRIOR = (math.log(1e-4), 3.0)
_SCALE_PRIOR = (0.0, 1.0)
_CAT_LS_PRIOR = (0.0, 1.5)
_MIX_PRIOR = (0.0, 1.5)
_BLOCK = 96


# -- elementary pieces ------------------------------------------------------------------------


def matern52(r2: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Matérn-5/2 correlation as a function of the squared distance, and its derivative."""
    r = np.sqrt(5.0 * np.maximum(r2, 0.0))
    e = np.exp(-r)
    k = (1.0 + r + r * r / 3.0) * e
    dk = (-5.0 / 6.0) * (1.0 + r) * e
    return k, dk


def _matern52_of_d5(d5: FloatArray, tmp: FloatArray, tmp2: FloatArray) -> None:
    """``d5 ← matern52(d5 / 5)`` in place (``d5``: 5 · squared distance); two scratch arrays."""
    np.maximum(d5, 0.0, out=d5)
    np.sqrt(d5, out=tmp)  # r = √5 · distance
    np.negative(tmp, out=tmp2)
    np.exp(tmp2, out=tmp2)
    d5 *= 1.0 / 3.0  # r² / 3
    d5 += 1.0
    d5 += tmp
    d5 *= tmp2


def dot_nt(a: FloatArray, b: FloatArray, alpha: float = 1.0) -> FloatArray:
    """``alpha · a @ b.T`` (C-ordered result) with scipy's BLAS."""
    if a.shape[1] == 0 or len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    # a C-ordered array is its transpose Fortran-ordered: (a @ b.T).T = b @ a.T
    return np.asarray(blas.dgemm(alpha, b.T, a.T, trans_a=1).T)


def _dot_nt_into(out: FloatArray, a: FloatArray, b: FloatArray, alpha: float) -> None:
    """``out ← alpha · a @ b.T`` for C-contiguous ``out``, ``a`` and ``b`` (no copies)."""
    res = blas.dgemm(alpha, b.T, a.T, c=out.T, trans_a=1, overwrite_c=1)
    if not np.shares_memory(res, out):  # f2py had to copy (not for these layouts)
        out[...] = res.T


def gemv(a: FloatArray, x: FloatArray) -> FloatArray:
    """``a @ x`` for a matrix ``a`` with scipy's BLAS."""
    if a.size == 0:
        return np.zeros(a.shape[0])
    a = np.ascontiguousarray(a)
    return np.asarray(blas.dgemv(1.0, a.T, x, trans=1))


def _augment(z: FloatArray, factor: float) -> tuple[FloatArray, FloatArray]:
    """Rows ``u_i``, ``v_j`` with ``u_i · v_j = factor · |z_i - z_j|²`` (one matrix product)."""
    zz = factor * (z * z).sum(1)[:, None]
    ones = np.ones((len(z), 1))
    u = np.ascontiguousarray(np.hstack([z, zz, ones]))
    v = np.ascontiguousarray(np.hstack([(-2.0 * factor) * z, ones, zz]))
    return u, v


# -- hyper-parameters and kernel --------------------------------------------------------------


@dataclass(frozen=True)
class Hyper:
    """Kernel hyper-parameters."""

    ls_cont: FloatArray
    ls_cat: FloatArray
    scale: float
    noise: float
    #: weight rho of the product term (only used with both kinds of dims)
    mix: float = 0.5

    @property
    def mixed(self) -> bool:
        return len(self.ls_cont) > 0 and len(self.ls_cat) > 0

    def to_theta(self) -> FloatArray:
        tail = [math.log(self.scale), math.log(self.noise)]
        if self.mixed:
            m = min(max(self.mix, 1e-6), 1 - 1e-6)
            tail.append(math.log(m / (1 - m)))
        return np.concatenate([np.log(self.ls_cont), np.log(self.ls_cat), tail])

    @staticmethod
    def from_theta(theta: FloatArray, n_cont: int, n_cat: int) -> Hyper:
        p = n_cont + n_cat
        mix = 1.0 / (1.0 + math.exp(-float(theta[p + 2]))) if (n_cont and n_cat) else 0.5
        return Hyper(
            np.exp(theta[:n_cont]),
            np.exp(theta[n_cont:p]),
            float(math.exp(theta[p])),
            float(math.exp(theta[p + 1])),
            mix,
        )


@dataclass(frozen=True)
class Points:
    """Points embedded for a kernel (see :func:`_augment`).

    ``ux_i · vx_j`` is 5 · the squared scaled distance of the real/discrete dims (5: the
    Matérn-5/2 constant) and ``uc_i · vc_j`` minus the categorical ``r²``.
    """

    ux: FloatArray
    vx: FloatArray
    uc: FloatArray
    vc: FloatArray

    def __len__(self) -> int:
        return len(self.ux)

    def rows(self, lo: int, hi: int) -> Points:
        return Points(self.ux[lo:hi], self.vx[lo:hi], self.uc[lo:hi], self.vc[lo:hi])

    def stack(self, other: Points) -> Points:
        return Points(
            np.vstack([self.ux, other.ux]),
            np.vstack([self.vx, other.vx]),
            np.vstack([self.uc, other.uc]),
            np.vstack([self.vc, other.vc]),
        )


class Kernel:
    """The kernel of a :class:`Hyper` on (xc, xk) points."""

    def __init__(self, hyper: Hyper, n_choices: IntArray) -> None:
        self.hyper = hyper
        self.s = hyper.scale
        self.rho = hyper.mix if hyper.mixed else 1.0
        self.has_x = len(hyper.ls_cont) > 0
        self.has_c = len(hyper.ls_cat) > 0
        self.inv_ls_cont = 1.0 / hyper.ls_cont
        self.offsets = np.concatenate([[0], np.cumsum(n_choices)[:-1]]).astype(np.int64)
        self.n_onehot = int(n_choices.sum()) if len(n_choices) else 0
        # one-hot columns of categorical dim j get 1 / (√2 l_j): squared distance = [≠] / l²
        self.cat_weight = np.repeat(1.0 / (math.sqrt(2.0) * hyper.ls_cat), n_choices)

    def embed(self, xc: FloatArray, xk: IntArray) -> Points:
        m = len(xc)
        zc = np.zeros((m, self.n_onehot))
        if self.n_onehot and m:
            cols = (self.offsets[None, :] + xk).ravel()
            rows = np.repeat(np.arange(m), xk.shape[1])
            zc[rows, cols] = self.cat_weight[cols]
        ux, vx = _augment(xc * self.inv_ls_cont, 5.0)
        uc, vc = _augment(zc, -1.0)
        return Points(ux, vx, uc, vc)

    def _combine(self, kx: FloatArray | None, kc: FloatArray | None, out: FloatArray) -> None:
        """``out ← s · (rho kx kc + (1 - rho)(kx + kc) / 2)``; ``kc`` is overwritten."""
        s, rho = self.s, self.rho
        if kx is not None and kc is not None:
            half = s * (1.0 - rho) / 2.0
            # kx · (srho kc + h) + h kc
            np.multiply(kc, s * rho, out=out)
            out += half
            out *= kx
            kc *= half
            out += kc
        elif kx is not None:
            np.multiply(kx, s, out=out)
        elif kc is not None:
            np.multiply(kc, s, out=out)

    def matrix(self, a: Points, b: Points, upper_only: bool = False) -> FloatArray:
        """Kernel matrix, in row blocks that stay in cache (2-3x faster for big matrices).

        ``upper_only`` (for ``a is b``) fills only the upper triangle, diagonal included.
        """
        n_a, n_b = len(a), len(b)
        out = np.empty((n_a, n_b))
        size = min(_BLOCK, max(n_a, 1)) * n_b
        fx, fc, t1, t2 = (np.empty(size) for _ in range(4))
        for lo in range(0, n_a, _BLOCK):
            hi = min(lo + _BLOCK, n_a)
            c0 = lo if upper_only else 0
            shape = (hi - lo, n_b - c0)
            n = shape[0] * shape[1]
            kx = kc = None
            if self.has_x:
                kx = fx[:n].reshape(shape)
                _dot_nt_into(kx, a.ux[lo:hi], b.vx[c0:], 1.0)
                _matern52_of_d5(kx, t1[:n].reshape(shape), t2[:n].reshape(shape))
            if self.has_c:
                kc = fc[:n].reshape(shape)
                _dot_nt_into(kc, a.uc[lo:hi], b.vc[c0:], 1.0)
                np.minimum(kc, 0.0, out=kc)
                np.exp(kc, out=kc)
            self._combine(kx, kc, out[lo:hi, c0:])
        return out

    def cross_with_grad(self, a: Points, b: Points) -> tuple[FloatArray, FloatArray]:
        """Kernel matrix and ``g`` with ``∂k/∂x_j = g · 2 (x_j - x'_j) / l_j²`` (small ``a``)."""
        kx, dkx = matern52(dot_nt(a.ux, b.vx) / 5.0)
        kc = np.exp(np.minimum(dot_nt(a.uc, b.vc), 0.0)) if self.has_c else None
        if kc is not None:
            g = self.s * (self.rho * kc + (1.0 - self.rho) / 2.0) * dkx
        else:
            g = self.s * dkx
        out = np.empty_like(kx)
        self._combine(kx, kc, out)
        return out, g


# -- hyper-parameter fit ----------------------------------------------------------------------


def _ls_prior(p: int) -> tuple[float, float]:
    return math.sqrt(2.0) - 3.0 + 0.5 * math.log(max(p, 1)), math.sqrt(3.0)


def neg_log_posterior(
    xc: FloatArray, xk: IntArray, y: FloatArray
) -> Callable[[FloatArray], tuple[float, FloatArray]]:
    """The fit's objective: -log p(y | θ) - log p(θ) and its gradient, as a function of θ.

    θ = (log l real/discrete..., log l categorical..., log s, log σ², [logit rho]).
    """
    m = len(y)
    pc, pk = xc.shape[1], xk.shape[1]
    p = pc + pk
    mixed = pc > 0 and pk > 0
    flat_x = ((xc[:, None, :] - xc[None, :, :]) ** 2).reshape(m * m, pc)
    flat_c = (xk[:, None, :] != xk[None, :, :]).astype(np.float64).reshape(m * m, pk)
    ls_mu, ls_sd = _ls_prior(p)
    extra_mu = [_SCALE_PRIOR[0], _NOISE_PRIOR[0]] + ([_MIX_PRIOR[0]] if mixed else [])
    extra_sd = [_SCALE_PRIOR[1], _NOISE_PRIOR[1]] + ([_MIX_PRIOR[1]] if mixed else [])
    mu = np.concatenate([np.full(pc, ls_mu), np.full(pk, _CAT_LS_PRIOR[0]), extra_mu])
    sd = np.concatenate([np.full(pc, ls_sd), np.full(pk, _CAT_LS_PRIOR[1]), extra_sd])
    eye = np.eye(m)
    ones = np.ones((m, m))

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        inv2x = np.exp(-2.0 * theta[:pc])
        inv2c = np.exp(-2.0 * theta[pc:p])
        s = math.exp(theta[p])
        noise = math.exp(theta[p + 1])
        rho = 1.0 / (1.0 + math.exp(-theta[p + 2])) if mixed else 1.0
        kx, dkx = matern52(gemv(flat_x, inv2x).reshape(m, m)) if pc else (ones, ones)
        kc = np.exp(-gemv(flat_c, inv2c).reshape(m, m)) if pk else ones
        corr = kx if pc else kc
        if mixed:
            corr = rho * kx * kc + (1.0 - rho) / 2.0 * (kx + kc)
        kmat = s * corr
        kmat[np.diag_indices(m)] += noise + _JITTER * s
        try:
            chol = sla.cho_factor(kmat, lower=True, check_finite=False)
        except (np.linalg.LinAlgError, ValueError):
            return 1e25, np.zeros_like(theta)
        alpha = sla.cho_solve(chol, y, check_finite=False)
        # W = alpha alpha^T - K⁻¹: d(-log p(y|θ))/dθ = -½ tr(W ∂K/∂θ)
        w = np.outer(alpha, alpha)
        w -= sla.cho_solve(chol, eye, check_finite=False)
        nll = 0.5 * float(y @ alpha) + float(np.log(np.diag(chol[0])).sum()) + 0.5 * m * _LOG_2PI
        grad = np.empty_like(theta)
        if pc:
            gx = (rho * kc + (1.0 - rho) / 2.0) * dkx if mixed else dkx
            grad[:pc] = gemv(flat_x.T, (w * gx).ravel()) * s * inv2x
        if pk:
            hc = (rho * kx + (1.0 - rho) / 2.0) * kc if mixed else kc
            grad[pc:p] = -gemv(flat_c.T, (w * hc).ravel()) * s * inv2c
        grad[p] = -0.5 * s * float((w * corr).sum())
        grad[p + 1] = -0.5 * noise * float(np.trace(w))
        if mixed:
            dmix = kx * kc - (kx + kc) / 2.0
            grad[p + 2] = -0.5 * s * rho * (1.0 - rho) * float((w * dmix).sum())
        # priors (normal in log / logit space)
        dev = (theta - mu) / sd
        nll += 0.5 * float(dev @ dev)
        grad += dev / sd
        if not math.isfinite(nll) or not np.all(np.isfinite(grad)):
            return 1e25, np.zeros_like(theta)
        return nll, grad

    return objective


def fit_hyper(
    xc: FloatArray,
    xk: IntArray,
    y: FloatArray,
    starts: list[Hyper],
    maxiter: int = 100,
) -> Hyper:
    """MAP estimate of the hyper-parameters on (xc, xk, y), best of L-BFGS-B from ``starts``."""
    pc, pk = xc.shape[1], xk.shape[1]
    objective = neg_log_posterior(xc, xk, y)
    bounds = [_LOG_LS_BOUNDS] * (pc + pk) + [_LOG_SCALE_BOUNDS, _LOG_NOISE_BOUNDS]
    if pc and pk:
        bounds.append(_LOGIT_MIX_BOUNDS)
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    best: tuple[float, FloatArray] | None = None
    for start in starts:
        res = optimize.minimize(
            objective,
            np.clip(start.to_theta(), lo, hi),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": maxiter, "ftol": 1e-9, "gtol": 1e-5},
        )
        val = float(res.fun)
        if best is None or val < best[0]:
            best = (val, np.asarray(res.x, dtype=np.float64))
    assert best is not None
    return Hyper.from_theta(best[1], pc, pk)


def default_starts(n_cont: int, n_cat: int) -> list[Hyper]:
    """Start points of the hyper-parameter fit: the prior mode and a rougher model."""
    mode = math.exp(_ls_prior(n_cont + n_cat)[0])
    cat = math.exp(_CAT_LS_PRIOR[0])
    return [
        Hyper(np.full(n_cont, mode), np.full(n_cat, cat), 1.0, 1e-3, 0.5),
        Hyper(np.full(n_cont, mode * 0.25), np.full(n_cat, cat * 0.5), 1.0, 1e-4, 0.5),
    ]


# -- posterior --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriorMean:
    """GP prior mean ``const + bowl · mean_j 4 (x_j - 1/2)²`` over the real/discrete dims.

    With ``bowl > 0`` the corners of the box are a priori worse than its centre by ``bowl``.
    Data override it wherever there are observations; far from them it stops the acquisition
    from spending trials on the corners of the box, where a GP's variance is largest (the
    "boundary over-exploration" of GP-based BO). Same idea as the quadratic prior mean of
    Snoek et al. (2015, "Scalable Bayesian optimization using deep neural networks").
    """

    const: float = 0.0
    bowl: float = 0.0

    def __call__(self, xc: FloatArray) -> FloatArray:
        if not self.bowl or xc.shape[1] == 0:
            return np.full(len(xc), self.const)
        bowl: FloatArray = (4.0 * (xc - 0.5) ** 2).mean(1)
        return self.const + self.bowl * bowl

    def grad(self, xc: FloatArray, cols: IntArray) -> FloatArray:
        """Gradient with respect to the columns ``cols`` of ``xc``."""
        if not self.bowl or xc.shape[1] == 0:
            return np.zeros((len(xc), len(cols)))
        out: FloatArray = self.bowl * 8.0 * (xc[:, cols] - 0.5) / xc.shape[1]
        return out


class Posterior:
    """The GP conditioned on training points (observations, then fantasies for pending points)."""

    def __init__(
        self,
        hyper: Hyper,
        n_choices: IntArray,
        xc: FloatArray,
        xk: IntArray,
        y: FloatArray,
        mean: PriorMean | None = None,
    ) -> None:
        self.kernel = Kernel(hyper, n_choices)
        self.mean = mean or PriorMean()
        self.s = hyper.scale
        self.diag = hyper.noise + _JITTER * hyper.scale
        self.xc = xc
        self.xk = xk
        self.pts = self.kernel.embed(xc, xk)
        #: targets (prior mean included); the GP itself models ``y - mean(x)``
        self.y = y
        kern, pts, full = self.kernel, self.pts, self.s + self.diag

        def build() -> FloatArray:
            kmat = kern.matrix(pts, pts, upper_only=True)
            kmat[np.diag_indices(len(pts))] = full
            return kmat

        self.chol = _robust_cholesky(build, full)
        self.alpha = self._solve(y - self.mean(xc))

    def _solve(self, b: FloatArray) -> FloatArray:
        return np.asarray(sla.cho_solve((self.chol, True), b, check_finite=False))

    def add(self, xc: FloatArray, xk: IntArray, y: FloatArray) -> None:
        """Condition on more points (extends the Cholesky factor: O(n²) per point)."""
        new = self.kernel.embed(xc, xk)
        k12 = self.kernel.matrix(self.pts, new)
        k22 = self.kernel.matrix(new, new)
        k22[np.diag_indices(len(y))] = self.s + self.diag
        l21t = sla.solve_triangular(self.chol, k12, lower=True, check_finite=False)
        schur = k22 - dot_nt(l21t.T, l21t.T)
        l22 = _robust_cholesky(lambda: schur.copy(), self.s + self.diag)
        n, q = len(self.y), len(y)
        chol = np.zeros((n + q, n + q), order="F")
        chol[:n, :n] = self.chol
        chol[n:, :n] = l21t.T
        chol[n:, n:] = l22
        self.chol = chol
        self.xc = np.vstack([self.xc, xc])
        self.xk = np.vstack([self.xk, xk])
        self.pts = self.pts.stack(new)
        self.y = np.concatenate([self.y, y])
        self.alpha = self._solve(self.y - self.mean(self.xc))

    def train_mean(self) -> FloatArray:
        """Posterior mean at the training points."""
        return self.y - self.diag * self.alpha

    def predict(
        self, xc: FloatArray, xk: IntArray, real_mask: npt.NDArray[np.bool_] | None = None
    ) -> tuple[FloatArray, FloatArray, FloatArray | None, FloatArray | None]:
        """Mean and variance of the latent function at the rows of (xc, xk).

        With ``real_mask``, also the gradients of mean and variance with respect to the
        continuous columns selected by the mask (shape (m, mask.sum())).
        """
        q = self.kernel.embed(xc, xk)
        want_grad = real_mask is not None and bool(real_mask.any())
        if want_grad:
            kx, g = self.kernel.cross_with_grad(q, self.pts)
        else:
            kx = self.kernel.matrix(q, self.pts)
        mean = gemv(kx, self.alpha) + self.mean(xc)
        v = sla.solve_triangular(self.chol, kx.T, lower=True, check_finite=False)
        var = np.maximum(self.s - (v * v).sum(0), 1e-12 * self.s)
        if real_mask is None or not want_grad:
            return mean, var, None, None
        w = sla.solve_triangular(self.chol, v, lower=True, trans="T", check_finite=False)
        cols = np.flatnonzero(real_mask)
        inv2 = self.kernel.inv_ls_cont[cols] ** 2
        a = 2.0 * g  # (m, n)
        diff = xc[:, None, cols] - self.xc[None, :, cols]  # (m, n, r)
        dmean = np.einsum("mn,mnr,n->mr", a, diff, self.alpha) * inv2
        dmean += self.mean.grad(xc, cols)
        dvar = -2.0 * np.einsum("mn,mnr,nm->mr", a, diff, w) * inv2
        return mean, var, dmean, dvar


def _robust_cholesky(build: Callable[[], FloatArray], scale: float) -> FloatArray:
    """Lower Cholesky factor (Fortran-ordered) of the symmetric matrix ``build()`` returns.

    Only the upper triangle of the (C-ordered) matrix is read. On failure the diagonal gets
    growing jitter (relative to ``scale``); the matrix is rebuilt each time because LAPACK
    factorises in place.
    """
    jitter = 0.0
    for _ in range(10):
        a = build()
        if jitter:
            a[np.diag_indices(len(a))] += jitter
        # a.T is Fortran-ordered and its lower triangle is a's upper triangle: no copy
        chol, info = lapack.dpotrf(a.T, lower=1, clean=1, overwrite_a=1)
        if info == 0:
            return np.asarray(chol)
        jitter = max(jitter * 10.0, 1e-9 * scale)
    # last resort: eigen-clip (never raises for a symmetric matrix)
    a = build()
    a = np.triu(a) + np.triu(a, 1).T
    vals, vecs = np.linalg.eigh(a)
    fixed = (vecs * np.maximum(vals, 1e-6 * scale)) @ vecs.T
    fixed[np.diag_indices(len(a))] += 1e-6 * scale
    return np.asfortranarray(np.linalg.cholesky(fixed))
