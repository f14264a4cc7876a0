"""The CDNOW sample (Fader, Hardie & Lee) shared by the model and the summary tests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engscore.schema import CANONICAL_SCHEMA
from helpers import utc

CDNOW = Path(__file__).parents[1] / "fixtures" / "predict"
#: End of the 39-week calibration period: T of a customer who first bought on 1 January 1997
#: is 272 / 7 = 38.86 weeks in the published summary.
CDNOW_END = utc(1997, 9, 30)


def close(value: float, target: float, tolerance: float = 0.005) -> bool:
    """``value`` within ``tolerance`` (relative) of a published ``target``."""
    return abs(value / target - 1) <= tolerance


def cdnow_arrays() -> dict[str, np.ndarray[Any, np.dtype[np.float64]]]:
    """The published CDNOW calibration summary: x, t_x, T (weeks) and zbar per customer."""
    frame = pl.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")
    return {name: frame[name].to_numpy().astype(np.float64) for name in ("x", "t_x", "T", "zbar")}


def cdnow_events() -> pl.LazyFrame:
    """The CDNOW sample's transactions (one line per purchase, 1997-1998) as events."""
    rows = [line.split() for line in (CDNOW / "CDNOW_sample.txt").read_text().splitlines()]
    return pl.DataFrame(
        {
            "contact_id": [row[1] for row in rows],
            "event_type": ["purchase"] * len(rows),
            "timestamp": [datetime.strptime(row[2] + "+0000", "%Y%m%d%z") for row in rows],
            "amount": [float(row[4]) for row in rows],
        },
        schema={"contact_id": pl.String, "event_type": pl.String}
        | {
            "timestamp": CANONICAL_SCHEMA["timestamp"],
            "amount": pl.Float64,
        },
    ).lazy()
