"""``sfmc``: Salesforce Marketing Cloud tracking extracts and data views.

Data views (``_Sent``, ``_Open``, ``_Click``, ``_Bounce``, ``_Unsubscribe``, ``_Complaint``)
share ``SubscriberKey``, ``EventDate``, ``JobID``, ``ListID``, ``BatchID``; ``_Click`` adds
``URL``, ``_Bounce`` adds ``BounceCategory`` (``Hard bounce``, ``Soft bounce``, ``Block
bounce``, ``Technical/Other bounce``). A tracking extract has an ``EventType`` column and
``EmailAddress``. A data-view export has no event-type column: engscore takes the type from the
file name (``..._Open.csv``, ``sent.csv``, ``clicks_2024.csv`` ...) or, failing that, from its
columns (``URL`` = click, ``BounceCategory`` = bounce); name files after the view.

SFMC stores times in US Central Standard Time without daylight saving: ``EventDate`` is read
as fixed UTC-6 whatever ``--timezone`` says. ISO (``2024-01-15 09:30:00.000``) and US
(``1/15/2024 9:30:00 AM``) notations are both read.
"""

from __future__ import annotations

import re

import polars as pl

from engscore import timestamps
from engscore.presets.base import (
    MapContext,
    Preset,
    classify_bounce,
    coalesce_present,
    col_or_null,
    drop_skipped,
    map_events,
    require,
)

SFMC_ZONE = "-06:00"
EVENT_MAP: dict[str, str | None] = {
    "sent": "send",
    "send": "send",
    "open": "open",
    "click": "click",
    "bounce": "bounce",
    "hardbounce": "bounce",
    "softbounce": "bounce",
    "unsubscribe": "unsubscribe",
    "complaint": "complaint",
    "spam": "complaint",
    "notsent": None,
}
_FILE_TYPES = (
    ("unsub", "Unsubscribe"),
    ("complaint", "Complaint"),
    ("bounce", "Bounce"),
    ("click", "Click"),
    ("open", "Open"),
    ("sent", "Sent"),
)


def _type_from_source(ctx: MapContext, schema: pl.Schema) -> str | None:
    stem = ctx.source.name.lower()
    for needle, kind in _FILE_TYPES:
        if re.search(needle, stem):
            return kind
    if "BounceCategory" in schema:
        return "Bounce"
    if "URL" in schema:
        return "Click"
    return None


def _event_date(schema: pl.Schema) -> pl.Expr:
    if isinstance(schema["EventDate"], pl.Datetime | pl.Date):
        return timestamps.localize(pl.col("EventDate").cast(pl.Datetime("us")), SFMC_ZONE)
    text = pl.col("EventDate").cast(pl.String).str.strip_chars()
    us = text.str.to_datetime("%m/%d/%Y %I:%M:%S %p", strict=False, time_unit="us")
    iso = text.str.replace(" ", "T").str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us"
    )
    return timestamps.localize(pl.coalesce(iso, us), SFMC_ZONE)


def _map(frame: pl.LazyFrame, schema: pl.Schema, ctx: MapContext) -> pl.LazyFrame:
    require(schema, ("EventDate",), ctx, "sfmc")
    if "EventType" in schema:
        raw = pl.col("EventType").cast(pl.String)
    else:
        kind = _type_from_source(ctx, schema)
        if kind is None:
            require(schema, ("EventType",), ctx, "sfmc")
        raw = pl.lit(kind, dtype=pl.String)
    parsed = _event_date(schema)
    mapped = frame.with_columns(
        contact_id=coalesce_present(schema, "EmailAddress", "SubscriberKey"),
        _raw_event=raw,
        event_type=map_events(raw, EVENT_MAP),
        # Unparseable dates stay text so ingest reports them with the raw value.
        timestamp=pl.when(parsed.is_not_null())
        .then(parsed.dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ"))
        .otherwise(pl.col("EventDate").cast(pl.String)),
        event_id=pl.concat_str(
            [
                col_or_null(schema, "JobID", pl.String()),
                col_or_null(schema, "BatchID", pl.String()),
                coalesce_present(schema, "SubscriberKey", "EmailAddress", dtype=pl.String()),
                raw,
                pl.col("EventDate").cast(pl.String),
            ],
            separator="|",
        ),  # fmt: skip
        campaign_id=col_or_null(schema, "JobID", pl.String()),
        url=col_or_null(schema, "URL"),
        bounce_type=classify_bounce(
            coalesce_present(schema, "BounceCategory", "BounceType", dtype=pl.String()),
            hard=("hard",),
            soft=("soft", "block", "technical"),
        ),
    )
    return drop_skipped(mapped)


PRESET = Preset(
    name="sfmc",
    description="Salesforce Marketing Cloud data views / tracking extracts (times UTC-6)",
    signature=("SubscriberKey", "EventDate"),
    alternatives=(("EmailAddress", "EventDate", "EventType"),),
    mapper=_map,
    priority=20,
    event_map=EVENT_MAP,
)
