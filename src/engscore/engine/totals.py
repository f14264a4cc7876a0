"""Per-contact point totals: each rule's sum after ``once``/``unique_by`` and its cap, the
``score_<group>`` columns, clamping and grades (SPEC section 3, steps 4-6)."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from engscore.engine.counting import counted_events, decay_factor, rule_matches
from engscore.engine.exprs import event_type_in, fixed_point, stable_sum
from engscore.engine.ledger import profile_ledger
from engscore.engine.status import excluded_machine
from engscore.rules import Rules
from engscore.schema import CONTACT, TIMESTAMP


def rule_totals(
    events: pl.LazyFrame, rules: Rules, as_of: datetime, presorted: bool = False
) -> pl.LazyFrame:
    """Per contact, each point rule's total after ``once``/``unique_by`` and its cap.

    The same numbers the ledger adds up, computed the fast way: rules that count every match,
    and ``once`` rules without keys, share one pass and one ``group_by``; a ``unique_by`` rule
    keeps the earliest match per key with a ``group_by`` on (contact, keys) instead of a
    ranking window. Columns
    ``_rule<i>`` (0 where a rule earned nothing), one row per contact that earned anything.
    """
    # Excluded machine events never count, start a reset or a streak: dropping them first
    # gives the same totals with less to carry through the reset window and streak join.
    human = events.filter(~excluded_machine(rules, events.collect_schema()))
    counted = counted_events(human, rules, as_of, presorted, counting_only=True).filter(
        event_type_in(sorted({t for rule in rules.points for t in rule.event}))
    )
    factor = decay_factor(pl.col(TIMESTAMP), rules, as_of)

    every = [(i, r) for i, r in enumerate(rules.points) if not (r.once or r.unique_by)]
    # A ``once`` rule without keys earns for its contact's first match: a minimum in the
    # shared pass, not a group_by and join of its own.
    once = [(i, r) for i, r in enumerate(rules.points) if r.once and not r.unique_by]
    keyed = [(i, r) for i, r in enumerate(rules.points) if r.unique_by]
    parts: list[pl.LazyFrame] = []
    if every or once:
        earned = [
            pl.when(rule_matches(r))
            .then(pl.lit(float(r.points)) * factor)
            .otherwise(0.0)
            .alias(f"_rule{i}")
            for i, r in every
        ]
        firsts = [
            pl.when(rule_matches(r)).then(pl.col(TIMESTAMP)).alias(f"_rule{i}") for i, r in once
        ]
        parts.append(
            counted.select(CONTACT, *earned, *firsts)
            .group_by(CONTACT)
            .agg(
                *(stable_sum(pl.col(f"_rule{i}")).alias(f"_rule{i}") for i, _ in every),
                *(pl.col(f"_rule{i}").min() for i, _ in once),
            )
            .with_columns(
                # Null (no match) stays null: the factor is a constant 1 without decay.
                pl.when(pl.col(f"_rule{i}").is_not_null())
                .then(
                    fixed_point(
                        pl.lit(float(r.points)) * decay_factor(pl.col(f"_rule{i}"), rules, as_of)
                    )
                )
                .alias(f"_rule{i}")
                for i, r in once
            )
        )
    for i, rule in keyed:
        first = (
            counted.filter(rule_matches(rule))
            .group_by([CONTACT, *(rule.unique_by or ())])
            .agg(_first=pl.col(TIMESTAMP).min())
        )
        earned_once = pl.lit(float(rule.points)) * decay_factor(pl.col("_first"), rules, as_of)
        parts.append(
            first.with_columns(earned_once.alias("_earned"))
            .group_by(CONTACT)
            .agg(stable_sum(pl.col("_earned")).alias(f"_rule{i}"))
        )
    if not parts:
        return pl.LazyFrame(schema={CONTACT: events.collect_schema()[CONTACT]})
    totals = parts[0]
    for part in parts[1:]:
        totals = totals.join(part, on=CONTACT, how="full", coalesce=True)
    capped = []
    for i, rule in enumerate(rules.points):
        column = pl.col(f"_rule{i}").fill_null(0.0)
        if rule.cap is not None:
            column = column.clip(-float(rule.cap), float(rule.cap))
        capped.append(column.alias(f"_rule{i}"))
    return totals.select(CONTACT, *capped)


def group_totals(
    events: pl.LazyFrame,
    rules: Rules,
    as_of: datetime,
    contacts: pl.LazyFrame | None = None,
    presorted: bool = False,
) -> pl.LazyFrame:
    """Per contact, ``score_<group>``: the group's rule totals plus its profile points
    (``presorted``: see ``counted_events``)."""
    columns = {
        g: [f"_rule{i}" for i, r in enumerate(rules.points) if r.group == g] for g in rules.groups
    }
    totals = rule_totals(events, rules, as_of, presorted).select(
        CONTACT,
        *(
            (pl.sum_horizontal(names) if names else pl.lit(0.0)).alias(f"score_{g}")
            for g, names in columns.items()
        ),
    )
    if not (rules.profile and contacts is not None):
        return totals
    known = events.filter(pl.col(TIMESTAMP) <= as_of).select(CONTACT).unique()
    profile = (
        profile_ledger(contacts, rules)
        .join(known, on=CONTACT, how="semi")
        .group_by(CONTACT)
        .agg(
            stable_sum(pl.col("points").filter(pl.col("group") == g)).alias(f"_profile_{g}")
            for g in rules.groups
        )
    )
    return totals.join(profile, on=CONTACT, how="full", coalesce=True).select(
        CONTACT,
        *(
            (pl.col(f"score_{g}").fill_null(0.0) + pl.col(f"_profile_{g}").fill_null(0.0)).alias(
                f"score_{g}"
            )
            for g in rules.groups
        ),
    )


def clamp(score: pl.Expr, rules: Rules) -> pl.Expr:
    """``score`` clipped to ``[min_score, max_score]`` where they are set."""
    if rules.min_score is None and rules.max_score is None:
        return score
    return score.clip(rules.min_score, rules.max_score)


def grade(score: pl.Expr, rules: Rules) -> pl.Expr:
    """The grade with the highest threshold <= score; below all, the lowest grade."""
    ordered = rules.grade_order()
    expr = pl.lit(ordered[-1][0])
    # Built from the lowest threshold up, so the highest threshold is tested first.
    for name, threshold in reversed(ordered[:-1]):
        expr = pl.when(score >= threshold).then(pl.lit(name)).otherwise(expr)
    return expr


def score_columns(rules: Rules) -> list[str]:
    """``score_<group>`` column names in order."""
    return [f"score_{group}" for group in rules.groups]
