"""The packaged default rules as one hand-written DuckDB query, to compare engscore with DuckDB.

    python benchmarks/compare_duckdb.py EVENTS.parquet [--as-of 2026-11-01T00:00:00Z]
                                        [--threads 2] [--repeat 1] [--against scores.parquet]

``score`` applies ``rules/default.yaml`` (SPEC section 3 and the README's "Rules files", with
``tests/reference.py`` as the yardstick) to a canonical events Parquet file, inside DuckDB, and
returns one row per contact with the score and the facts engscore also writes. The command
prints the wall time of each run and, with ``--against``, checks the result against an engscore
scores file (same contacts, scores within 1e-6, counts, last engagement and RFM raw values equal).

The rules are written out by hand, not translated from the YAML: this is what a competent
analyst would write in SQL for the same scheme, so the timing is a fair yardstick.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd

AS_OF = "2026-11-01T00:00:00Z"
OUTPUT_COLUMNS = (
    "contact_id",
    "score",
    "n_open",
    "n_click",
    "n_purchase",
    "last_engaged_at",
    "recency_days",
    "frequency",
    "monetary",
)
#: Scores may differ by float rounding only (engscore sums in fixed point).
SCORE_TOLERANCE = 1e-6

# rules/default.yaml, by hand; "Step" refers to SPEC section 3. CTEs are inlined (NOT
# MATERIALIZED) except the per-contact facts: re-reading the Parquet file with pushed-down
# filters is faster and far leaner than materialising 20M events.
_SQL = """
WITH
-- Step 1: events at or before as_of (machine events kept here: they still make a contact).
events AS NOT MATERIALIZED (
    SELECT contact_id, event_type, "timestamp" AS ts, campaign_id, url, amount, bounce_type,
           coalesce(is_machine, false) AS machine
    FROM {source}
    WHERE "timestamp" <= {as_of}
),
-- exclude_machine_opens: true
human AS NOT MATERIALIZED (
    SELECT * FROM events WHERE NOT machine
),
-- Step 6 and the facts engscore writes beside the score: one row per contact.
facts AS MATERIALIZED (
    SELECT contact_id,
           count(*) FILTER (WHERE NOT machine AND event_type = 'open') AS n_open,
           count(*) FILTER (WHERE NOT machine AND event_type = 'click') AS n_click,
           count(*) FILTER (WHERE NOT machine AND event_type = 'purchase') AS n_purchase,
           max(ts) FILTER (WHERE NOT machine AND event_type IN (
               'open', 'click', 'reply', 'page_view', 'form_submit', 'purchase'))
               AS last_engaged_at,
           -- RFM like engscore: every purchase event (the machine flag is not consulted) ...
           max(ts) FILTER (WHERE event_type = 'purchase') AS last_purchase,
           count(*) FILTER (WHERE event_type = 'purchase') AS purchases,
           -- ... and the same fixed-point sum (2**-40 units, ties to even): monetary is equal.
           sum(CASE WHEN event_type = 'purchase'
                    THEN round_even(coalesce(amount, 0) * 1099511627776.0, 0)::HUGEINT END)
               AS monetary_fixed
    FROM events
    GROUP BY contact_id
),
-- Step 2: reset.on_events [unsubscribe].
resets AS (
    SELECT contact_id, max(ts) AS reset_at
    FROM human
    WHERE event_type = 'unsubscribe'
    GROUP BY contact_id
),
-- Step 3: reset.after_inactive 6m. L, the latest engagement after the reset, is the latest
-- engagement overall when that is after the reset. DuckDB's month addition clamps to the
-- month's last day, like engscore; the 190-day bound only skips the calendar arithmetic.
active AS (
    SELECT f.contact_id, r.reset_at
    FROM facts f LEFT JOIN resets r USING (contact_id)
    WHERE f.last_engaged_at > coalesce(r.reset_at, '-infinity'::TIMESTAMPTZ)
      AND f.last_engaged_at > {as_of} - INTERVAL 190 DAY
      AND f.last_engaged_at + INTERVAL 6 MONTH > {as_of}
),
engaged AS (
    SELECT h.contact_id, h.ts, lag(h.ts) OVER (PARTITION BY h.contact_id ORDER BY h.ts) AS prev
    FROM human h JOIN active a USING (contact_id)
    WHERE h.event_type IN ('open', 'click', 'reply', 'page_view', 'form_submit', 'purchase')
      AND (a.reset_at IS NULL OR h.ts > a.reset_at)
),
-- S, the start of the latest streak: the latest engagement that follows a gap of 6 months or
-- more (six calendar months are at least 181 days: a cheap test first), or the first one.
streaks AS (
    SELECT contact_id, max(ts) AS streak_start
    FROM engaged
    WHERE prev IS NULL
       OR (epoch_us(ts) - epoch_us(prev) >= 181 * 86400000000
           AND prev + INTERVAL 6 MONTH <= ts)
    GROUP BY contact_id
),
-- Step 4: the rule each counted event matches (no event matches two rules here), its
-- unique_by key and its decay factor (half-life 90 days, age in fractional days).
counted AS (
    SELECT h.contact_id,
           CASE
               WHEN event_type = 'open' THEN 'opened'
               WHEN event_type = 'click' THEN 'clicked'
               WHEN event_type = 'reply' THEN 'replied'
               WHEN event_type = 'page_view'
                    AND (url LIKE '%/pricing%' OR url LIKE '%/demo%' OR url LIKE '%/contact%')
                    THEN 'key_page_visit'
               WHEN event_type = 'page_view' THEN 'page_visit'
               WHEN event_type = 'form_submit' THEN 'form_submitted'
               WHEN event_type = 'purchase' THEN 'purchased'
               WHEN event_type = 'bounce' AND bounce_type = 'hard' THEN 'hard_bounced'
               WHEN event_type = 'bounce' THEN 'soft_bounced'
               ELSE 'complained'
           END AS rule,
           -- unique_by: opened [campaign_id], clicked [campaign_id, url], key_page_visit [url]
           CASE WHEN event_type IN ('open', 'click') THEN campaign_id
                WHEN event_type = 'page_view' THEN url END AS key1,
           CASE WHEN event_type = 'click' THEN url END AS key2,
           0.5 ** (({as_of_us} - epoch_us(h.ts)) / 86400e6 / 90.0) AS decay
    FROM human h JOIN streaks s USING (contact_id)
    WHERE h.ts >= s.streak_start
      AND h.event_type IN ('open', 'click', 'reply', 'page_view', 'form_submit', 'purchase',
                           'bounce', 'complaint')
),
-- once / unique_by keep the earliest match per key (GROUP BY makes NULL one value): its
-- decay is the smallest. Other rules count every match.
per_key AS (
    SELECT contact_id, rule,
           CASE WHEN rule IN ('opened', 'clicked', 'key_page_visit', 'hard_bounced',
                              'complained')
                THEN min(decay) ELSE sum(decay) END AS decay
    FROM counted
    GROUP BY contact_id, rule,
             CASE WHEN rule IN ('opened', 'clicked', 'key_page_visit') THEN key1 END,
             CASE WHEN rule IN ('opened', 'clicked', 'key_page_visit') THEN key2 END
),
per_rule AS (
    SELECT contact_id, rule,
           sum(decay) * CASE rule
               WHEN 'opened' THEN 10 WHEN 'clicked' THEN 20 WHEN 'replied' THEN 30
               WHEN 'key_page_visit' THEN 50 WHEN 'page_visit' THEN 2
               WHEN 'form_submitted' THEN 40 WHEN 'purchased' THEN 50
               WHEN 'hard_bounced' THEN -50 WHEN 'soft_bounced' THEN -5
               WHEN 'complained' THEN -100 END AS points
    FROM per_key
    GROUP BY contact_id, rule
),
-- cap: 20 on page_visit and soft_bounced; step 5 sums the rules.
points AS (
    SELECT contact_id,
           sum(CASE WHEN rule IN ('page_visit', 'soft_bounced')
                    THEN least(20, greatest(-20, points)) ELSE points END) AS points
    FROM per_rule
    GROUP BY contact_id
)
-- Step 5: clamp to [min_score, max_score]; contacts without points score 0.
SELECT f.contact_id,
       least(500.0, greatest(-100.0, coalesce(p.points, 0.0))) AS score,
       f.n_open,
       f.n_click,
       f.n_purchase,
       f.last_engaged_at,
       ({as_of_us} - epoch_us(f.last_purchase)) // 86400000000 AS recency_days,
       CASE WHEN f.last_purchase IS NOT NULL THEN f.purchases END AS frequency,
       f.monetary_fixed::DOUBLE / 1099511627776.0 AS monetary
