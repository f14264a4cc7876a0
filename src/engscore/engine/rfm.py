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

    Scores are ``Int8``. ``monetary`` sums are taken in fixed point (``points.stable_sum``), so
    they, and the ranks built on them, do not depend on the order the engine adds rows in.

The segment map
    A segment is a named box of (R, F, M) scores, ranges inclusive, M optional (any M). The
    first box that holds a buyer's (r, f, m) names it; a name may have several boxes. The
    built-in maps cover each of the N**3 cells exactly once (``check_segment_map`` proves it)
    and use all eleven names. For N = 5 they are boxes on (R, F) alone (R rows, F columns)::

                F=1             F=2                 F=3                 F=4 .. F=5
        R=5  New Customers   Potential Loyalist  Loyal               Champions
        R=4  Promising       Potential Loyalist  Loyal               Champions
        R=3  About To Sleep  Need Attention      Loyal               Loyal
        R=2  Hibernating     Hibernating         At Risk             At Risk
        R=1  Lost            Lost                At Risk             Can't Lose Them

    N = 4, also on (R, F) alone::

                F=1             F=2                 F=3        F=4
        R=4  New Customers   Potential Loyalist  Champions  Champions
        R=3  Promising       Potential Loyalist  Loyal      Loyal
        R=2  About To Sleep  Need Attention      At Risk    Can't Lose Them
        R=1  Lost            Hibernating         At Risk    Can't Lose Them

    N = 3 has only 9 (R, F) cells for 11 names, so two cells are split by M::

                F=1                                         F=2                 F=3
        R=3  New Customers                               Potential Loyalist  Champions
        R=2  About To Sleep (M=1), Promising (M=2-3)     Need Attention      Loyal
        R=1  Lost (M=1), Hibernating (M=2-3)             At Risk             Can't Lose Them
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import product
from typing import Any

import polars as pl

from engscore.engine.points import event_type_in, stable_sum
from engscore.errors import ConfigError
from engscore.rules import Rfm, RfmSegment

CONTACT = "contact_id"
TIMESTAMP = "timestamp"
EVENT_TYPE = "event_type"
_MICROSECONDS_PER_DAY = 86_400_000_000
SCORE_DTYPE = pl.Int8

#: The columns of ``rfm_table``, in order; ``rfm_scores`` adds ``rfm_segment``.
TABLE_COLUMNS = ("contact_id", "recency_days", "frequency", "monetary", "r", "f", "m")
OUTPUT_COLUMNS = (*TABLE_COLUMNS, "rfm_segment")

SEGMENT_NAMES = (
    "Champions",
    "Loyal",
    "Potential Loyalist",
    "New Customers",
    "Promising",
    "Need Attention",
    "About To Sleep",
    "At Risk",
    "Can't Lose Them",
    "Hibernating",
    "Lost",
)

#: The segment index ``check_segment_map`` gives problems of the map as a whole (gaps).
WHOLE_MAP = -1
#: How many uncovered cells a gap message lists.
_SHOWN_CELLS = 5

Span = tuple[int, int]


def _box(name: str, r: Span, f: Span, m: Span | None = None) -> RfmSegment:
    # The rules file gives ranges as lists; validate the same way it does.
    data: dict[str, Any] = {"name": name, "r": list(r), "f": list(f)}
    if m is not None:
        data["m"] = list(m)
    return RfmSegment.model_validate(data)


_MAP_5 = (
    _box("Champions", (4, 5), (4, 5)),
    _box("Loyal", (4, 5), (3, 3)),
    _box("Loyal", (3, 3), (3, 5)),
    _box("Potential Loyalist", (4, 5), (2, 2)),
    _box("New Customers", (5, 5), (1, 1)),
    _box("Promising", (4, 4), (1, 1)),
    _box("Need Attention", (3, 3), (2, 2)),
    _box("About To Sleep", (3, 3), (1, 1)),
    _box("At Risk", (2, 2), (3, 5)),
    _box("At Risk", (1, 1), (3, 3)),
    _box("Can't Lose Them", (1, 1), (4, 5)),
    _box("Hibernating", (2, 2), (1, 2)),
    _box("Lost", (1, 1), (1, 2)),
)

_MAP_4 = (
    _box("Champions", (4, 4), (3, 4)),
    _box("Loyal", (3, 3), (3, 4)),
    _box("Potential Loyalist", (3, 4), (2, 2)),
    _box("New Customers", (4, 4), (1, 1)),
    _box("Promising", (3, 3), (1, 1)),
    _box("Need Attention", (2, 2), (2, 2)),
    _box("About To Sleep", (2, 2), (1, 1)),
    _box("At Risk", (1, 2), (3, 3)),
    _box("Can't Lose Them", (1, 2), (4, 4)),
    _box("Hibernating", (1, 1), (2, 2)),
    _box("Lost", (1, 1), (1, 1)),
)

