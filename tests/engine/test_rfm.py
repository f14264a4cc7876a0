"""RFM (SPEC section 5): the table, tie-safe quantile scores and the named segment maps."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engscore.engine.rfm import (
    OUTPUT_COLUMNS,
    buyer_measures,
    merge_value_counts,
    quantile_score,
    rfm_cuts,
    rfm_scores,
    rfm_segment,
    rfm_table,
    score_buyers,
    score_cuts,
    value_counts,
)
from engscore.errors import ConfigError
from engscore.rfm_map import (
    SEGMENT_NAMES,
    WHOLE_MAP,
    RfmSegment,
    all_cells,
    check_segment_map,
    default_segments,
)
from engscore.rules import Rfm
from engscore.schema import CANONICAL_SCHEMA
from helpers import utc

AS_OF = utc(2024, 6, 30, 12)
BINS = (3, 4, 5)


def ev(contact: str, event_type: str, timestamp: datetime, **fields: Any) -> dict[str, Any]:
    """One canonical event as a dict (missing optional columns are null)."""
    row: dict[str, Any] = dict.fromkeys(CANONICAL_SCHEMA)
    row.update(contact_id=contact, event_type=event_type, timestamp=timestamp, is_machine=False)
    row.update(fields)
    return row


def frame(events: list[dict[str, Any]], **extra: pl.DataType) -> pl.LazyFrame:
    return pl.DataFrame(events, schema={**CANONICAL_SCHEMA, **extra}).lazy()


def rfm_of(**spec: Any) -> Rfm:
    return Rfm.model_validate(spec)


def box(name: str, r: int | str, f: int | str, m: int | str | None = None) -> RfmSegment:
    """A box as the rules file writes it: ``4`` or ``"3-5"``."""
    spec = {"name": name, "r": r, "f": f} if m is None else {"name": name, "r": r, "f": f, "m": m}
    return RfmSegment.model_validate(spec)


def rows_by_contact(out: pl.DataFrame) -> dict[str, dict[str, Any]]:
    return {row["contact_id"]: row for row in out.iter_rows(named=True)}


def lookup(segments: tuple[RfmSegment, ...], cell: tuple[int, int, int]) -> list[str]:
    """Names of every box holding ``cell`` (plain Python, independent of the module)."""
    r, f, m = cell
    return [
        s.name
        for s in segments
        if s.r[0] <= r <= s.r[1]
        and s.f[0] <= f <= s.f[1]
        and (s.m is None or s.m[0] <= m <= s.m[1])
    ]


# --- The table: hand-computed examples -------------------------------------------------------


def hand_events() -> list[dict[str, Any]]:
    return [
        # a: two purchases, the last 23 hours before as_of (0 whole days).
        ev("a", "purchase", utc(2024, 6, 29, 13), amount=10.0),
        ev("a", "purchase", utc(2024, 6, 1), amount=20.0),
        ev("a", "open", utc(2024, 6, 30)),
        # b: exactly 10 days before as_of, amount missing (counts as 0).
        ev("b", "purchase", utc(2024, 6, 20, 12), amount=None),
        # c: a purchase exactly at as_of counts, one after it does not.
        ev("c", "purchase", AS_OF, amount=5.0),
        ev("c", "purchase", AS_OF + timedelta(microseconds=1), amount=1000.0),
        # d never bought; e bought only after as_of.
        ev("d", "open", utc(2024, 6, 1)),
        ev("d", "click", utc(2024, 6, 2)),
        ev("e", "purchase", utc(2024, 7, 1), amount=50.0),
    ]


def test_hand_computed_table_and_scores() -> None:
    out = rfm_scores(frame(hand_events()), rfm_of(bins=3), AS_OF).collect()
    assert tuple(out.columns) == OUTPUT_COLUMNS
    assert out["contact_id"].to_list() == ["a", "b", "c"]  # buyers only, sorted
    rows = rows_by_contact(out)
    facts = {c: (r["recency_days"], r["frequency"], r["monetary"]) for c, r in rows.items()}
    assert facts == {"a": (0, 2, 30.0), "b": (10, 1, 0.0), "c": (0, 1, 5.0)}
    # n = 3, N = 3: score = 1 + floor(3 * (rank_min - 1) / 3) = rank_min.
    # recency (descending): b 10 -> rank 1; a, c tie at 0 -> rank 2 (never split).
    # frequency: b, c tie at 1 -> rank 1; a -> rank 3. monetary: b 0, c 5, a 30.
    scores = {c: (r["r"], r["f"], r["m"]) for c, r in rows.items()}
    assert scores == {"a": (2, 3, 3), "b": (1, 1, 1), "c": (2, 1, 2)}
    segments = {c: r["rfm_segment"] for c, r in rows.items()}
    assert segments == {"a": "Loyal", "b": "Lost", "c": "Promising"}


def test_dtypes() -> None:
    out = rfm_scores(frame(hand_events()), rfm_of(), AS_OF)
    assert isinstance(out, pl.LazyFrame)
    assert dict(out.collect_schema()) == {
        "contact_id": pl.String(),
        "recency_days": pl.Int64(),
        "frequency": pl.Int64(),
        "monetary": pl.Float64(),
        "r": pl.Int8(),
        "f": pl.Int8(),
        "m": pl.Int8(),
        "rfm_segment": pl.String(),
    }
    assert out.collect().schema == out.collect_schema()


def test_recency_rounds_down_to_whole_days() -> None:
    events = [
        ev("a", "purchase", AS_OF - timedelta(days=3, microseconds=1)),
        ev("b", "purchase", AS_OF - timedelta(days=3)),
        ev("c", "purchase", AS_OF - timedelta(days=2, hours=23, minutes=59)),
    ]
    out = rfm_table(frame(events), rfm_of(), AS_OF).collect()
    assert out["recency_days"].to_list() == [3, 3, 2]


def test_order_ids_counted_distinct_and_mean_per_order() -> None:
    events = [
        ev("a", "purchase", utc(2024, 6, 1), amount=10.0, event_id="o1"),
        ev("a", "purchase", utc(2024, 6, 1, 0, 5), amount=5.0, event_id="o1"),
        ev("a", "purchase", utc(2024, 6, 2), amount=20.0, event_id="o2"),
        # A purchase without an order id is an order of its own.
        ev("a", "purchase", utc(2024, 6, 3), amount=1.0, event_id=None),
        ev("b", "purchase", utc(2024, 6, 3), amount=8.0, event_id="o3"),
        ev("b", "purchase", utc(2024, 6, 4), amount=None, event_id="o4"),
    ]
    by_order = rfm_of(order_id_column="event_id", monetary="mean")
    rows = rows_by_contact(rfm_table(frame(events), by_order, AS_OF).collect())
    assert {c: (r["frequency"], r["monetary"]) for c, r in rows.items()} == {
        "a": (3, 12.0),  # o1, o2 and one without an id; 36 / 3
        "b": (2, 4.0),
    }
    summed = rfm_of(order_id_column="event_id")
    rows = rows_by_contact(rfm_table(frame(events), summed, AS_OF).collect())
    assert {c: (r["frequency"], r["monetary"]) for c, r in rows.items()} == {
        "a": (3, 36.0),
        "b": (2, 8.0),
    }
    per_event = rfm_of(monetary="mean")
    rows = rows_by_contact(rfm_table(frame(events), per_event, AS_OF).collect())
    assert {c: (r["frequency"], r["monetary"]) for c, r in rows.items()} == {
        "a": (4, 9.0),
        "b": (2, 4.0),
    }


def test_custom_purchase_events_and_amount_column() -> None:
    events = [
        ev("a", "order", utc(2024, 6, 1), revenue=7),
        ev("a", "purchase", utc(2024, 6, 2), revenue=3, amount=100.0),
        ev("b", "purchase", utc(2024, 6, 2), revenue=None, amount=100.0),
        ev("c", "open", utc(2024, 6, 2), revenue=50),
    ]
    config = rfm_of(purchase_events=["order", "purchase"], amount_column="revenue")
    out = rfm_table(frame(events, revenue=pl.Int64()), config, AS_OF).collect()
    rows = rows_by_contact(out)
    assert {c: (r["frequency"], r["monetary"]) for c, r in rows.items()} == {
        "a": (2, 10.0),
        "b": (1, 0.0),
    }


@pytest.mark.parametrize("key", ["amount_column", "order_id_column"])
def test_unknown_column_is_a_config_error(key: str) -> None:
    with pytest.raises(ConfigError, match="'nope'"):
        rfm_table(frame(hand_events()), rfm_of(**{key: "nope"}), AS_OF)


def test_no_buyers_gives_an_empty_table() -> None:
    events = [ev("d", "open", utc(2024, 6, 1)), ev("e", "purchase", utc(2024, 7, 1))]
    out = rfm_scores(frame(events), rfm_of(), AS_OF).collect()
    assert out.height == 0
    assert tuple(out.columns) == OUTPUT_COLUMNS


def test_row_order_does_not_matter() -> None:
    rng = random.Random(5)
    events = [
        ev(
            f"c{rng.randrange(40)}",
            "purchase",
            AS_OF - timedelta(hours=rng.randrange(24 * 200)),
            amount=rng.choice([None, 0.1, 0.2, 0.3, 9.99, 1e6]),
            event_id=rng.choice(["x", "y", None]),
        )
        for _ in range(400)
    ]
    config = rfm_of(order_id_column="event_id", monetary="mean", bins=4)
    first = rfm_scores(frame(events), config, AS_OF).collect()
    rng.shuffle(events)
    assert rfm_scores(frame(events), config, AS_OF).collect().equals(first)


# --- Bin edges -------------------------------------------------------------------------------


def scores_of(values: list[float], bins: int, *, descending: bool = False) -> list[int]:
    out = pl.DataFrame({"x": values}, schema={"x": pl.Float64()}).select(
        quantile_score(pl.col("x"), bins, descending=descending)
    )
    return [int(s) for s in out.to_series()]


def check_ties_rule(values: list[float], scores: list[int], bins: int, *, reverse: bool) -> None:
    """Scores in 1..N, monotone in the value, equal values equal, and the exact rule."""
    n = len(values)
    assert all(1 <= s <= bins for s in scores)
    for v, s in zip(values, scores, strict=True):
        before = sum(1 for w in values if (w > v if reverse else w < v))
        assert s == 1 + bins * before // n
    pairs = sorted(zip(values, scores, strict=True))
    for (v1, s1), (v2, s2) in zip(pairs, pairs[1:], strict=False):
        if v1 == v2:
            assert s1 == s2
        elif reverse:
            assert s1 >= s2
        else:
            assert s1 <= s2


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.integers(0, 6), min_size=1, max_size=60),
    bins=st.sampled_from(BINS),
    reverse=st.booleans(),
)
def test_quantile_score_ties_property(values: list[int], bins: int, reverse: bool) -> None:
    floats = [float(v) for v in values]
    scores = scores_of(floats, bins, descending=reverse)
    check_ties_rule(floats, scores, bins, reverse=reverse)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=40, unique=True),
    bins=st.sampled_from(BINS),
)
def test_distinct_values_reach_every_score(values: list[float], bins: int) -> None:
    scores = scores_of(values, bins)
    check_ties_rule(values, scores, bins, reverse=False)
    if len(values) >= bins:
        assert set(scores) == set(range(1, bins + 1))


@pytest.mark.parametrize("bins", BINS)
@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_distinct_values_split_evenly(bins: int, k: int) -> None:
    n = k * bins
    rng = random.Random(bins * 100 + k)
    # Through the whole table: distinct recency, frequency and monetary for n buyers.
    days, counts, amounts = (rng.sample(range(n), n) for _ in range(3))
    events = []
    for i in range(n):
        for j in range(counts[i] + 1):
            stamp = AS_OF - timedelta(days=days[i] + j)
            amount = float(amounts[i]) if j == 0 else 0.0
            events.append(ev(f"c{i:03d}", "purchase", stamp, amount=amount))
    out = rfm_table(frame(events), rfm_of(bins=bins), AS_OF).collect()
    assert out.height == n
    for column in ("r", "f", "m"):
        assert out[column].value_counts().sort(column)["count"].to_list() == [k] * bins
    # Recency is reversed: the most recent buyers score N.
    assert out.sort("recency_days")["r"].to_list() == sorted(
        (s for s in range(1, bins + 1) for _ in range(k)), reverse=True
    )
    assert out.sort("frequency")["f"].to_list() == [s for s in range(1, bins + 1) for _ in range(k)]


buyer = st.tuples(
    st.integers(0, 5),  # days before as_of of the last purchase
    st.integers(1, 3),  # purchases
    st.sampled_from([None, 0.0, 1.5, 2.0, 10.0]),  # amount per purchase
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(buyers=st.lists(buyer, min_size=1, max_size=30), bins=st.sampled_from(BINS))
def test_table_scores_ties_property(buyers: list[tuple[int, int, float | None]], bins: int) -> None:
    events = [ev("never", "open", AS_OF)]
    for i, (days, count, amount) in enumerate(buyers):
        for j in range(count):
            stamp = AS_OF - timedelta(days=days + j, hours=j)
            events.append(ev(f"c{i:02d}", "purchase", stamp, amount=amount))
        events.append(ev(f"c{i:02d}", "purchase", AS_OF + timedelta(days=1), amount=99.0))
    out = rfm_scores(frame(events), rfm_of(bins=bins), AS_OF).collect()
    assert out.height == len(buyers)
    for i, row in enumerate(out.iter_rows(named=True)):
        days, count, amount = buyers[i]
        assert row["contact_id"] == f"c{i:02d}"
        assert (row["recency_days"], row["frequency"]) == (days, count)
        assert row["monetary"] == pytest.approx(count * (amount or 0.0))
    for value, score, reverse in (
        ("recency_days", "r", True),
        ("frequency", "f", False),
        ("monetary", "m", False),
    ):
        check_ties_rule([float(v) for v in out[value]], list(out[score]), bins, reverse=reverse)
    assert out["rfm_segment"].null_count() == 0


# --- Segment maps ----------------------------------------------------------------------------


@pytest.mark.parametrize("bins", BINS)
def test_built_in_maps_are_exact_covers_using_every_name(bins: int) -> None:
    segments = default_segments(bins)
    assert check_segment_map(segments, bins) == []
    for cell in all_cells(bins):
        assert len(set(lookup(segments, cell))) == 1, cell
    used = {name for cell in all_cells(bins) for name in lookup(segments, cell)}
    assert used == set(SEGMENT_NAMES)
    assert len(all_cells(bins)) == bins**3


@pytest.mark.parametrize("bins", (4, 5))
def test_built_in_maps_for_4_and_5_ignore_m(bins: int) -> None:
    assert all(segment.m is None for segment in default_segments(bins))


def test_built_in_map_5_corners() -> None:
    segments = default_segments(5)
    names = {(r, f): lookup(segments, (r, f, 3))[0] for r in range(1, 6) for f in range(1, 6)}
    assert names[5, 5] == names[4, 4] == "Champions"
    assert names[5, 1] == "New Customers"
    assert names[4, 1] == "Promising"
    assert names[1, 5] == names[1, 4] == "Can't Lose Them"
    assert names[1, 1] == names[1, 2] == "Lost"
    assert names[2, 1] == "Hibernating"
    assert names[3, 2] == "Need Attention"
    assert names[3, 3] == names[4, 3] == "Loyal"


def test_no_built_in_map_for_other_bins() -> None:
    with pytest.raises(ConfigError, match="6 bins"):
        default_segments(6)


@pytest.mark.parametrize("bins", BINS)
def test_rfm_segment_agrees_with_the_map(bins: int) -> None:
    cells = all_cells(bins)
    scores = pl.DataFrame(
        [*cells, (None, None, None)], schema=dict.fromkeys("rfm", pl.Int8()), orient="row"
    )
    out = scores.with_columns(rfm_segment(rfm_of(bins=bins)))
    segments = default_segments(bins)
    expected = [lookup(segments, cell)[0] for cell in cells] + [None]
    assert out["rfm_segment"].to_list() == expected


def test_rfm_segment_uses_the_configured_map_first_box_wins() -> None:
    config = rfm_of(
        bins=3,
        segments=[
            {"name": "Top", "r": 3, "f": 3, "m": "2-3"},
            {"name": "Recent", "r": "2-3", "f": "1-3"},
        ],
    )
    scores = pl.DataFrame(
        {"r": [3, 3, 2, 1, None], "f": [3, 3, 1, 1, 3], "m": [3, 1, 1, 1, 3]},
        schema=dict.fromkeys("rfm", pl.Int8()),
    )
    out = scores.select(rfm_segment(config)).to_series().to_list()
    assert out == ["Top", "Recent", "Recent", None, None]


def test_check_segment_map_reports_a_gap() -> None:
    segments = tuple(s for s in default_segments(5) if s.name != "New Customers")
    assert check_segment_map(segments, 5) == [
        (
            WHOLE_MAP,
            "5 cell(s) are not covered by any segment: (r=5, f=1, m=1), (r=5, f=1, m=2), "
            "(r=5, f=1, m=3), (r=5, f=1, m=4), (r=5, f=1, m=5)",
        )
    ]
    [(index, message)] = check_segment_map((), 3)
    assert index == WHOLE_MAP
    assert message == (
        "27 cell(s) are not covered by any segment: (r=1, f=1, m=1), (r=1, f=1, m=2), "
        "(r=1, f=1, m=3), (r=1, f=2, m=1), (r=1, f=2, m=2), ..."
    )


def test_check_segment_map_reports_an_overlap() -> None:
    segments = (*default_segments(4), box("VIP", 4, 4, 4))
    assert check_segment_map(segments, 4) == [
        (11, "cell (r=4, f=4, m=4) is covered by both 'Champions' (segment 0) and 'VIP'")
    ]


def test_check_segment_map_reports_each_overlapping_pair_once() -> None:
    # r 1-3, f 1, m 1-2 shares cells with five boxes of the N = 3 map.
    wide = (*default_segments(3), box("Everyone", "1-3", 1, "1-2"))
    assert check_segment_map(wide, 3) == [
        (
            11,
            "cell (r=3, f=1, m=1) is covered by both 'New Customers' (segment 3) and "
            "'Everyone' (2 shared cells)",
        ),
        (11, "cell (r=2, f=1, m=2) is covered by both 'Promising' (segment 4) and 'Everyone'"),
        (11, "cell (r=2, f=1, m=1) is covered by both 'About To Sleep' (segment 6) and 'Everyone'"),
        (11, "cell (r=1, f=1, m=2) is covered by both 'Hibernating' (segment 9) and 'Everyone'"),
        (11, "cell (r=1, f=1, m=1) is covered by both 'Lost' (segment 10) and 'Everyone'"),
    ]


def test_check_segment_map_ignores_overlaps_within_one_name() -> None:
    segments = (*default_segments(5), box("Champions", 5, 5))
    assert check_segment_map(segments, 5) == []


def test_check_segment_map_reports_ranges_beyond_the_bins() -> None:
    segments = (*default_segments(5)[:-1], box("Lost", 1, "1-2", "1-6"))
    assert check_segment_map(segments, 5) == [(12, "'Lost': m: 1-6 is outside 1-5")]
    # The N = 5 map read as an N = 3 map: boxes out of range, though the parts inside
    # 1-3 happen to cover every cell once.
    problems = check_segment_map(default_segments(5), 3)
    assert (0, "'Champions': r: 4-5 is outside 1-3") in problems
    assert (0, "'Champions': f: 4-5 is outside 1-3") in problems
    assert all(index != WHOLE_MAP and "outside" in message for index, message in problems)


# --- Two stages ------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.integers(0, 8), min_size=1, max_size=60),
    bins=st.sampled_from(BINS),
    descending=st.booleans(),
    shares=st.integers(1, 4),
)
def test_cuts_give_the_rank_scores(
    values: list[int], bins: int, descending: bool, shares: int
) -> None:
    """The global step's cuts, from counts added up over shares of the buyers, score every
    value as the rank definition does."""
    frame_ = pl.DataFrame({"x": [float(v) for v in values]})
    expected = frame_.select(quantile_score(pl.col("x"), bins, descending=descending)).to_series()
    parts = [
        value_counts(frame_.lazy().gather_every(shares, offset), "x")
        for offset in range(min(shares, len(values)))
    ]
    counts = merge_value_counts(pl.concat(parts)).collect()
    cuts = tuple(score_cuts(counts, bins, descending=descending))
    assert len(cuts) <= bins - 1
    reached = [(pl.col("x") <= c) if descending else (pl.col("x") >= c) for c in cuts]
    got = frame_.with_columns(s=1 + pl.sum_horizontal(pl.lit(0), *reached))["s"]
    assert got.to_list() == expected.to_list()


def test_shares_scored_apart_equal_the_whole() -> None:
    rng = random.Random(7)
    events = [
        ev(
            f"c{rng.randrange(60):02d}",
            "purchase",
            AS_OF - timedelta(days=rng.randrange(90)),
            amount=float(rng.randrange(5)),
        )
        for _ in range(300)
    ]
    config = rfm_of(bins=4)
    whole = rfm_scores(frame(events), config, AS_OF).collect()
    measures = buyer_measures(frame(events), config, AS_OF).collect()
    shares = [measures.filter(pl.col("contact_id").hash(seed=3) % 3 == k) for k in range(3)]
    counts = {
        name: merge_value_counts(
            pl.concat([value_counts(share.lazy(), name) for share in shares])
        ).collect()
        for name in ("recency_days", "frequency", "monetary")
    }
    cuts = rfm_cuts(counts, config.bins)
    assert cuts.buyers == whole.height
    apart = pl.concat([score_buyers(share.lazy(), cuts, config).collect() for share in shares])
    assert apart.sort("contact_id").equals(whole)
