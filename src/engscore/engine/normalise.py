"""Normalisation: typed canonical columns, reject reasons, machine opens and duplicates.

Pure functions on LazyFrames. A mapped file becomes canonical columns plus bookkeeping columns
(``_file``, ``_line``, ``_ord``, ``_reject``, ``_naive``, ``_heuristic``) that the ingest stage
uses for error reports and drops before output.
"""

from __future__ import annotations

import polars as pl

from engscore import timestamps
from engscore.presets.base import ACCOUNT_LEVEL, parse_bool
from engscore.schema import BOUNCE_TYPES, CANONICAL_SCHEMA, CONTACT

#: Bookkeeping columns, never written out.
INTERNAL_COLUMNS = ("_file", "_line", "_ord", "_reject", "_naive", "_heuristic", "_raw_timestamp")

#: The ``_reject`` value of an account-level event: skipped and counted, not rejected.
SKIPPED_ACCOUNT_LEVEL = "account-level event"

#: Apple Mail Privacy Protection fetches images through a proxy that sends this bare user agent.
APPLE_PROXY_USER_AGENT = "Mozilla/5.0"

#: Why a row is rejected (``canonicalise``'s ``_reject``).
MISSING_CONTACT = "missing contact_id"
MISSING_EVENT_TYPE = "missing event_type"
MISSING_TIMESTAMP = "missing timestamp"
UNPARSEABLE_TIMESTAMP = "unparseable timestamp"
BAD_AMOUNT = "amount is not a number"
#: Every value ``_reject`` takes (account-level events: skipped, not rejected).
REJECT_REASONS = (
    SKIPPED_ACCOUNT_LEVEL,
    MISSING_CONTACT,
    MISSING_EVENT_TYPE,
    MISSING_TIMESTAMP,
    UNPARSEABLE_TIMESTAMP,
    BAD_AMOUNT,
)

#: Seeds of the duplicate keys' hashes (fixed: the same input keeps the same rows).
_ID_SEED = 0x656E6773
_ROW_SEED = 0x636F7265

#: The cleaned values ``canonicalise`` makes once and reads several times.
_CLEAN_CONTACT = "_clean_contact"
_CLEAN_EVENT = "_clean_event"
_PARSED_TIMESTAMP = "_parsed_timestamp"
_AMOUNT = "_amount"
_BAD_AMOUNT = "_bad_amount"

#: Room for the line number inside the per-row order key ``file_index << 40 | line``.
LINE_BITS = 40


#: The canonical text columns ``canonicalise`` trims (``_trimmed``) and then reads as
#: ``_clean_text``.
_TRIMMED = ("contact_id", "event_type", "event_id", "campaign_id", "url", "amount", "bounce_type")


def _trimmed(mapped: pl.LazyFrame, schema: pl.Schema) -> pl.LazyFrame:
    """``mapped`` with its text columns of ``_TRIMMED`` trimmed, once: in ``_clean_text``'s
    when/then the trim would be made twice a row (Polars shares no subexpression between a
    condition and its branch), and up to six times where cleaned text is read again."""
    texts = [name for name in _TRIMMED if isinstance(schema.get(name), pl.String)]
    return mapped.with_columns(pl.col(name).str.strip_chars() for name in texts)


