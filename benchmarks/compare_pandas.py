"""The default rules written as a plain pandas notebook would: the yardstick for the benchmark.

    python benchmarks/compare_pandas.py EVENTS.parquet [--as-of 2026-11-01T00:00:00Z] [-o FILE]

A straightforward, idiomatic pandas implementation of `engscore score` with the packaged
default rules (`rules/default.yaml`): vectorised columns, `groupby` and no loop over events.
The rules are written out by hand, as an analyst would, with each `where` as a pandas mask.
It reads an events file written by `engscore ingest` (or `examples/generate.py`) and returns,
per contact with at least one event at or before `as_of`: the score (SPEC section 3), the
counts of human opens, clicks and purchases, the last engagement and the raw RFM values.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

COLUMNS = [
    "contact_id",
    "event_type",
    "timestamp",
    "campaign_id",
    "url",
    "amount",
    "is_machine",
    "bounce_type",
]
OUTPUT_COLUMNS = [
    "contact_id",
    "score",
    "n_open",
    "n_click",
    "n_purchase",
    "last_engaged_at",
    "recency_days",
    "frequency",
    "monetary",
]

# --- rules/default.yaml, by hand ------------------------------------------------------------

ENGAGED_EVENTS = ["open", "click", "reply", "page_view", "form_submit", "purchase"]
RESET_EVENTS = ["unsubscribe"]
INACTIVE = pd.DateOffset(months=6)  # calendar months: 31 Aug + 6 months = 28 Feb
HALF_LIFE_DAYS = 90.0
MIN_SCORE, MAX_SCORE = -100.0, 500.0

Mask = Callable[[pd.DataFrame], pd.Series]


def key_page(events: pd.DataFrame) -> pd.Series:
    """`url LIKE '%/pricing%' OR url LIKE '%/demo%' OR url LIKE '%/contact%'` (NULL: no)."""
    return events["url"].str.contains("/pricing|/demo|/contact", regex=True, na=False)


def other_page(events: pd.DataFrame) -> pd.Series:
    """`url IS NULL OR NOT (<key page>)`."""
    return events["url"].isna() | ~key_page(events)


def hard_bounce(events: pd.DataFrame) -> pd.Series:
    """`bounce_type = 'hard'`."""
    return events["bounce_type"].eq("hard").fillna(False)


def soft_bounce(events: pd.DataFrame) -> pd.Series:
    """`bounce_type IS NULL OR bounce_type <> 'hard'`."""
    return events["bounce_type"].isna() | ~hard_bounce(events)


@dataclass(frozen=True)
class Rule:
    """One `points` entry of the rules file."""

    name: str
    event: str
    points: float
    where: Mask | None = None
    unique_by: tuple[str, ...] = ()
    once: bool = False
    cap: float | None = None


RULES = [
    Rule("opened", "open", 10, unique_by=("campaign_id",)),
    Rule("clicked", "click", 20, unique_by=("campaign_id", "url")),
    Rule("replied", "reply", 30),
    Rule("key_page_visit", "page_view", 50, where=key_page, unique_by=("url",)),
    Rule("page_visit", "page_view", 2, where=other_page, cap=20),
    Rule("form_submitted", "form_submit", 40),
    Rule("purchased", "purchase", 50),
    Rule("hard_bounced", "bounce", -50, where=hard_bounce, once=True),
    Rule("soft_bounced", "bounce", -5, where=soft_bounce, cap=20),
    Rule("complained", "complaint", -100, once=True),
]

# --- scoring --------------------------------------------------------------------------------


def load(events_path: str, as_of: pd.Timestamp) -> pd.DataFrame:
    """The events at or before `as_of`, only the columns the rules and facts need."""
    events = pd.read_parquet(
        events_path,
        engine="pyarrow",
        columns=COLUMNS,
        filters=[("timestamp", "<=", as_of)],
    )
    events["event_type"] = events["event_type"].astype("category")
    events["is_machine"] = events["is_machine"].fillna(False).astype(bool)
    return events


def counted_events(human: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """SPEC section 3 steps 2 and 3: the human events that may earn points."""
    # Step 2: events at or before the contact's latest unsubscribe earn nothing.
    is_reset = human["event_type"].isin(RESET_EVENTS)
    last_reset = human.loc[is_reset].groupby("contact_id")["timestamp"].max()
    reset_at = human["contact_id"].map(last_reset)
    events = human.loc[reset_at.isna() | (human["timestamp"] > reset_at)]

    # Step 3: six calendar months without engagement reset the score; only the latest streak
    # of engagement (no gap of six months or more between consecutive engagements) counts.
    engaged = events.loc[events["event_type"].isin(ENGAGED_EVENTS), ["contact_id", "timestamp"]]
    engaged = engaged.sort_values(["contact_id", "timestamp"])
    previous = engaged.groupby("contact_id")["timestamp"].shift()
    starts_streak = previous.isna() | (previous + INACTIVE <= engaged["timestamp"])
    streaks = (
        engaged.assign(streak_start=engaged["timestamp"].where(starts_streak))
        .groupby("contact_id")
        .agg(last_engaged=("timestamp", "max"), streak_start=("streak_start", "max"))
    )
    active = streaks.loc[streaks["last_engaged"] + INACTIVE > as_of, "streak_start"]
    start = events["contact_id"].map(active)
    return events.loc[start.notna() & (events["timestamp"] >= start)]


def rule_points(events: pd.DataFrame, rule: Rule, as_of: pd.Timestamp) -> pd.Series:
    """Step 4: the rule's total per contact, after once / unique_by, decay and its cap."""
    matched = events.loc[events["event_type"] == rule.event]
    if rule.where is not None:
        matched = matched.loc[rule.where(matched)]
    if rule.once:
        kept = matched.groupby("contact_id")["timestamp"].min().reset_index()
    elif rule.unique_by:
        keys = ["contact_id", *rule.unique_by]
        kept = matched.groupby(keys, dropna=False)["timestamp"].min().reset_index()
    else:
        kept = matched[["contact_id", "timestamp"]]
    age_days = (as_of - kept["timestamp"]) / pd.Timedelta(days=1)
    earned = rule.points * 0.5 ** (age_days / HALF_LIFE_DAYS)
    total = earned.groupby(kept["contact_id"]).sum()
    if rule.cap is not None:
        total = total.clip(-rule.cap, rule.cap)
    return total.rename(rule.name)


