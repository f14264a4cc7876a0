"""Raw exports for the benchmarks: what a user brings, not what `engscore ingest` writes.

    python benchmarks/raw_exports.py [--events 20000000] [--seed 3]

Written by numpy, independently of `examples/generate.py` (whose shapes the engine was tuned
on), into `benchmarks/data/raw-<events>/` (cached):

- `export.parquet`: canonical columns as a warehouse or another tool exports them: contacts in
  random order (every row group holds every kind of contact), row groups of 1M rows,
  millisecond UTC timestamps, `is_machine` present, about 0.5% webhook retries (the same
  `event_id` twice) and 0.2% exact duplicate rows without an id;
- `export.csv`: its CSV twin (ISO 8601 timestamps), the same rows;
- `sendgrid.csv`: the same events as a SendGrid Event Webhook CSV (`email` in mixed case,
  `timestamp` in epoch seconds, `event` names, `sg_event_id`, `sg_machine_open`, `type`,
  `marketing_campaign_id`), for `engscore ingest --preset sendgrid`.

The mix: a skewed engagement (a fifth of the contacts make most opens and clicks), sends and
deliveries for every campaign a contact is on, opens (a third machine opens), clicks,
purchases with amounts, soft and hard bounces, unsubscribes, complaints, page views, form
submits and replies, over the two years before 2026-11-01 and a few events after it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
ROW_GROUP = 1_000_000
END_MS = 1_793_491_200_000  # 2026-11-01T00:00:00Z
SPAN_MS = 2 * 365 * 86_400_000

#: (canonical type, SendGrid event name, share of events).
MIX = (
    ("send", "processed", 0.36),
    ("delivered", "delivered", 0.34),
    ("open", "open", 0.16),
    ("click", "click", 0.05),
    ("bounce", "bounce", 0.02),
    ("unsubscribe", "unsubscribe", 0.004),
    ("complaint", "spamreport", 0.0006),
    ("purchase", None, 0.012),
    ("page_view", None, 0.04),
    ("form_submit", None, 0.008),
    ("reply", None, 0.0054),
)
DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "example.org", "acme.io")


def folder_for(events: int) -> Path:
    """Where the raw exports of this size are cached."""
    return DATA / f"raw-{events}"


def _contacts(rng: np.random.Generator, count: int) -> pl.Series:
    first = rng.integers(0, 2_000, count)
    domain = rng.integers(0, len(DOMAINS), count)
    ids = pl.DataFrame({"n": np.arange(count), "f": first, "d": domain}).select(
        pl.format(
            "user{}.{}@{}",
            pl.col("f"),
            pl.col("n"),
            pl.col("d").replace_strict(list(range(len(DOMAINS))), list(DOMAINS)),
        )
    )
    return ids.to_series().alias("contact_id")


def events_frame(events: int, seed: int) -> pl.DataFrame:
    """The canonical events, in random order (duplicates included)."""
    rng = np.random.default_rng(seed)
    contacts = max(10, events // 23)
    ids = _contacts(rng, contacts)
    # Engagement weights: lognormal, so a minority of contacts make most of the events.
    weight = rng.lognormal(0.0, 1.2, contacts)
    weight /= weight.sum()
    who = rng.choice(contacts, size=events, p=weight)
    shares = np.array([share for _, _, share in MIX])
    kind = rng.choice(len(MIX), size=events, p=shares / shares.sum())
    types = [t for t, _, _ in MIX]
    # A few events (1%) after the as-of instant, the rest over the two years before it.
    stamp = END_MS - rng.integers(0, SPAN_MS, events)
    stamp[rng.random(events) < 0.01] += 5 * 86_400_000
    campaign = rng.integers(0, 400, events)
    mail = kind < 7  # sends .. complaints carry a campaign
    frame = pl.DataFrame(
        {
            "contact_id": ids.gather(who),
            "event_type": pl.Series(types).gather(kind),
            "timestamp": pl.Series(stamp, dtype=pl.Int64),
            "event_id": pl.Series(
                [f"{x:016x}" for x in rng.integers(0, 2**62, events)], dtype=pl.String
            ),
            "campaign_id": pl.Series(campaign).cast(pl.String),
            "url": pl.Series(rng.integers(0, 50, events)).cast(pl.String),
            "amount": np.round(rng.gamma(2.0, 30.0, events), 2),
            "is_machine": rng.random(events) < 0.33,
            "bounce_type": np.where(rng.random(events) < 0.3, "hard", "soft"),
        }
    ).with_columns(
        pl.col("timestamp").cast(pl.Datetime("ms", "UTC")),
        pl.when(pl.lit(mail)).then(pl.format("cmp-{}", "campaign_id")).alias("campaign_id"),
        pl.when(pl.col("event_type") == "click")
        .then(pl.format("https://shop.example/p/{}", "url"))
        .when(pl.col("event_type") == "page_view")
        .then(pl.format("https://shop.example/pricing/{}", "url"))
        .alias("url"),
        pl.when(pl.col("event_type") == "purchase").then("amount").alias("amount"),
        (pl.col("is_machine") & (pl.col("event_type") == "open")).alias("is_machine"),
        pl.when(pl.col("event_type") == "bounce").then("bounce_type").alias("bounce_type"),
        # Site events have no provider event id.
        pl.when(pl.lit(mail)).then("event_id").alias("event_id"),
    )
    retries = frame.filter(pl.col("event_id").is_not_null()).sample(fraction=0.005, seed=seed + 1)
    exact = frame.filter(pl.col("event_id").is_null()).sample(fraction=0.02, seed=seed + 2)
    both = pl.concat([frame, retries, exact])
    return both.sample(fraction=1.0, shuffle=True, seed=seed + 3)


def sendgrid_csv(frame: pl.DataFrame) -> pl.DataFrame:
    """The mail events as a SendGrid Event Webhook CSV."""
    names = {t: name for t, name, _ in MIX if name is not None}
    mail = frame.filter(pl.col("event_type").is_in(list(names)))
    # Mixed case, as people type addresses into sign-up forms.
    upper = pl.col("contact_id").hash(seed=5) % 4 == 0
    return mail.select(
        email=pl.when(upper)
        .then(pl.col("contact_id").str.to_titlecase())
        .otherwise(pl.col("contact_id")),
        timestamp=pl.col("timestamp").dt.epoch("s"),
        event=pl.col("event_type").replace_strict(names),
        sg_event_id=pl.col("event_id"),
        sg_message_id=pl.format("msg-{}", pl.col("campaign_id")),
        url=pl.col("url"),
        type=pl.when(pl.col("bounce_type").is_not_null()).then(pl.lit("bounce")),
        bounce_classification=pl.col("bounce_type"),
        sg_machine_open=pl.col("is_machine"),
        marketing_campaign_id=pl.col("campaign_id"),
    )


def raw_exports(events: int, seed: int = 3) -> Path:
    """Write (once) and return the folder of raw exports for ``events`` events."""
    folder = folder_for(events)
    done = folder / "sendgrid.csv"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    print(f"writing raw exports of {events:,} events into {folder} ...", flush=True)
    frame = events_frame(events, seed)
    frame.write_parquet(folder / "export.parquet", row_group_size=ROW_GROUP)
    frame.write_csv(folder / "export.csv")
    sendgrid_csv(frame).write_csv(folder / "sendgrid.tmp")
    (folder / "sendgrid.tmp").rename(done)
    return folder


def main() -> None:
    """Write the raw exports and say where they are."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    print(raw_exports(args.events, args.seed))


if __name__ == "__main__":
    main()
