"""The scoring engine (SPEC section 3): hand-computed examples and a property test against the
plain-Python reference in ``reference.py``."""

from __future__ import annotations

import calendar
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engscore.durations import Duration
from engscore.engine.points import (
    Carried,
    carry,
    carry_boundary,
    contact_facts,
    contact_ledger,
    roll,
    score_contacts,
)
from engscore.engine.status import contact_status, status_cutoffs
from engscore.rules import Rules, default_rules_text
from engscore.schema import CANONICAL_EVENT_TYPES, CANONICAL_SCHEMA
from helpers import utc
from reference import (
    EVENT_CONDITIONS,
    PROFILE_CONDITIONS,
    add_duration,
    add_months,
    clamp,
    grade_of,
    reference_breakdown,
    reference_facts,
    reference_grades,
)

AS_OF = utc(2024, 6, 30, 12)
CONTACTS_SCHEMA = {"contact_id": pl.String(), "plan": pl.String(), "employees": pl.Int64()}


def ev(contact: str, event_type: str, timestamp: datetime, **fields: Any) -> dict[str, Any]:
    """One canonical event as a dict (missing optional columns are null)."""
    row: dict[str, Any] = dict.fromkeys(CANONICAL_SCHEMA)
    row.update(contact_id=contact, event_type=event_type, timestamp=timestamp, is_machine=False)
    row.update(fields)
    return row


def frame(events: list[dict[str, Any]]) -> pl.LazyFrame:
    return pl.DataFrame(events, schema=CANONICAL_SCHEMA).lazy()


def contacts_frame(rows: list[dict[str, Any]]) -> pl.LazyFrame:
    return pl.DataFrame(rows, schema=CONTACTS_SCHEMA).lazy()


def rules_of(**spec: Any) -> Rules:
    return Rules.model_validate(spec)


