"""A plain-Python reference of the score semantics (SPEC section 3, steps 1-7), for the tests.

Loops and ``datetime`` arithmetic only, no Polars and no engine code beyond the ``Rules``
model: it is the yardstick the Polars engine is checked against. Calendar months and years
use their own month arithmetic here (adding a month to 31 January gives the last day of
February). ``where`` conditions are hand-written Python predicates for a fixed set of SQL
conditions, with SQL semantics (a NULL comparison does not match).

Beyond the SPEC (our choices): every rule has a ``group``; ``score_<group>`` is the sum of the
group's rule totals after caps and before the min/max clamp, and ``score`` is the clamped sum of
the groups. Profile rules award points from a contacts table to contacts that have an event at
or before ``as_of``, with no decay and no resets.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from engscore.rules import Rules
from engscore.schema import CANONICAL_EVENT_TYPES  # the SPEC's list of types

Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]


def _like(value: Any, needle: str) -> bool | None:
    """``value LIKE '%needle%'`` in SQL three-valued logic (None is NULL)."""
    return None if value is None else needle in value


def _not(value: bool | None) -> bool | None:
    return None if value is None else not value


def _or(*values: bool | None) -> bool | None:
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def _key_page(row: Row) -> bool | None:
    url = row.get("url")
    return _or(_like(url, "/pricing"), _like(url, "/demo"), _like(url, "/contact"))


def _gt(value: Any, bound: float) -> bool | None:
    return None if value is None else value > bound


def _ge(value: Any, bound: float) -> bool | None:
    return None if value is None else value >= bound


def _eq(value: Any, other: Any) -> bool | None:
    return None if value is None else value == other


def _ne(value: Any, other: Any) -> bool | None:
    return None if value is None else value != other


#: The SQL conditions the tests use on events, as three-valued Python predicates.
_EVENT_CONDITIONS: dict[str, Callable[[Row], bool | None]] = {
    "url LIKE '%/pricing%'": lambda r: _like(r.get("url"), "/pricing"),
    "bounce_type = 'hard'": lambda r: _eq(r.get("bounce_type"), "hard"),
    "bounce_type IS NULL OR bounce_type <> 'hard'": lambda r: _or(
        r.get("bounce_type") is None, _ne(r.get("bounce_type"), "hard")
    ),
    "amount > 20": lambda r: _gt(r.get("amount"), 20),
    "amount >= 20 OR url LIKE '%/pricing%'": lambda r: _or(
        _ge(r.get("amount"), 20), _like(r.get("url"), "/pricing")
    ),
    "NOT (url LIKE '%/blog%')": lambda r: _not(_like(r.get("url"), "/blog")),
    "url IS NULL": lambda r: r.get("url") is None,
    "campaign_id IN ('c1', 'c2')": lambda r: (
        None if r.get("campaign_id") is None else r.get("campaign_id") in ("c1", "c2")
    ),
    "url LIKE '%/pricing%' OR url LIKE '%/demo%' OR url LIKE '%/contact%'": _key_page,
    (
        "url IS NULL OR NOT (url LIKE '%/pricing%' OR url LIKE '%/demo%' OR url LIKE '%/contact%')"
    ): lambda r: _or(r.get("url") is None, _not(_key_page(r))),
}

#: The SQL conditions the tests use on the contacts table (profile rules).
_PROFILE_CONDITIONS: dict[str, Callable[[Row], bool | None]] = {
    "plan = 'pro'": lambda r: _eq(r.get("plan"), "pro"),
    "employees >= 50": lambda r: _ge(r.get("employees"), 50),
    "plan IS NULL": lambda r: r.get("plan") is None,
    "plan = 'pro' OR employees > 10": lambda r: _or(
        _eq(r.get("plan"), "pro"), _gt(r.get("employees"), 10)
    ),
}

EVENT_CONDITIONS: tuple[str, ...] = tuple(_EVENT_CONDITIONS)
PROFILE_CONDITIONS: tuple[str, ...] = tuple(_PROFILE_CONDITIONS)


def _predicate(table: Mapping[str, Callable[[Row], bool | None]], where: str | None) -> Predicate:
    """The Python predicate of a ``where``: a row matches only when it is true (not NULL)."""
    if where is None:
        return lambda row: True
    condition = table.get(where)
    if condition is None:
        raise KeyError(f"the reference has no predicate for {where!r}")
    return lambda row: condition(row) is True


# --- Calendar arithmetic -------------------------------------------------------------------

_DURATION = re.compile(r"^(\d+)([dwmy])$")


def add_months(instant: datetime, months: int) -> datetime:
    """``instant`` plus whole calendar months; a day past the month's end becomes its last."""
    index = instant.year * 12 + (instant.month - 1) + months
    year, month = index // 12, index % 12 + 1
    last_day = calendar.monthrange(year, month)[1]
    return instant.replace(year=year, month=month, day=min(instant.day, last_day))


