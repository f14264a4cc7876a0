"""Durations (SPEC section 3): parsing, calendar arithmetic, agreement with Polars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engscore.durations import Duration, Unit
from helpers import utc

UNITS: tuple[Unit, ...] = ("d", "w", "m", "y")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", Duration(90, "d")),
        ("1d", Duration(1, "d")),
        ("2w", Duration(2, "w")),
        ("6m", Duration(6, "m")),
        ("12m", Duration(12, "m")),
        ("1y", Duration(1, "y")),
        (" 6m ", Duration(6, "m")),
        ("6 m", Duration(6, "m")),
    ],
)
def test_parse_good(text: str, expected: Duration) -> None:
    assert Duration.parse(text) == expected


@pytest.mark.parametrize("text", ["90d", "2w", "6m", "1y"])
def test_str_round_trips(text: str) -> None:
    assert str(Duration.parse(text)) == text
    assert Duration.parse(str(Duration.parse(text))) == Duration.parse(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0d", "must be greater than zero"),
        ("0m", "must be greater than zero"),
        ("6 months", "is not a duration"),
        ("-1d", "is not a duration"),
        ("1.5d", "is not a duration"),
        ("90", "is not a duration"),
        ("d", "is not a duration"),
        ("", "is not a duration"),
        ("6h", "is not a duration"),
        ("6M", "is not a duration"),
        ("6mo", "is not a duration"),
        ("1y6m", "is not a duration"),
    ],
)
def test_parse_bad(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Duration.parse(text)


@pytest.mark.parametrize("text", ["\u0663m", "\uff16m"])  # Arabic-Indic 3, full-width 6
def test_parse_rejects_non_ascii_digits(text: str) -> None:
    with pytest.raises(ValueError):
        Duration.parse(text)


@pytest.mark.parametrize(
    ("text", "described"),
    [
        ("1d", "1 day"),
        ("90d", "90 days"),
        ("1w", "1 week"),
        ("2w", "2 weeks"),
        ("1m", "1 month"),
        ("6m", "6 months"),
        ("1y", "1 year"),
        ("3y", "3 years"),
    ],
)
def test_describe(text: str, described: str) -> None:
    assert Duration.parse(text).describe() == described


def test_days_for_fixed_units() -> None:
    assert Duration.parse("90d").days == 90.0
    assert Duration.parse("2w").days == 14.0
    assert Duration.parse("2w").is_fixed and Duration.parse("90d").is_fixed


@pytest.mark.parametrize("text", ["6m", "1y"])
def test_days_for_calendar_units_is_an_error(text: str) -> None:
    duration = Duration.parse(text)
    assert not duration.is_fixed
    with pytest.raises(ValueError, match="no fixed length in days"):
        _ = duration.days


def test_months_and_polars_offset() -> None:
    assert Duration.parse("6m").months == 6
    assert Duration.parse("2y").months == 24
    assert [Duration.parse(t).polars_offset for t in ("90d", "2w", "6m", "1y")] == [
        "90d",
        "2w",
        "6mo",
        "1y",
    ]


@pytest.mark.parametrize(
    ("start", "text", "expected"),
    [
        (utc(2024, 1, 31), "1m", utc(2024, 2, 29)),  # leap year
        (utc(2023, 1, 31), "1m", utc(2023, 2, 28)),
        (utc(2024, 1, 31, 13, 5, 7, 123456), "1m", utc(2024, 2, 29, 13, 5, 7, 123456)),
        (utc(2024, 3, 31), "1m", utc(2024, 4, 30)),
        (utc(2024, 8, 31), "6m", utc(2025, 2, 28)),
        (utc(2024, 2, 29), "1y", utc(2025, 2, 28)),
        (utc(2024, 2, 29), "4y", utc(2028, 2, 29)),
        (utc(2024, 2, 29), "12m", utc(2025, 2, 28)),
        (utc(2024, 11, 15), "2m", utc(2025, 1, 15)),
        (utc(2024, 12, 31), "1d", utc(2025, 1, 1)),
        (utc(2024, 2, 22), "1w", utc(2024, 2, 29)),
    ],
)
def test_add_to(start: datetime, text: str, expected: datetime) -> None:
    result = Duration.parse(text).add_to(start)
    assert result == expected
    assert result.tzinfo is start.tzinfo


@pytest.mark.parametrize(
    ("start", "text", "expected"),
    [
        (utc(2024, 3, 31), "1m", utc(2024, 2, 29)),
        (utc(2023, 3, 31), "1m", utc(2023, 2, 28)),
        (utc(2025, 2, 28), "1y", utc(2024, 2, 28)),
        (utc(2024, 2, 29), "1y", utc(2023, 2, 28)),
        (utc(2024, 1, 15), "2m", utc(2023, 11, 15)),
        (utc(2024, 3, 1), "1d", utc(2024, 2, 29)),
        (utc(2024, 3, 7), "1w", utc(2024, 2, 29)),
    ],
)
def test_subtract_from(start: datetime, text: str, expected: datetime) -> None:
    assert Duration.parse(text).subtract_from(start) == expected


def test_add_to_works_on_naive_datetimes() -> None:
    assert Duration.parse("1m").add_to(datetime(2024, 1, 31)) == datetime(2024, 2, 29)


# --- Python-side and Polars-side arithmetic agree ----------------------------------------------

instants = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31), timezones=st.just(UTC)
)
durations = st.builds(Duration, st.integers(min_value=1, max_value=400), st.sampled_from(UNITS))


def polars_offset(values: list[datetime], offset: str) -> list[datetime]:
    series = pl.Series("t", values, dtype=pl.Datetime("us", "UTC"))
    return pl.select(pl.lit(series).dt.offset_by(offset)).to_series().to_list()


@settings(max_examples=300, deadline=None)
@given(st.lists(instants, min_size=1, max_size=20), durations)
def test_add_to_agrees_with_polars(values: list[datetime], duration: Duration) -> None:
    series = pl.Series("t", values, dtype=pl.Datetime("us", "UTC"))
    in_polars = pl.select(duration.add_expr(pl.lit(series))).to_series().to_list()
    assert [duration.add_to(v) for v in values] == in_polars


@settings(max_examples=300, deadline=None)
@given(st.lists(instants, min_size=1, max_size=20), durations)
def test_subtract_from_agrees_with_polars(values: list[datetime], duration: Duration) -> None:
    in_polars = polars_offset(values, f"-{duration.polars_offset}")
    assert [duration.subtract_from(v) for v in values] == in_polars


@settings(max_examples=300, deadline=None)
@given(instants, durations)
def test_subtract_from_mirrors_add_to(instant: datetime, duration: Duration) -> None:
    if not duration.is_fixed and instant.day > 28:
        # Month ends saturate (31 Jan + 1m = 29 Feb), so the round trip can lose days.
        instant = instant.replace(day=28)
    assert duration.subtract_from(duration.add_to(instant)) == instant
    assert duration.add_to(duration.subtract_from(instant)) == instant
    assert duration.subtract_from(instant) < instant < duration.add_to(instant)


@settings(max_examples=200, deadline=None)
@given(instants, durations)
def test_saturation_never_overshoots(instant: datetime, duration: Duration) -> None:
    """Adding N months lands in the month N later, on the same day or the month's last day."""
    if duration.is_fixed:
        return
    result = duration.add_to(instant)
    months = (result.year - instant.year) * 12 + result.month - instant.month
    assert months == duration.months
    assert result.day == instant.day or (
        result.day < instant.day and Duration(1, "d").add_to(result).day == 1
    )
    assert result.time() == instant.time()