def run(
    events: list[dict[str, Any]],
    rules: Rules,
    as_of: datetime = AS_OF,
    contacts: list[dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """``score_contacts`` rows by contact id."""
    people = contacts_frame(contacts) if contacts is not None else None
    out = score_contacts(frame(events), rules, as_of, people).collect()
    return {row["contact_id"]: row for row in out.iter_rows(named=True)}


def check_scores(
    events: list[dict[str, Any]],
    rules: Rules,
    expected: dict[str, float],
    as_of: datetime = AS_OF,
    contacts: list[dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Engine and reference both give the hand-computed scores (and the same contacts)."""
    rows = run(events, rules, as_of, contacts)
    assert {c: r["score"] for c, r in rows.items()} == pytest.approx(expected, abs=1e-9)
    reference = reference_breakdown(events, rules, as_of, contacts)
    assert {c: r["score"] for c, r in reference.items()} == pytest.approx(expected, abs=1e-9)
    return rows


def ledger_of(
    events: list[dict[str, Any]],
    rules: Rules,
    contact: str,
    as_of: datetime = AS_OF,
    contacts: list[dict[str, Any]] | None = None,
) -> pl.DataFrame:
    people = contacts_frame(contacts) if contacts is not None else None
    return contact_ledger(frame(events), rules, as_of, contact, people)


OPEN_10 = {"name": "opened", "event": "open", "points": 10}
CLICK_20 = {"name": "clicked", "event": "click", "points": 20}


# --- Calendar arithmetic of the reference itself ---------------------------------------------


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


# --- Hand-computed examples ------------------------------------------------------------------


def test_decay_halves_points_every_half_life() -> None:
    rules = rules_of(points=[OPEN_10], decay={"half_life": "90d"})
    events = [
        ev("a", "open", AS_OF),  # age 0: 10
        ev("a", "open", AS_OF - timedelta(days=90)),  # one half-life: 5
        ev("a", "open", AS_OF - timedelta(days=180)),  # two: 2.5
        ev("b", "open", AS_OF - timedelta(days=45)),  # half a half-life: 10 * 2**-0.5
        ev("c", "open", AS_OF - timedelta(weeks=2, hours=12)),  # age 14.5 days
    ]
    # b: 10 * 0.5 ** (45 / 90) = 10 / sqrt(2) = 7.0710678...; c: 10 * 0.5 ** (14.5 / 90)
    check_scores(events, rules, {"a": 17.5, "b": 10 / math.sqrt(2), "c": 10 * 0.5 ** (14.5 / 90)})
    weekly = rules_of(points=[OPEN_10], decay={"half_life": "2w"})
    # c: age 14.5 days with a 14-day half-life: 10 * 0.5 ** (14.5 / 14)
    check_scores(events[-1:], weekly, {"c": 10 * 0.5 ** (14.5 / 14)})
    assert ledger_of(events, rules, "a")["points"].sort().to_list() == [2.5, 5.0, 10.0]


def test_reset_on_events_wipes_everything_at_or_before_the_latest_reset() -> None:
    rules = rules_of(points=[OPEN_10, CLICK_20], reset={"on_events": ["unsubscribe", "complaint"]})
    t = utc(2024, 3, 1)
    events = [
        ev("a", "open", t - timedelta(days=30)),  # before both resets: 0
        ev("a", "complaint", t - timedelta(days=20)),
        ev("a", "click", t - timedelta(days=10)),  # before the latest reset: 0
        ev("a", "unsubscribe", t),
        ev("a", "open", t),  # tie with the latest reset: 0
        ev("a", "open", t + timedelta(microseconds=1)),  # after it: 10
        ev("a", "click", t + timedelta(days=1)),  # 20
        ev("a", "unsubscribe", AS_OF + timedelta(days=1)),  # after as_of: resets nothing
        ev("b", "click", t),  # no reset of their own: 20
        ev("c", "unsubscribe", t),  # only a reset: a score of 0, still listed
    ]
    check_scores(events, rules, {"a": 30.0, "b": 20.0, "c": 0.0})
    statuses = ledger_of(events, rules, "a").select("event_type", "timestamp", "status").rows()
    assert ("open", t, "reset") in statuses
    assert ("click", t - timedelta(days=10), "reset") in statuses
    assert ("open", t + timedelta(microseconds=1), "earned") in statuses


def test_machine_reset_event_is_no_reset_when_machine_events_are_excluded() -> None:
    rules = rules_of(points=[CLICK_20], reset={"on_events": ["unsubscribe"]})
    events = [ev("a", "click", utc(2024, 1, 1)), ev("a", "unsubscribe", utc(2024, 2, 1))]
    events[1]["is_machine"] = True
    check_scores(events, rules, {"a": 20.0})
    kept = rules.model_copy(update={"exclude_machine_opens": False})
    check_scores(events, kept, {"a": 0.0})


def test_reset_after_inactivity_boundary() -> None:
    rules = rules_of(
        points=[OPEN_10, {"name": "sent", "event": "send", "points": 1}],
        reset={"after_inactive": "30d"},
    )
    events = [
        # a: L + 30d == as_of exactly: score 0
        ev("a", "open", AS_OF - timedelta(days=30)),
        ev("a", "send", AS_OF - timedelta(days=1)),
        # b: L + 30d is 1 microsecond after as_of: 10 + 1
        ev("b", "open", AS_OF - timedelta(days=30) + timedelta(microseconds=1)),
        ev("b", "send", AS_OF - timedelta(days=1)),
        # c: no engagement event at all: 0, although a send would earn 1
        ev("c", "send", AS_OF - timedelta(days=1)),
    ]
    check_scores(events, rules, {"a": 0.0, "b": 11.0, "c": 0.0})
    ledger = ledger_of(events, rules, "a")
    assert set(ledger["status"]) == {"inactive"} and ledger["points"].sum() == 0


def test_reset_after_inactivity_with_calendar_months() -> None:
    rules = rules_of(points=[CLICK_20], reset={"after_inactive": "6m"})
    events = [ev("a", "click", utc(2024, 2, 29, 8))]
    # 29 Feb + 6 months = 29 Aug, 08:00.
    check_scores(events, rules, {"a": 0.0}, as_of=utc(2024, 8, 29, 8))
    check_scores(events, rules, {"a": 20.0}, as_of=utc(2024, 8, 29, 7, 59, 59, 999_999))
    # 31 Aug + 6 months = 29 Feb 2024 (the last day of February).
    events = [ev("a", "click", utc(2023, 8, 31))]
    check_scores(events, rules, {"a": 0.0}, as_of=utc(2024, 2, 29))
    check_scores(events, rules, {"a": 20.0}, as_of=utc(2024, 2, 28, 23, 59))


def test_only_the_latest_engagement_streak_counts() -> None:
    rules = rules_of(
        points=[CLICK_20, {"name": "delivered", "event": "delivered", "points": 1}],
        reset={"after_inactive": "6m"},
    )
    as_of = utc(2024, 8, 15)
    events = [
        # a: 31 Jan + 6m = 31 Jul <= 31 Jul: a new streak starts on 31 Jul.
        ev("a", "click", utc(2024, 1, 31)),
        ev("a", "delivered", utc(2024, 3, 1)),  # before the streak: 0
        ev("a", "click", utc(2024, 7, 31)),  # 20
        ev("a", "delivered", utc(2024, 8, 1)),  # 1
        # b: 31 Jan + 6m = 31 Jul > 30 Jul: one streak from 31 Jan.
        ev("b", "click", utc(2024, 1, 31)),  # 20
        ev("b", "delivered", utc(2024, 3, 1)),  # 1
        ev("b", "click", utc(2024, 7, 30)),  # 20
        # c: 31 Aug 2023 + 6m = 29 Feb 2024 <= 29 Feb: new streak.
        ev("c", "click", utc(2023, 8, 31)),
        ev("c", "click", utc(2024, 2, 29)),  # 20
        # d: 29 Feb 2024 > 28 Feb 23:59: one streak, each gap under 6 months.
        ev("d", "click", utc(2023, 8, 31)),  # 20
        ev("d", "click", utc(2024, 2, 28, 23, 59)),  # 20
        ev("d", "click", utc(2024, 8, 14)),  # 20 (28 Feb + 6m = 28 Aug > 14 Aug)
    ]
    check_scores(events, rules, {"a": 21.0, "b": 41.0, "c": 20.0, "d": 60.0}, as_of=as_of)
    statuses = dict(ledger_of(events, rules, "a", as_of).select("timestamp", "status").iter_rows())
    assert statuses[utc(2024, 1, 31)] == "before_streak"
    assert statuses[utc(2024, 3, 1)] == "before_streak"
    assert statuses[utc(2024, 7, 31)] == "earned"


def test_once_keeps_the_earliest_counted_match() -> None:
    bounce = {"name": "bounced", "event": "bounce", "points": -5, "once": True}
    rules = rules_of(
        points=[bounce], decay={"half_life": "90d"}, reset={"on_events": ["unsubscribe"]}
    )
    events = [
        ev("a", "bounce", AS_OF - timedelta(days=180)),  # before the reset
        ev("a", "unsubscribe", AS_OF - timedelta(days=120)),
        ev("a", "bounce", AS_OF - timedelta(days=90)),  # first counted match: -5 * 0.5
        ev("a", "bounce", AS_OF),  # not the first: 0
        ev("b", "bounce", AS_OF),  # -5
        ev("b", "bounce", AS_OF),  # tie: one of the two counts
    ]
    check_scores(events, rules, {"a": -2.5, "b": -5.0})
    statuses = ledger_of(events, rules, "b")["status"].sort().to_list()
    assert statuses == ["earned", "once"]


def test_once_without_decay_earns_nothing_without_a_match() -> None:
    # Without decay the factor is a constant 1: a contact with other counted events but no
    # match of the `once` rule must still get 0 from it (found by the property test).
    bounce = {"name": "bounced", "event": "bounce", "points": -5, "once": True}
    rules = rules_of(points=[OPEN_10, bounce])
    events = [ev("a", "open", AS_OF), ev("b", "bounce", AS_OF), ev("b", "bounce", AS_OF)]
    check_scores(events, rules, {"a": 10.0, "b": -5.0})


def test_unique_by_counts_each_value_once_and_null_is_one_value() -> None:
    opened = {"name": "opened", "event": "open", "points": 10, "unique_by": ["campaign_id"]}
    clicked = {
        "name": "clicked",
        "event": "click",
        "points": 20,
        "unique_by": ["campaign_id", "url"],
    }
    rules = rules_of(points=[opened, clicked], decay={"half_life": "10d"})
    day = timedelta(days=1)
    events = [
        ev("a", "open", AS_OF - 10 * day, campaign_id="c1"),  # 5
        ev("a", "open", AS_OF, campaign_id="c1"),  # repeat of c1: 0
        ev("a", "open", AS_OF, campaign_id="c2"),  # 10
        ev("a", "open", AS_OF - 20 * day),  # null campaign: 2.5
        ev("a", "open", AS_OF),  # null again: 0
        ev("a", "click", AS_OF, campaign_id="c1", url="/x"),  # 20
        ev("a", "click", AS_OF, campaign_id="c1", url="/y"),  # 20
        ev("a", "click", AS_OF, campaign_id="c1", url="/x"),  # repeat: 0
        ev("a", "click", AS_OF, campaign_id="c1"),  # (c1, null): 20
        ev("a", "click", AS_OF, campaign_id="c1"),  # repeat: 0
    ]
    check_scores(events, rules, {"a": 5 + 10 + 2.5 + 60})
    statuses = ledger_of(events, rules, "a")["status"].to_list()
    assert statuses.count("unique_by") == 4


def test_cap_clips_positive_and_negative_rule_totals() -> None:
    rules = rules_of(
        points=[
            {"name": "clicked", "event": "click", "points": 20, "cap": 50},
            {"name": "bounced", "event": "bounce", "points": -20, "cap": 30},
        ]
    )
    events = [
        *(ev("a", "click", AS_OF - timedelta(hours=h)) for h in range(4)),  # 80 -> 50
        *(ev("a", "bounce", AS_OF - timedelta(hours=h)) for h in range(2)),  # -40 -> -30
        *(ev("b", "click", AS_OF - timedelta(hours=h)) for h in range(2)),  # 40: under the cap
        ev("b", "bounce", AS_OF),  # -20: under the cap
    ]
    check_scores(events, rules, {"a": 20.0, "b": 20.0})
    ledger = ledger_of(events, rules, "a")
    caps = ledger.filter(pl.col("status") == "cap")
    assert sorted(caps["points"].to_list()) == [-30.0, 10.0]
    assert ledger["points"].sum() == pytest.approx(20.0)
    assert ledger_of(events, rules, "b").filter(pl.col("status") == "cap").is_empty()


def test_min_and_max_score_clamp_the_total_not_the_groups() -> None:
    rules = rules_of(
        points=[
            {"name": "clicked", "event": "click", "points": 75},
            {"name": "bounced", "event": "bounce", "points": -10},
        ],
        min_score=0,
        max_score=100,
    )
    events = [
        ev("a", "click", utc(2024, 1, 1)),
        ev("a", "click", utc(2024, 1, 2)),  # 150 -> 100
        ev("b", "bounce", utc(2024, 1, 1)),  # -10 -> 0
        ev("c", "click", utc(2024, 1, 1)),  # 75: inside
    ]
    rows = check_scores(events, rules, {"a": 100.0, "b": 0.0, "c": 75.0})
    assert rows["a"]["score_engagement"] == 150.0
    assert rows["b"]["score_engagement"] == -10.0
    # The ledger holds the unclamped points; the clamp is the difference.
    assert ledger_of(events, rules, "a")["points"].sum() == 150.0
    assert ledger_of(events, rules, "b")["points"].sum() == -10.0


def test_grades_at_exact_thresholds_and_below_all() -> None:
    rules = rules_of(
        points=[
            {"name": "opened", "event": "open", "points": 50},
            {"name": "bounced", "event": "bounce", "points": -5},
            {"name": "clicked", "event": "click", "points": 49.5},
        ],
        grades={"warm": 50, "hot": 150, "cold": 0},
    )
    t = utc(2024, 1, 1)
    events = [
        *(ev("a", "open", t) for _ in range(3)),  # 150: hot
        ev("b", "open", t),  # 50: warm
        ev("c", "delivered", t),  # 0: cold
        ev("d", "bounce", t),  # -5: below every threshold, the lowest: cold
        ev("e", "click", t),  # 49.5: cold
    ]
    rows = check_scores(events, rules, {"a": 150, "b": 50, "c": 0, "d": -5, "e": 49.5})
    grades = {c: r["grade"] for c, r in rows.items()}
    expected = {"a": "hot", "b": "warm", "c": "cold", "d": "cold", "e": "cold"}
    assert grades == expected
    assert reference_grades({c: r["score"] for c, r in rows.items()}, rules) == expected
    # With a positive lowest threshold, a score of 0 still gets the lowest grade.
    high = rules.model_copy(update={"grades": {"gold": 100.0, "bronze": 10.0}})
    assert {c: r["grade"] for c, r in run(events, high).items()} == {
        "a": "gold",
        "b": "bronze",
        "c": "bronze",
        "d": "bronze",
        "e": "bronze",
    }


def test_events_after_as_of_are_ignored_and_such_contacts_absent() -> None:
    rules = rules_of(points=[OPEN_10], reset={"on_events": ["unsubscribe"]})
    events = [
        ev("a", "open", AS_OF),  # at as_of: counts
        ev("a", "open", AS_OF + timedelta(microseconds=1)),
        ev("a", "unsubscribe", AS_OF + timedelta(days=1)),
        ev("z", "open", AS_OF + timedelta(seconds=1)),  # only after as_of: absent
    ]
    rows = check_scores(events, rules, {"a": 10.0})
    assert rows["a"]["n_open"] == 1
    assert rows["a"]["last_event_at"] == AS_OF
    assert rows["a"]["unsubscribed"] is False
    assert ledger_of(events, rules, "z").is_empty()


def test_machine_events_are_excluded_unless_configured() -> None:
    rules = rules_of(points=[OPEN_10, CLICK_20], reset={"after_inactive": "30d"})
    recent = AS_OF - timedelta(days=1)
    events = [
        ev("a", "open", recent, is_machine=True),
        ev("a", "click", AS_OF - timedelta(days=40)),  # human, but 40 days ago
        ev("b", "open", recent, is_machine=True),  # a machine open only: still listed
    ]
    # Excluded: a machine open is no engagement, so a's last engagement is 40 days old.
    rows = check_scores(events, rules, {"a": 0.0, "b": 0.0})
    assert rows["a"]["n_open"] == 0 and rows["a"]["n_machine_open"] == 1
    assert rows["a"]["last_engaged_at"] == AS_OF - timedelta(days=40)
    assert rows["b"]["last_engaged_at"] is None
    opens = ledger_of(events, rules, "a").filter(pl.col("event_type") == "open")
    assert opens["status"].to_list() == ["machine"]
    # Counted: the machine open is engagement. The 39 days from a's click to it are more than
    # the 30-day window, so a new streak starts at the open: 10 (the click is before it).
    counted = rules.model_copy(update={"exclude_machine_opens": False})
    rows = check_scores(events, counted, {"a": 10.0, "b": 10.0})
    assert rows["a"]["n_open"] == 1 and rows["a"]["n_machine_open"] == 1
    assert rows["a"]["last_engaged_at"] == recent


def test_groups_and_profile_rules() -> None:
    rules = rules_of(
        points=[
            OPEN_10,
            {
                "name": "pricing",
                "event": "page_view",
                "where": "url LIKE '%/pricing%'",
                "points": 50,
                "group": "intent",
            },
        ],
        profile=[
            {"name": "pro_plan", "where": "plan = 'pro'", "points": 30},
            {"name": "big", "where": "employees >= 50", "points": 20, "group": "intent"},
        ],
        reset={"on_events": ["unsubscribe"], "after_inactive": "30d"},
        decay={"half_life": "30d"},
        max_score=100,
    )
    events = [
        ev("a", "open", AS_OF),  # engagement 10
        ev("a", "page_view", AS_OF, url="https://x.io/pricing"),  # intent 50
        ev("a", "page_view", AS_OF, url="https://x.io/blog"),  # no match
        ev("a", "page_view", AS_OF),  # null url: no match
        # b: unsubscribed and inactive: only the profile counts, without decay.
        ev("b", "open", AS_OF - timedelta(days=100)),
        ev("b", "unsubscribe", AS_OF - timedelta(days=90)),
        # c: no profile row; L + 30d == as_of, so inactive: 0.
        ev("c", "open", AS_OF - timedelta(days=30)),
        ev("d", "open", AS_OF + timedelta(days=1)),  # only after as_of: absent
    ]
    contacts: list[dict[str, Any]] = [
        {"contact_id": "a", "plan": "pro", "employees": 80},  # fit 30, intent 20
        {"contact_id": "b", "plan": "pro", "employees": None},  # fit 30; null: no match
        {"contact_id": "d", "plan": "pro", "employees": 500},  # absent: no event <= as_of
        {"contact_id": "e", "plan": "pro", "employees": 500},  # absent: no event
    ]
    # a: 10 + 50 + 30 + 20 = 110, clamped to 100. b: the profile's 30 only.
    rows = check_scores(events, rules, {"a": 100.0, "b": 30.0, "c": 0.0}, contacts=contacts)
    a = rows["a"]
    assert (a["score_engagement"], a["score_intent"], a["score_fit"]) == (10.0, 70.0, 30.0)
    assert list(rows["a"])[:5] == [
        "contact_id",
        "score",
        "score_engagement",
        "score_intent",
        "score_fit",
    ]
    assert (rows["b"]["score_engagement"], rows["b"]["score_fit"]) == (0.0, 30.0)
    ledger = ledger_of(events, rules, "a", contacts=contacts)
    assert ledger["points"].sum() == 110.0  # 10 over max_score: the clamp is not a ledger row
    assert sorted(ledger.filter(pl.col("status") == "profile")["rule"]) == ["big", "pro_plan"]
    # Without a contacts table, the profile rules award nothing: 10 + 50.
    no_profile = run(events, rules)
    assert (no_profile["a"]["score"], no_profile["a"]["score_fit"]) == (60.0, 0.0)


def test_contact_facts() -> None:
    rules = rules_of(points=[OPEN_10])
    t = utc(2024, 5, 1)
    events = [
        ev("a", "send", t),
        ev("a", "delivered", t),
        ev("a", "open", t + timedelta(hours=1)),
        ev("a", "open", t + timedelta(hours=2), is_machine=True),
        ev("a", "click", AS_OF - timedelta(days=2, hours=23)),  # last engaged: 2 whole days
        ev("a", "unsubscribe", t + timedelta(days=1)),
        ev("a", "complaint", t + timedelta(days=2)),
        ev("a", "bounce", t + timedelta(days=3), bounce_type="hard"),
        ev("a", "delivered", AS_OF + timedelta(days=1)),  # after as_of: no effect
        # b: resubscribed after the last unsubscribe; delivered after a hard bounce.
        ev("b", "unsubscribe", t),
        ev("b", "resubscribe", t + timedelta(days=1)),
        ev("b", "bounce", t, bounce_type="hard"),
        ev("b", "delivered", t + timedelta(seconds=1)),
        # c: unsubscribed again after resubscribing; only a soft bounce.
        ev("c", "unsubscribe", t),
        ev("c", "resubscribe", t + timedelta(days=1)),
        ev("c", "unsubscribe", t + timedelta(days=2)),
        ev("c", "bounce", t, bounce_type="soft"),
        # d: only mailed (its other facts come from no events at all).
        ev("d", "send", t),
        ev("d", "delivered", t),
    ]
    rows = run(events, rules)
    a, b, c, d = rows["a"], rows["b"], rows["c"], rows["d"]
    assert (d["n_send"], d["n_delivered"], d["n_open"], d["n_machine_open"]) == (1, 1, 0, 0)
    assert (d["unsubscribed"], d["complained"], d["hard_bounced"]) == (False, False, False)
    assert d["last_engaged_at"] is None and d["first_seen_at"] == t
    assert (a["n_send"], a["n_delivered"], a["n_open"], a["n_click"]) == (1, 1, 1, 1)
    assert (a["n_machine_open"], a["n_bounce"], a["n_complaint"]) == (1, 1, 1)
    assert a["first_seen_at"] == t and a["last_event_at"] == AS_OF - timedelta(days=2, hours=23)
    assert a["last_engaged_at"] == AS_OF - timedelta(days=2, hours=23)
    assert a["days_since_engaged"] == 2
    assert (a["unsubscribed"], a["complained"], a["hard_bounced"]) == (True, True, True)
    assert (b["unsubscribed"], b["complained"], b["hard_bounced"]) == (False, False, False)
    assert (c["unsubscribed"], c["hard_bounced"]) == (True, False)
    assert c["last_engaged_at"] is None and c["days_since_engaged"] is None
    assert rows["a"]["score"] == 10.0


@pytest.mark.parametrize(
    ("lifting", "flag"),
    [("resubscribe", "unsubscribed"), ("delivered", "hard_bounced")],
)
def test_a_tie_does_not_lift_unsubscribed_or_hard_bounced(lifting: str, flag: str) -> None:
    t = utc(2024, 5, 1)
    events = [
        ev("a", "unsubscribe", t),
        ev("a", "bounce", t, bounce_type="hard"),
        ev("a", lifting, t),  # the same instant: not later
    ]
    assert run(events, rules_of(points=[OPEN_10]))["a"][flag] is True


def test_events_without_optional_columns() -> None:
    rules = rules_of(
        points=[{"name": "opened", "event": "open", "points": 10, "once": True}],
        reset={"on_events": ["unsubscribe"], "after_inactive": "1m"},
    )
    events = pl.LazyFrame(
        {
            "contact_id": ["a", "a", "a"],
            "event_type": ["unsubscribe", "open", "open"],
            "timestamp": [utc(2024, 6, 1), utc(2024, 6, 2), utc(2024, 6, 3)],
        },
        schema={k: CANONICAL_SCHEMA[k] for k in ("contact_id", "event_type", "timestamp")},
    )
    rows = score_contacts(events, rules, AS_OF).collect()
    assert rows.select("contact_id", "score", "n_open", "hard_bounced").rows() == [
        ("a", 10.0, 2, False)
    ]


# --- Property test against the reference -------------------------------------------------------

START = utc(2023, 1, 1)
END = utc(2025, 1, 1)
EVENT_TYPES = (*CANONICAL_EVENT_TYPES, "open", "open", "click", "webinar")
CONTACT_IDS = ("a", "b")
CAMPAIGNS = ("c1", "c2", None, None)
URLS = (
    "https://x.io/pricing",
    "https://x.io/pricing?plan=pro",
    "https://x.io/blog/post",
    "https://x.io/demo",
    None,
    None,
)
RESET_EVENTS = ((), (), ("unsubscribe",), ("unsubscribe", "complaint"), ("bounce",), ("click",))
WINDOWS = ("1d", "10d", "30d", "2w", "1m", "2m", "6m", "1y")
HALF_LIVES = ("3d", "30d", "90d", "2w", "52w")
UNIQUE_BY = (("campaign_id",), ("url",), ("campaign_id", "url"), ("event_type",))
DEFAULT_RULES = Rules.model_validate(yaml.safe_load(default_rules_text()))


def month_end(draw: st.DrawFn) -> datetime:
    """The 28th to 31st of a month (the last day when the month is shorter)."""
    year = draw(st.sampled_from((2023, 2024)))
    month = draw(st.integers(1, 12))
    day = min(draw(st.sampled_from((28, 29, 30, 31))), calendar.monthrange(year, month)[1])
    return datetime(year, month, day, draw(st.sampled_from((0, 12, 23))), tzinfo=UTC)


def random_instant(draw: st.DrawFn) -> datetime:
    """Any instant in the two years (microseconds included), or a month end."""
    if draw(st.booleans()):
        return month_end(draw)
    naive = draw(st.datetimes(START.replace(tzinfo=None), END.replace(tzinfo=None)))
    return naive.replace(tzinfo=UTC)


def related_instant(draw: st.DrawFn, base: datetime, windows: list[str]) -> datetime:
    """An instant tied with ``base``, shortly after it, or a window (+-1us) after it."""
    kind = draw(st.sampled_from(("tie", "near", "near", "window", "window", "window")))
    if kind == "tie":
        return base
    if kind == "near":
        return base + timedelta(hours=draw(st.integers(0, 24 * 20)))
    window = draw(st.sampled_from(windows or list(WINDOWS)))
    nudge = draw(st.sampled_from((0, 0, -1, 1)))
    return add_duration(base, window) + timedelta(microseconds=nudge)


@st.composite
def point_rules(draw: st.DrawFn, index: int) -> dict[str, Any]:
    events = draw(st.lists(st.sampled_from(EVENT_TYPES), min_size=1, max_size=3, unique=True))
    rule: dict[str, Any] = {
        "name": f"r{index}",
        "event": events[0] if len(events) == 1 and draw(st.booleans()) else events,
        "points": draw(st.sampled_from((10, 20, -5, 0.5, -7.25, -20, 50, 3.3))),
    }
    where = draw(st.sampled_from(EVENT_CONDITIONS)) if draw(st.booleans()) else None
    if where is not None:
        rule["where"] = where
    kind = draw(st.sampled_from(("plain", "once", "unique_by")))
    if kind == "once":
        rule["once"] = True
    elif kind == "unique_by":
        rule["unique_by"] = list(draw(st.sampled_from(UNIQUE_BY)))
    cap = draw(st.sampled_from((None, None, 5, 15, 42.5)))
    if cap is not None:
        rule["cap"] = cap
    group = draw(st.sampled_from((None, None, "intent", "deliverability")))
    if group is not None:
        rule["group"] = group
    return rule


@st.composite
def rules_specs(draw: st.DrawFn) -> Rules:
    if draw(st.integers(0, 9)) == 0:
        return DEFAULT_RULES
    spec: dict[str, Any] = {
        "exclude_machine_opens": draw(st.booleans()),
        "points": [
            draw(point_rules(i)) for i in range(draw(st.sampled_from((0, 1, 2, 3, 3, 4, 5))))
        ],
    }
    if draw(st.integers(0, 3)) == 0:
        spec["engaged_events"] = draw(
            st.lists(st.sampled_from(CANONICAL_EVENT_TYPES), min_size=1, max_size=4, unique=True)
        )
    if draw(st.integers(0, 2)) > 0:
        spec["decay"] = {"half_life": draw(st.sampled_from(HALF_LIVES))}
    reset: dict[str, Any] = {}
    on_events = draw(st.sampled_from(RESET_EVENTS))
    if on_events:
        reset["on_events"] = on_events
    if draw(st.integers(0, 2)) > 0:
        reset["after_inactive"] = draw(st.sampled_from(WINDOWS))
    spec["reset"] = reset
    bounds = sorted(draw(st.lists(st.sampled_from((-20, 0, 15, 40, 100)), min_size=2, max_size=2)))
    if draw(st.booleans()):
        spec["min_score"] = bounds[0]
    if draw(st.booleans()):
        spec["max_score"] = bounds[1]
    thresholds = draw(
        st.lists(st.sampled_from((-10, 0, 10, 20, 50, 100)), min_size=1, max_size=3, unique=True)
    )
    spec["grades"] = {f"g{t}": t for t in thresholds}
    profile = []
    for index in range(draw(st.integers(0, 2))):
        rule: dict[str, Any] = {
            "name": f"p{index}",
            "where": draw(st.sampled_from(PROFILE_CONDITIONS)),
            "points": draw(st.sampled_from((5, -10, 25))),
        }
        if draw(st.booleans()):
            rule["group"] = "intent"
        profile.append(rule)
    spec["profile"] = profile
    return Rules.model_validate(spec)


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[list[dict[str, Any]], Rules, datetime, list[dict[str, Any]]]:
    rules = draw(rules_specs())
    windows = [str(rules.reset.after_inactive)] if rules.reset.after_inactive else []
    scored = sorted({t for rule in rules.points for t in rule.event})
    events: list[dict[str, Any]] = []
    for index in range(draw(st.integers(0, 30))):
        # Most events follow an earlier one (same contact, mostly): ties, streaks, exact gaps.
        if events and draw(st.integers(0, 3)) > 0:
            base = draw(st.sampled_from(events))
            stamp = related_instant(draw, base["timestamp"], windows)
            contact = base["contact_id"] if draw(st.integers(0, 3)) > 0 else None
        else:
            stamp, contact = random_instant(draw), None
        # Most events have a type some rule scores or an engagement type, so that scores are
        # rarely all 0 and streaks form.
        types = draw(st.sampled_from((scored, scored, list(rules.engaged_events), EVENT_TYPES)))
        event_type = draw(st.sampled_from(types or EVENT_TYPES))
        machine = draw(st.sampled_from((False, False, True, None)))
        events.append(
            ev(
                contact or draw(st.sampled_from(CONTACT_IDS)),
                event_type,
                stamp,
                event_id=draw(st.sampled_from((f"e{index}", None))),
                campaign_id=draw(st.sampled_from(CAMPAIGNS)),
                url=draw(st.sampled_from(URLS)),
                amount=draw(st.sampled_from((None, 5.0, 20.0, 49.5))),
                is_machine=machine if event_type == "open" or draw(st.booleans()) else False,
                bounce_type=draw(st.sampled_from(("hard", "soft", None))),
            )
        )
    stamps = [e["timestamp"] for e in events]
    kind = draw(
        st.sampled_from(("random", "related", "end", "after_latest", "inactive", "inactive"))
    )
    engaged = [
        e["timestamp"]
        for e in events
        if e["event_type"] in rules.engaged_events
        and not (rules.exclude_machine_opens and e["is_machine"])
    ]
    if kind == "related" and stamps:
        as_of = related_instant(draw, draw(st.sampled_from(stamps)), windows)
    elif kind == "after_latest" and stamps:
        as_of = max(stamps) + timedelta(days=draw(st.integers(0, 60)))
    elif kind == "inactive" and engaged and windows:
        # Exactly (or 1us either side of) the inactivity window after the latest engagement.
        nudge = timedelta(microseconds=draw(st.sampled_from((0, 0, -1, 1))))
        as_of = add_duration(max(engaged), windows[0]) + nudge
    elif kind == "end":
        as_of = END
    else:
        as_of = random_instant(draw)
    contacts: list[dict[str, Any]] = [
        {
            "contact_id": contact,
            "plan": draw(st.sampled_from(("pro", "free", None))),
            "employees": draw(st.sampled_from((None, 5, 50, 200))),
        }
        for contact in (*CONTACT_IDS, "zz")
        if draw(st.booleans())
    ]
    return events, rules, as_of, contacts


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


@given(scenarios(), st.sampled_from(("webinar", "resubscribe", "group_resubscribe")))
def test_contact_facts_match_reference(
    scenario: tuple[list[dict[str, Any]], Rules, datetime, list[dict[str, Any]]],
    other_type: str,
) -> None:
    """The facts (two aggregations joined: sends and deliveries apart) match a plain-Python
    reference, and the status columns the one-pass ``contact_status``."""
    events, rules, as_of, _ = scenario
    events = [
        {**e, "event_type": other_type} if e["event_type"] == "webinar" else e for e in events
    ]
    got = {
        row["contact_id"]: row
        for row in contact_facts(frame(events), rules, as_of, with_status=True)
        .collect()
        .iter_rows(named=True)
    }
    want = reference_facts(events, rules, as_of)
    assert set(got) == set(want)
    for contact, facts in want.items():
        assert {k: got[contact][k] for k in facts} == facts, contact
    status = contact_status(frame(events), rules, as_of).collect()
    for row in status.iter_rows(named=True):
        assert {k: got[row["contact_id"]][k] for k in row} == row


@st.composite
def streaks_across_a_boundary(
    draw: st.DrawFn,
) -> tuple[list[dict[str, Any]], Rules, datetime, datetime]:
    """Chains of events whose gaps sit at, just under and just over the inactivity window,
    with engagements that earn nothing, resets and earning events, across a boundary."""
    # The default rules half the time: they score events that are not engagements (bounces,
    # complaints), which a misplaced streak start would drop.
    rules = DEFAULT_RULES if draw(st.booleans()) else draw(rules_specs())
    window = draw(st.sampled_from(WINDOWS))
    engaged = draw(st.sampled_from((list(rules.engaged_events), ["page_view", "reply", "open"])))
    update = {
        "reset": rules.reset.model_copy(update={"after_inactive": Duration.parse(window)}),
        "engaged_events": engaged,
        # A short unengaged window lets the boundary come close to as_of.
        "status": rules.status.model_copy(update={"unengaged_window": Duration(1, "d")}),
    }
    rules = rules.model_copy(update=update)
    scored = sorted({t for rule in rules.points for t in rule.event})
    events: list[dict[str, Any]] = []
    for contact in CONTACT_IDS:
        stamp = random_instant(draw)
        for index in range(draw(st.integers(1, 24))):
            step = draw(st.sampled_from(("under", "under", "under", "at", "over", "hours", "tie")))
            if step == "at":
                stamp = add_duration(stamp, window) + timedelta(
                    microseconds=draw(st.sampled_from((0, -1, 1)))
                )
            elif step == "over":
                stamp = add_duration(stamp, window) + timedelta(days=3)
            elif step == "under":
                shortest = Duration.parse(window).shortest
                stamp = (
                    stamp + shortest * draw(st.sampled_from((0.3, 0.6, 0.95))) - timedelta(hours=1)
                )
            elif step == "hours":
                stamp = stamp + timedelta(hours=draw(st.integers(1, 30)))
            types = draw(
                st.sampled_from((engaged, engaged, scored or engaged, EVENT_TYPES, ["bounce"]))
            )
            event_type = draw(st.sampled_from(types))
            events.append(
                ev(
                    contact,
                    event_type,
                    stamp,
                    event_id=f"{contact}{index}",
                    campaign_id=draw(st.sampled_from(CAMPAIGNS)),
                    url=draw(st.sampled_from(URLS)),
                    is_machine=draw(st.sampled_from((False, False, True))),
                    bounce_type=draw(st.sampled_from(("hard", None))),
                )
            )
    stamps = sorted(e["timestamp"] for e in events)
    as_of = stamps[-1] + timedelta(days=draw(st.sampled_from((1, 2, 40, 400))))
    nudge = timedelta(microseconds=draw(st.sampled_from((0, -1, 1))))
    boundary = min(draw(st.sampled_from(stamps)) + nudge, as_of - timedelta(days=1))
    return events, rules, as_of, boundary


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streaks_across_a_boundary())
def test_carried_streaks_match_the_full_recompute(
    scenario: tuple[list[dict[str, Any]], Rules, datetime, datetime],
) -> None:
    events, rules, as_of, boundary = scenario
    full = score_contacts(frame(events), rules, as_of, with_status=True).collect()
    carried = _collected(carry(frame(events), rules, boundary))
    got = score_contacts(frame(events), rules, as_of, with_status=True, carried=carried)
    assert got.collect().equals(full)


def test_carried_engagements_keep_every_gap_of_a_running_streak() -> None:
    # Stretches of 10 days (the window) from 2023-12-29 (a multiple of 10 days after the
    # epoch). Page views 0, 9.5, 10.5 and 19.5 days in are one streak; keeping only each
    # stretch's last page view would leave a 10-day gap, a new streak at 19.5 days, and the
    # bounce of day 1 would lose its points.
    start = utc(2023, 12, 29)
    rules = rules_of(
        engaged_events=["page_view"],
        reset={"after_inactive": "10d"},
        points=[{"name": "bounced", "event": "bounce", "points": 10}],
    )
    days = (0, 9.5, 10.5, 19.5)
    events = [ev("a", "page_view", start + timedelta(days=d)) for d in days]
    events.append(ev("a", "bounce", start + timedelta(days=1)))
    as_of = start + timedelta(days=21)
    full = score_contacts(frame(events), rules, as_of).collect()
    assert full["score"].to_list() == [10.0]
    carried = _collected(carry(frame(events), rules, start + timedelta(days=20)))
    assert score_contacts(frame(events), rules, as_of, carried=carried).collect().equals(full)
    assert carried.events.collect().height == 5  # the bounce and every page view here


def _collected(carried: Carried) -> Carried:
    """As the nightly run keeps it: in files, read back."""
    return Carried(
        carried.boundary, carried.facts.collect().lazy(), carried.events.collect().lazy()
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.data())
def test_carried_scoring_matches_the_full_recompute(
    scenario: tuple[list[dict[str, Any]], Rules, datetime, list[dict[str, Any]]],
    data: st.DataObject,
) -> None:
    """What the events before a boundary leave (``carry``), with the events from it on, gives
    the same rows, bit for bit, as scoring every event: for any boundary up to where the
    unengaged window opens, and also when the carried part is carried again."""
    events, rules, as_of, _ = scenario
    limit = min(as_of, status_cutoffs(rules.status, as_of)["unengaged_after"])
    stamps = [e["timestamp"] for e in events if e["timestamp"] <= limit]
    kinds = ["random", "month"] + (["event", "event"] if stamps else [])
    kind = data.draw(st.sampled_from(kinds))
    if kind == "event":
        nudge = timedelta(microseconds=data.draw(st.sampled_from((0, 0, -1, 1))))
        boundary = min(data.draw(st.sampled_from(stamps)) + nudge, limit)
    elif kind == "month":
        boundary = carry_boundary(rules, as_of)
    else:
        boundary = min(
            data.draw(st.datetimes(START.replace(tzinfo=None))).replace(tzinfo=UTC), limit
        )
    full = score_contacts(frame(events), rules, as_of, with_status=True).collect()
    carried = _collected(carry(frame(events), rules, boundary))
    assert (
        score_contacts(frame(events), rules, as_of, with_status=True, carried=carried)
        .collect()
        .equals(full)
    )
    # Rolled on from an earlier boundary, reading only the events from it on: what the
    # nightly run does as its boundary moves on a month.
    earlier = min(boundary, data.draw(st.sampled_from(stamps or [boundary])))
    first = _collected(carry(frame(events), rules, earlier))
    recent = frame(events).filter(pl.col("timestamp") >= earlier)
    rolled = _collected(roll(first, recent, rules, boundary))
    assert (
        score_contacts(frame(events), rules, as_of, with_status=True, carried=rolled)
        .collect()
        .equals(full)
    )
