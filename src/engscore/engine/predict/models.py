"""The buy-till-you-die models on numpy arrays: fits, likelihoods, predictions and CLV.

Inputs are the purchase summary's arrays ``(x, t_x, T)`` (and mean spends); the definitions,
the models and the numerics are described in :mod:`engscore.engine.predict`.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl


class _LazyModule:
    """A module imported on first use: scipy takes ~0.3 s to import, which every command
    (``explain``, ``segment``, ...) would pay; only fitting and predicting need it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: Any = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)


special = _LazyModule("scipy.special")
optimize = _LazyModule("scipy.optimize")


__all__ = [
    "DAYS_PER_MONTH",
    "DAYS_PER_YEAR",
    "BgNbdParams",
    "ConvergenceError",
    "FloatArray",
    "GammaGammaParams",
    "MbgNbdParams",
    "ParetoNbdParams",
    "PurchaseParams",
    "clv",
    "expected_purchases",
    "expected_spend",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "fit_mbgnbd",
    "fit_pareto_nbd",
    "log_likelihood",
    "p_alive",
    "spend_log_likelihood",
]

FloatArray = npt.NDArray[np.float64]

DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12
#: Bounds of the log-parameters while fitting (about 1e-9 to 1e9).
_LOG_BOUND = 21.0
#: Largest gradient (of the mean log-likelihood, in log-parameters) accepted as converged.
_GRADIENT_TOLERANCE = 1e-4
#: Row counts from which hypergeometric terms are deduplicated and computed in threads.
_DEDUPLICATE_FROM = 5_000
_THREADS_FROM = 200_000
#: Distinct rows from which a fit starts from a fit on a sample of this many customers.
_WARM_START_FROM = 100_000
_WARM_START_SAMPLE = 50_000


