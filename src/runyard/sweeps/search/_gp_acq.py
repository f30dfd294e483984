"""Log expected improvement and its optimisation over the mixed space (private, see ``_gp``).

The acquisition is ``log EI`` (Ament et al. 2023, "Unexpected improvements to expected
improvement"): the same maximiser as EI, but numerically usable far from the incumbent where EI
underflows to 0, so the optimiser still has a slope to follow.

Optimisation, all inside the allowed set (discrete dims are never rounded afterwards):

1. raw candidates: a scrambled Sobol sample of the whole space (discrete dims snapped to their
   points, categories uniform) plus perturbations of the best observed points (Gaussian steps of
   several sizes on real/discrete dims, then snapped; categories re-drawn with some probability);
2. the best few become starts of a local search that alternates L-BFGS-B on the *real* dims
   (analytic gradient, discrete and categorical dims held fixed) with exhaustive coordinate
   sweeps over each categorical dim and over the nearby points of each discrete dim.

Every candidate evaluated keeps its value, so the caller can skip duplicates of observed or
pending points and still take the next best.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import optimize, special
from scipy.stats import qmc

from runyard.sweeps.search._gp_model import Posterior
from runyard.sweeps.search._gp_space import Space, nearest_index

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT_HALF_PI = math.sqrt(0.5 * math.pi)
_DISCRETE_WINDOW = 8
_CHUNK = 512


def log_h(z: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``log(φ(z) + z Φ(z))`` and its derivative ``Φ(z) / (φ(z) + z Φ(z))``, stable for all z."""
    out = np.empty_like(z)
    rho = np.empty_like(z)
    hi = z > -1.0
    zh = z[hi]
    cdf = special.ndtr(zh)
    h = np.exp(-0.5 * zh * zh - _LOG_SQRT_2PI) + zh * cdf
    out[hi] = np.log(h)
    rho[hi] = cdf / h
    mid = (~hi) & (z > -1e3)
    zm = z[mid]
    c = _SQRT_HALF_PI * special.erfcx(-zm / math.sqrt(2.0))  # Φ(z) / φ(z)
    out[mid] = -0.5 * zm * zm - _LOG_SQRT_2PI + np.log1p(zm * c)
    rho[mid] = c / (1.0 + zm * c)
    far = z <= -1e3
    zf = z[far]
    out[far] = -0.5 * zf * zf - _LOG_SQRT_2PI - 2.0 * np.log(-zf)
    rho[far] = -zf
    return out, rho


class LogEI:
    """log EI of a posterior for minimisation below ``best``."""

    def __init__(self, post: Posterior, best: float, space: Space) -> None:
        self.post = post
        self.best = best
        self.space = space

    def value(self, xc: FloatArray, xk: IntArray) -> FloatArray:
        out = np.empty(len(xc))
        for lo in range(0, len(xc), _CHUNK):
            mean, var, _, _ = self.post.predict(xc[lo : lo + _CHUNK], xk[lo : lo + _CHUNK])
            sd = np.sqrt(var)
            lh, _ = log_h((self.best - mean) / sd)
            out[lo : lo + _CHUNK] = np.log(sd) + lh
        return out

    def value_grad(self, xc: FloatArray, xk: IntArray) -> tuple[FloatArray, FloatArray]:
        """Values and gradients with respect to the real columns of ``xc``."""
        mean, var, dmean, dvar = self.post.predict(xc, xk, self.space.real_mask)
        assert dmean is not None and dvar is not None
        sd = np.sqrt(var)
        z = (self.best - mean) / sd
        lh, rho = log_h(z)
        d_mean = -rho / sd
        d_var = (1.0 - z * rho) / (2.0 * var)
        grad = d_mean[:, None] * dmean + d_var[:, None] * dvar
        return np.log(sd) + lh, grad


def raw_candidates(
    space: Space,
    rng: np.random.Generator,
    n_sobol: int,
    anchors: tuple[FloatArray, IntArray],
    n_local: int,
) -> tuple[FloatArray, IntArray]:
    """Sobol sample of the space plus perturbations of the anchor points."""
    sob = qmc.Sobol(len(space.dims), scramble=True, rng=int(rng.integers(2**31)))
    u = sob.random_base2(max(math.ceil(math.log2(max(n_sobol, 2))), 1))[:n_sobol]
    xc, xk = space.from_unit(u, prior=False)
    ac, ak = anchors
    if n_local and len(ac):
        which = rng.integers(len(ac), size=n_local)
        lc = ac[which].copy()
        lk = ak[which].copy()
        if space.n_cont:
            steps = np.exp(rng.uniform(math.log(0.003), math.log(0.3), size=(n_local, 1)))
            mask = rng.random((n_local, space.n_cont)) < 0.5
            mask[: n_local // 2] = True
            none = ~mask.any(1)
            mask[none, rng.integers(space.n_cont, size=int(none.sum()))] = True
            lc = lc + mask * steps * rng.standard_normal((n_local, space.n_cont))
            lc = space.snap(lc)
        for col in range(space.n_cat):
            flip = rng.random(n_local) < 0.2
            lk[flip, col] = rng.integers(int(space.n_choices[col]), size=int(flip.sum()))
        xc = np.vstack([xc, lc])
        xk = np.vstack([xk, lk])
    return xc, xk


def _polish_real(
    acq: LogEI, xc: FloatArray, xk: IntArray, maxiter: int
) -> tuple[FloatArray, FloatArray]:
    """L-BFGS-B on the real columns of all starts at once (the objective is a sum)."""
    cols = np.flatnonzero(acq.space.real_mask)
    s = len(xc)

    def fun(v: FloatArray) -> tuple[float, FloatArray]:
        x = xc.copy()
        x[:, cols] = v.reshape(s, len(cols))
        val, grad = acq.value_grad(x, xk)
        return -float(val.sum()), -grad.ravel()

    res = optimize.minimize(
        fun,
        xc[:, cols].ravel(),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, 1.0)] * (s * len(cols)),
        options={"maxiter": maxiter, "ftol": 1e-10, "gtol": 1e-8},
    )
    out = xc.copy()
    out[:, cols] = np.clip(np.asarray(res.x).reshape(s, len(cols)), 0.0, 1.0)
    return out, acq.value(out, xk)


