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

The segment map
    Named boxes of (R, F, M) scores: ``engscore.rfm_map`` (the built-in maps and their check).
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from engscore.engine.exprs import event_type_in, stable_sum
from engscore.errors import ConfigError
from engscore.rfm_map import RfmSegment, default_segments
from engscore.rules import Rfm
from engscore.schema import CONTACT, EVENT_TYPE, TIMESTAMP

_MICROSECONDS_PER_DAY = 86_400_000_000
SCORE_DTYPE = pl.Int8

#: The columns of ``rfm_table``, in order; ``rfm_scores`` adds ``rfm_segment``.
TABLE_COLUMNS = ("contact_id", "recency_days", "frequency", "monetary", "r", "f", "m")
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


def rfm_table(events: pl.LazyFrame, config: Rfm, as_of: datetime) -> pl.LazyFrame:
    """One row per buyer at ``as_of``: recency, frequency, monetary and their scores.

    Columns ``TABLE_COLUMNS``, sorted by ``contact_id``; see the module docstring for the
    definitions and the bin edges. Lazy: the caller collects.
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
    table = buyers.with_columns(
        recency_days=(since // _MICROSECONDS_PER_DAY).cast(pl.Int64),
        monetary=monetary.cast(pl.Float64),
    )
    bins = config.bins
    scored = table.with_columns(
        r=quantile_score(pl.col("recency_days"), bins, descending=True),
        f=quantile_score(pl.col("frequency"), bins),
        m=quantile_score(pl.col("monetary"), bins),
    )
    return scored.select(TABLE_COLUMNS).sort(CONTACT)


def rfm_scores(events: pl.LazyFrame, config: Rfm, as_of: datetime) -> pl.LazyFrame:
    """``rfm_table`` plus ``rfm_segment`` (columns ``OUTPUT_COLUMNS``, sorted by contact)."""
    return rfm_table(events, config, as_of).with_columns(rfm_segment(config))
