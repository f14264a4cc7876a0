"""``generic``: exports that already use the canonical column names (SPEC section 2)."""

from __future__ import annotations

import polars as pl

from engscore.presets.base import MapContext, Preset, map_events, require
from engscore.schema import REQUIRED_COLUMNS

#: A few common synonyms so a hand-made export with canonical meanings just works.
EVENT_MAP: dict[str, str | None] = {
    "opened": "open",
    "clicked": "click",
    "replied": "reply",
    "bounced": "bounce",
    "unsubscribed": "unsubscribe",
    "spamreport": "complaint",
    "spam_report": "complaint",
    "delivery": "delivered",
    "sent": "send",
    "order": "purchase",
    "placed_order": "purchase",
    "pageview": "page_view",
    "page_visit": "page_view",
}


def _map(frame: pl.LazyFrame, schema: pl.Schema, ctx: MapContext) -> pl.LazyFrame:
    require(schema, REQUIRED_COLUMNS, ctx, "generic")
    return frame.with_columns(event_type=map_events(pl.col("event_type"), EVENT_MAP))


PRESET = Preset(
    name="generic",
    description="canonical column names (contact_id, event_type, timestamp, is_machine, ...)",
    signature=REQUIRED_COLUMNS,
    mapper=_map,
    flags_machine_opens=True,
    priority=-10,
    event_map=EVENT_MAP,
)
