"""The carried state (``engine.carry``): scoring with it equals the full recompute, bit for
bit (property tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from engine_cases import (
    CAMPAIGNS,
    CONTACT_IDS,
    DEFAULT_RULES,
    EVENT_TYPES,
    START,
    URLS,
    WINDOWS,
    ev,
    frame,
    random_instant,
    rules_of,
    rules_specs,
    scenarios,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engscore.durations import Duration
from engscore.engine.carry import Carried, carry, carry_boundary, roll
from engscore.engine.scoring import score_contacts
from engscore.engine.status import status_cutoffs
from engscore.rules import Rules
from helpers import utc
from reference import (
    add_duration,
)


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
