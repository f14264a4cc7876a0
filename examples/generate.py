"""Generate realistic, seeded e-mail engagement data in the canonical event schema.

    python examples/generate.py OUTDIR [--events N] [--contacts M] [--seed S]
                                [--start 2024-01-01] [--end 2026-10-31] [--format parquet|csv]

Writes ``events.parquet`` (or ``.csv``), ``contacts.csv`` and ``raw_export.csv`` (a small, messy
generic export with a few bad rows) to OUTDIR. Contacts follow personas (see examples/README.md)
so scores, statuses and segments have something to find. Everything is vectorised with numpy and
written block by block, so 100M events need only one block's memory. The same arguments always
give byte-identical files.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

PERSONAS = (
    "champion",
    "regular",
    "newsletter",
    "sleeper",
    "seasonal",
    "privacy",
    "never_engaged",
)
#: Share of contacts per persona (same order as PERSONAS).
PERSONA_SHARES = np.array([0.05, 0.20, 0.22, 0.18, 0.07, 0.13, 0.15])
#: Per-persona probabilities: a delivered mail is opened (by a person), an open leads to a
#: click, a click to a purchase; and a relative mailing/activity weight.
OPEN_P = np.array([0.75, 0.40, 0.35, 0.45, 0.30, 0.10, 0.0])
CLICK_P = np.array([0.45, 0.20, 0.05, 0.20, 0.25, 0.30, 0.0])
BUY_P = np.array([0.25, 0.08, 0.0, 0.06, 0.02, 0.05, 0.0])
ACTIVITY = np.array([3.0, 1.5, 1.0, 1.2, 0.8, 1.0, 0.6])

FIRST_NAMES = (
    "anna", "ben", "chloe", "david", "emma", "felix", "grace", "hugo", "ines", "jonas", "kim",
    "leo", "maria", "noah", "olga", "paul", "quinn", "rosa", "sam", "tara", "umar", "vera",
)  # fmt: skip
LAST_NAMES = (
    "martin", "schmidt", "garcia", "rossi", "dubois", "smith", "jansen", "nowak", "silva",
    "berg", "kowalski", "moreau", "fischer", "lopez", "brown", "novak",
)  # fmt: skip
DOMAINS = ("example.com", "mail.example.org", "example.net", "corp.example.com")
COUNTRIES = ("DE", "FR", "GB", "US", "ES", "IT", "NL", "PL")
JOB_TITLES = (
    "Marketing Manager", "Head of Growth", "CRM Specialist", "Student", "Engineer",
    "Sales Director", "Founder", "Analyst", "Designer", "Teacher",
)  # fmt: skip
SOURCES = ("website", "checkout", "webinar", "import", "referral")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
URLS = (
    "https://shop.example.com/",
    "https://shop.example.com/pricing",
    "https://shop.example.com/products/boots",
    "https://shop.example.com/products/jacket",
    "https://shop.example.com/demo",
    "https://blog.example.com/how-to-layer",
)
HUMAN_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Version/17.4",
)
#: Apple Mail Privacy Protection fetches images with this bare user agent.
PROXY_AGENT = "Mozilla/5.0"
#: Deliveries per contact block; bounds memory (~a few hundred MB per block).
BLOCK_EVENTS = 2_000_000
#: Expected events generated per delivery (send + delivered + reactions), to size the run.
EVENTS_PER_DELIVERY = 2.6
US_PER_DAY = 86_400 * 1_000_000


@dataclass(frozen=True)
class Plan:
    """What to generate."""

    events: int
    contacts: int
    seed: int
    start: datetime
    end: datetime

    @property
    def start_us(self) -> int:
        """Start as epoch microseconds."""
        return int(self.start.timestamp() * 1_000_000)

    @property
    def end_us(self) -> int:
        """End as epoch microseconds."""
        return int(self.end.timestamp() * 1_000_000)


def contact_table(plan: Plan) -> pl.DataFrame:
    """One row per contact: id, persona, signup, mailing stop and the attribute columns."""
    rng = np.random.default_rng([plan.seed, 0])
    n = plan.contacts
    persona = rng.choice(len(PERSONAS), size=n, p=PERSONA_SHARES / PERSONA_SHARES.sum())
    span = plan.end_us - plan.start_us
    signup = plan.start_us + (rng.random(n) ** 2 * span * 0.6).astype(np.int64)
    # Sleepers stop engaging somewhere between 3 and 20 months before the end.
    sleep_at = plan.end_us - rng.integers(90, 600, n) * US_PER_DAY
    # Exits: unsubscribe, complaint or hard bounce end the mailing at a random point.
    exit_kind = rng.choice(4, size=n, p=[0.95, 0.03, 0.005, 0.015])
    exit_at = signup + (rng.random(n) * (plan.end_us - signup)).astype(np.int64)
    weight = rng.lognormal(0.0, 0.8, n) * ACTIVITY[persona]
    first = np.array(FIRST_NAMES)[rng.integers(0, len(FIRST_NAMES), n)]
    last = np.array(LAST_NAMES)[rng.integers(0, len(LAST_NAMES), n)]
    domain = np.array(DOMAINS)[rng.integers(0, len(DOMAINS), n)]
    index = np.arange(n)
    return pl.DataFrame(
        {
            "contact_id": pl.Series(first)
            + "."
            + pl.Series(last)
            + pl.Series(index).cast(pl.String)
            + "@"
            + pl.Series(domain),
            "persona": pl.Series(np.array(PERSONAS)[persona]),
            "persona_idx": persona,
            "signup_us": signup,
            "sleep_us": np.where(np.array(PERSONAS)[persona] == "sleeper", sleep_at, plan.end_us),
            "exit_kind": exit_kind,
            "exit_us": np.where(exit_kind > 0, exit_at, plan.end_us),
            "weight": weight,
            "first_name": first,
            "country": np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), n)],
            "job_title": np.array(JOB_TITLES)[rng.integers(0, len(JOB_TITLES), n)],
            "company_size": np.array(["1-10", "11-50", "51-200", "201-1000", "1000+"])[
                rng.integers(0, 5, n)
            ],
            "source": np.array(SOURCES)[rng.integers(0, len(SOURCES), n)],
            "age_band": np.array(AGE_BANDS)[rng.integers(0, len(AGE_BANDS), n)],
            "gender": np.array(["f", "m", "x"])[rng.choice(3, size=n, p=[0.49, 0.48, 0.03])],
        }
    )


def _campaign_times(plan: Plan) -> np.ndarray:
    """A campaign every 3 days at 09:00 UTC."""
    first = plan.start_us + 9 * 3_600_000_000
    return np.arange(first, plan.end_us, 3 * US_PER_DAY, dtype=np.int64)


def block_events(plan: Plan, contacts: pl.DataFrame, block: int, deliveries: int) -> pl.DataFrame:
    """The events of one block of contacts, sorted by contact and time."""
    rng = np.random.default_rng([plan.seed, 1, block])
    n = contacts.height
    weight = contacts["weight"].to_numpy()
    persona = contacts["persona_idx"].to_numpy()
    signup = contacts["signup_us"].to_numpy()
    exit_us = contacts["exit_us"].to_numpy()
    sleep_us = contacts["sleep_us"].to_numpy()
    campaigns = _campaign_times(plan)

    # Deliveries: contacts by activity weight, a campaign inside the contact's mailing window.
    who = rng.choice(n, size=deliveries, p=weight / weight.sum())
    lo = np.searchsorted(campaigns, signup[who])
    hi = np.searchsorted(campaigns, exit_us[who])
    ok = hi > lo
    who, lo, hi = who[ok], lo[ok], hi[ok]
    which = lo + (rng.random(who.size) * (hi - lo)).astype(np.int64)
    sent = campaigns[which] + rng.integers(0, 600, who.size) * 1_000_000
    delivered = sent + rng.integers(1, 30, who.size) * 1_000_000
    campaign = which

    def frame(
        kind: str, idx: np.ndarray, ts: np.ndarray, k: np.ndarray | None = None, **extra: object
    ) -> pl.DataFrame:
        columns: dict[str, object] = {
            "c": idx,
            "event_type": np.full(idx.size, kind),
            "ts": ts,
            "k": np.full(idx.size, -1) if k is None else k,
        }
        columns.update(extra)
        return pl.DataFrame(columns)

    parts = [frame("send", who, sent, campaign)]
    soft = rng.random(who.size) < 0.01
    parts.append(frame("delivered", who[~soft], delivered[~soft], campaign[~soft]))
    parts.append(
        frame(
            "bounce", who[soft], delivered[soft], campaign[soft], bounce=np.full(soft.sum(), "soft")
        )
    )

    d_who, d_ts, d_k = who[~soft], delivered[~soft], campaign[~soft]
    p = persona[d_who]
    engaged_until = sleep_us[d_who]
    # Privacy-protected contacts: the proxy "opens" every mail seconds after delivery.
    proxy = np.equal(p, PERSONAS.index("privacy"))
    parts.append(
        frame(
            "open",
            d_who[proxy],
            d_ts[proxy] + rng.integers(0, 2_000_000, proxy.sum()),
            d_k[proxy],
            machine=np.ones(proxy.sum(), dtype=bool),
            agent=np.full(proxy.sum(), PROXY_AGENT),
        )
    )
    opened = (rng.random(d_who.size) < OPEN_P[p]) & (d_ts < engaged_until)
    open_ts = d_ts + (rng.lognormal(8.5, 1.6, d_who.size) * 1_000_000).astype(np.int64)
    o_who, o_ts, o_k, o_p = d_who[opened], open_ts[opened], d_k[opened], p[opened]
    agents = np.array(HUMAN_AGENTS)[rng.integers(0, len(HUMAN_AGENTS), o_who.size)]
    parts.append(frame("open", o_who, o_ts, o_k, agent=agents))

    clicked = rng.random(o_who.size) < CLICK_P[o_p]
    c_who, c_k, c_p = o_who[clicked], o_k[clicked], o_p[clicked]
    c_ts = o_ts[clicked] + rng.integers(5, 600, c_who.size) * 1_000_000
    c_url = np.array(URLS)[rng.integers(0, len(URLS), c_who.size)]
    parts.append(frame("click", c_who, c_ts, c_k, url=c_url, agent=agents[clicked]))
    viewed = rng.random(c_who.size) < 0.6
    parts.append(frame("page_view", c_who[viewed], c_ts[viewed] + 3_000_000, url=c_url[viewed]))
    forms = rng.random(c_who.size) < 0.05
    parts.append(frame("form_submit", c_who[forms], c_ts[forms] + 60_000_000))
    replied = rng.random(o_who.size) < 0.01
    parts.append(frame("reply", o_who[replied], o_ts[replied] + 1_800_000_000, o_k[replied]))
    bought = rng.random(c_who.size) < BUY_P[c_p]
    amounts = np.round(rng.lognormal(3.8, 0.7, bought.sum()), 2)
    parts.append(frame("purchase", c_who[bought], c_ts[bought] + 900_000_000, amount=amounts))

    # Seasonal buyers buy in November or December, most years, whatever they open.
    seasonal = np.flatnonzero(persona == PERSONAS.index("seasonal"))
    years = range(plan.start.year, plan.end.year + 1)
    for year in years:
        season = datetime(year, 11, 10, tzinfo=UTC).timestamp() * 1_000_000
        buys = seasonal[rng.random(seasonal.size) < 0.7]
        ts = (season + rng.random(buys.size) * 45 * US_PER_DAY).astype(np.int64)
        keep = (ts < plan.end_us) & (ts > signup[buys]) & (ts < exit_us[buys])
        parts.append(
            frame(
                "purchase",
                buys[keep],
                ts[keep],
                amount=np.round(rng.lognormal(4.3, 0.5, keep.sum()), 2),
            )
        )

    # Exits: the event that ended the mailing.
    exits = np.flatnonzero(contacts["exit_kind"].to_numpy() > 0)
    kinds = np.array(["", "unsubscribe", "complaint", "bounce"])[
        contacts["exit_kind"].to_numpy()[exits]
    ]
    for kind in ("unsubscribe", "complaint"):
        idx = exits[kinds == kind]
        parts.append(frame(kind, idx, exit_us[idx]))
    idx = exits[kinds == "bounce"]
    parts.append(frame("bounce", idx, exit_us[idx], bounce=np.full(idx.size, "hard")))

    events = pl.concat(parts, how="diagonal_relaxed").filter(
        (pl.col("ts") < plan.end_us) & (pl.col("ts") >= plan.start_us)
    )
    ids = contacts["contact_id"]
    names = pl.Series(campaigns).cast(pl.Datetime("us")).dt.strftime("cmp-%Y-%m-%d")
    return (
        events.with_columns(
            contact_id=ids.gather(events["c"]),
            campaign_id=names.gather(events["k"].clip(0)),
        )
        .sort("contact_id", "ts", "event_type")
        .select(
            "contact_id",
            "event_type",
            pl.col("ts").cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias("timestamp"),
            pl.lit(None, dtype=pl.String).alias("event_id"),
            pl.when(pl.col("k") >= 0).then(pl.col("campaign_id")).alias("campaign_id"),
            pl.col("url").cast(pl.String) if "url" in events.columns else pl.lit(None, pl.String),
            pl.col("amount").cast(pl.Float64)
            if "amount" in events.columns
            else pl.lit(None, pl.Float64),
            pl.col("machine").fill_null(False).alias("is_machine")
            if "machine" in events.columns
            else pl.lit(False).alias("is_machine"),
            pl.col("bounce").cast(pl.String).alias("bounce_type")
            if "bounce" in events.columns
            else pl.lit(None, pl.String).alias("bounce_type"),
            pl.col("agent").cast(pl.String).alias("user_agent")
            if "agent" in events.columns
            else pl.lit(None, pl.String).alias("user_agent"),
        )
    )


def generate(plan: Plan, outdir: Path, fmt: str = "parquet") -> Path:
    """Write events, contacts and the messy raw export to ``outdir``; return the events path."""
    outdir.mkdir(parents=True, exist_ok=True)
    contacts = contact_table(plan)
    contacts.select(
        pl.col("contact_id").alias("email"),
        "first_name",
        "country",
        "job_title",
        "company_size",
        "source",
        pl.from_epoch("signup_us", time_unit="us").dt.date().alias("signup_date"),
        "age_band",
        "gender",
    ).write_csv(outdir / "contacts.csv")

    deliveries = max(1, int(plan.events / EVENTS_PER_DELIVERY))
    blocks = max(1, -(-deliveries * 3 // BLOCK_EVENTS))
    bounds = np.linspace(0, plan.contacts, blocks + 1).astype(int)
    path = outdir / f"events.{fmt}"
    writer: pq.ParquetWriter | None = None
    first_block: pl.DataFrame | None = None
    offset = 0
    with path.open("wb") as handle:
        for block in range(blocks):
            members = contacts.slice(bounds[block], bounds[block + 1] - bounds[block])
            share = float(members["weight"].sum()) / float(contacts["weight"].sum())
            events = block_events(plan, members, block, max(1, round(deliveries * share)))
            events = events.with_columns(
                event_id=pl.format("ev{}", pl.int_range(offset, offset + events.height))
            )
            offset += events.height
            if first_block is None:
                first_block = events
            if fmt == "parquet":
                table = events.to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(handle, table.schema, compression="zstd")
                writer.write_table(table, row_group_size=1_000_000)
            else:
                events.write_csv(
                    handle, include_header=block == 0, datetime_format="%Y-%m-%dT%H:%M:%S%.6fZ"
                )
        if writer is not None:
            writer.close()
    assert first_block is not None
    raw_export(first_block, plan.seed).write_csv(outdir / "raw_export.csv")
    return path


#: The bad rows raw_export.csv carries, by reason (tests check them).
RAW_BAD_ROWS = {"unparseable timestamp": 2, "missing contact_id": 1, "missing event_type": 1}


def raw_export(events: pl.DataFrame, seed: int, rows: int = 3000) -> pl.DataFrame:
    """A messy generic CSV export: odd e-mail case and spaces, mixed timestamp notations
    (all with a zone), duplicates, and the bad rows of RAW_BAD_ROWS."""
    rng = np.random.default_rng([seed, 2])
    sample = events.head(rows)
    n = sample.height
    style = rng.integers(0, 4, n)
    iso = sample["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    offset = (sample["timestamp"].dt.convert_time_zone("Europe/Paris")).dt.strftime(
        "%Y-%m-%d %H:%M:%S%:z"
    )
    seven = sample["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "7Z"
    epoch = (sample["timestamp"].dt.epoch("s")).cast(pl.String)
    stamp = pl.select(
        pl.when(pl.lit(style) == 0)
        .then(pl.lit(iso))
        .when(pl.lit(style) == 1)
        .then(pl.lit(offset))
        .when(pl.lit(style) == 2)
        .then(pl.lit(seven))
        .otherwise(pl.lit(epoch))
    ).to_series()
    contact = sample["contact_id"]
    upper = rng.random(n) < 0.3
    messy = pl.select(
        pl.when(pl.lit(upper))
        .then(pl.lit("  ") + contact.str.to_uppercase() + pl.lit(" "))
        .otherwise(contact)
    ).to_series()
    frame = sample.with_columns(timestamp=stamp, contact_id=messy).select(
        "contact_id", "event_type", "timestamp", "event_id", "campaign_id", "url", "amount",
        "is_machine", "user_agent",
    )  # fmt: skip
    # Exact duplicate rows and re-sent event ids, as overlapping exports produce.
    duplicates = frame.slice(10, 20)
    bad = pl.DataFrame(
        {
            "contact_id": ["bad.row1@example.com", "bad.row2@example.com", None, "x@example.com"],
            "event_type": ["open", "click", "open", None],
            "timestamp": [
                "not-a-date",
                "2025-13-45T99:00:00Z",
                "2025-01-01T00:00:00Z",
                "2025-01-01T00:00:00Z",
            ],  # fmt: skip
        }
    )
    messy_frame = pl.concat([frame, duplicates, bad], how="diagonal_relaxed")
    return messy_frame.with_columns(pl.col("is_machine").cast(pl.String).str.to_lowercase())


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--events", type=int, default=200_000, help="about this many events")
    parser.add_argument("--contacts", type=int, default=None, help="default: events / 40")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 10, 31))
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    args = parser.parse_args(argv)
    plan = Plan(
        events=args.events,
        contacts=args.contacts or max(10, args.events // 40),
        seed=args.seed,
        start=datetime.combine(args.start, datetime.min.time(), UTC),
        end=datetime.combine(args.end, datetime.min.time(), UTC),
    )
    path = generate(plan, args.outdir, args.format)
    rows = pq.read_metadata(path).num_rows if args.format == "parquet" else None
    print(f"wrote {path} ({rows or 'see file'} events), contacts.csv and raw_export.csv")


if __name__ == "__main__":
    main()