_MAP_3 = (
    _box("Champions", (3, 3), (3, 3)),
    _box("Loyal", (2, 2), (3, 3)),
    _box("Potential Loyalist", (3, 3), (2, 2)),
    _box("New Customers", (3, 3), (1, 1)),
    _box("Promising", (2, 2), (1, 1), (2, 3)),
    _box("Need Attention", (2, 2), (2, 2)),
    _box("About To Sleep", (2, 2), (1, 1), (1, 1)),
    _box("At Risk", (1, 1), (2, 2)),
    _box("Can't Lose Them", (1, 1), (3, 3)),
    _box("Hibernating", (1, 1), (1, 1), (2, 3)),
    _box("Lost", (1, 1), (1, 1), (1, 1)),
)

_DEFAULT_MAPS = {3: _MAP_3, 4: _MAP_4, 5: _MAP_5}


def default_segments(bins: int) -> tuple[RfmSegment, ...]:
    """The built-in segment map for ``bins`` = 3, 4 or 5 (see the module docstring)."""
    try:
        return _DEFAULT_MAPS[bins]
    except KeyError:
        raise ConfigError(
            f"rfm.bins: no built-in segment map for {bins} bins (use 3, 4 or 5)"
        ) from None


def segments_of(config: Rfm) -> tuple[RfmSegment, ...]:
    """The map in use: ``config.segments``, or the built-in map for ``config.bins``."""
    return config.segments if config.segments is not None else default_segments(config.bins)


def _spans(segment: RfmSegment, bins: int) -> tuple[Span, Span, Span]:
    m = segment.m if segment.m is not None else (1, bins)
    return segment.r, segment.f, m


def _cells(segment: RfmSegment, bins: int) -> list[tuple[int, int, int]]:
    """The cells of the box inside ``1..bins`` on every axis."""
    rs, fs, ms = (range(max(lo, 1), min(hi, bins) + 1) for lo, hi in _spans(segment, bins))
    return list(product(rs, fs, ms))


def all_cells(bins: int) -> list[tuple[int, int, int]]:
    """Every (r, f, m) cell for ``bins`` scores, in order."""
    scores = range(1, bins + 1)
    return list(product(scores, scores, scores))


def _cell_text(cell: tuple[int, int, int]) -> str:
    return f"(r={cell[0]}, f={cell[1]}, m={cell[2]})"


def check_segment_map(segments: Sequence[RfmSegment], bins: int) -> list[tuple[int, str]]:
    """Problems of a segment map for ``bins`` scores, as ``(segment index, message)``.

    Reported: a range beyond ``1..bins``; two boxes with *different* names sharing cells (one
    message per pair, on the later box; boxes of the same name may overlap harmlessly); cells
    no box covers (one message with index ``WHOLE_MAP``, listing the first few). An empty list
    means every one of the ``bins**3`` cells gets exactly one name.
    """
    problems: list[tuple[int, str]] = []
    for index, segment in enumerate(segments):
        for axis, (lo, hi) in zip("rfm", _spans(segment, bins), strict=True):
            if lo < 1 or hi > bins:
                problems.append((index, f"{segment.name!r}: {axis}: {lo}-{hi} is outside 1-{bins}"))
    owners: dict[tuple[int, int, int], int] = {}
    shared: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for index, segment in enumerate(segments):
        for cell in _cells(segment, bins):
            first = owners.setdefault(cell, index)
            if first != index and segments[first].name != segment.name:
                shared.setdefault((first, index), []).append(cell)
    for (first, index), cells in sorted(shared.items(), key=lambda item: (item[0][1], item[0][0])):
        problems.append(
            (
                index,
                f"cell {_cell_text(cells[0])} is covered by both {segments[first].name!r} "
                f"(segment {first}) and {segments[index].name!r}"
                + (f" ({len(cells)} shared cells)" if len(cells) > 1 else ""),
            )
        )
    missing = [cell for cell in all_cells(bins) if cell not in owners]
    if missing:
        shown = ", ".join(_cell_text(cell) for cell in missing[:_SHOWN_CELLS])
        more = ", ..." if len(missing) > _SHOWN_CELLS else ""
        problems.append(
            (WHOLE_MAP, f"{len(missing)} cell(s) are not covered by any segment: {shown}{more}")
        )
    return problems


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
    predictions read (``engscore.engine.predict.purchase_summary`` uses the same definition).

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
