"""The point ledger: a row per (rule, matching event) saying what it earned and why.

Plus a row per rule cap that clipped a contact's total and per profile rule that matched.
``engscore explain`` shows it for one contact; its lines add up to the score that
``engscore.engine.totals`` computes the fast way (the tests check both agree).
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from engscore.engine.counting import (
    BEFORE_STREAK,
    INACTIVE,
    MACHINE,
    RESET,
    counted_events,
    decay_factor,
    rule_matches,
)
from engscore.engine.exprs import optional_column, stable_sum
from engscore.rules import Rules
from engscore.schema import CONTACT, EVENT_TYPE, TIMESTAMP

#: Ledger statuses: why a matching event did or did not earn points.
EARNED = "earned"
ONCE = "once"
UNIQUE_BY = "unique_by"
CAP = "cap"
PROFILE = "profile"


STATUS_TEXT = {
    EARNED: "earned",
    MACHINE: "machine event, excluded",
    RESET: "at or before a reset event",
    INACTIVE: "no engagement within the inactivity window: score reset",
    BEFORE_STREAK: "before the latest engagement streak",
    ONCE: "rule counts once: not the first match",
    UNIQUE_BY: "rule counts once per value: not the first match",
    CAP: "rule cap",
    PROFILE: "profile attribute",
}


LEDGER_SCHEMA = pl.Schema(
    {  # type: ignore[arg-type]  # the stubs do not accept DataType classes here
        CONTACT: pl.String,
        "rule": pl.String,
        "group": pl.String,
        EVENT_TYPE: pl.String,
        TIMESTAMP: pl.Datetime("us", "UTC"),
        "event_id": pl.String,
        "campaign_id": pl.String,
        "url": pl.String,
        "status": pl.String,
        "raw_points": pl.Float64,
        "decay_factor": pl.Float64,
        "points": pl.Float64,
    }
)


#: Tie-breakers after the timestamp, so `once` keeps the same event on every run.
_ORDER = (TIMESTAMP, EVENT_TYPE, "event_id", "campaign_id", "url")


def event_ledger(events: pl.LazyFrame, rules: Rules, as_of: datetime) -> pl.LazyFrame:
    """One row per (point rule, matching event at or before ``as_of``) plus cap adjustments.

    Columns as ``LEDGER_SCHEMA``; ``points`` is what the row adds to the score.
    """
    counted = counted_events(events, rules, as_of)
    schema = counted.collect_schema()
    order = [c for c in _ORDER if c in schema]
    factor = decay_factor(pl.col(TIMESTAMP), rules, as_of)
    parts: list[pl.LazyFrame] = []
    for rule in rules.points:
        matched = counted.filter(rule_matches(rule))
        status = pl.col("_drop")
        if rule.once or rule.unique_by:
            keys = [CONTACT, *(rule.unique_by or ()), pl.col("_drop").is_null()]
            rank = pl.int_range(pl.len()).over(keys, order_by=order)
            repeat = pl.col("_drop").is_null() & (rank > 0)
            status = (
                pl.when(repeat).then(pl.lit(ONCE if rule.once else UNIQUE_BY)).otherwise(status)
            )
        rows = matched.with_columns(status=status.fill_null(EARNED)).select(
            pl.col(CONTACT),
            rule=pl.lit(rule.name),
            group=pl.lit(rule.group),
            event_type=pl.col(EVENT_TYPE),
            timestamp=pl.col(TIMESTAMP),
            event_id=optional_column(schema, "event_id", pl.String),
            campaign_id=optional_column(schema, "campaign_id", pl.String),
            url=optional_column(schema, "url", pl.String),
            status=pl.col("status"),
            raw_points=pl.lit(float(rule.points)),
            decay_factor=factor,
            points=pl.when(pl.col("status") == EARNED)
            .then(pl.lit(float(rule.points)) * factor)
            .otherwise(0.0),
        )
        parts.append(rows)
        if rule.cap is not None:
            parts.append(_cap_rows(rows, rule.name, rule.group, float(rule.cap)))
    if not parts:
        return pl.LazyFrame(schema=LEDGER_SCHEMA)
    return pl.concat(parts, how="vertical")


def _cap_rows(rows: pl.LazyFrame, name: str, group: str, cap: float) -> pl.LazyFrame:
    total = stable_sum(pl.col("points"))
    adjustment = total.clip(-cap, cap) - total
    return (
        rows.group_by(CONTACT)
        .agg(points=adjustment)
        .filter(pl.col("points") != 0)
        .select(_contact_row(name, group, CAP, None, pl.col("points")))
    )


def _contact_row(
    rule: str, group: str, status: str, raw_points: float | None, points: pl.Expr
) -> list[pl.Expr]:
    """Ledger columns of a row about a contact rather than an event (cap, profile)."""
    return [
        pl.col(CONTACT),
        pl.lit(rule).alias("rule"),
        pl.lit(group).alias("group"),
        *(pl.lit(None, dtype=LEDGER_SCHEMA[c]).alias(c) for c in (EVENT_TYPE, TIMESTAMP)),
        *(pl.lit(None, dtype=pl.String).alias(c) for c in ("event_id", "campaign_id", "url")),
        pl.lit(status).alias("status"),
        pl.lit(raw_points, dtype=pl.Float64).alias("raw_points"),
        pl.lit(None, dtype=pl.Float64).alias("decay_factor"),
        points.alias("points"),
    ]


def profile_ledger(contacts: pl.LazyFrame | None, rules: Rules) -> pl.LazyFrame:
    """One row per (profile rule, matching contact): attribute points, no decay or resets."""
    if contacts is None or not rules.profile:
        return pl.LazyFrame(schema=LEDGER_SCHEMA)
    parts = [
        contacts.filter(rule.condition.fill_null(False)).select(
            _contact_row(
                rule.name, rule.group, PROFILE, float(rule.points), pl.lit(float(rule.points))
            )
        )
        for rule in rules.profile
    ]
    return pl.concat(parts, how="vertical")


def ledger(
    events: pl.LazyFrame, rules: Rules, as_of: datetime, contacts: pl.LazyFrame | None = None
) -> pl.LazyFrame:
    """The whole ledger: event rows, cap adjustments and profile rows (profile rows only for
    contacts that have events)."""
    profile = profile_ledger(contacts, rules)
    if rules.profile and contacts is not None:
        known = events.filter(pl.col(TIMESTAMP) <= as_of).select(CONTACT).unique()
        profile = profile.join(known, on=CONTACT, how="semi")
    return pl.concat([event_ledger(events, rules, as_of), profile], how="vertical")


def contact_ledger(
    events: pl.LazyFrame,
    rules: Rules,
    as_of: datetime,
    contact: str,
    contacts: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """The ledger of one contact, in time order (rows that add nothing included)."""
    mine = events.filter(pl.col(CONTACT) == contact)
    theirs = contacts.filter(pl.col(CONTACT) == contact) if contacts is not None else None
    return ledger(mine, rules, as_of, theirs).sort(
        [pl.col(TIMESTAMP).is_null(), TIMESTAMP, "rule", "event_id", "campaign_id", "url"],
        nulls_last=True,
    )
