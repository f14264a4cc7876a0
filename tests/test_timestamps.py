"""Timestamp parsing: every accepted form, time zones, bad values."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engscore import timestamps
from engscore.errors import ConfigError
from helpers import utc


def parse(values: list[str | None], zone: str = "UTC") -> list[datetime | None]:
    frame = pl.DataFrame({"t": values}, schema={"t": pl.String})
    return frame.select(timestamps.parse_string(pl.col("t"), zone)).to_series().to_list()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01T10:00:00Z", utc(2024, 3, 1, 10)),
        ("2024-03-01T10:00:00z", utc(2024, 3, 1, 10)),
        ("2024-03-01 10:00:00+02:00", utc(2024, 3, 1, 8)),
        ("2024-03-01T10:00:00-0600", utc(2024, 3, 1, 16)),
        ("2024-03-01T10:00:00.1234567Z", utc(2024, 3, 1, 10, 0, 0, 123456)),
        ("2024-03-01T10:00:00.5+00:00", utc(2024, 3, 1, 10, 0, 0, 500000)),
        ("1709287200", utc(2024, 3, 1, 10)),
        ("1709287200.25", utc(2024, 3, 1, 10, 0, 0, 250000)),
        ("1709287200123", utc(2024, 3, 1, 10, 0, 0, 123000)),
        ("2024-03-01 10:00:00", utc(2024, 3, 1, 10)),
        ("2024-03-01", utc(2024, 3, 1)),
        ("  2024-03-01T10:00:00Z  ", utc(2024, 3, 1, 10)),
    ],
)
def test_accepted_forms(text: str, expected: datetime) -> None:
    assert parse([text]) == [expected]


@pytest.mark.parametrize("text", ["not-a-date", "2024-13-01", "", "12:00", "2024-02-30T00:00:00Z"])
def test_unparseable_is_null(text: str) -> None:
    assert parse([text]) == [None]


def test_naive_uses_timezone() -> None:
    assert parse(["2024-07-01 12:00:00"], "Europe/Paris") == [utc(2024, 7, 1, 10)]
    assert parse(["2024-01-01 12:00:00"], "Europe/Paris") == [utc(2024, 1, 1, 11)]
    # An explicit offset wins over the zone.
    assert parse(["2024-07-01 12:00:00Z"], "Europe/Paris") == [utc(2024, 7, 1, 12)]


def test_fixed_offset_zone() -> None:
    assert parse(["2024-07-01 12:00:00"], "-06:00") == [utc(2024, 7, 1, 18)]
    assert parse(["2024-07-01 12:00:00"], "UTC+0530") == [utc(2024, 7, 1, 6, 30)]


def test_dst_gap_is_null_and_overlap_takes_earlier() -> None:
    assert parse(["2024-03-31 02:30:00"], "Europe/Paris") == [None]
    assert parse(["2024-10-27 02:30:00"], "Europe/Paris") == [utc(2024, 10, 27, 0, 30)]


def test_numeric_columns_are_epochs() -> None:
    frame = pl.DataFrame({"s": [1709287200, 1709287200123], "f": [1709287200.5, 1.0]})
    out = frame.select(
        s=timestamps.to_utc(pl.col("s"), pl.Int64()),
        f=timestamps.to_utc(pl.col("f"), pl.Float64()),
    )
    assert out["s"].to_list() == [utc(2024, 3, 1, 10), utc(2024, 3, 1, 10, 0, 0, 123000)]
    assert out["f"].to_list() == [utc(2024, 3, 1, 10, 0, 0, 500000), utc(1970, 1, 1, 0, 0, 1)]


def test_datetime_columns() -> None:
    naive = pl.DataFrame({"t": [datetime(2024, 1, 1, 12)]})
    out = naive.select(timestamps.to_utc(pl.col("t"), naive.schema["t"], "America/New_York"))
    assert out.to_series().to_list() == [utc(2024, 1, 1, 17)]
    assert out.schema["t"] == pl.Datetime("us", "UTC")


def test_unknown_timezone() -> None:
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        timestamps.check_timezone("Mars/Olympus")


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)))
def test_iso_round_trip(moment: datetime) -> None:
    moment = moment.replace(tzinfo=UTC)
    assert parse([moment.isoformat()]) == [moment]
    assert parse([moment.isoformat().replace("+00:00", "Z")]) == [moment]


SHAPES = st.sampled_from(
    [
        "2026-01-30T03:58:31.075Z",
        "2026-01-30T03:58:31Z",
        "2026-01-30T03:58:31.075+0000",
        "2026-01-30T03:58:31+02:00",
        "2026-01-30T03:58:31.1234567-0530",
        "1769745511",
        "1769745511075",
        "-5",
        " 2026-01-30T03:58:31Z",
        "2026-01-30 03:58:31",
        "2026-01-30",
        "2026-01-30T03:58:31z",
        "2026-01-30T03:58Z",
        "2026-01-30T03:58:31+05",
        # Arrow's parser: the exact shape, and values in it that Arrow refuses.
        "2026-01-30 03:58:31.5Z",
        "2026-01-30T23:59:60Z",
        "2026-02-30T03:58:31Z",
        "2026-01-30T03:58:31+2400",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999+01:00",
        "1.5e9",
        "",
        "  ",
        "tomorrow",
    ]
)


@given(st.lists(st.one_of(st.none(), SHAPES), min_size=1, max_size=12))
def test_the_cheap_shapes_parse_as_the_general_parse(values: list[str | None]) -> None:
    # Batches of one common shape are parsed the cheap way; any batch gives what the
    # general parse (every format on every row) gives, and the same naive flags.
    frame = pl.DataFrame({"t": values}, schema={"t": pl.String})
    column = pl.col("t")
    got = frame.select(timestamps.parse_string(column, "Europe/Paris"))
    flagged = frame.select(timestamps.parse_string_flagged(column, "Europe/Paris")).unnest("t")
    assert flagged[timestamps.PARSED].equals(got["t"], check_names=False)
    got = got.with_columns(naive=flagged[timestamps.NAIVE], blank=flagged[timestamps.BLANK])
    cleaned = column.str.strip_chars()
    general = ~cleaned.str.contains(timestamps._NUMBER) & ~cleaned.str.contains(timestamps._OFFSET)
    expected = frame.select(
        timestamps._parse_string(column, "Europe/Paris", None),
        general.fill_null(False).alias("naive"),
        (cleaned == "").fill_null(False).alias("blank"),
    )
    assert got.equals(expected)
    for shape in ("2026-01-30T03:58:31.075Z", "2026-01-30T03:58:31+02:00", "1769745511"):
        whole = pl.DataFrame({"t": [shape] * 3})
        assert whole.select(timestamps.parse_string(column)).equals(
            whole.select(timestamps._parse_string(column, "UTC", None))
        )