def _sweep(
    acq: LogEI, xc: FloatArray, xk: IntArray, vals: FloatArray
) -> tuple[FloatArray, IntArray, FloatArray, bool]:
    """One pass of exhaustive coordinate moves over discrete and categorical dims."""
    space = acq.space
    changed = False
    s = len(xc)
    for col, pts in space.discrete:
        cur = nearest_index(pts, xc[:, col])
        offs = np.arange(-_DISCRETE_WINDOW, _DISCRETE_WINDOW + 1)
        if len(pts) <= 2 * _DISCRETE_WINDOW + 1:
            idx = np.tile(np.arange(len(pts)), (s, 1))
        else:
            idx = np.clip(cur[:, None] + offs[None, :], 0, len(pts) - 1)
        c = idx.shape[1]
        vc = np.repeat(xc, c, axis=0)
        vc[:, col] = pts[idx.ravel()]
        vk = np.repeat(xk, c, axis=0)
        v = acq.value(vc, vk).reshape(s, c)
        best = v.argmax(1)
        better = v[np.arange(s), best] > vals
        if better.any():
            changed = True
            xc = xc.copy()
            xc[better, col] = pts[idx[better, best[better]]]
            vals = np.where(better, v[np.arange(s), best], vals)
    for col in range(space.n_cat):
        k = int(space.n_choices[col])
        if k < 2:
            continue
        vc = np.repeat(xc, k, axis=0)
        vk = np.repeat(xk, k, axis=0)
        vk[:, col] = np.tile(np.arange(k), s)
        v = acq.value(vc, vk).reshape(s, k)
        best = v.argmax(1)
        better = v[np.arange(s), best] > vals
        if better.any():
            changed = True
            xk = xk.copy()
            xk[better, col] = best[better]
            vals = np.where(better, v[np.arange(s), best], vals)
    return xc, xk, vals, changed


def _refine_random(
    acq: LogEI,
    rng: np.random.Generator,
    xc: FloatArray,
    xk: IntArray,
    vals: FloatArray,
    per_start: int,
) -> tuple[FloatArray, IntArray, FloatArray]:
    """Cheap local search: Gaussian steps (shrinking each round) around each start."""
    space = acq.space
    s = len(xc)
    for step in (0.03, 0.005):
        if not space.n_cont:
            break
        cc = np.repeat(xc, per_start, axis=0)
        kk = np.repeat(xk, per_start, axis=0)
        cc = space.snap(cc + step * rng.standard_normal(cc.shape))
        v = acq.value(cc, kk).reshape(s, per_start)
        best = v.argmax(1)
        better = v[np.arange(s), best] > vals
        rows = np.arange(s) * per_start + best
        xc = np.where(better[:, None], cc[rows], xc)
        vals = np.where(better, v[np.arange(s), best], vals)
    return xc, xk, vals


def optimize_acq(
    acq: LogEI,
    rng: np.random.Generator,
    anchors: tuple[FloatArray, IntArray],
    n_raw: int,
    n_starts: int,
    maxiter: int,
    rounds: int = 3,
) -> tuple[FloatArray, IntArray, FloatArray]:
    """Candidates sorted by decreasing acquisition (local optima first among equals).

    ``maxiter`` <= 0 replaces L-BFGS-B by :func:`_refine_random` (cheaper for big posteriors:
    a few batched evaluations instead of many sequential ones). ``rounds``: at most this many
    alternations of the real-dim search and the discrete/categorical sweeps.
    """
    space = acq.space
    xc, xk = raw_candidates(space, rng, n_raw // 2, anchors, n_raw - n_raw // 2)
    vals = acq.value(xc, xk)
    order = np.argsort(-vals, kind="stable")
    starts: list[int] = []
    for i in order:
        if len(starts) >= n_starts:
            break
        if any(np.array_equal(xk[i], xk[j]) and np.allclose(xc[i], xc[j]) for j in starts):
            continue
        starts.append(int(i))
    sc, sk, sv = xc[starts], xk[starts], vals[starts]
    has_real = bool(space.real_mask.any())
    has_other = bool(space.discrete) or space.n_cat > 0
    for _ in range(rounds):
        if has_real and maxiter <= 0:
            sc, sk, sv = _refine_random(acq, rng, sc, sk, sv, 8)
        elif has_real:
            pc, pv = _polish_real(acq, sc, sk, maxiter)
            improved = pv > sv
            sc = np.where(improved[:, None], pc, sc)
            sv = np.where(improved, pv, sv)
        if not has_other:
            break
        sc, sk, sv, changed = _sweep(acq, sc, sk, sv)
        if not changed:
            break
    all_c = np.vstack([sc, xc])
    all_k = np.vstack([sk, xk])
    all_v = np.concatenate([sv, vals])
    order = np.argsort(-all_v, kind="stable")
    return all_c[order], all_k[order], all_v[order]