calendar_durations = st.one_of(
    st.builds(Duration, st.integers(min_value=1, max_value=24), st.just("m")),
    st.builds(Duration, st.integers(min_value=1, max_value=3), st.just("y")),
    st.builds(Duration, st.integers(min_value=1, max_value=400), st.sampled_from(("d", "w"))),
)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.tuples(instants, st.floats(min_value=-0.1, max_value=1.1), st.booleans()),
        min_size=1,
        max_size=30,
    ),
    calendar_durations,
)
def test_reached_expr_agrees_with_the_calendar(
    rows: list[tuple[datetime, float, bool]], duration: Duration
) -> None:
    """``start + duration <= end`` with the calendar shortcut equals the plain comparison,
    for gaps across the whole 28N..31N-day band (``position`` 0..1) and a little beyond."""
    months = duration.months if not duration.is_fixed else 0
    days = duration.days if duration.is_fixed else 28 * months
    width = 3 * months + 1
    starts = [start for start, _, _ in rows]
    ends = [
        None if missing else start + timedelta(days=days + position * width)
        for start, position, missing in rows
    ]
    frame = pl.DataFrame(
        {"start": starts, "end": ends},
        schema={"start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC")},
    )
    start, end = pl.col("start"), pl.col("end")
    got = frame.select(duration.reached_expr(start, end)).to_series().to_list()
    plain = frame.select(duration.add_expr(start) <= end).to_series().to_list()
    assert got == plain
