"""The scoring engine's entry point: point rules applied to canonical events, one lazy query
(SPEC section 3): a row per contact with its score, group scores, grade and facts."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from engscore.engine.carry import Carried, carried_facts
from engscore.engine.counting import points_columns
from engscore.engine.facts import contact_facts
from engscore.engine.totals import clamp, grade, group_totals, score_columns
from engscore.rules import Rules
from engscore.schema import CANONICAL_EVENT_TYPES, CONTACT, TIMESTAMP


def score_contacts(
    events: pl.LazyFrame,
    rules: Rules,
    as_of: datetime,
    contacts: pl.LazyFrame | None = None,
    with_status: bool = False,
    ordered: bool = True,
    presorted: bool = False,
    carried: Carried | None = None,
) -> pl.LazyFrame:
    """One row per contact with an event at or before ``as_of``: score, groups, grade, facts.

    ``with_status`` adds the inactivity status columns (``engscore.engine.status``) in the
    same pass.
    ``presorted`` says the events are sorted by contact, then time (see ``counted_events``).

    ``contacts`` (with a ``contact_id`` column) feeds the profile rules. Rows are sorted by
    ``contact_id`` unless ``ordered`` is false (for callers that sort later anyway); the query
    is lazy, for the caller to collect once.

    ``carried`` (``carry`` of these events before its boundary, at or before ``as_of``, and no
    ``contacts``): the same rows, reading only the events from the boundary on (and the
    seasonal window).
    """
    if carried is None:
        sums = group_totals(events, rules, as_of, contacts, presorted)
        facts = contact_facts(events, rules, as_of, with_status)
    else:
        if contacts is not None or carried.boundary > as_of:
            raise ValueError("carried facts need as_of at or after their boundary, no contacts")
        recent = events.filter(pl.col(TIMESTAMP) >= carried.boundary)
        read = points_columns(events.collect_schema(), rules)
        both = pl.concat([carried.events, recent.select(read)], how="vertical_relaxed")
        sums = group_totals(both, rules, as_of)
        facts = carried_facts(events, recent, carried, rules, as_of, with_status)
    group_columns = score_columns(rules)
    total = pl.sum_horizontal(group_columns)
    scored = (
        facts.join(sums, on=CONTACT, how="left")
        .with_columns(pl.col(c).fill_null(0.0) for c in group_columns)
        .with_columns(score=clamp(total, rules))
        .with_columns(grade=grade(pl.col("score"), rules))
    )
    scored = scored.select(output_columns(rules, with_status))
    return scored.sort(CONTACT) if ordered else scored


def output_columns(rules: Rules, with_status: bool = False) -> list[str]:
    """The points and facts columns of the scores file, in order."""
    return [
        CONTACT,
        "score",
        *score_columns(rules),
        "grade",
        "first_seen_at",
        "last_event_at",
        "last_engaged_at",
        "days_since_engaged",
        *(("status", "seasonal", "unengaged") if with_status else ()),
        *(f"n_{t}" for t in CANONICAL_EVENT_TYPES),
        "n_machine_open",
        "unsubscribed",
        "complained",
        "hard_bounced",
    ]
