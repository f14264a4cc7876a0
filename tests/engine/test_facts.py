"""Per-contact facts (``engine.facts``): counts, flags, optional columns, and a property
test against ``reference.py``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import polars as pl
import pytest
from engine_cases import (
    AS_OF,
    OPEN_10,
    ev,
    frame,
    rules_of,
    run,
    scenarios,
)
from hypothesis import given
from hypothesis import strategies as st

from engscore.engine.facts import contact_facts
from engscore.engine.scoring import score_contacts
from engscore.engine.status import contact_status
from engscore.rules import Rules
from engscore.schema import CANONICAL_SCHEMA
from helpers import utc
from reference import (
    reference_facts,
)


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
