"""``mailchimp``: Mailchimp Marketing API email-activity records.

``GET /reports/{campaign_id}/email-activity`` returns ``{"emails": [...]}``: one record per
recipient with ``campaign_id``, ``list_id``, ``email_id``, ``email_address`` and ``activity``, a
list of ``{action: open|click|bounce, type: hard|soft (bounces), timestamp, url, ip}``. The
wrapped list, a JSON array of records or one record per line are all read. A response saved
whole also carries ``_links`` and ``total_items`` beside ``emails``; the reader then keeps the
document as one record, and this preset unwraps its ``emails`` itself. Each activity becomes
one event; recipients with no activity yield none. Mailchimp does not flag machine opens, so
engscore's heuristic applies (it needs deliveries from another export to compare with). No
event is skipped; other actions are kept lower-cased.
"""

from __future__ import annotations

import polars as pl

from engscore.errors import DataError
from engscore.presets.base import (
    MapContext,
    Preset,
    col_or_null,
    drop_skipped,
    map_events,
    require,
)

EVENT_MAP: dict[str, str | None] = {
    "open": "open",
    "click": "click",
    "bounce": "bounce",
}


def _unwrap(frame: pl.LazyFrame, schema: pl.Schema) -> tuple[pl.LazyFrame, pl.Schema]:
    """One row per recipient from a whole API response (``emails`` beside ``_links``)."""
    emails = schema.get("emails")
    if "email_address" in schema or not isinstance(emails, pl.List):
        return frame, schema
    if not isinstance(emails.inner, pl.Struct):
        # An empty report (no recipient at all) is no event, not a missing column.
        empty = pl.Schema({"email_address": pl.String(), "activity": pl.List(pl.Null())})
        frame = frame.drop(list(schema)).head(0)
        return frame.with_columns(pl.lit(None, dtype=t).alias(n) for n, t in empty.items()), empty
    # The response's own campaign_id, total_items and _links would clash with or repeat the
    # recipients' fields; any bookkeeping column the caller added (line numbers) is kept.
    frame = frame.drop([c for c in schema if c != "emails"]).explode("emails").unnest("emails")
    return frame, pl.Schema({f.name: f.dtype for f in emails.inner.fields})


def _map(frame: pl.LazyFrame, schema: pl.Schema, ctx: MapContext) -> pl.LazyFrame:
    frame, schema = _unwrap(frame, schema)
    require(schema, ("email_address", "activity"), ctx, "mailchimp")
    activity = frame.explode("activity").filter(pl.col("activity").is_not_null())
    activities = schema["activity"]
    if not isinstance(activities, pl.List):
        raise DataError(
            f"{ctx.source}: column 'activity' is {activities}, not a list of activities; "
            "preset 'mailchimp' reads the JSON email-activity report"
        )
    # A file where no recipient has any activity has a list of nulls, not of structs.
    inner = activities.inner
    names = {f.name for f in inner.fields} if isinstance(inner, pl.Struct) else set()

    def field(name: str) -> pl.Expr:
        if name in names:
            return pl.col("activity").struct.field(name).cast(pl.String)
        return pl.lit(None, dtype=pl.String)

    action = field("action")
    mapped = activity.with_columns(
        contact_id=pl.col("email_address"),
        _raw_event=action,
        event_type=map_events(action, EVENT_MAP),
        timestamp=field("timestamp"),
        event_id=pl.concat_str(
            [
                col_or_null(schema, "campaign_id", pl.String()),
                pl.col("email_address"),
                action,
                field("timestamp"),
            ],
            separator="|",
        ),  # fmt: skip
        campaign_id=col_or_null(schema, "campaign_id", pl.String()),
        url=field("url"),
        bounce_type=pl.when(action == "bounce").then(field("type").str.to_lowercase()),
    ).drop("activity")
    return drop_skipped(mapped)


PRESET = Preset(
    name="mailchimp",
    description="Mailchimp email-activity reports (email_address, activity[action, timestamp])",
    signature=("email_address", "activity"),
    alternatives=(("emails", "campaign_id", "total_items"),),
    mapper=_map,
    priority=20,
    event_map=EVENT_MAP,
)
