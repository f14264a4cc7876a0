"""The scoring engine as a whole (``engine.scoring``, SPEC section 3): the property test
against the plain-Python reference in ``reference.py``, and the reference's own arithmetic."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import polars as pl
import pytest
from engine_cases import (
    contacts_frame,
    frame,
    ledger_of,
    run,
    scenarios,
)
from hypothesis import HealthCheck, given, settings

from engscore.durations import Duration
from engscore.engine.scoring import score_contacts
from engscore.rules import Rules
from helpers import utc
from reference import (
    add_duration,
    add_months,
    clamp,
    grade_of,
    reference_breakdown,
)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (utc(2023, 1, 31, 9), 1, utc(2023, 2, 28, 9)),
        (utc(2024, 1, 31, 9), 1, utc(2024, 2, 29, 9)),
        (utc(2023, 8, 31), 6, utc(2024, 2, 29)),
        (utc(2024, 2, 29), 12, utc(2025, 2, 28)),
        (utc(2024, 3, 31), 1, utc(2024, 4, 30)),
        (utc(2024, 11, 30), 3, utc(2025, 2, 28)),
        (utc(2024, 12, 15, 1, 2, 3, 4), 1, utc(2025, 1, 15, 1, 2, 3, 4)),
        (utc(2024, 1, 31), 6, utc(2024, 7, 31)),
    ],
)
def test_reference_month_arithmetic(start: datetime, months: int, expected: datetime) -> None:
    assert add_months(start, months) == expected
    # The engine's Python-side and Polars-side arithmetic agree with it.
    duration = Duration(months, "m")
    assert duration.add_to(start) == expected
    polars_side = pl.select(duration.add_expr(pl.lit(start))).item()
    assert polars_side == expected


def test_reference_durations() -> None:
    start = utc(2024, 2, 29, 23, 59)
    assert add_duration(start, "1d") == utc(2024, 3, 1, 23, 59)
    assert add_duration(start, "2w") == utc(2024, 3, 14, 23, 59)
    assert add_duration(start, "1m") == utc(2024, 3, 29, 23, 59)
    assert add_duration(start, "1y") == utc(2025, 2, 28, 23, 59)
    assert add_duration(start, "4y") == utc(2028, 2, 29, 23, 59)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_engine_matches_reference(
    scenario: tuple[list[dict[str, Any]], Rules, datetime, list[dict[str, Any]]],
) -> None:
    events, rules, as_of, contacts = scenario
    expected = reference_breakdown(events, rules, as_of, contacts)
    rows = run(events, rules, as_of, contacts)
    assert set(rows) == set(expected)
    # Events sorted by contact and time, as ingest writes them, need no sort for the streak
    # rule: the same rows.
    people = contacts_frame(contacts) if contacts is not None else None
    presorted = frame(events).sort("contact_id", "timestamp")
    assert (
        score_contacts(presorted, rules, as_of, people, presorted=True)
        .collect()
        .equals(score_contacts(frame(events), rules, as_of, people).collect())
    )
    # Integer contact numbers (ingest's and the store's), events in no particular order: the
    # streak rule sorts them on one Int128 key; the same rows once the ids are put back.
    numbers = {c: i for i, c in enumerate(sorted({e["contact_id"] for e in events}, reverse=True))}
    numbered = (
        frame(events)
        .with_columns(pl.col("contact_id").replace_strict(numbers, return_dtype=pl.UInt32))
        .reverse()
    )
    if not contacts:
        by_number = score_contacts(numbered, rules, as_of).collect()
        ids = pl.DataFrame(
            {"contact_id": list(numbers), "_n": list(numbers.values())},
            schema={"contact_id": pl.String, "_n": pl.Int64},
        )
        back = (
            by_number.rename({"contact_id": "_n"})
            .with_columns(pl.col("_n").cast(pl.Int64))
            .join(ids, on="_n")
            .drop("_n")
            .select(by_number.columns)
            .sort("contact_id")
        )
        assert back.equals(score_contacts(frame(events), rules, as_of).collect())
    for contact, want in expected.items():
        got = rows[contact]
        for column, value in want.items():
            assert math.isclose(got[column], value, rel_tol=1e-12, abs_tol=1e-9), (
                contact,
                column,
                got[column],
                value,
            )
        # Grades, unless the score sits on a threshold within float noise.
        if all(abs(want["score"] - t) > 1e-9 for t in rules.grades.values()):
            assert got["grade"] == grade_of(want["score"], rules.grades)
        # The ledger adds up to the score once the clamp is applied.
        ledger = ledger_of(events, rules, contact, as_of, contacts)
        total = float(ledger["points"].sum())
        adjustment = clamp(total, rules) - total
        assert math.isclose(total + adjustment, got["score"], rel_tol=1e-12, abs_tol=1e-9)
        by_group = dict(ledger.group_by("group").agg(pl.col("points").sum()).iter_rows())
        for group in rules.groups:
            value = by_group.get(group, 0.0)
            assert math.isclose(value, want[f"score_{group}"], rel_tol=1e-12, abs_tol=1e-9)
