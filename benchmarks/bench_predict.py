"""Predictive-model benchmark: BG/NBD and MBG/NBD fits and per-contact predictions.

    python benchmarks/bench_predict.py [--customers 1000000] [--repeat 3] [--seed 1]

Simulates customers from the exact BG/NBD process (CDNOW-like parameters, time in weeks, first
purchases spread over two years), once with continuous times (every summary row distinct: the
worst case) and once with times on whole days, as ``purchase_summary`` gives them (many equal
rows, which the fit aggregates). Times the fits and the predictions (P(alive), expected
purchases over 90 days, 12-month CLV with Gamma-Gamma) and prints the median of ``--repeat``
runs as a table.

For comparison, ``lifetimes`` 0.11.3 (``BetaGeoFitter``, in its own environment with numpy 1
and pandas 2.1) needed 6.9 s to fit the same 1,000,000 continuous customers on this two-core
machine (same parameters to four digits), and 0.22 s for the 90-day expectations.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from engscore.engine.predict.models import (
    clv,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_mbgnbd,
    p_alive,
)
from engscore.engine.predict.simulate import simulate_bgnbd, simulate_gamma_gamma

TRUE = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}


@dataclass
class Timings:
    """One row of the table."""

    label: str
    distinct: int
    times: dict[str, float] = field(default_factory=dict)


def median_time(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall seconds of ``repeat`` runs and the last result."""
    times = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    n = args.customers
    T = rng.uniform(1.0, 104.0, n)
    x, t_x, _ = simulate_bgnbd(TRUE["r"], TRUE["alpha"], TRUE["a"], TRUE["b"], T, rng)
    m = simulate_gamma_gamma(GAMMA_GAMMA["p"], GAMMA_GAMMA["q"], GAMMA_GAMMA["v"], x, rng)
    day = 1.0 / 7.0
    datasets = {
        "continuous": (x, t_x, T),
        "whole days": (x, np.round(t_x / day) * day, np.round(T / day) * day),
    }
    rows = []
    for label, (xs, txs, Ts) in datasets.items():
        distinct = len(np.unique(np.stack([xs, txs, Ts]), axis=1).T)
        row = Timings(label, distinct)
        bg_time, bg = median_time(partial(fit_bgnbd, xs, txs, Ts), args.repeat)
        mbg_time, mbg = median_time(partial(fit_mbgnbd, xs, txs, Ts), args.repeat)
        repeaters = xs > 0
        gg = fit_gamma_gamma(xs[repeaters], m[repeaters])
        row.times["BG/NBD fit"] = bg_time
        row.times["MBG/NBD fit"] = mbg_time
        row.times["p_alive"] = median_time(partial(p_alive, bg, xs, txs, Ts), args.repeat)[0]
        row.times["expected_purchases_90d"] = median_time(
            partial(expected_purchases, bg, 90 / 7, xs, txs, Ts), args.repeat
        )[0]
        row.times["clv 12m (12 monthly steps)"] = median_time(
            partial(clv, bg, gg, xs, txs, Ts, m, 365.25, 0.10), args.repeat
        )[0]
        row.times["all three"] = sum(row.times[c] for c in list(row.times)[2:])
        rows.append(row)
        print(f"{label}: {bg.describe()}; {mbg.describe()}; {gg.describe()}")
    columns = list(rows[0].times)
    print()
    print("| data | customers | distinct (x, t_x, T) | " + " | ".join(columns) + " |")
    print("|---" * (3 + len(columns)) + "|")
    for row in rows:
        cells = " | ".join(f"{row.times[c]:.3f} s" for c in columns)
        print(f"| {row.label} | {n:,} | {row.distinct:,} | {cells} |")
    print(f"\nmedian of {args.repeat} runs; true BG/NBD parameters {TRUE}")


if __name__ == "__main__":
    main()
