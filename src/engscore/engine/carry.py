"""The carried state: what the events before a boundary leave for scoring after it.

``carry`` keeps the facts as aggregates and the few older events that can still earn points
or place a streak; ``roll`` moves it to a later boundary reading only the events between.
Scoring with it gives the same rows, bit for bit, as scoring every event (property tests).
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from engscore.engine.counting import counted_events, points_columns, rule_matches
from engscore.engine.exprs import event_type_in
from engscore.engine.facts import fact_aggregates, finish_facts, merge_facts
from engscore.engine.status import excluded_machine, status_aggregations, status_cutoffs
from engscore.rules import Rules
from engscore.schema import CONTACT, TIMESTAMP


def carried_events(events: pl.LazyFrame, rules: Rules, boundary: datetime) -> pl.LazyFrame:
    """The events before ``boundary`` that can still matter to the points at or after it.

    Scoring these together with the events from ``boundary`` on gives the same totals as
    scoring all the events, at any ``as_of`` at or after ``boundary`` (the property tests
    check it bit for bit). Later events can only take points away from earlier ones (a later
    reset or a new streak drops them), so what is kept, with all its columns, is:

    - the events that count at the boundary and match a point rule (every match: ``once`` and
      ``unique_by`` pick again among them and the later ones);
    - for a contact whose latest engagement streak is still running at the boundary, enough of
      its engagements to place that streak: the first and last in each stretch of
      ``after_inactive.shortest`` (less than the window apart, so they start no streak, and
      each gap between stretches is a gap between consecutive engagements).

    Nothing else is needed: a later event is after any earlier reset anyway, and after a
    streak that had ended by the boundary the next engagement starts a new one. Columns: the
    ``points_columns``, in no particular order.
    """
    names = points_columns(events.collect_schema(), rules)
    stamp = pl.col(TIMESTAMP)
    before = events.filter(stamp < boundary)
    marked = counted_events(before, rules, boundary - timedelta(microseconds=1))
    earning = functools.reduce(operator.or_, map(rule_matches, rules.points), pl.lit(False))
    keep = pl.col("_drop").is_null() & earning
    window = rules.reset.after_inactive
    if window is not None:
        after_reset = pl.lit(True)
        if rules.reset.on_events:
            after_reset = pl.col("_reset_at").is_null() | (stamp > pl.col("_reset_at"))
        streak = ~pl.col("_machine") & after_reset & event_type_in(rules.engaged_events)
        streak = streak & pl.col("_active").fill_null(False) & (stamp >= pl.col("_streak_start"))
        stretch = stamp.dt.epoch("us") // int(window.shortest / timedelta(microseconds=1))
        ends = [CONTACT, stretch.alias("_stretch")]
        first = pl.when(streak).then(stamp).min().over(ends)
        last = pl.when(streak).then(stamp).max().over(ends)
        keep = keep | (streak & ((stamp == first) | (stamp == last)))
    return marked.filter(keep).select(names)


@dataclass(frozen=True)
class Carried:
    """What the events before ``boundary`` leave for scoring at any ``as_of`` at or after it
    (``carry``): their facts as aggregates, and the events that can still matter to points."""

    boundary: datetime
    facts: pl.LazyFrame
    events: pl.LazyFrame

    def filter(self, selection: pl.Expr) -> Carried:
        """The part about the contacts ``selection`` (over ``contact_id``) keeps."""
        return Carried(self.boundary, self.facts.filter(selection), self.events.filter(selection))


def carry(events: pl.LazyFrame, rules: Rules, boundary: datetime) -> Carried:
    """The ``Carried`` of ``events`` before ``boundary`` (lazy: the caller collects both)."""
    return Carried(
        boundary, _older_facts(events, rules, boundary), carried_events(events, rules, boundary)
    )


def roll(carried: Carried, events: pl.LazyFrame, rules: Rules, boundary: datetime) -> Carried:
    """``carried`` moved on to a later ``boundary``: the same as ``carry`` of all the events,
    reading only ``events`` from ``carried.boundary`` on (the property tests check it)."""
    stamp = pl.col(TIMESTAMP)
    between = events.filter(stamp >= carried.boundary)
    facts = merge_facts(carried.facts, _older_facts(between, rules, boundary))
    read = points_columns(events.collect_schema(), rules)
    both = pl.concat([carried.events, between.select(read)], how="vertical_relaxed")
    return Carried(boundary, facts, carried_events(both, rules, boundary))


def _older_facts(events: pl.LazyFrame, rules: Rules, boundary: datetime) -> pl.LazyFrame:
    """``fact_aggregates`` of the events before ``boundary``, without the windows."""
    before = events.filter(pl.col(TIMESTAMP) < boundary)
    last = boundary - timedelta(microseconds=1)
    return fact_aggregates(before, rules, last, with_status=True, windows=False)


def carry_boundary(rules: Rules, as_of: datetime) -> datetime:
    """The latest boundary a ``Carried`` may have to score at ``as_of``: the start (UTC) of
    the month in which the ``unengaged`` window opens (the events of that window are read
    whole; the ``seasonal`` window is read apart, wherever it falls)."""
    opens = min(status_cutoffs(rules.status, as_of)["unengaged_after"], as_of)
    return opens.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def carried_facts(
    events: pl.LazyFrame,
    recent: pl.LazyFrame,
    carried: Carried,
    rules: Rules,
    as_of: datetime,
    with_status: bool,
) -> pl.LazyFrame:
    """The facts of ``events`` from ``carried`` and the ``recent`` events (those from its
    boundary on); the seasonal window is read from ``events``."""
    facts = merge_facts(carried.facts, fact_aggregates(recent, rules, as_of, with_status))
    if with_status:
        # The seasonal window (a year back) lies before the boundary: read it apart.
        cut = status_cutoffs(rules.status, as_of)
        stamp = pl.col(TIMESTAMP)
        human = ~excluded_machine(rules, events.collect_schema())
        seasonal = status_aggregations(rules, as_of, human)["_status_seasonal"]
        window = stamp.is_between(cut["seasonal_from"], cut["seasonal_to"]) & (stamp <= as_of)
        flags = events.filter(window).group_by(CONTACT).agg(seasonal.alias("_seasonal"))
        facts = (
            facts.join(flags, on=CONTACT, how="left")
            .with_columns(_status_seasonal=pl.col("_seasonal").fill_null(False))
            .drop("_seasonal")
        )
    return finish_facts(facts, rules, as_of)
