"""Which events count (``engine.counting``): decay, resets, inactivity, streaks, machine
events, ``as_of``; hand-computed scores checked against ``reference.py`` too."""

from __future__ import annotations

import math
from datetime import timedelta

import polars as pl
from engine_cases import (
    AS_OF,
    CLICK_20,
    OPEN_10,
    check_scores,
    ev,
    ledger_of,
    rules_of,
)

from helpers import utc


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