class ConvergenceError(ValueError):
    """The optimiser did not reach a maximum of the likelihood (or it is degenerate)."""


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class BgNbdParams:
    """Fitted BG/NBD parameters (time in the summary's unit)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    #: Customers fitted on.
    n: int

    model = "bgnbd"
    label = "BG/NBD"

    def describe(self) -> str:
        """``BG/NBD r=0.243 alpha=4.414 a=0.793 b=2.426 (n=2357, LL=-9582.4)``."""
        return (
            f"{self.label} r={self.r:.4g} alpha={self.alpha:.4g} a={self.a:.4g} b={self.b:.4g} "
            f"(n={self.n}, LL={self.log_likelihood:.1f})"
        )


@dataclass(frozen=True)
class MbgNbdParams(BgNbdParams):
    """Fitted MBG/NBD parameters: the same four, for the model whose customers can also drop
    out right after their first purchase."""

    model = "mbgnbd"
    label = "MBG/NBD"


@dataclass(frozen=True)
class ParetoNbdParams:
    """Fitted Pareto/NBD parameters (time in the summary's unit)."""

    r: float
    alpha: float
    s: float
    beta: float
    log_likelihood: float
    n: int

    model = "paretonbd"

    def describe(self) -> str:
        """One line for notes and logs."""
        return (
            f"Pareto/NBD r={self.r:.4g} alpha={self.alpha:.4g} s={self.s:.4g} "
            f"beta={self.beta:.4g} (n={self.n}, LL={self.log_likelihood:.1f})"
        )


@dataclass(frozen=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma spend parameters (``v`` is the paper's gamma)."""

    p: float
    q: float
    v: float
    log_likelihood: float
    #: Repeat buyers fitted on.
    n: int

    model = "gammagamma"

    @property
    def mean_spend(self) -> float:
        """The population mean transaction value ``p v / (q - 1)`` (infinite for ``q <= 1``)."""
        return self.p * self.v / (self.q - 1) if self.q > 1 else math.inf

    def describe(self) -> str:
        """One line for notes and logs."""
        return (
            f"Gamma-Gamma p={self.p:.4g} q={self.q:.4g} v={self.v:.4g} "
            f"(n={self.n}, LL={self.log_likelihood:.1f})"
        )


PurchaseParams = BgNbdParams | MbgNbdParams | ParetoNbdParams


# --------------------------------------------------------------------------- inputs


def _floats(values: npt.ArrayLike) -> FloatArray:
    return np.ascontiguousarray(values, dtype=np.float64)


def _check_summary(x: FloatArray, t_x: FloatArray, T: FloatArray) -> None:
    if not (x.shape == t_x.shape == T.shape) or x.ndim != 1:
        raise ValueError("x, t_x and T must be one-dimensional arrays of the same length")
    if x.size == 0:
        raise ValueError("no customers to fit")
    if not (np.isfinite(x).all() and np.isfinite(t_x).all() and np.isfinite(T).all()):
        raise ValueError("x, t_x and T must be finite")
    if (x < 0).any() or (np.floor(x) != x).any():
        raise ValueError("x (frequency) must be whole numbers >= 0")
    if (t_x < 0).any() or (t_x > T * (1 + 1e-12)).any():
        raise ValueError("need 0 <= t_x <= T for every customer")
    if ((x == 0) & (t_x != 0)).any():
        raise ValueError("t_x (recency) must be 0 when x (frequency) is 0")


@dataclass(frozen=True)
class _Rows:
    """Distinct ``(x, t_x, T)`` rows with their counts ``w``."""

    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    w: FloatArray

    @property
    def total(self) -> float:
        return float(self.w.sum())


def _mostly_distinct(values: FloatArray) -> bool:
    """True when most values differ (a HyperLogLog estimate): deduplicating would not pay."""
    estimate = pl.DataFrame({"v": values.ravel()}).select(pl.col("v").approx_n_unique()).item()
    return int(estimate) > 0.7 * values.size


def _aggregate(
    x: FloatArray, t_x: FloatArray, T: FloatArray, weights: FloatArray | None = None
) -> _Rows:
    """Identical rows counted once, with weights (a hash group-by in Polars); ``weights``:
    how many customers each given row stands for (rows already counted)."""
    if weights is None and x.size >= _DEDUPLICATE_FROM and _mostly_distinct(T):
        return _Rows(x, t_x, T, np.ones(x.size))
    w = np.ones(x.size) if weights is None else weights
    frame = pl.DataFrame({"x": x, "t_x": t_x, "T": T, "w": w})
    grouped = frame.group_by("x", "t_x", "T").agg(pl.col("w").sum()).sort("x", "T", "t_x")
    return _Rows(
        grouped["x"].to_numpy().astype(np.float64),
        grouped["t_x"].to_numpy().astype(np.float64),
        grouped["T"].to_numpy().astype(np.float64),
        grouped["w"].to_numpy().astype(np.float64),
    )


def _weights(weights: npt.ArrayLike | None, size: int) -> FloatArray | None:
    if weights is None:
        return None
    w = _floats(weights)
    if w.shape != (size,) or not (np.isfinite(w).all() and (w > 0).all()):
        raise ValueError("weights must be positive counts, one per row")
    return w


# --------------------------------------------------------------------------- BG/NBD family


class _BgFamily:
    """The (M)BG/NBD log-likelihood and its gradient in log-parameters.

    ``modified`` (``m = 1``) is MBG/NBD. Per customer, with ``s = r + x``::

        LL = gammaln(s) - gammaln(r) + r log(alpha) + betaln(a, b + x + m) - betaln(a, b)
             + log( (alpha + T)^-s + c (alpha + t_x)^-s ),   c = a / (b + x - 1 + m)

    where ``c = 0`` for BG/NBD customers with ``x = 0``. The last term is evaluated as
    ``-s log(alpha + t_x) + log(e^-u + c)`` with ``u = s (log(alpha + T) - log(alpha + t_x))
    >= 0``, which neither overflows nor underflows.
    """

    def __init__(self, rows: _Rows, modified: bool) -> None:
        self.m = 1.0 if modified else 0.0
        self.total = rows.total
        # Terms in x alone: summed per distinct x.
        xs = rows.x.astype(np.int64)
        counts = np.bincount(xs, weights=rows.w).astype(np.float64)
        present = counts > 0
        self.ux = np.flatnonzero(present).astype(np.float64)
        self.nx = counts[present]
        # Rows with c = 0 (BG/NBD one-time buyers) need log(alpha + T) only.
        with_c = np.ones(rows.x.shape, dtype=bool) if modified else rows.x > 0
        self.T0 = rows.T[~with_c]
        self.w0 = rows.w[~with_c]
        self.x = rows.x[with_c]
        self.t_x = rows.t_x[with_c]
        self.T = rows.T[with_c]
        w = rows.w[with_c]
        self.w: FloatArray | None = None if bool((w == 1).all()) else w
        self.shift = self.x - 1.0 + self.m  # c = a / (b + shift)

    def __call__(self, theta: FloatArray) -> tuple[float, FloatArray]:
        """Minus the mean log-likelihood and its gradient in ``log(r, alpha, a, b)``."""
        r, alpha, a, b = np.exp(theta)
        ll, g = self.value(r, alpha, a, b)
        grad = g * np.array([r, alpha, a, b])
        return -ll / self.total, -grad / self.total

    def value(self, r: float, alpha: float, a: float, b: float) -> tuple[float, FloatArray]:
        """The log-likelihood and its gradient in ``(r, alpha, a, b)``."""
        m, ux, nx = self.m, self.ux, self.nx
        # Terms in x alone, once per distinct x.
        x_terms = (
            special.gammaln(r + ux)
            + special.betaln(a, b + ux + m)
            - special.gammaln(r)
            - special.betaln(a, b)
        )
        ll = _dot(nx, x_terms) + self.total * r * math.log(alpha)
        psi_ab = special.digamma(a + b)
        psi_abx = special.digamma(a + b + ux + m)
        d_r = _dot(nx, special.digamma(r + ux) - special.digamma(r))
        d_r += self.total * math.log(alpha)
        d_alpha = self.total * r / alpha
        d_a = _dot(nx, psi_ab - psi_abx)
        d_b = _dot(nx, special.digamma(b + ux + m) - psi_abx - special.digamma(b) + psi_ab)
        # One-time buyers of BG/NBD: -r log(alpha + T).
        if self.T0.size:
            aT0 = alpha + self.T0
            sum_lT0 = _dot(self.w0, np.log(aT0))
            ll -= r * sum_lT0
            d_r -= sum_lT0
            d_alpha -= r * _dot(self.w0, 1.0 / aT0)
        if self.x.size:
            w, s = self.w, r + self.x
            aT, at = alpha + self.T, alpha + self.t_x
            lT, lt = np.log(aT), np.log(at)
            gap = lT - lt  # >= 0
            denom = b + self.shift
            c = a / denom
            q = np.exp(-s * gap)
            q += c  # e^-u + c
            p2 = c / q  # the share of the "alive until t_x, then dropped out" branch
            ll += _dot(w, np.log(q)) - _dot(w, s * lt)
            d_r -= _dot(w, lT) - _dot(w, p2 * gap)
            # s (p1 / aT + p2 / at) with p1 = 1 - p2
            d_alpha -= _dot(w, s * (1.0 / aT + p2 * (1.0 / at - 1.0 / aT)))
            d_a += _dot(w, p2) / a
            d_b -= _dot(w, p2 / denom)
        return ll, np.array([d_r, d_alpha, d_a, d_b])


def _dot(weights: FloatArray | None, values: FloatArray) -> float:
    """``sum(weights * values)`` without BLAS (whose threads stall on a busy machine)."""
    if weights is None:
        return float(np.sum(values))
    return float(np.sum(weights * values))


def _start_rates(x: FloatArray, T: FloatArray, w: FloatArray) -> tuple[float, float]:
    """A start for ``(r, alpha)``: ``alpha = 1`` and ``r`` the mean of ``x / T`` (the rate's
    gamma mean is ``r / alpha``)."""
    rate = _dot(w, x / np.maximum(T, 1e-9)) / float(w.sum())
    return max(rate, 1e-3), 1.0


def _minimise(
    objective: Callable[[FloatArray], tuple[float, FloatArray]],
    starts: list[FloatArray],
    what: str,
    hess_inv0: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """The log-parameters that minimise ``objective`` and BFGS's inverse Hessian there.

    Tries ``starts`` in turn until one converges (``hess_inv0``, if given, is the initial
    inverse Hessian for the first start); raises ``ConvergenceError`` when none does.

    BFGS on the log-parameters, kept within ``+-_LOG_BOUND`` by a quadratic wall. (L-BFGS-B
    would bound them directly, but its LAPACK calls stall when OpenBLAS threads compete for
    a busy machine's cores: 50 times slower on two cores under load.)
    """

    def walled(theta: FloatArray) -> tuple[float, FloatArray]:
        inside = np.clip(theta, -_LOG_BOUND, _LOG_BOUND)
        excess = theta - inside
        with np.errstate(all="ignore"):
            value, grad = objective(inside)
        if not math.isfinite(value) or not np.isfinite(grad).all():
            return math.inf, np.zeros_like(theta)
        grad = np.where(excess == 0, grad, 0.0) + 100.0 * excess
        return value + 50.0 * float(np.sum(excess**2)), grad

    best: Any = None
    for index, start in enumerate(starts):
        options: dict[str, Any] = {"maxiter": 2000, "gtol": 1e-9}
        if index == 0 and hess_inv0 is not None:
            options["hess_inv0"] = hess_inv0
        result = optimize.minimize(walled, start, jac=True, method="BFGS", options=options)
        if not np.isfinite(result.fun):
            continue
        if best is None or result.fun < best.fun:
            best = result
        if _largest(result.jac) < _GRADIENT_TOLERANCE:
            break
    if best is None:
        raise ConvergenceError(f"{what}: the likelihood is not finite at any start")
    if _largest(best.jac) >= _GRADIENT_TOLERANCE:
        raise ConvergenceError(f"{what}: the fit did not converge ({best.message})")
    theta = np.clip(np.asarray(best.x, dtype=np.float64), -_LOG_BOUND, _LOG_BOUND)
    return theta, np.asarray(best.hess_inv, dtype=np.float64)


def _largest(values: Any) -> float:
    return float(np.max(np.abs(np.asarray(values, dtype=np.float64))))


def _fit_bg_family(
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    weights: npt.ArrayLike | None,
    *,
    modified: bool,
) -> tuple[float, float, float, float, float, int]:
    xf, tf, Tf = _floats(x), _floats(t_x), _floats(T)
    _check_summary(xf, tf, Tf)
    wf = _weights(weights, xf.size)
    rows = _aggregate(xf, tf, Tf, wf)
    family = _BgFamily(rows, modified)
    r0, alpha0 = _start_rates(rows.x, rows.T, rows.w)
    starts = [
        np.log([r0, alpha0, 1.0, 1.0]),
        np.zeros(4),
        np.log([0.5, 5.0, 0.5, 2.0]),
    ]
    what = "MBG/NBD" if modified else "BG/NBD"
    hess_inv: FloatArray | None = None
    if rows.x.size > _WARM_START_FROM:
        # A warm start from a random sample: the mean log-likelihood of the sample has nearly
        # the same maximum and curvature, so the full fit needs only a few iterations.
        rng = np.random.default_rng(0)
        if wf is None:
            pick = rng.integers(0, xf.size, _WARM_START_SAMPLE)
        else:
            pick = rng.choice(xf.size, _WARM_START_SAMPLE, p=wf / wf.sum())
        sample = _BgFamily(_aggregate(xf[pick], tf[pick], Tf[pick]), modified)
        try:
            warm, hess_inv = _minimise(sample, starts, what)
        except ConvergenceError:
            pass
        else:
            starts = [warm, *starts]
            hess_inv = (hess_inv + hess_inv.T) / 2
            if not np.linalg.eigvalsh(hess_inv).min() > 0:
                hess_inv = None
    theta, _ = _minimise(family, starts, what, hess_inv)
    r, alpha, a, b = (float(v) for v in np.exp(theta))
    ll, _ = family.value(r, alpha, a, b)
    return r, alpha, a, b, ll, int(rows.total)


def fit_bgnbd(
    x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike, weights: npt.ArrayLike | None = None
) -> BgNbdParams:
    """Fit BG/NBD by maximum likelihood on ``frequency``, ``recency`` and ``T``.

    ``weights``: how many customers each row stands for (distinct rows counted, as the
    engines' global step passes them); None for one customer per row.

    Raises ``ConvergenceError`` when the optimiser does not converge and ``ValueError`` on
    inconsistent inputs (``x`` not whole, ``t_x > T``, ``t_x != 0`` with ``x == 0``).
    """
    r, alpha, a, b, ll, n = _fit_bg_family(x, t_x, T, weights, modified=False)
    return BgNbdParams(r, alpha, a, b, ll, n)


def fit_mbgnbd(
    x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike, weights: npt.ArrayLike | None = None
) -> MbgNbdParams:
    """Fit MBG/NBD by maximum likelihood (see ``fit_bgnbd``)."""
    r, alpha, a, b, ll, n = _fit_bg_family(x, t_x, T, weights, modified=True)
    return MbgNbdParams(r, alpha, a, b, ll, n)


def log_likelihood(
    params: PurchaseParams, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> float:
    """The total log-likelihood of ``params`` on the summary (e.g. for likelihood-ratio tests)."""
    xf, tf, Tf = _floats(x), _floats(t_x), _floats(T)
    _check_summary(xf, tf, Tf)
    rows = _aggregate(xf, tf, Tf)
    if isinstance(params, ParetoNbdParams):
        values = _pareto_ll(params.r, params.alpha, params.s, params.beta, rows.x, rows.t_x, rows.T)
        return _dot(rows.w, values)
    family = _BgFamily(rows, isinstance(params, MbgNbdParams))
    return family.value(params.r, params.alpha, params.a, params.b)[0]


# --------------------------------------------------------------------------- Pareto/NBD


def _pareto_log_a0(
    r: float, alpha: float, s: float, beta: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """``log A0`` of the Pareto/NBD likelihood (Fader, Hardie & Lee 2005 note, eq. 21-22)."""
    second: float | FloatArray
    if alpha >= beta:
        high, low, second = alpha, beta, s + 1.0
    else:
        high, low, second = beta, alpha, r + x
    rsx = r + s + x
    q1, q2 = high + t_x, high + T
    log_p1 = np.log(_hyp2f1(rsx, second, rsx + 1.0, (high - low) / q1))
    log_p2 = np.log(_hyp2f1(rsx, second, rsx + 1.0, (high - low) / q2))
    first = log_p1 - rsx * np.log(q1)
    last = log_p2 - rsx * np.log(q2)
    # log(e^first - e^last), first >= last (A0 is an integral of a positive function).
    with np.errstate(divide="ignore"):
        return first + np.log(-np.expm1(np.minimum(last - first, 0.0)))


def _pareto_ll(
    r: float, alpha: float, s: float, beta: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    rx = r + x
    head = special.gammaln(rx) - special.gammaln(r) + r * math.log(alpha) + s * math.log(beta)
    alive = -rx * np.log(alpha + T) - s * np.log(beta + T)
    gone = math.log(s) - np.log(r + s + x) + _pareto_log_a0(r, alpha, s, beta, x, t_x, T)
    return np.asarray(head + np.logaddexp(alive, gone), dtype=np.float64)


def fit_pareto_nbd(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> ParetoNbdParams:
    """Fit Pareto/NBD by maximum likelihood (numerical gradient; slower than BG/NBD).

    Each evaluation needs two hypergeometric functions per distinct ``(x, t_x, T)`` row, so
    this is meant for up to some hundred thousand distinct rows.
    """
    xf, tf, Tf = _floats(x), _floats(t_x), _floats(T)
    _check_summary(xf, tf, Tf)
    rows = _aggregate(xf, tf, Tf)
    total = rows.total

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        value = _objective(theta)
        # Central differences: the optimum needs a gradient accurate to well below 1e-4.
        grad = np.empty_like(theta)
        for i in range(theta.size):
            step = np.zeros_like(theta)
            step[i] = 1e-6
            grad[i] = (_objective(theta + step) - _objective(theta - step)) / 2e-6
        return value, grad

    def _objective(theta: FloatArray) -> float:
        r, alpha, s, beta = np.exp(theta)
        with np.errstate(all="ignore"):
            ll = _dot(rows.w, _pareto_ll(r, alpha, s, beta, rows.x, rows.t_x, rows.T))
        return -ll / total if math.isfinite(ll) else math.inf

    r0, alpha0 = _start_rates(rows.x, rows.T, rows.w)
    starts = [np.log([r0, alpha0, 1.0, 1.0]), np.zeros(4), np.log([0.5, 10.0, 0.5, 10.0])]
    theta, _ = _minimise(objective, starts, "Pareto/NBD")
    r, alpha, s, beta = (float(v) for v in np.exp(theta))
    ll = _dot(rows.w, _pareto_ll(r, alpha, s, beta, rows.x, rows.t_x, rows.T))
    return ParetoNbdParams(r, alpha, s, beta, ll, int(xf.size))


# --------------------------------------------------------------------------- Gamma-Gamma


class _GammaGamma:
    """The Gamma-Gamma log-likelihood and its gradient. Per customer::

    LL = gammaln(p x + q) - gammaln(p x) - gammaln(q) + q log v
         + (p x - 1) log m + p x log x - (p x + q) log(v + m x)
    """

    def __init__(
        self,
        frequency: npt.ArrayLike,
        monetary: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
    ) -> None:
        x, m = _floats(frequency), _floats(monetary)
        if x.shape != m.shape or x.ndim != 1:
            raise ValueError("frequency and monetary must be one-dimensional arrays of one length")
        if x.size == 0:
            raise ValueError("no repeat buyers to fit the spend model on")
        finite = np.isfinite(x).all() and np.isfinite(m).all()
        if (x <= 0).any() or (m <= 0).any() or not finite:
            raise ValueError(
                "the spend model takes repeat buyers only: frequency > 0, monetary > 0"
            )
        w = _weights(weights, x.size)
        self.x, self.m, self.w = x, m, w
        self.wx = x if w is None else w * x
        self.mx = m * x
        self.n = float(x.size) if w is None else float(w.sum())
        # The gamma-function terms depend on x alone, and repeat-purchase counts take few
        # values: they are evaluated once per distinct x (the fit's cost was in them).
        distinct, inverse = np.unique(x, return_inverse=True)
        self.ux: FloatArray = distinct
        self.cx: FloatArray = np.bincount(inverse, weights=w, minlength=distinct.size).astype(
            np.float64
        )
        log_m = np.log(m)
        self.sum_log_m = _dot(w, log_m)
        self.x_log_mx = _dot(self.wx, log_m + np.log(x))

    def value(self, p: float, q: float, v: float) -> tuple[float, FloatArray]:
        """The log-likelihood and its gradient in ``(p, q, v)``."""
        x, w, n, ux, cx = self.x, self.w, self.n, self.ux, self.cx
        pu = p * ux
        vmx = v + self.mx
        log_vmx = np.log(vmx)
        x_log_vmx = _dot(self.wx, log_vmx)
        sum_log_vmx = _dot(w, log_vmx)
        gammas = _dot(cx, special.gammaln(pu + q) - special.gammaln(pu))
        ll = (
            gammas
            + p * self.x_log_mx
            - self.sum_log_m
            - p * x_log_vmx
            - q * sum_log_vmx
            + n * (q * math.log(v) - float(special.gammaln(q)))
        )
        psi = special.digamma(pu + q)
        d_p = _dot(cx * ux, psi - special.digamma(pu)) + self.x_log_mx - x_log_vmx
        d_q = _dot(cx, psi) - sum_log_vmx + n * (math.log(v) - float(special.digamma(q)))
        d_v = n * q / v - _dot(w, (p * x + q) / vmx)
        return ll, np.array([d_p, d_q, d_v])

    def __call__(self, theta: FloatArray) -> tuple[float, FloatArray]:
        """Minus the mean log-likelihood and its gradient in ``log(p, q, v)``."""
        p, q, v = np.exp(theta)
        ll, grad = self.value(p, q, v)
        return -ll / self.n, -grad * np.array([p, q, v]) / self.n


def fit_gamma_gamma(
    frequency: npt.ArrayLike, monetary: npt.ArrayLike, weights: npt.ArrayLike | None = None
) -> GammaGammaParams:
    """Fit the Gamma-Gamma spend model on repeat buyers.

    ``frequency`` is the number of repeat purchases ``x`` and ``monetary`` their mean amount;
    pass repeat buyers only (``x > 0``, ``monetary > 0``), as the model requires (else
    ``ValueError``). ``weights``: how many buyers each row stands for (see ``fit_bgnbd``).
    """
    model = _GammaGamma(frequency, monetary, weights)
    start = np.log([5.0, 3.0, _dot(model.w, model.m) / model.n])
    starts = [np.zeros(3), start, np.log([1.0, 2.0, 10.0])]
    theta, _ = _minimise(model, starts, "Gamma-Gamma")
    p, q, v = (float(t) for t in np.exp(theta))
    return GammaGammaParams(p, q, v, model.value(p, q, v)[0], int(model.n))


def spend_log_likelihood(
    params: GammaGammaParams, frequency: npt.ArrayLike, monetary: npt.ArrayLike
) -> float:
    """The Gamma-Gamma log-likelihood of ``params`` on repeat buyers."""
    return _GammaGamma(frequency, monetary).value(params.p, params.q, params.v)[0]


# --------------------------------------------------------------------------- predictions


def _hyp2f1(a: Any, b: Any, c: Any, z: Any) -> FloatArray:
    """``scipy.special.hyp2f1``, in two threads for large inputs (it releases the GIL)."""
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, c, z)))
    size = arrays[0].size
    if size < _THREADS_FROM:
        return np.asarray(special.hyp2f1(*arrays), dtype=np.float64)
    flat = [v.ravel() for v in arrays]
    half = size // 2
    parts = [slice(0, half), slice(half, size)]
    with ThreadPoolExecutor(2) as pool:
        out = list(pool.map(lambda part: special.hyp2f1(*(v[part] for v in flat)), parts))
    return np.concatenate(out).reshape(arrays[0].shape).astype(np.float64)


def p_alive(
    params: PurchaseParams, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """P(alive at T | x, t_x, T) per customer.

    BG/NBD: ``1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x))``;
    MBG/NBD: the same with ``a / (b + x)`` and no ``[x > 0]``; Pareto/NBD: ``1 / (1 + s /
    (r + s + x) (alpha + T)^(r + x) (beta + T)^s A0)``. Evaluated as a logistic of a log.
    """
    xf, tf, Tf = np.broadcast_arrays(_floats(x), _floats(t_x), _floats(T))
    if isinstance(params, ParetoNbdParams):
        r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
        with np.errstate(divide="ignore"):
            log_odds = (
                math.log(s)
                - np.log(r + s + xf)
                + (r + xf) * np.log(alpha + Tf)
                + s * np.log(beta + Tf)
                + _pareto_log_a0(r, alpha, s, beta, xf, tf, Tf)
            )
        return np.asarray(special.expit(-log_odds), dtype=np.float64)
    return _bg_p_alive(params, xf, tf, Tf)


def _bg_p_alive(
    params: BgNbdParams | MbgNbdParams, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    modified = isinstance(params, MbgNbdParams)
    shift = x if modified else np.maximum(x - 1.0, 0.0)
    log_odds = math.log(a) - np.log(b + shift) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    alive = np.asarray(special.expit(-log_odds), dtype=np.float64)
    if not modified:
        alive = np.where(x > 0, alive, 1.0)
    return alive


def expected_purchases(
    params: PurchaseParams,
    t: npt.ArrayLike,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
) -> FloatArray:
    """E[purchases in (T, T + t] | x, t_x, T] per customer (the conditional expectation).

    BG/NBD (FHL 2005, eq. 10), with ``z = t / (alpha + T + t)``::

        (a + b + x - 1) / (a - 1)
          * [1 - ((alpha + T) / (alpha + T + t))^(r + x) 2F1(r + x, b + x; a + b + x - 1; z)]
          * P(alive)

    computed with the Euler transform ``(1 - z)^(a - 1) 2F1(a + b - 1 - r, a - 1; a + b + x -
    1; z)`` of the bracketed product. MBG/NBD replaces ``b + x`` by ``b + x + 1`` and ``a + b +
    x - 1`` by ``a + b + x``. Pareto/NBD: ``(r + x)(beta + T) / ((alpha + T)(s - 1)) [1 -
    ((beta + T) / (beta + T + t))^(s - 1)] P(alive)``.
    """
    tf, xf, txf, Tf = np.broadcast_arrays(_floats(t), _floats(x), _floats(t_x), _floats(T))
    alive = p_alive(params, xf, txf, Tf)
    if isinstance(params, ParetoNbdParams):
        r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
        y = np.log1p(tf / (beta + Tf))
        return np.asarray(
            (r + xf) * (beta + Tf) / (alpha + Tf) * _expm1_ratio(s - 1.0, y) * alive,
            dtype=np.float64,
        )
    if np.ndim(t) == 0:
        bracket = _cumulative_expectations(params, [float(np.asarray(t))], xf, Tf)[0]
    else:
        bracket = _bg_bracket(params, tf, xf, Tf)
    return np.asarray(bracket * alive, dtype=np.float64)


def _expm1_ratio(k: float, y: FloatArray) -> FloatArray:
    """``(1 - e^(-k y)) / k``, and its limit ``y`` for ``k -> 0``."""
    if abs(k) < 1e-10:
        return y
    return np.asarray(-np.expm1(-k * y) / k, dtype=np.float64)


def _bg_bracket(
    params: BgNbdParams | MbgNbdParams, t: FloatArray, x: FloatArray, T: FloatArray
) -> FloatArray:
    """``(a + b + x - 1 + m) / (a - 1) * [1 - (1 - z)^(a - 1) 2F1(...)]``: E[X(t)] if alive."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1.0) < 1e-7:  # the formula is 0/0 at a = 1; its limit is continuous
        a = 1.0 + math.copysign(1e-7, a - 1.0)
    m = 1.0 if isinstance(params, MbgNbdParams) else 0.0
    z = t / (alpha + T + t)
    c = a + b + x - 1.0 + m
    log_h = np.log(_hyp2f1(a + b - 1.0 + m - r, a - 1.0, c, z))
    return np.asarray(c / (a - 1.0) * -np.expm1((a - 1.0) * np.log1p(-z) + log_h), dtype=np.float64)


def expected_spend(
    params: GammaGammaParams, frequency: npt.ArrayLike, monetary: npt.ArrayLike
) -> FloatArray:
    """E[amount of a future transaction | x, m] = ``p (v + m x) / (p x + q - 1)``.

    A weighted mean of the population mean ``p v / (q - 1)`` and the customer's own mean
    ``m``; one-time buyers (``x = 0``) get the population mean. Needs ``q > 1``. Negative
    means (refunds) count as 0.
    """
    if params.q <= 1:
        raise ValueError(f"the spend model has q = {params.q:.3g} <= 1: its mean is infinite")
    x, m = np.broadcast_arrays(_floats(frequency), np.maximum(_floats(monetary), 0.0))
    p, q, v = params.p, params.q, params.v
    return np.asarray(p * (v + m * x) / (p * x + q - 1.0), dtype=np.float64)


def clv(
    purchase_params: PurchaseParams,
    spend_params: GammaGammaParams,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    monetary: npt.ArrayLike,
    horizon_days: float,
    discount_rate: float,
    unit_days: float = 7.0,
) -> FloatArray:
    """Discounted expected spend over ``horizon_days``, in monthly steps (module docstring).

    ``discount_rate`` is yearly; ``x``, ``t_x``, ``T`` are in units of ``unit_days`` days.
    """
    if horizon_days <= 0:
        raise ValueError("the CLV horizon must be positive")
    if discount_rate <= -1:
        raise ValueError("the discount rate must be above -1")
    xf, tf, Tf = np.broadcast_arrays(_floats(x), _floats(t_x), _floats(T))
    spend = expected_spend(spend_params, xf, monetary)
    steps = max(1, math.ceil(horizon_days / DAYS_PER_MONTH - 1e-9))
    ends = [horizon_days * k / steps for k in range(1, steps + 1)]
    cumulative = _cumulative_expectations(purchase_params, [e / unit_days for e in ends], xf, Tf)
    alive = p_alive(purchase_params, xf, tf, Tf)
    discounted = np.zeros(xf.shape, dtype=np.float64)
    before = np.zeros(xf.shape, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # extreme fits: see predict_contacts
        for end, after in zip(ends, cumulative, strict=True):
            discounted += (after - before) / (1.0 + discount_rate) ** (end / DAYS_PER_YEAR)
            before = after
    return np.asarray(spend * discounted * alive, dtype=np.float64)


def _cumulative_expectations(
    params: PurchaseParams, times: list[float], x: FloatArray, T: FloatArray
) -> list[FloatArray]:
    """``E[X(t)] / P(alive)`` for each ``t``: it depends on ``(x, T)`` alone, computed once
    per distinct pair."""
    if isinstance(params, ParetoNbdParams):
        r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
        scale = (r + x) * (beta + T) / (alpha + T)
        return [scale * _expm1_ratio(s - 1.0, np.log1p(t / (beta + T))) for t in times]
    if x.size >= _DEDUPLICATE_FROM and not _mostly_distinct(T):
        frame = pl.DataFrame({"x": x.ravel(), "T": T.ravel()})
        keys = frame.unique().with_row_index("_group")
        if keys.height < 0.8 * frame.height:
            ux, uT = keys["x"].to_numpy(), keys["T"].to_numpy()
            joined = frame.join(keys, on=["x", "T"], how="left", maintain_order="left")
            inverse = joined["_group"].to_numpy()
            return [
                _bg_bracket(params, np.full(ux.shape, t), ux, uT)[inverse].reshape(x.shape)
                for t in times
            ]
    return [_bg_bracket(params, np.full(x.shape, t), x, T) for t in times]
