"""Normalisation: typed canonical columns, reject reasons, machine opens and duplicates.

Pure functions on LazyFrames. A mapped file becomes canonical columns plus bookkeeping columns
(``_file``, ``_line``, ``_ord``, ``_reject``, ``_naive``, ``_heuristic``) that the ingest stage
uses for error reports and drops before output.
"""

from __future__ import annotations

import polars as pl

from engscore import timestamps
from engscore.presets.base import parse_bool
from engscore.schema import BOUNCE_TYPES, CANONICAL_SCHEMA

#: Bookkeeping columns, never written out.
INTERNAL_COLUMNS = ("_file", "_line", "_ord", "_reject", "_naive", "_heuristic", "_raw_timestamp")

#: Apple Mail Privacy Protection fetches images through a proxy that sends this bare user agent.
APPLE_PROXY_USER_AGENT = "Mozilla/5.0"

#: Room for the line number inside the per-row order key ``file_index << 40 | line``.
_LINE_BITS = 40


def _clean_text(expr: pl.Expr) -> pl.Expr:
    text = expr.cast(pl.String).str.strip_chars()
    return pl.when(text.str.len_chars() > 0).then(text)


def canonicalise(
    mapped: pl.LazyFrame, file_index: int, timezone: str, heuristic_machine_opens: bool
) -> pl.LazyFrame:
    """Type the canonical columns of one mapped file and give each row a reject reason or null.

    ``mapped`` carries a ``_line`` column (the source line or record number) added before mapping.
    """
    schema = mapped.collect_schema()
    ts_type = schema["timestamp"]
    contact = _clean_text(pl.col("contact_id"))
    event = _clean_text(pl.col("event_type")).str.to_lowercase()
    raw_ts = pl.col("timestamp").cast(pl.String).str.strip_chars()
    if isinstance(ts_type, pl.String):
        naive = timestamps.is_naive_string(raw_ts)
    else:
        naive = pl.lit(
            isinstance(ts_type, pl.Date)
            or (isinstance(ts_type, pl.Datetime) and ts_type.time_zone is None)
        )
    if "amount" in schema:
        raw_amount = _clean_text(pl.col("amount"))
        amount = raw_amount.cast(pl.Float64, strict=False)
        bad_amount = raw_amount.is_not_null() & amount.is_null()
    else:
        amount, bad_amount = pl.lit(None, dtype=pl.Float64), pl.lit(False)
    reject = (
        pl.when(contact.is_null())
        .then(pl.lit("missing contact_id"))
        .when(event.is_null())
        .then(pl.lit("missing event_type"))
        .when(pl.col("_raw_timestamp").is_null() | (pl.col("_raw_timestamp") == ""))
        .then(pl.lit("missing timestamp"))
        .when(pl.col("timestamp").is_null())
        .then(pl.lit("unparseable timestamp"))
        .when(bad_amount)
        .then(pl.lit("amount is not a number"))
    )
    machine = parse_bool(pl.col("is_machine")) if "is_machine" in schema else pl.lit(False)
    bounce = (
        _clean_text(pl.col("bounce_type")).str.to_lowercase()
        if "bounce_type" in schema
        else pl.lit(None, dtype=pl.String)
    )
    optional_text = [
        (_clean_text(pl.col(name)) if name in schema else pl.lit(None, dtype=pl.String)).alias(name)
        for name in ("event_id", "campaign_id", "url")
    ]
    extras = [
        name
        for name, dtype in schema.items()
        if name not in CANONICAL_SCHEMA
        and name not in INTERNAL_COLUMNS
        and not isinstance(dtype, pl.List | pl.Struct | pl.Array | pl.Object)
    ]
    typed = mapped.with_columns(
        *optional_text,
        contact_id=pl.when(contact.str.contains("@", literal=True))
        .then(contact.str.to_lowercase())
        .otherwise(contact),
        event_type=event,
        _raw_timestamp=raw_ts,
        timestamp=timestamps.to_utc(pl.col("timestamp"), ts_type, timezone),
        amount=amount,
        is_machine=machine.fill_null(False),
        bounce_type=pl.when(bounce.is_in(BOUNCE_TYPES)).then(bounce),
        _naive=naive.fill_null(False),
    )
    return typed.with_columns(_reject=reject).select(
        *(pl.col(name).cast(dtype) for name, dtype in CANONICAL_SCHEMA.items()),
        *extras,
        pl.lit(file_index, dtype=pl.Int32).alias("_file"),
        pl.col("_line").cast(pl.Int64),
        (pl.lit(file_index << _LINE_BITS, dtype=pl.Int64) + pl.col("_line").cast(pl.Int64)).alias(
            "_ord"
        ),
        "_reject",
        "_naive",
        pl.lit(heuristic_machine_opens).alias("_heuristic"),
        "_raw_timestamp",
    )


def flag_machine_opens(events: pl.LazyFrame, window_seconds: float) -> pl.LazyFrame:
    """Apply the machine-open heuristic to rows whose provider has no machine flag.

    An open is a machine open when its user agent is Apple's bare proxy agent, or when it comes
    within ``window_seconds`` of the delivery of the same campaign to the same contact: no person
    opens a mail that fast, but privacy proxies fetch images on delivery.
    """
    columns = events.collect_schema()
    is_open = (pl.col("event_type") == "open") & pl.col("_heuristic")
    signals: list[pl.Expr] = []
    if "user_agent" in columns:
        signals.append(
            pl.col("user_agent").cast(pl.String).str.strip_chars() == APPLE_PROXY_USER_AGENT
        )
    if window_seconds > 0:
        delivered_at = (
            pl.col("timestamp")
            .filter(pl.col("event_type") == "delivered")
            .min()
            .over(["contact_id", "campaign_id"])
        )
        lag = pl.col("timestamp") - delivered_at
        signals.append(
            pl.col("campaign_id").is_not_null()
            & (lag >= pl.duration(seconds=0))
            & (lag <= pl.duration(microseconds=int(window_seconds * 1_000_000)))
        )
    if not signals:
        return events
    heuristic = pl.any_horizontal(signals).fill_null(False)
    return events.with_columns(is_machine=pl.col("is_machine") | (is_open & heuristic))


def drop_duplicates(events: pl.LazyFrame) -> pl.LazyFrame:
    """Drop duplicate events: by ``event_id`` where present, else exact duplicate rows.

    Among events sharing an ``event_id`` the first in input order wins (files in path order,
    then line order), so the result does not depend on threads or chunking.
    """
    columns = [c for c in events.collect_schema().names() if c not in INTERNAL_COLUMNS]
    with_id = events.filter(pl.col("event_id").is_not_null()).filter(
        pl.col("_ord") == pl.col("_ord").min().over("event_id")
    )
    without_id = events.filter(pl.col("event_id").is_null()).unique(subset=columns, keep="first")
    return pl.concat([with_id, without_id])


def finalise(events: pl.LazyFrame) -> pl.LazyFrame:
    """Sort deterministically and drop bookkeeping columns."""
    columns = [c for c in events.collect_schema().names() if c not in INTERNAL_COLUMNS]
    return events.sort(["contact_id", "timestamp", "event_type", "_ord"]).select(columns)
