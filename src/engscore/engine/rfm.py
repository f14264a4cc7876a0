"""RFM (recency, frequency, monetary value) on purchase events, scored by quantile and named.

Why here and why this way: RFM is a per-buyer summary beside the engagement score (SPEC section
5). It is one lazy query, and its scores must be *stable*: the same data always gives the same
scores, and two buyers with the same value always get the same score, whatever the row order.

The table
    One row per buyer: a contact with at least one purchase event (``event_type`` in
    ``rfm.purchase_events``) at or before ``as_of``. Contacts that never bought are absent.

    - ``recency_days``: whole days from the last purchase to ``as_of``, rounded down.
    - ``frequency``: the number of purchase events; with ``order_id_column``, the number of
      distinct non-null order ids, plus one order per purchase event without an order id.
    - ``monetary``: the sum of ``amount_column`` (nulls count as 0); with ``monetary: mean``,
      that sum divided by ``frequency`` (the mean per order).

Bin edges
    Each of R, F and M is scored 1..N (N = ``rfm.bins``) from the buyer's rank among all
    ``n`` buyers. With ``rank`` the 1-based *minimum* rank of the value (ties share the rank of
    their first position; ascending for frequency and monetary, descending for recency)::

        score = 1 + floor(N * (rank - 1) / n)

    so the buyer at sorted position ``p`` (0-based) falls in the score whose quantile interval
    ``[(s - 1) / N, s / N)`` contains ``p / n``, and a block of equal values takes the score of
    its first position. Consequences:

    - equal values always get equal scores, and a larger value never gets a smaller score;
      recency is reversed: the most recent buyers get N;
    - with distinct values and ``n = k * N`` buyers every score holds exactly ``k`` buyers;
      with distinct values and ``n >= N`` every score from 1 to N is used;
    - heavy ties leave gaps: if 70 % of buyers bought once, they all get F = 1 and the next
      frequency gets F = 1 + floor(N * 0.7) = 4 (for N = 5); F = 2 and 3 stay empty. The scores
      are quantiles of the *values*, never of arbitrary tie-breaks, and need no random or
      row-order tie-break, so the result is deterministic.

    Scores are ``Int8``. ``monetary`` sums are taken in fixed point (``exprs.stable_sum``), so
    they, and the ranks built on them, do not depend on the order the engine adds rows in.

Two stages
    The scores need every buyer (ranks), the measures only each buyer's own purchases. So RFM
    runs in two stages, the same functions on one machine and on Spark: ``buyer_measures`` on
    any share of the contacts; ``value_counts`` of each measure, whose shares add up; the
    global step ``rfm_cuts``, which turns the counts into the values where each score starts
    (``RfmCuts``, a few numbers); and ``score_buyers``, which scores any share from them. The
    cuts give exactly the scores of ``quantile_score`` (the rank definition above, a property
    test checks it), without sorting the buyers in one place.

The segment map
    Named boxes of (R, F, M) scores: ``engscore.rfm_map`` (the built-in maps and their check).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from engscore.engine.exprs import event_type_in, stable_sum
from engscore.errors import ConfigError
from engscore.rfm_map import RfmSegment, default_segments
from engscore.rules import Rfm
from engscore.schema import CONTACT, EVENT_TYPE, TIMESTAMP

_MICROSECONDS_PER_DAY = 86_400_000_000
SCORE_DTYPE = pl.Int8

#: The columns of ``rfm_table``, in order; ``rfm_scores`` adds ``rfm_segment``.
MEASURE_COLUMNS = ("contact_id", "recency_days", "frequency", "monetary")
TABLE_COLUMNS = (*MEASURE_COLUMNS, "r", "f", "m")
OUTPUT_COLUMNS = (*TABLE_COLUMNS, "rfm_segment")


def segments_of(config: Rfm) -> tuple[RfmSegment, ...]:
    """The map in use: ``config.segments``, or the built-in map for ``config.bins``."""
    return config.segments if config.segments is not None else default_segments(config.bins)


def _in_box(segment: RfmSegment) -> pl.Expr:
    condition = pl.col("r").is_between(*segment.r) & pl.col("f").is_between(*segment.f)
    if segment.m is not None:
        condition = condition & pl.col("m").is_between(*segment.m)
    return condition


def rfm_segment(config: Rfm) -> pl.Expr:
    """The segment name from columns ``r``, ``f`` and ``m``: the first box that holds them.

    Null where ``r`` (or another score a box needs) is null, and for cells no box covers.
    """
    expr = pl.lit(None, dtype=pl.String)
    # Built from the last box back, so the first box is tested first.
    for segment in reversed(segments_of(config)):
        expr = pl.when(_in_box(segment)).then(pl.lit(segment.name)).otherwise(expr)
    return expr.alias("rfm_segment")


def quantile_score(value: pl.Expr, bins: int, *, descending: bool = False) -> pl.Expr:
    """``1 + floor(bins * (rank - 1) / n)`` with the minimum rank: ties share a score.

    The definition the cuts of ``rfm_cuts`` reproduce (the tests compare them).

    ``n`` is the number of rows; ``descending`` ranks the largest value first (score 1), as
    recency needs. Nulls stay null.
    """
    rank = value.rank(method="min", descending=descending).cast(pl.Int64)
    count = pl.len().cast(pl.Int64)
    return (1 + (bins * (rank - 1)) // count).cast(SCORE_DTYPE)


def purchase_events(events: pl.LazyFrame, config: Rfm, as_of: datetime) -> pl.LazyFrame:
    """The purchase events at or before ``as_of``, with only the columns RFM and the
    predictions read (``engine.predict.summary.purchase_summary`` uses the same definition).

    Purchases are few: ``engscore score`` collects them once and runs both on the result.
    """
    schema = events.collect_schema()
    wanted = (CONTACT, TIMESTAMP, EVENT_TYPE, config.amount_column, config.order_id_column)
    columns = [c for c in dict.fromkeys(wanted) if c is not None and c in schema]
    return events.filter(
        (pl.col(TIMESTAMP) <= as_of) & event_type_in(config.purchase_events)
    ).select(columns)


def buyer_measures(events: pl.LazyFrame, config: Rfm, as_of: datetime) -> pl.LazyFrame:
    """One row per buyer at ``as_of``: ``contact_id``, ``recency_days``, ``frequency`` and
    ``monetary`` (``MEASURE_COLUMNS``), not scored and not sorted.

    The first of RFM's two stages: it needs only each buyer's own purchases, so it runs on any
    share of the contacts (a Spark partition) and the shares' rows together are the whole
    table. Lazy: the caller collects.
    """
    schema = events.collect_schema()
    for column in (config.amount_column, config.order_id_column):
        if column is not None and column not in schema:
            raise ConfigError(
                f"rfm: unknown column {column!r} (events have: {', '.join(schema.names())})"
            )
    purchases = purchase_events(events, config, as_of)
    if config.order_id_column is None:
        frequency = pl.len()
    else:
        order = pl.col(config.order_id_column)
        frequency = order.drop_nulls().n_unique() + order.null_count()
    total = stable_sum(pl.col(config.amount_column).cast(pl.Float64).fill_null(0.0))
    buyers = purchases.group_by(CONTACT).agg(
        _last=pl.col(TIMESTAMP).max(),
        frequency=frequency.cast(pl.Int64),
        _total=total,
    )
    since = (pl.lit(as_of) - pl.col("_last")).dt.total_microseconds()
    monetary = pl.col("_total")
    if config.monetary == "mean":
        monetary = monetary / pl.col("frequency")
    return buyers.select(
        CONTACT,
        recency_days=(since // _MICROSECONDS_PER_DAY).cast(pl.Int64),
        frequency=pl.col("frequency"),
        monetary=monetary.cast(pl.Float64),
    )


def value_counts(measures: pl.LazyFrame, column: str) -> pl.LazyFrame:
    """How many buyers have each value of ``column`` (columns ``value``, ``n``).

    Counts of shares add up (``merge_value_counts``): the global step needs only these, one
    row per distinct value, never the buyers themselves.
    """
    return measures.group_by(pl.col(column).alias("value")).agg(n=pl.len().cast(pl.Int64))


def merge_value_counts(counts: pl.LazyFrame) -> pl.LazyFrame:
    """Value counts of several shares (stacked) as one table, sorted by value."""
    return counts.group_by("value").agg(pl.col("n").sum()).sort("value")


@dataclass(frozen=True)
class RfmCuts:
    """The global step's result: for each of R, F and M, the smallest value (largest, for
    recency) that reaches each score from 2 to N. Small (at most 3 (N - 1) numbers), it is all
    a share of the buyers needs to be scored (``score_buyers``); Spark broadcasts it."""

    buyers: int
    recency_days: tuple[int, ...]
    frequency: tuple[int, ...]
    monetary: tuple[float, ...]


def score_cuts(counts: pl.DataFrame, bins: int, *, descending: bool = False) -> list[Any]:
    """The values where the scores start, from a measure's value counts (``value``, ``n``).

    A value ``v`` scores ``1 + floor(N * before / n)`` with ``before`` the number of buyers
    with a smaller value (larger, for ``descending``): the minimum-rank rule of the module
    docstring. The score never falls as the value grows (rises, for ``descending``), so each
    score ``s >= 2`` is reached from one value on: returned for ``s = 2 .. N`` (a score no
    value reaches has no entry).
    """
    merged = merge_value_counts(counts.lazy()).sort("value", descending=descending)
    ordered = merged.collect()
    total = int(ordered["n"].sum())
    scored = ordered.with_columns(score=1 + (bins * (pl.col("n").cum_sum() - pl.col("n"))) // total)
    values, scores = scored["value"].to_list(), scored["score"].to_list()
    cuts: list[Any] = []
    position = 0
    for score in range(2, bins + 1):
        while position < len(scores) and scores[position] < score:
            position += 1
        if position == len(scores):
            break
        cuts.append(values[position])
    return cuts


def rfm_cuts(counts: dict[str, pl.DataFrame], bins: int) -> RfmCuts:
    """``RfmCuts`` from the value counts of ``recency_days``, ``frequency`` and ``monetary``
    (``value_counts``, over every buyer): the global step of RFM."""
    return RfmCuts(
        buyers=int(counts["frequency"]["n"].sum()),
        recency_days=tuple(score_cuts(counts["recency_days"], bins, descending=True)),
        frequency=tuple(score_cuts(counts["frequency"], bins)),
        monetary=tuple(score_cuts(counts["monetary"], bins)),
    )


def _score_from_cuts(value: pl.Expr, cuts: tuple[Any, ...], *, descending: bool) -> pl.Expr:
    reached = [(value <= cut) if descending else (value >= cut) for cut in cuts]
    return (1 + pl.sum_horizontal(pl.lit(0), *reached)).cast(SCORE_DTYPE)


def score_buyers(measures: pl.LazyFrame, cuts: RfmCuts, config: Rfm) -> pl.LazyFrame:
    """``buyer_measures`` rows with their ``r``, ``f``, ``m`` scores and ``rfm_segment``
    (columns ``OUTPUT_COLUMNS``, order kept): RFM's last stage, on any share of the buyers."""
    return measures.with_columns(
        r=_score_from_cuts(pl.col("recency_days"), cuts.recency_days, descending=True),
        f=_score_from_cuts(pl.col("frequency"), cuts.frequency, descending=False),
        m=_score_from_cuts(pl.col("monetary"), cuts.monetary, descending=False),
    ).select(*TABLE_COLUMNS, rfm_segment(config))


def _measure_counts(measures: pl.LazyFrame) -> dict[str, pl.DataFrame]:
    queries = [value_counts(measures, name) for name in MEASURE_COLUMNS[1:]]
    return dict(zip(MEASURE_COLUMNS[1:], pl.collect_all(queries), strict=True))


def rfm_table(events: pl.LazyFrame, config: Rfm, as_of: datetime) -> pl.LazyFrame:
    """One row per buyer at ``as_of``: recency, frequency, monetary and their scores.

    Columns ``TABLE_COLUMNS``, sorted by ``contact_id``; see the module docstring for the
    definitions and the bin edges. The two stages Spark runs apart, run here in turn: the
    measures and their value counts are collected (purchases are few), the result is lazy.
    """
    return rfm_scores(events, config, as_of).select(TABLE_COLUMNS)


def rfm_scores(events: pl.LazyFrame, config: Rfm, as_of: datetime) -> pl.LazyFrame:
    """``rfm_table`` plus ``rfm_segment`` (columns ``OUTPUT_COLUMNS``, sorted by contact)."""
    measures = buyer_measures(events, config, as_of).collect().lazy()
    cuts = rfm_cuts(_measure_counts(measures), config.bins)
    return score_buyers(measures, cuts, config).sort(CONTACT)
