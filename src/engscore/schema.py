"""The canonical event schema (SPEC section 2): names, types and canonical event types."""

from __future__ import annotations

import polars as pl

#: The canonical columns every stage reads by name.
CONTACT = "contact_id"
EVENT_TYPE = "event_type"
TIMESTAMP = "timestamp"

CANONICAL_EVENT_TYPES: tuple[str, ...] = (
    "send",
    "delivered",
    "open",
    "click",
    "reply",
    "bounce",
    "complaint",
    "unsubscribe",
    "purchase",
    "page_view",
    "form_submit",
)

TIMESTAMP_DTYPE = pl.Datetime("us", "UTC")

#: Canonical columns in output order, with their Polars types.
CANONICAL_SCHEMA: dict[str, pl.DataType] = {
    CONTACT: pl.String(),
    EVENT_TYPE: pl.String(),
    TIMESTAMP: TIMESTAMP_DTYPE,
    "event_id": pl.String(),
    "campaign_id": pl.String(),
    "url": pl.String(),
    "amount": pl.Float64(),
    "is_machine": pl.Boolean(),
    "bounce_type": pl.String(),
}

REQUIRED_COLUMNS: tuple[str, ...] = (CONTACT, EVENT_TYPE, TIMESTAMP)
OPTIONAL_COLUMNS: tuple[str, ...] = tuple(c for c in CANONICAL_SCHEMA if c not in REQUIRED_COLUMNS)
BOUNCE_TYPES: tuple[str, ...] = ("hard", "soft")
