"""`engscore ingest`'s work as hand-written DuckDB SQL: normalise, de-duplicate, sort, write.

    python benchmarks/ingest_duckdb.py KIND INPUT OUTPUT.parquet [--threads 2]

KIND is `parquet` (a raw export in canonical columns), `csv` (its CSV twin, ISO 8601
timestamps) or `sendgrid` (a SendGrid Event Webhook CSV: e-mails in mixed case, epoch
seconds, SendGrid's event names). Each is one `COPY (SELECT DISTINCT ... ORDER BY contact_id,
timestamp, event_type) TO ... (FORMAT parquet)`: what an analyst would write to get the rows
engscore's ingest writes (see `compare_duckdb.RAW_SOURCE` on DISTINCT and duplicates). It
prints the rows written.
"""

from __future__ import annotations

import argparse

import duckdb

CANONICAL = """
    SELECT DISTINCT lower(trim(contact_id)) AS contact_id, event_type,
           CAST("timestamp" AS TIMESTAMPTZ) AS "timestamp", event_id, campaign_id, url,
           CAST(amount AS DOUBLE) AS amount, bounce_type, coalesce(is_machine, false) AS is_machine
    FROM {reader}
"""

SENDGRID = """
    SELECT DISTINCT lower(trim(email)) AS contact_id,
           CASE event WHEN 'processed' THEN 'send' WHEN 'spamreport' THEN 'complaint'
                      WHEN 'group_unsubscribe' THEN 'unsubscribe' ELSE event END AS event_type,
           to_timestamp("timestamp") AS "timestamp", sg_event_id AS event_id,
           coalesce(marketing_campaign_id, sg_message_id) AS campaign_id, url,
           CAST(NULL AS DOUBLE) AS amount,
           CASE WHEN event = 'bounce' THEN CASE type WHEN 'blocked' THEN 'soft' ELSE 'hard' END
           END AS bounce_type,
           coalesce(sg_machine_open, false) AS is_machine
    FROM read_csv({path})
"""


def ingest_sql(kind: str, source: str, output: str) -> str:
    """The COPY statement for ``kind`` (``parquet``, ``csv`` or ``sendgrid``)."""
    path = "'" + source.replace("'", "''") + "'"
    if kind == "parquet":
        select = CANONICAL.format(reader=f"read_parquet({path})")
    elif kind == "csv":
        select = CANONICAL.format(reader=f"read_csv({path})")
    elif kind == "sendgrid":
        select = SENDGRID.format(path=path)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    target = "'" + output.replace("'", "''") + "'"
    return (
        f'COPY ({select} ORDER BY contact_id, "timestamp", event_type) '
        f"TO {target} (FORMAT parquet, COMPRESSION zstd)"
    )


def ingest(kind: str, source: str, output: str, threads: int = 2) -> int:
    """Run the COPY; the number of rows written."""
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET threads = {int(threads)}")
        con.execute("SET enable_progress_bar = false")
        con.execute(ingest_sql(kind, source, output))
        rows = con.execute(f"SELECT count(*) FROM read_parquet('{output}')").fetchone()
    finally:
        con.close()
    return int(rows[0]) if rows else 0


def main() -> None:
    """Command line: run one ingest and print its row count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("parquet", "csv", "sendgrid"))
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"{ingest(args.kind, args.input, args.output, args.threads):,} rows")


if __name__ == "__main__":
    main()
