"""``mailchimp``: Mailchimp Marketing API email-activity records.

``GET /reports/{campaign_id}/email-activity`` returns ``{"emails": [...]}``: one record per
recipient with ``campaign_id``, ``list_id``, ``email_id``, ``email_address`` and ``activity``, a
list of ``{action: open|click|bounce, type: hard|soft (bounces), timestamp, url, ip}``. The
wrapped list, a JSON array of records or one record per line are all read; each activity
becomes one event, recipients with no activity yield none. Mailchimp does not flag machine
opens, so engscore's heuristic applies (it needs deliveries from another export to compare with).
"""

from __future__ import annotations

import polars as pl

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


def _map(frame: pl.LazyFrame, schema: pl.Schema, ctx: MapContext) -> pl.LazyFrame:
    require(schema, ("email_address", "activity"), ctx, "mailchimp")
    activity = frame.explode("activity").filter(pl.col("activity").is_not_null())
    fields = schema["activity"].inner.fields  # type: ignore[attr-defined]
    names = {f.name for f in fields}

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
    mapper=_map,
    priority=20,
    event_map=EVENT_MAP,
)
