"""Builders and hypothesis strategies the engine tests share: canonical events as dicts,
rules from specs, random scenarios for the property tests against ``reference.py``."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
import yaml
from hypothesis import strategies as st

from engscore.engine.ledger import contact_ledger
from engscore.engine.scoring import score_contacts
from engscore.rules import Rules, default_rules_text
from engscore.schema import CANONICAL_EVENT_TYPES, CANONICAL_SCHEMA
from helpers import utc
from reference import (
    EVENT_CONDITIONS,
    PROFILE_CONDITIONS,
    add_duration,
    reference_breakdown,
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
    return contact_ledger(frame(events), rules, as_of, contact, people).collect()


OPEN_10 = {"name": "opened", "event": "open", "points": 10}


CLICK_20 = {"name": "clicked", "event": "click", "points": 20}


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