def add_duration(instant: datetime, text: str) -> datetime:
    """``instant`` plus a duration written ``Nd``, ``Nw``, ``Nm`` or ``Ny``."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r}")
    amount, unit = int(match.group(1)), match.group(2)
    if unit == "d":
        return instant + timedelta(days=amount)
    if unit == "w":
        return instant + timedelta(weeks=amount)
    return add_months(instant, amount * (12 if unit == "y" else 1))


def half_life_days(text: str) -> float:
    """A half-life (``Nd`` or ``Nw``) in days."""
    match = _DURATION.match(text)
    if match is None or match.group(2) not in ("d", "w"):
        raise ValueError(f"not a half-life: {text!r}")
    return float(int(match.group(1)) * (7 if match.group(2) == "w" else 1))


# --- Scores -------------------------------------------------------------------------------


def clamp(value: float, rules: Rules) -> float:
    """``value`` clipped to ``[min_score, max_score]`` where set."""
    if rules.min_score is not None and value < rules.min_score:
        value = rules.min_score
    if rules.max_score is not None and value > rules.max_score:
        value = rules.max_score
    return value


def grade_of(score: float, grades: Mapping[str, float]) -> str:
    """The grade with the highest threshold <= score; below every threshold, the lowest."""
    eligible = [(threshold, name) for name, threshold in grades.items() if threshold <= score]
    if eligible:
        return max(eligible)[1]
    return min((threshold, name) for name, threshold in grades.items())[1]


def _groups(rules: Rules) -> list[str]:
    names = [r.group for r in rules.points] + [r.group for r in rules.profile]
    return list(dict.fromkeys(names)) or ["engagement"]


def _counted(contact_events: list[Row], rules: Rules, as_of: datetime) -> list[Row]:
    """Steps 1-3: the events of one contact that may earn points."""
    # Step 1: at or before as_of; machine events dropped first when excluded.
    events = [e for e in contact_events if e["timestamp"] <= as_of]
    if rules.exclude_machine_opens:
        events = [e for e in events if not e.get("is_machine")]
    # Step 2: events at or before the latest reset event earn nothing.
    resets = [e["timestamp"] for e in events if e["event_type"] in rules.reset.on_events]
    if resets:
        latest_reset = max(resets)
        events = [e for e in events if e["timestamp"] > latest_reset]
    # Step 3: reset after inactivity, then only the latest engagement streak counts.
    if rules.reset.after_inactive is not None:
        window = str(rules.reset.after_inactive)
        engaged = sorted(e["timestamp"] for e in events if e["event_type"] in rules.engaged_events)
        if not engaged or add_duration(engaged[-1], window) <= as_of:
            return []
        start = engaged[-1]
        for index in range(len(engaged) - 1, 0, -1):
            if add_duration(engaged[index - 1], window) <= engaged[index]:
                break
            start = engaged[index - 1]
        events = [e for e in events if e["timestamp"] >= start]
    return events


def _rule_totals(events: list[Row], rules: Rules, as_of: datetime) -> dict[str, float]:
    """Step 4: each rule's total (after once/unique_by, decay and its cap)."""
    half_life = half_life_days(str(rules.decay.half_life)) if rules.decay is not None else None
    totals: dict[str, float] = {}
    for rule in rules.points:
        matches = _predicate(_EVENT_CONDITIONS, rule.where)
        matched = sorted(
            (e for e in events if e["event_type"] in rule.event and matches(e)),
            key=lambda e: e["timestamp"],
        )
        if rule.once:
            matched = matched[:1]
        elif rule.unique_by:
            seen: set[tuple[Any, ...]] = set()
            kept = []
            for event in matched:
                key = tuple(event.get(column) for column in rule.unique_by)
                if key not in seen:  # None is one value like any other
                    seen.add(key)
                    kept.append(event)
            matched = kept
        total = 0.0
        for event in matched:
            factor = 1.0
            if half_life is not None:
                age_days = (as_of - event["timestamp"]) / timedelta(days=1)
                factor = 0.5 ** (age_days / half_life)
            total += rule.points * factor
        if rule.cap is not None:
            total = max(-rule.cap, min(rule.cap, total))
        totals[rule.name] = total
    return totals