def _clean_text(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Text of a ``_trimmed`` column, empty -> null. Non-text columns are cast only (no
    string round trip)."""
    if not isinstance(dtype, pl.String):
        return column.cast(pl.String)
    return pl.when(column.str.len_bytes() > 0).then(column)


def _optional_text(schema: pl.Schema, name: str) -> pl.Expr:
    if name not in schema:
        return pl.lit(None, dtype=pl.String)
    return _clean_text(pl.col(name), schema[name])


def canonical_contact(contact: pl.Expr) -> pl.Expr:
    """A trimmed contact id as engscore keys it: e-mail addresses (with ``@``) lower-cased,
    other ids (CRM keys) as they are."""
    is_email = contact.str.contains("@", literal=True)
    return pl.when(is_email).then(contact.str.to_lowercase()).otherwise(contact)


def canonicalise(
    mapped: pl.LazyFrame,
    file_index: int,
    timezone: str,
    heuristic_machine_opens: bool,
    contacts_as_read: bool = False,
) -> pl.LazyFrame:
    """Type the canonical columns of one mapped file and give each row a reject reason or null.

    ``mapped`` carries a ``_line`` column (the source line or record number) added before mapping.
    Events the preset marked account-level get the reason ``SKIPPED_ACCOUNT_LEVEL``: ingest
    counts them as skipped, never as rejected. The expressions read the mapped columns,
    canonical text trimmed once (``_trimmed``). Typed input (Parquet) skips the text clean-up
    that CSV needs. ``contacts_as_read``: contact ids trimmed only, for a caller that applies
    ``canonical_contact`` to each distinct id instead of each row (``io.collected``).
    """
    schema = mapped.collect_schema()
    ts_type = schema["timestamp"]
    contact = _clean_text(pl.col("contact_id"), schema["contact_id"])
    # Event names and bounce types are cleaned row by row: per distinct value
    # (``by_distinct_values``) took 0.8 s more of the 20M-row CSV's one pass.
    event = _clean_text(pl.col("event_type"), schema["event_type"]).str.to_lowercase()
    if isinstance(ts_type, pl.String):
        # A struct of the instant and whether it was naive or blank (read below).
        parsed_ts = timestamps.parse_string_flagged(pl.col("timestamp"), timezone)
        raw_ts = pl.col("timestamp").str.strip_chars()
    else:
        parsed_ts = timestamps.to_utc(pl.col("timestamp"), ts_type, timezone)
        # Only text can be unparseable, so typed timestamps need no raw copy for reports.
        raw_ts = pl.lit(None, dtype=pl.String)
        missing_ts = pl.col("timestamp").is_null()
        naive = pl.lit(
            isinstance(ts_type, pl.Date)
            or (isinstance(ts_type, pl.Datetime) and ts_type.time_zone is None)
        )
    if "amount" not in schema:
        amount, bad_amount = pl.lit(None, dtype=pl.Float64), pl.lit(False)
    elif schema["amount"].is_numeric():
        amount, bad_amount = pl.col("amount").cast(pl.Float64), pl.lit(False)
    else:
        raw_amount = _clean_text(pl.col("amount"), schema["amount"])
        amount = raw_amount.cast(pl.Float64, strict=False)
        bad_amount = raw_amount.is_not_null() & amount.is_null()
    if "is_machine" not in schema:
        machine = pl.lit(False)
    elif isinstance(schema["is_machine"], pl.Boolean):
        machine = pl.col("is_machine").fill_null(False)
    else:
        machine = parse_bool(pl.col("is_machine"))
    bounce = _optional_text(schema, "bounce_type").str.to_lowercase()
    bounce = pl.when(bounce.is_in(BOUNCE_TYPES)).then(bounce)
    extras = [
        name
        for name, dtype in schema.items()
        if name not in CANONICAL_SCHEMA
        and name not in INTERNAL_COLUMNS
        and not isinstance(dtype, pl.List | pl.Struct | pl.Array | pl.Object)
    ]
    # Three steps: text trimmed, the cleaned values made once (Polars does not share the
    # subexpressions of when/then chains), and the reject reason and outputs read them.
    cleaned = _trimmed(mapped, schema).with_columns(
        contact.alias(_CLEAN_CONTACT),
        event.alias(_CLEAN_EVENT),
        parsed_ts.alias(_PARSED_TIMESTAMP),
        raw_ts.alias("_raw_timestamp"),
        amount.alias(_AMOUNT),
        bad_amount.alias(_BAD_AMOUNT),
    )
    contact, event, parsed_ts = (
        pl.col(_CLEAN_CONTACT),
        pl.col(_CLEAN_EVENT),
        pl.col(_PARSED_TIMESTAMP),
    )
    raw_ts = pl.col("_raw_timestamp")
    if isinstance(ts_type, pl.String):
        # Blank, as the parse found it: the stripped copy is made only where a query reads
        # it (reports of rejected rows), not for every row of the one pass.
        missing_ts = pl.col("timestamp").is_null() | parsed_ts.struct.field(timestamps.BLANK)
        naive = parsed_ts.struct.field(timestamps.NAIVE)
        parsed_ts = parsed_ts.struct.field(timestamps.PARSED)
    reject = (
        pl.when(event == ACCOUNT_LEVEL)
        .then(pl.lit(SKIPPED_ACCOUNT_LEVEL))
        .when(contact.is_null())
        .then(pl.lit(MISSING_CONTACT))
        .when(event.is_null())
        .then(pl.lit(MISSING_EVENT_TYPE))
        .when(missing_ts)
        .then(pl.lit(MISSING_TIMESTAMP))
        .when(parsed_ts.is_null())
        .then(pl.lit(UNPARSEABLE_TIMESTAMP))
        .when(pl.col(_BAD_AMOUNT))
        .then(pl.lit(BAD_AMOUNT))
    )
    return cleaned.select(
        (contact if contacts_as_read else canonical_contact(contact)).alias("contact_id"),
        event.alias("event_type"),
        parsed_ts.alias("timestamp"),
        *(_optional_text(schema, name).alias(name) for name in ("event_id", "campaign_id", "url")),
        pl.col(_AMOUNT).alias("amount"),
        machine.alias("is_machine"),
        bounce.alias("bounce_type"),
        *extras,
        pl.lit(file_index, dtype=pl.Int32).alias("_file"),
        pl.col("_line").cast(pl.Int64),
        (pl.lit(file_index << LINE_BITS, dtype=pl.Int64) + pl.col("_line").cast(pl.Int64)).alias(
            "_ord"
        ),
        reject.alias("_reject"),
        naive.fill_null(False).alias("_naive"),
        pl.lit(heuristic_machine_opens).alias("_heuristic"),
        raw_ts,
    )


def flag_machine_opens(
    events: pl.LazyFrame, window_seconds: float, contact: str = CONTACT
) -> pl.LazyFrame:
    """Apply the machine-open heuristic to rows whose provider has no machine flag.

    An open is a machine open when its user agent is Apple's bare proxy agent, or when it comes
    within ``window_seconds`` of the delivery of the same campaign to the same contact: no person
    opens a mail that fast, but privacy proxies fetch images on delivery. ``contact``: the
    column that tells contacts apart (the ids, or their numbers).
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
            .over([contact, "campaign_id"])
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
    """Drop duplicate events: same contact and ``event_id``, else exact duplicate rows.

    The key includes the contact because some providers' ids name a message, shared by all
    its recipients. Among duplicates the first in input order wins (files in path order, then
    line order), so the result does not depend on threads or chunking.
    """
    columns = [c for c in events.collect_schema().names() if c not in INTERNAL_COLUMNS]
    with_id = events.filter(pl.col("event_id").is_not_null()).filter(
        pl.col("_ord") == pl.col("_ord").min().over(["contact_id", "event_id"])
    )
    without_id = events.filter(pl.col("event_id").is_null()).unique(subset=columns, keep="first")
    return pl.concat([with_id, without_id])


def finalise(events: pl.LazyFrame, sort: bool = True) -> pl.LazyFrame:
    """Sort deterministically (contact, time, type, input order); drop bookkeeping columns."""
    columns = [c for c in events.collect_schema().names() if c not in INTERNAL_COLUMNS]
    if sort:
        events = events.sort(["contact_id", "timestamp", "event_type", "_ord"])
    return events.select(columns)


def duplicate_key(columns: list[str]) -> pl.Expr:
    """A 64-bit key of what makes two rows of one contact duplicates (``drop_duplicates``):
    the event id where there is one, else every column of ``columns`` (canonical values).

    The key replaces the id and the row's text in memory; two different events of one
    contact share a key with a probability of 2**-64 per pair.
    """
    others = [name for name in columns if name not in (CONTACT, "event_id")]
    row = pl.struct(others).hash(seed=_ROW_SEED) if others else pl.lit(0, dtype=pl.UInt64)
    return (
        pl.when(pl.col("event_id").is_not_null())
        .then(pl.col("event_id").hash(seed=_ID_SEED))
        .otherwise(row)
    )


def keyed_duplicates(frame: pl.DataFrame, contact: str, has_id: str, key: str) -> pl.Series:
    """``drop_duplicates`` on rows that carry ``duplicate_key`` (``key``) and whether they
    have an event id (``has_id``) instead of the id and row text: True for the rows to drop,
    every row of each (contact, has_id, key) but the first in frame order (input order).

    Duplicates are few: the keys that occur twice anywhere are found by one sort of the key
    column (far cheaper than ``is_duplicated``'s grouping), and only their rows are compared
    on the whole (contact, has_id, key).
    """
    keys = frame.get_column(key)
    ordered = keys.sort()
    # Each key beside the one before it: two views of the sorted copy, not a shifted copy.
    following = ordered.slice(1)
    repeated = following.filter(following == ordered.slice(0, following.len()))
    if repeated.is_empty():
        return pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True)
    maybe = keys.is_in(repeated.unique().implode())
    # Lazy: an eager select would first align the chunks of every column (the frame comes
    # from a streaming collect in many chunks), briefly doubling its memory.
    candidates = (
        frame.lazy()
        .select(contact, has_id, key)
        .with_row_index("_row")
        .filter(maybe)
        .filter(~pl.struct(contact, has_id, key).is_first_distinct())
        .collect()
    )
    dropped = pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True)
    return dropped.scatter(candidates.get_column("_row"), True)