FROM facts f LEFT JOIN points p USING (contact_id)
ORDER BY f.contact_id
"""


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


#: A raw export as engscore's ingest makes it canonical: e-mail ids trimmed and lower-cased,
#: duplicates dropped (a webhook's retries and exact copies: on the benchmark's raw data the
#: copies of an event id are identical rows, so DISTINCT over every column is the same as
#: engscore's "first row per contact and event id, else exact duplicates").
#: A CSV twin (`.csv`) is read with DuckDB's type detection, the timestamp cast to an instant.
RAW_SOURCE = """(
    SELECT DISTINCT lower(trim(contact_id)) AS contact_id, event_type,
           CAST("timestamp" AS TIMESTAMPTZ) AS "timestamp", event_id,
           campaign_id, url, CAST(amount AS DOUBLE) AS amount, bounce_type, is_machine
    FROM {reader}
)"""


def query(events_path: str, as_of: datetime, raw: bool = False) -> str:
    """The SQL of ``score`` for one events file and ``as_of`` (an aware datetime); ``raw``: the
    file is a raw export (``RAW_SOURCE``), not an ``engscore ingest`` output."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    as_of_utc = as_of.astimezone(UTC)
    # Whole microseconds as an integer: total_seconds() would round large values.
    delta = as_of_utc - datetime(1970, 1, 1, tzinfo=UTC)
    as_of_us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    literal = f"TIMESTAMPTZ {_sql_string(as_of_utc.isoformat())}"
    path = _sql_string(events_path)
    reader = f"read_csv({path})" if events_path.endswith(".csv") else f"read_parquet({path})"
    source = RAW_SOURCE.format(reader=reader) if raw else reader
    return _SQL.format(source=source, as_of=literal, as_of_us=as_of_us)


