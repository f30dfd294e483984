"""Bayesian optimisation on the encoded search space: a Gaussian process and log EI.

:class:`BayesOptimizer` is stateless between calls: every :meth:`~BayesOptimizer.suggest` gets
all observations and pending points and derives its randomness from ``seed``,
``len(observed)`` and ``len(pending)``, so the sweep controller can call it from any process and
get the same answer for the same inputs.

Design (the reasons are the defects of W&B's ``bayes`` search that this replaces):

* **Space-filling start.** The first ``n_initial`` suggestions (counting pending ones) are the
  points of one scrambled Sobol sequence fixed by ``seed``: discrete dims take the nearest
  allowed point, categorical dims follow their prior ``probabilities``.
* **Every observation is modelled** (W&B keeps a random 100). Hyper-parameters are fitted on at
  most :data:`FIT_MAX_POINTS` of them (the best half plus a random rest), but the posterior is
  always conditioned on all of them; one Cholesky factorisation of 1 000 points is ~10 ms.
* **Mixed kernel** (see :mod:`._gp_model`): Matérn-5/2 with one length-scale per dim on real and
  discrete dims, times and plus an unordered (Hamming) kernel with its own length-scale per
  categorical dim. Categories are never treated as ordered numbers, and levels share what is
  learnt about the other dims (the additive part).
* **Targets**: oriented for minimisation, standardised, Yeo-Johnson warped towards a Gaussian
  shape and standardised again (:func:`transform_targets`). Failed runs (``None`` / NaN / inf)
  get the worst finite value observed, so the model learns that their region is bad without
  an arbitrary penalty scale; they are kept.
* **Prior mean**: the 75th percentile of the transformed targets at the centre of the box,
  rising by one standard deviation towards its corners (:class:`._gp_model.PriorMean`).
  Unexplored regions thus look mediocre rather than average, and the corners, where a GP's
  variance is largest, do not attract trials for no reason (the classic boundary
  over-exploration of GP-based BO). Data override it wherever there are observations.
* **Hyper-parameters** by maximum a posteriori (priors in :mod:`._gp_model`) with analytic
  gradients, L-BFGS-B from two starts. A hyper-parameter that ends at a bound is used as is:
  there is no fallback to random search.
* **Acquisition**: log expected improvement below the best posterior mean at an observed point,
  maximised by Sobol + local candidates, L-BFGS-B on the real dims and exhaustive coordinate moves
  on discrete points and categories (see :mod:`._gp_acq`), so integer and quantised parameters are
  chosen among their allowed values *during* the optimisation.
* **Pending points** (handed to other workers, not finished) are handled by the *kriging
  believer*: the model is conditioned on them with its own posterior mean as their value. The
  mean is unchanged, the variance there collapses, so EI at and near a pending point is ~0 and
  parallel workers get different points. Suggestions are also never exact duplicates of an
  observed or pending point (the next best candidate is taken). ``n > 1`` suggestions are made
  the same way, each one becoming pending for the next.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.stats import qmc
from threadpoolctl import ThreadpoolController

from runyard.sweeps.search._gp_acq import LogEI, optimize_acq
from runyard.sweeps.search._gp_model import Posterior, PriorMean, default_starts, fit_hyper
from runyard.sweeps.search._gp_space import Space
from runyard.sweeps.search.encoding import Dim, EncodedPoint

__all__ = ["FIT_MAX_POINTS", "FULL_SIZE", "BayesOptimizer", "transform_targets"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: up to this many points, every suggestion gets the full (slower, thorough) treatment
FULL_SIZE = 300
#: beyond FULL_SIZE, hyper-parameters are fitted on this many observations (the posterior uses all)
FIT_MAX_POINTS = 64
#: GP prior mean: this quantile of the transformed targets at the centre of the box ...
PRIOR_MEAN_QUANTILE = 0.75
#: ... and this much higher (in standard deviations of the targets) at its corners
PRIOR_BOWL = 1.0
_DUPLICATE_TOL = 1e-6
_N_ANCHORS = 5


def _standardise(w: FloatArray) -> FloatArray:
    sd = float(w.std()) if len(w) else 0.0
    if not math.isfinite(sd) or sd <= 1e-300:
        return np.zeros_like(w)
    return (w - float(w.mean())) / sd


def _yeo_johnson(z: FloatArray, lam: FloatArray) -> FloatArray:
    """Yeo-Johnson power transform of ``z`` for each of the ``lam`` (shape (k, 1)) values.

    ``lam`` must avoid exactly 0 and 2 (the formulas' removable singularities).
    """
    a = np.log1p(np.abs(z))[None, :]
    pos = np.expm1(lam * a) / lam
    neg = -np.expm1((2.0 - lam) * a) / (2.0 - lam)
    return np.where(z[None, :] >= 0, pos, neg)


def transform_targets(y: FloatArray) -> FloatArray:
    """Targets as the GP sees them: standardised, Yeo-Johnson warped, standardised again.

    The power (λ) maximises the Gaussian likelihood of the transformed values (a grid search
    over [-3, 5], refined once; λ = 1 is the identity). Skewed metrics (a few very bad runs,
    imputed failures, a long tail towards the optimum) are made closer to Gaussian, which the
    GP assumes; in the benchmarks this was clearly better than plain standardisation, a rank
    (copula) transform or a log warp. Monotone increasing, so the order of values is kept.
    """
    z = _standardise(np.asarray(y, dtype=np.float64))
    if len(z) < 3 or not z.any():
        return z
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        a = np.log1p(np.abs(z))
        jac = float((np.sign(z) * a).sum())
        grid = np.linspace(-3.0, 5.0, 41) + 1e-3
        for _ in range(2):
            w = _yeo_johnson(z, grid[:, None])
            var = w.var(axis=1)
            llf = -0.5 * len(z) * np.log(var) + (grid - 1.0) * jac
            llf[~np.isfinite(llf)] = -np.inf
            best = float(grid[int(np.argmax(llf))])
            step = float(grid[1] - grid[0])
            grid = np.linspace(best - step, best + step, 21) + 1e-4
        out = _yeo_johnson(z, np.array([[best]]))[0]
    if not np.all(np.isfinite(out)):
        return z
    return _standardise(out)


_BLAS: ThreadpoolController | None = None


def _one_blas_thread() -> contextlib.AbstractContextManager[object]:
    """The GP's matrices are small (a few hundred rows at most): one BLAS thread is as fast as
    several on an idle machine, and on a busy one OpenBLAS's spinning worker threads made each
    suggestion 7-15x slower (0.5-1.0 s instead of 0.07 s with four other busy processes on two
    cores). The controller is made once: finding the loaded BLAS libraries costs milliseconds."""
    global _BLAS
    if _BLAS is None:
        _BLAS = ThreadpoolController()
    limited: contextlib.AbstractContextManager[object] = _BLAS.limit(limits=1, user_api="blas")
    return limited


class BayesOptimizer:
    """Gaussian-process Bayesian optimisation over a list of encoded :class:`Dim`.

    Args:
        dims: the encoded space (see :mod:`runyard.sweeps.search.encoding`).
        goal: whether lower (``"minimize"``) or higher (``"maximize"``) values are better.
        seed: makes every suggestion a pure function of the inputs. ``None`` draws a seed
            once, at construction.
        n_initial: number of space-filling (Sobol) suggestions before the model is used;
            default ``max(5, min(2 * len(dims), 10))``.
    """

    def __init__(
        self,
        dims: Sequence[Dim],
        goal: Literal["minimize", "maximize"] = "minimize",
        seed: int | None = None,
        n_initial: int | None = None,
    ) -> None:
        if goal not in ("minimize", "maximize"):
            raise ValueError(f"goal must be 'minimize' or 'maximize', not {goal!r}")
        self.space = Space(dims)
        self.goal = goal
        self.seed = int(seed) if seed is not None else int(np.random.default_rng().integers(2**62))
        d = len(self.space.dims)
        self.n_initial = max(1, n_initial) if n_initial is not None else max(5, min(2 * d, 10))

    # -- public -------------------------------------------------------------------------------

    def suggest(
        self,
        observed: Sequence[EncodedPoint],
        values: Sequence[float | None],
        pending: Sequence[EncodedPoint] = (),
        n: int = 1,
    ) -> list[EncodedPoint]:
        """Return ``n`` new encoded points to evaluate.

        Args:
            observed: finished points (failed ones included).
            values: the metric of each observed point; ``None`` (or NaN / inf) marks a failed
                run, which is imputed with the worst finite value observed.
            pending: points being evaluated by other workers; suggestions avoid them.
            n: how many points (each later one treats the earlier ones as pending).
        """
        if len(observed) != len(values):
            raise ValueError(f"{len(observed)} observed points but {len(values)} values")
        if n < 0:
            raise ValueError("n must be >= 0")
        space = self.space
        xc_o, xk_o = space.split(observed)
        xc_p, xk_p = space.split(pending)
        y, n_finite = self._targets(values)
        rng = np.random.default_rng([self.seed, len(observed), len(pending)])
        t0 = len(observed) + len(pending)
        usable = n_finite >= 2 and float(np.ptp(y)) > 0
        out: list[EncodedPoint] = []
        with _one_blas_thread():
            ctx: _ModelContext | None = None
            for j in range(n):
                if t0 + j < self.n_initial or not usable:
                    out.append(self._design_point(t0 + j, [*observed, *pending, *out]))
                    continue
                if ctx is None:
                    ctx = _ModelContext(space, xc_o, xk_o, y, rng)
                    prior = out[:]
                    extra_c, extra_k = space.split(prior) if prior else (xc_p[:0], xk_p[:0])
                    ctx.add_pending(np.vstack([xc_p, extra_c]), np.vstack([xk_p, extra_k]))
                else:
                    pc, pk = space.split(out[-1:])
                    ctx.add_pending(pc, pk)
                out.append(ctx.pick(rng))
        return out

    # -- internals ----------------------------------------------------------------------------

    def _targets(self, values: Sequence[float | None]) -> tuple[FloatArray, int]:
        """Minimisation-oriented targets with failures imputed; and the number of real ones."""
        sign = -1.0 if self.goal == "maximize" else 1.0
        raw = np.array(
            [np.nan if v is None else float(v) for v in values], dtype=np.float64
        ).reshape(-1)
        ok = np.isfinite(raw)
        y = sign * raw
        if ok.any():
            y[~ok] = float(y[ok].max())
        else:
            y[:] = 0.0
        return y, int(ok.sum())

    def _design_point(self, index: int, taken: Sequence[EncodedPoint]) -> EncodedPoint:
        """Point ``index`` of the seed's scrambled Sobol sequence, mapped into the space.

        If that point is already taken (small discrete spaces), later points of the sequence
        (``index + k · n_initial``, never used by the design itself) are tried.
        """
        d = len(self.space.dims)
        stride = max(self.n_initial, 1)
        last = index + 32 * stride
        sob = qmc.Sobol(d, scramble=True, rng=self.seed % 2**63)
        u = sob.random_base2(max(math.ceil(math.log2(last + 1)), 1))
        xc, xk = self.space.from_unit(u[index : last + 1 : stride], prior=True)
        seen = {tuple(p) for p in taken}
        for i in range(len(xc)):
            pt = self.space.join(xc[i], xk[i])
            if tuple(pt) not in seen:
                return pt
        return self.space.join(xc[0], xk[0])


class _ModelContext:
    """A fitted GP for one :meth:`BayesOptimizer.suggest` call."""

    def __init__(
        self,
        space: Space,
        xc: FloatArray,
        xk: IntArray,
        y: FloatArray,
        rng: np.random.Generator,
    ) -> None:
        self.space = space
        self.n_obs = len(y)
        yt = transform_targets(y)
        prior = PriorMean(float(np.quantile(yt, PRIOR_MEAN_QUANTILE)), PRIOR_BOWL)
        resid = yt - prior(xc)
        budget = _Budget.for_size(len(y))
        fit_idx = _fit_subset(yt, rng, budget.fit_points)
        starts = default_starts(space.n_cont, space.n_cat)[: budget.fit_starts]
        hyper = fit_hyper(xc[fit_idx], xk[fit_idx], resid[fit_idx], starts, budget.fit_iters)
        self.post = Posterior(hyper, space.n_choices, xc, xk, yt, prior)
        order = np.argsort(self.post.train_mean(), kind="stable")[:_N_ANCHORS]
        self.anchors = (xc[order], xk[order])

    def add_pending(self, xc: FloatArray, xk: IntArray) -> None:
        """Kriging believer: condition on pending points at their posterior mean."""
        if len(xc) == 0:
            return
        mean = self.post.predict(xc, xk)[0]
        self.post.add(xc, xk, mean)

    def pick(self, rng: np.random.Generator) -> EncodedPoint:
        post = self.post
        best = float(post.train_mean().min())
        acq = LogEI(post, best, self.space)
        b = _Budget.for_size(len(post.y))
        cand_c, cand_k, _ = optimize_acq(
            acq, rng, self.anchors, b.n_raw, b.n_starts, b.lbfgs_iters, b.rounds
        )
        for i in range(len(cand_c)):
            if not self._is_duplicate(cand_c[i], cand_k[i]):
                return self.space.join(cand_c[i], cand_k[i])
        return self.space.join(cand_c[0], cand_k[0])

    def _is_duplicate(self, c: FloatArray, k: IntArray) -> bool:
        same_k = np.all(self.post.xk == k[None, :], axis=1)
        if not same_k.any():
            return False
        if self.post.xc.shape[1] == 0:
            return True
        close = np.max(np.abs(self.post.xc[same_k] - c[None, :]), axis=1) < _DUPLICATE_TOL
        return bool(close.any())


def _fit_subset(yt: FloatArray, rng: np.random.Generator, size: int) -> IntArray:
    """Indices of the observations used to fit the hyper-parameters: the best half + random."""
    n = len(yt)
    if n <= size:
        return np.arange(n, dtype=np.int64)
    order = np.argsort(yt, kind="stable")
    n_best = size // 2
    rest = rng.choice(order[n_best:], size=size - n_best, replace=False)
    return np.sort(np.concatenate([order[:n_best], rest])).astype(np.int64)


@dataclass(frozen=True)
class _Budget:
    """How much work one suggestion does, by the number of points the GP is conditioned on.

    Up to 100 points (typical sweeps): hyper-parameters fitted on all of them from two starts
    and a thorough acquisition search. Up to :data:`FULL_SIZE`: hyper-parameters on 120 of them.
    Beyond: hyper-parameters on :data:`FIT_MAX_POINTS`, one start, and a cheaper acquisition
    search, so that a suggestion at 1 000 observations takes a few tens of milliseconds. The
    posterior always uses every point.
    """

    fit_points: int
    fit_starts: int
    fit_iters: int
    n_raw: int
    n_starts: int
    lbfgs_iters: int
    rounds: int

    @staticmethod
    def for_size(n: int) -> _Budget:
        if n <= 100:
            return _Budget(n, 2, 100, 2048, 8, 40, 3)
        if n <= FULL_SIZE:
            return _Budget(120, 2, 60, 1024, 6, 30, 2)
        return _Budget(FIT_MAX_POINTS, 1, 20, 128, 4, 0, 1)