def score(events_path: str, as_of: datetime) -> pd.DataFrame:
    """One row per contact with an event at or before `as_of`, sorted by `contact_id`.

    Columns: contact_id, score, n_open, n_click, n_purchase, last_engaged_at, recency_days,
    frequency, monetary (the RFM values are null for contacts who never bought).
    """
    at = pd.Timestamp(as_of)
    at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
    events = load(events_path, at)
    # Step 6: every contact with an event at or before as_of, machine events included.
    contacts = pd.Index(events["contact_id"].unique(), name="contact_id").sort_values()
    # Step 1: machine opens and bot clicks earn nothing and are not engagement.
    human = events.loc[~events["is_machine"]]

    counted = counted_events(human, at)
    totals = pd.concat([rule_points(counted, rule, at) for rule in RULES], axis=1)
    # Step 5: the sum over rules, clipped; contacts without points score 0.
    points = totals.sum(axis=1).clip(MIN_SCORE, MAX_SCORE)
    out = pd.DataFrame(index=contacts)
    out["score"] = points.reindex(contacts, fill_value=0.0)

    # Facts on human events: counts and the last engagement.
    counts = (
        human.loc[human["event_type"].isin(["open", "click", "purchase"])]
        .groupby(["contact_id", "event_type"], observed=True)
        .size()
        .unstack(fill_value=0)
        .reindex(index=contacts, columns=["open", "click", "purchase"], fill_value=0)
        .fillna(0)
        .astype("int64")
        .add_prefix("n_")
    )
    out = out.join(counts)
    engaged = human.loc[human["event_type"].isin(ENGAGED_EVENTS)]
    out["last_engaged_at"] = engaged.groupby("contact_id")["timestamp"].max()

    # RFM raw values, on every purchase at or before as_of (as engscore's RFM does).
    # A null amount counts as 0 (a groupby sum skips NaN).
    purchases = events.loc[events["event_type"] == "purchase"]
    rfm = purchases.groupby("contact_id").agg(
        last_purchase=("timestamp", "max"),
        frequency=("timestamp", "size"),
        monetary=("amount", "sum"),
    )
    out["recency_days"] = ((at - rfm["last_purchase"]) // pd.Timedelta(days=1)).astype("Int64")
    out["frequency"] = rfm["frequency"].astype("Int64")
    out["monetary"] = rfm["monetary"]
    return out.reset_index()[OUTPUT_COLUMNS]


def main() -> None:
    """Score a file and print the time taken (and optionally write the result)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events")
    parser.add_argument("--as-of", default="2026-11-01T00:00:00Z")
    parser.add_argument("-o", "--output", help="write the result to this Parquet file")
    args = parser.parse_args()
    as_of = datetime.fromisoformat(args.as_of.replace("Z", "+00:00")).astimezone(UTC)
    started = time.perf_counter()
    result = score(args.events, as_of)
    elapsed = time.perf_counter() - started
    print(f"{len(result):,} contacts in {elapsed:.1f} s")
    if args.output:
        result.to_parquet(args.output, index=False)


if __name__ == "__main__":
    main()
