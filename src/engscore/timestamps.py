"""Timestamp parsing into the canonical ``Datetime("us", "UTC")``.

Accepted (ISSUE 2, README "Timestamps"): epoch seconds (int or float), epoch milliseconds,
ISO 8601 with ``Z`` or an offset and up to 7 fractional digits (the 7th is truncated), dates, and
naive date-times, which are read in the ``--timezone`` zone (UTC by default). Numbers above
``EPOCH_MS_THRESHOLD`` are milliseconds: 1e11 seconds is the year 5138, so no real export is
ambiguous.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from engscore.errors import ConfigError
from engscore.schema import TIMESTAMP_DTYPE

EPOCH_MS_THRESHOLD = 1e11

_ISO_AWARE = "%Y-%m-%dT%H:%M:%S%.f%z"
_ISO_NAIVE = "%Y-%m-%dT%H:%M:%S%.f"
_NUMBER = r"^[+-]?\d+(\.\d+)?$"
_OFFSET = r"([zZ]|[+-]\d{2}:?\d{2})$"


def check_timezone(name: str) -> str:
    """Return ``name`` if it is an IANA time zone (or a fixed offset like ``-06:00``)."""
    if _fixed_offset(name) is not None:
        return name
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/Paris' or 'UTC'"
        ) from exc
    return name


def _fixed_offset(name: str) -> int | None:
    """Minutes east of UTC for ``+HH:MM``/``-HHMM``/``UTC-6`` style zones, else None."""
    text = name.strip().upper().removeprefix("UTC")
    if not text or text[0] not in "+-":
        return None
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    if not digits.isdigit() or len(digits) not in (1, 2, 4):
        return None
    hours, minutes = (int(digits[:2]), int(digits[2:])) if len(digits) == 4 else (int(digits), 0)
    return sign * (hours * 60 + minutes)


def localize(naive: pl.Expr, timezone: str) -> pl.Expr:
    """Interpret a naive datetime expression in ``timezone`` and convert it to UTC.

    DST gaps give null (a time that never happened is reported as unparseable); ambiguous
    fall-back times take the earlier instant.
    """
    offset = _fixed_offset(timezone)
    if offset is not None:
        return (
            (naive - pl.duration(minutes=offset)).dt.replace_time_zone("UTC").cast(TIMESTAMP_DTYPE)
        )
    return (
        naive.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
        .cast(TIMESTAMP_DTYPE)
    )


def from_epoch(number: pl.Expr) -> pl.Expr:
    """Epoch seconds or milliseconds (by magnitude) to UTC microseconds."""
    value = number.cast(pl.Float64)
    micros = (
        pl.when(value.abs() >= EPOCH_MS_THRESHOLD).then(value * 1_000).otherwise(value * 1_000_000)
    )
    return micros.round(0).cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


#: The shape most exports write (``2026-11-01T06:00:00.123Z``), tried first on each batch.
_ISO_UTC = "%Y-%m-%dT%H:%M:%S%.fZ"
#: ISO 8601 with seconds, at most microseconds and ``Z`` or an offset: the values Arrow's
#: parser reads as the general parse does (or refuses: then the general parse decides).
_ISO_EXACT = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([zZ]|[+-]\d{2}:?\d{2})$"


def _arrow_iso(batch: pl.Series, present: int) -> pl.Series | None:
    """``batch`` parsed by Arrow's ISO 8601 parser (an eighth of the time of Polars' format
    parse, and without Python's lock) when every value has the ``_ISO_EXACT`` shape and
    Arrow reads them all; else None. The shape keeps out what Arrow reads and the general
    parse does not (``2026-01-30T03:58Z``, ``+05``); what Arrow refuses (a leap second)
    goes to the general parse."""
    if not present:
        return None
    shaped = batch.to_frame().lazy().select(pl.first().str.contains(_ISO_EXACT).sum()).collect()
    if shaped.item() != present:
        return None
    try:
        parsed = pc.cast(batch.to_arrow(), pa.timestamp("us", "UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pl.Series(batch.name, parsed).cast(TIMESTAMP_DTYPE)


def _first_that_fits(batch: pl.Series, general: pl.Expr) -> tuple[pl.Series, bool]:
    """``general`` (an expression of ``batch``'s column) on ``batch``, or the same values
    the cheap way when every value of the batch has one of the common shapes: ISO 8601
    in UTC with ``Z``, ISO 8601 with an offset (a test and one strict parse each), or whole
    epoch seconds or milliseconds (one integer cast). A batch with any other value gets the
    general parse, which tries every format on every row: five times the work. And whether
    the cheap way was taken: then no value of the batch is naive (each has ``Z``, an offset
    or is a number)."""
    name = batch.name
    column = pl.col(name)
    present = batch.len() - batch.null_count()
    exact = _arrow_iso(batch, present)
    if exact is not None:
        return exact, True
    frame = batch.to_frame().lazy()
    # Lazy collects: Polars runs them without Python's lock, so the streaming engine's other
    # threads go on meanwhile (eager calls would hold it).
    if batch.str.ends_with("Z").sum() == present:
        fast = column.str.to_datetime(_ISO_UTC, strict=False, time_unit="us", time_zone="UTC")
    elif batch.str.contains(_OFFSET).sum() == present:
        fast = column.str.to_datetime(_ISO_AWARE, strict=False, time_unit="us", time_zone="UTC")
    else:
        fast = from_epoch(column.cast(pl.Int64, strict=False).cast(pl.Float64))
    parsed = frame.select(fast.cast(TIMESTAMP_DTYPE)).collect().to_series()
    if parsed.len() - parsed.null_count() == present:
        return parsed, True
    return frame.select(general).collect().to_series(), False


def parse_string(text: pl.Expr, timezone: str = "UTC", fmt: str | None = None) -> pl.Expr:
    """Parse timestamp strings; unparseable values become null (callers report them)."""
    if fmt is not None:
        return _parse_string(text, timezone, fmt)
    general = _parse_string(text, timezone, None)
    return text.map_batches(
        lambda batch: _first_that_fits(batch, general)[0].alias(batch.name),
        return_dtype=TIMESTAMP_DTYPE,
        is_elementwise=True,
    )


#: The fields of ``parse_string_flagged``'s struct: the instant, whether it was naive, and
#: whether the text was blank (only white space).
PARSED, NAIVE, BLANK = "parsed", "naive", "blank"
_BLANK = r"^\s*$"


def parse_string_flagged(text: pl.Expr, timezone: str = "UTC") -> pl.Expr:
    """``parse_string`` of ``text``, whether each value is naive (non-numeric, without a
    UTC offset: read in ``timezone``; missing values are not) and whether it is blank (only
    white space; missing values are not), as a struct of ``PARSED``, ``NAIVE`` and
    ``BLANK``. One Python call a batch for all three: a batch parsed the cheap way has no
    naive or blank value, and only the others are tested row by row (a second call a batch,
    with its own tests of the batch's shape, took 1.5 CPU-seconds of a 20M-row CSV; the
    blank test of every row 0.7)."""
    general = _parse_string(text, timezone, None)
    cleaned = text.str.strip_chars()
    naive_rows = (~cleaned.str.contains(_NUMBER) & ~cleaned.str.contains(_OFFSET)).fill_null(False)
    blank_rows = text.str.contains(_BLANK).fill_null(False)

    def flagged(batch: pl.Series) -> pl.Series:
        parsed, cheap = _first_that_fits(batch, general)
        if cheap:
            no = pl.repeat(False, batch.len(), dtype=pl.Boolean, eager=True)
            naive, blank = no, no
        else:
            flags = batch.to_frame().select(naive_rows.alias(NAIVE), blank_rows.alias(BLANK))
            naive, blank = flags.get_column(NAIVE), flags.get_column(BLANK)
        columns = [parsed.alias(PARSED), naive.alias(NAIVE), blank.alias(BLANK)]
        return pl.DataFrame(columns).to_struct(batch.name)

    dtype = pl.Struct({PARSED: TIMESTAMP_DTYPE, NAIVE: pl.Boolean, BLANK: pl.Boolean})
    return text.map_batches(flagged, return_dtype=dtype, is_elementwise=True)


def _parse_string(text: pl.Expr, timezone: str, fmt: str | None) -> pl.Expr:
    cleaned = text.str.strip_chars()
    if fmt is not None:
        parsed = cleaned.str.to_datetime(fmt, strict=False, time_unit="us")
        if "%z" in fmt or "%:z" in fmt:
            return parsed.dt.convert_time_zone("UTC").cast(TIMESTAMP_DTYPE)
        return localize(parsed, timezone)
    iso = cleaned.str.replace(r"[zZ]$", "+00:00").str.replace(r"^(\d{4}-\d{2}-\d{2})[ T]", "${1}T")
    aware = iso.str.to_datetime(_ISO_AWARE, strict=False, time_unit="us", time_zone="UTC")
    naive = pl.coalesce(
        iso.str.to_datetime(_ISO_NAIVE, strict=False, time_unit="us"),
        iso.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us")),
    )
    return (
        pl.when(cleaned.str.contains(_NUMBER))
        .then(from_epoch(cleaned.cast(pl.Float64, strict=False)))
        .when(iso.str.contains(_OFFSET))
        .then(aware)
        .otherwise(localize(naive, timezone))
    )


def to_utc(column: pl.Expr, dtype: pl.DataType, timezone: str = "UTC") -> pl.Expr:
    """Convert a column of any supported type to the canonical UTC timestamp."""
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return localize(column.cast(pl.Datetime("us")), timezone)
        return column.dt.convert_time_zone("UTC").cast(TIMESTAMP_DTYPE)
    if isinstance(dtype, pl.Date):
        return localize(column.cast(pl.Datetime("us")), timezone)
    if dtype.is_numeric():
        return from_epoch(column)
    if isinstance(dtype, pl.String):
        return parse_string(column, timezone)
    if isinstance(dtype, pl.Null):
        return column.cast(TIMESTAMP_DTYPE)
    return parse_string(column.cast(pl.String), timezone)


def parse_instant(text: str, timezone: str = "UTC", what: str = "--as-of") -> datetime:
    """An instant given on the command line (``--as-of``): ISO 8601 date or date-time.

    ``2026-11-01`` is midnight; a value without ``Z`` or an offset is read in ``timezone``.
    The result is in UTC, truncated to microseconds like the events.
    """
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"{what}: {text!r} is not a date or time; use ISO 8601 such as 2026-11-01 "
            "or 2026-11-01T06:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        offset = _fixed_offset(check_timezone(timezone))
        zone = dt_timezone(timedelta(minutes=offset)) if offset is not None else ZoneInfo(timezone)
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def format_instant(instant: datetime) -> str:
    """``2026-11-01T00:00:00Z``: UTC instants as they appear in files and messages."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")
