"""engine.normalise: de-duplication by 64-bit keys drops the rows ``drop_duplicates`` drops."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from engscore.engine.normalise import drop_duplicates, duplicate_key, keyed_duplicates

CONTENT = ["contact_id", "event_type", "event_id", "campaign_id", "amount"]

rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["open", "click"]),
        st.one_of(st.none(), st.sampled_from(["e1", "e2", "e3"])),
        st.one_of(st.none(), st.sampled_from(["c1", "c2"])),
        st.one_of(st.none(), st.sampled_from([1.0, 2.5])),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(rows)
def test_keyed_duplicates_drop_what_drop_duplicates_drops(data: list[tuple[object, ...]]) -> None:
    events = pl.DataFrame(
        data,
        schema={
            "contact_id": pl.String,
            "event_type": pl.String,
            "event_id": pl.String,
            "campaign_id": pl.String,
            "amount": pl.Float64,
        },
        orient="row",
    ).with_row_index("_ord")
    events = events.with_columns(pl.col("_ord").cast(pl.Int64))
    expected = drop_duplicates(events.lazy()).collect().sort("_ord")["_ord"]
    keyed = events.with_columns(
        pl.col("event_id").is_not_null().alias("_has_id"), duplicate_key(CONTENT).alias("_dup")
    )
    dropped = keyed_duplicates(keyed, "contact_id", "_has_id", "_dup")
    assert keyed.filter(~dropped)["_ord"].equals(expected)


def test_no_duplicates_drop_nothing() -> None:
    frame = pl.DataFrame({"c": ["a", "b"], "h": [True, True], "k": [1, 2]}, schema_overrides={
        "k": pl.UInt64})  # fmt: skip
    assert keyed_duplicates(frame, "c", "h", "k").to_list() == [False, False]
