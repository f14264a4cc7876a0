"""``engscore rules suggest-thresholds``: pick warm/hot grade thresholds from the data.

Marketers are told to look at the average score and at the contacts they would call warm.
Most of a list scores 0 (nothing recent), so the figures that matter are those of contacts
with a positive score: the suggestion puts ``warm`` at their median (the typical engaged
contact) and ``hot`` at their 90th percentile (the top tenth of the engaged), each rounded to
a round number so the rules file stays readable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

WARM_QUANTILE = 0.5
HOT_QUANTILE = 0.9
DISTRIBUTION = (0.25, 0.50, 0.75, 0.90, 0.95, 0.99)


@dataclass(frozen=True)
class ThresholdSuggestion:
    """The score distribution and the suggested thresholds."""

    contacts: int
    positive: int
    mean: float
    mean_positive: float
    percentiles: dict[str, float]
    percentiles_positive: dict[str, float]
    warm: float
    hot: float
    #: Contacts per grade with the suggested thresholds: hot, warm, cold.
    counts: dict[str, int]


def round_threshold(value: float) -> float:
    """A readable threshold: 2 significant digits, to the nearest 5 from 50 upwards."""
    if value <= 0:
        return 0.0
    rounded = round(value, 1 - math.floor(math.log10(value)))
    if rounded >= 50:
        rounded = round(rounded / 5) * 5
    return float(rounded)


def _quantiles(scores: pl.Series) -> dict[str, float]:
    if scores.is_empty():
        return {}
    return {f"p{round(q * 100)}": float(scores.quantile(q, "linear") or 0.0) for q in DISTRIBUTION}


def suggest_thresholds(scores: pl.Series) -> ThresholdSuggestion:
    """Suggest warm and hot thresholds from a score column (one value per contact)."""
    positive = scores.filter(scores > 0)
    warm = round_threshold(float(positive.quantile(WARM_QUANTILE, "linear") or 0.0))
    hot = round_threshold(float(positive.quantile(HOT_QUANTILE, "linear") or 0.0))
    if hot <= warm:
        hot = round_threshold(warm * 2) if warm > 0 else 0.0
    mean = scores.mean()
    mean_positive = positive.mean()
    counts = {
        "hot": int((scores >= hot).sum()) if hot > 0 else 0,
        "warm": int(((scores >= warm) & (scores < hot)).sum()) if warm > 0 else 0,
    }
    counts["cold"] = scores.len() - counts["hot"] - counts["warm"]
    return ThresholdSuggestion(
        contacts=scores.len(),
        positive=positive.len(),
        mean=float(mean) if isinstance(mean, int | float) else 0.0,
        mean_positive=float(mean_positive) if isinstance(mean_positive, int | float) else 0.0,
        percentiles=_quantiles(scores),
        percentiles_positive=_quantiles(positive),
        warm=warm,
        hot=hot,
        counts=counts,
    )
