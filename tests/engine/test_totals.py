"""Rule totals, caps, clamping, grades, groups and profile rules (``engine.totals``,
``engine.ledger``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl
import pytest
from engine_cases import (
    AS_OF,
    OPEN_10,
    check_scores,
    ev,
    ledger_of,
    rules_of,
    run,
)

from helpers import utc
from reference import (
    reference_grades,
)


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