def reference_breakdown(
    events: Iterable[Row],
    rules: Rules,
    as_of: datetime,
    contacts: Iterable[Row] | None = None,
) -> dict[str, dict[str, float]]:
    """Per contact: ``score_<group>`` for every group (before the clamp) and ``score``."""
    by_contact: dict[str, list[Row]] = {}
    for event in events:
        by_contact.setdefault(event["contact_id"], []).append(event)
    profiles: dict[str, list[Row]] = {}
    for row in contacts or ():
        profiles.setdefault(row["contact_id"], []).append(row)
    groups = _groups(rules)
    out: dict[str, dict[str, float]] = {}
    for contact, contact_events in by_contact.items():
        # Step 6: only contacts with an event at or before as_of.
        if not any(e["timestamp"] <= as_of for e in contact_events):
            continue
        sums = dict.fromkeys(groups, 0.0)
        totals = _rule_totals(_counted(contact_events, rules, as_of), rules, as_of)
        for rule in rules.points:
            sums[rule.group] += totals[rule.name]
        for profile_rule in rules.profile:
            matches = _predicate(_PROFILE_CONDITIONS, profile_rule.where)
            for row in profiles.get(contact, ()):
                if matches(row):
                    sums[profile_rule.group] += profile_rule.points
        row_out = {f"score_{g}": sums[g] for g in groups}
        # Step 5: the sum over rules (and groups), clamped.
        row_out["score"] = clamp(sum(sums[g] for g in groups), rules)
        out[contact] = row_out
    return out


def reference_scores(
    events: Iterable[Row],
    rules: Rules,
    as_of: datetime,
    contacts: Iterable[Row] | None = None,
) -> dict[str, float]:
    """``score`` per contact with an event at or before ``as_of`` (SPEC section 3)."""
    breakdown = reference_breakdown(events, rules, as_of, contacts)
    return {contact: row["score"] for contact, row in breakdown.items()}


def reference_grades(scores: Mapping[str, float], rules: Rules) -> dict[str, str]:
    """Step 7: the grade of every score."""
    return {contact: grade_of(score, rules.grades) for contact, score in scores.items()}


def reference_facts(
    events: Iterable[Row], rules: Rules, as_of: datetime
) -> dict[str, dict[str, Any]]:
    """The per-contact facts beside the score (README "Scores file"), by contact.

    Machine events (``is_machine`` true, when ``exclude_machine_opens``) are left out of the
    counts and the last engagement; the flags look at every event. ``unsubscribed``: an
    unsubscribe not followed by a later resubscribe; ``hard_bounced``: a hard bounce not
    followed by a later delivery (ties keep both flags).
    """
    by_contact: dict[str, list[Row]] = {}
    for event in events:
        if event["timestamp"] <= as_of:
            by_contact.setdefault(event["contact_id"], []).append(event)
    facts: dict[str, dict[str, Any]] = {}
    for contact, rows in by_contact.items():

        def human(row: Row) -> bool:
            return not (rules.exclude_machine_opens and bool(row.get("is_machine")))

        def last(test: Callable[[Row], bool], rows: list[Row] = rows) -> datetime | None:
            return max((r["timestamp"] for r in rows if test(r)), default=None)

        engaged = last(lambda r: human(r) and r["event_type"] in rules.engaged_events)
        unsubscribed = last(lambda r: r["event_type"] == "unsubscribe")
        resubscribed = last(lambda r: r["event_type"] in ("resubscribe", "group_resubscribe"))
        hard = last(lambda r: r["event_type"] == "bounce" and r.get("bounce_type") == "hard")
        delivered = last(lambda r: r["event_type"] == "delivered")
        facts[contact] = {
            "first_seen_at": min(r["timestamp"] for r in rows),
            "last_event_at": max(r["timestamp"] for r in rows),
            "last_engaged_at": engaged,
            "days_since_engaged": (as_of - engaged).days if engaged is not None else None,
            **{
                f"n_{t}": sum(1 for r in rows if r["event_type"] == t and human(r))
                for t in CANONICAL_EVENT_TYPES
            },
            "n_machine_open": sum(
                1 for r in rows if r["event_type"] == "open" and bool(r.get("is_machine"))
            ),
            "unsubscribed": unsubscribed is not None
            and (resubscribed is None or resubscribed <= unsubscribed),
            "complained": any(r["event_type"] == "complaint" for r in rows),
            "hard_bounced": hard is not None and (delivered is None or delivered <= hard),
        }
    return facts