def score(events_path: str, as_of: datetime, threads: int = 2, raw: bool = False) -> pd.DataFrame:
    """Scores and facts per contact under the default rules, computed by DuckDB.

    Columns ``OUTPUT_COLUMNS``, one row per contact with an event at or before ``as_of``,
    sorted by ``contact_id``. RFM columns are null for contacts without a purchase.
    """
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET threads = {int(threads)}")
        con.execute("SET preserve_insertion_order = false")
        con.execute("SET enable_progress_bar = false")
        frame: pd.DataFrame = con.sql(query(events_path, as_of, raw)).df()
    finally:
        con.close()
    return frame


def compare(ours: pd.DataFrame, scores_path: str) -> list[str]:
    """Differences between ``ours`` and an engscore scores file (empty when they agree)."""
    import polars as pl

    theirs = pl.read_parquet(scores_path, columns=list(OUTPUT_COLUMNS))
    counts = ("n_open", "n_click", "n_purchase", "recency_days", "frequency")
    mine = pl.from_pandas(ours).with_columns(
        pl.col("last_engaged_at").cast(pl.Datetime("us", "UTC")),
        *(pl.col(c).cast(pl.Int64) for c in counts),
    )
    problems: list[str] = []
    only_theirs = theirs.join(mine, on="contact_id", how="anti").height
    only_mine = mine.join(theirs, on="contact_id", how="anti").height
    if only_theirs or only_mine:
        problems.append(f"contacts: {only_theirs} only in engscore, {only_mine} only in DuckDB")
    both = theirs.join(mine, on="contact_id", how="inner", suffix="_duckdb")
    far = both.filter((pl.col("score") - pl.col("score_duckdb")).abs() > SCORE_TOLERANCE)
    if far.height:
        problems.append(f"score: {far.height} contacts differ by more than {SCORE_TOLERANCE}")
    for column in OUTPUT_COLUMNS[2:]:
        differ = both.filter(~pl.col(column).eq_missing(pl.col(f"{column}_duckdb"))).height
        if differ:
            problems.append(f"{column}: {differ} contacts differ")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Time ``score`` on a file and optionally check it against engscore's output."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("events")
    parser.add_argument("--as-of", default=AS_OF)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--against", help="an engscore scores.parquet to compare with")
    parser.add_argument("--raw", action="store_true", help="EVENTS is a raw export")
    args = parser.parse_args(argv)
    as_of = datetime.fromisoformat(args.as_of.replace("Z", "+00:00"))
    times: list[float] = []
    result: Any = None
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = score(args.events, as_of, args.threads, args.raw)
        times.append(time.perf_counter() - start)
        print(f"  run: {times[-1]:.2f} s ({len(result):,} contacts)", flush=True)
    median = statistics.median(times)
    print(f"DuckDB {duckdb.__version__}, {args.threads} threads: median {median:.2f} s")
    if args.against:
        problems = compare(result, args.against)
        for problem in problems:
            print(f"MISMATCH {problem}")
        if problems:
            return 1
        print(f"agrees with {args.against}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
