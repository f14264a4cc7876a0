"""Draws from the buy-till-you-die models: synthetic buyers with known parameters, for the
parameter-recovery tests, the holdout checks and the benchmarks."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engscore.engine.predict.models import FloatArray, _floats

__all__ = ["simulate_bgnbd", "simulate_gamma_gamma", "simulate_pareto_nbd"]


def simulate_bgnbd(
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: npt.ArrayLike,
    rng: np.random.Generator,
    *,
    modified: bool = False,
    holdout: float = 0.0,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(x, t_x, x_holdout)`` drawn from the exact continuous-time (M)BG/NBD process.

    Each customer gets ``lambda ~ Gamma(r, alpha)`` and ``p ~ Beta(a, b)``, buys first at time
    0, then at exponential gaps; after each repeat purchase (and, for MBG/NBD, also right after
    the first purchase) they drop out with probability ``p``. ``x`` and ``t_x`` summarise
    ``(0, T]``; ``x_holdout`` counts the purchases in ``(T, T + holdout]``.
    """
    Tf = _floats(T)
    n = Tf.size
    rate = rng.gamma(r, 1.0 / alpha, n)
    drop = rng.beta(a, b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    later = np.zeros(n)
    now = np.zeros(n)
    active = np.ones(n, dtype=bool)
    if modified:
        active &= rng.random(n) >= drop
    index = np.flatnonzero(active & (rate > 0))
    while index.size:
        now[index] += rng.exponential(1.0, index.size) / rate[index]
        index = index[now[index] <= Tf[index] + holdout]
        calibration = now[index] <= Tf[index]
        inside = index[calibration]
        x[inside] += 1
        t_x[inside] = now[inside]
        later[index[~calibration]] += 1
        index = index[rng.random(index.size) >= drop[index]]
    return x, t_x, later


def simulate_pareto_nbd(
    r: float,
    alpha: float,
    s: float,
    beta: float,
    T: npt.ArrayLike,
    rng: np.random.Generator,
    *,
    holdout: float = 0.0,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(x, t_x, x_holdout)`` drawn from the exact Pareto/NBD process.

    ``lambda ~ Gamma(r, alpha)``, ``mu ~ Gamma(s, beta)``, lifetime ``tau ~ Exp(mu)``; given
    ``x`` Poisson purchases in ``(0, min(tau, T)]``, the last is the largest of ``x`` uniform
    times. ``x_holdout`` counts the purchases in ``(T, min(tau, T + holdout)]``.
    """
    Tf = _floats(T)
    n = Tf.size
    rate = rng.gamma(r, 1.0 / alpha, n)
    lifetime = rng.exponential(1.0, n) / rng.gamma(s, 1.0 / beta, n)
    span = np.minimum(lifetime, Tf)
    x = rng.poisson(rate * span).astype(np.float64)
    t_x = np.where(x > 0, span * rng.random(n) ** (1.0 / np.maximum(x, 1.0)), 0.0)
    after = np.clip(lifetime - Tf, 0.0, holdout)
    later = rng.poisson(rate * after).astype(np.float64)
    return x, t_x, later


def simulate_gamma_gamma(
    p: float, q: float, v: float, frequency: npt.ArrayLike, rng: np.random.Generator
) -> FloatArray:
    """Mean transaction values drawn from the Gamma-Gamma model for ``frequency > 0``.

    ``nu ~ Gamma(q, v)`` per customer; the mean of ``x`` ``Gamma(p, nu)`` amounts is
    ``Gamma(p x, x nu)``. Customers with ``x = 0`` get 0.
    """
    x = _floats(frequency)
    nu = rng.gamma(q, 1.0 / v, x.size)
    shape = np.maximum(p * x, 1e-300)
    mean = rng.gamma(shape, 1.0 / (np.maximum(x, 1.0) * nu))
    return np.where(x > 0, mean, 0.0)
