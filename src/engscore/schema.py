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

#: Optional canonical columns that stages read by name.
CAMPAIGN = "campaign_id"
IS_MACHINE = "is_machine"
BOUNCE_TYPE = "bounce_type"

#: ``engscore health``: the key column of each ``--by`` grouping, in output order.
HEALTH_KEYS: dict[str, str] = {
    "campaign": CAMPAIGN,
    "provider": "provider",
    "domain": "domain",
    "month": "month",
}
#: The health table's counts, then its rates, then the flag (after the key columns).
HEALTH_COUNTS: tuple[str, ...] = (
    "sent",
    "delivered",
    "bounced",
    "hard_bounced",
    "soft_bounced",
    "complaints",
    "unsubscribes",
    "human_openers",
    "machine_opens",
    "clickers",
)
HEALTH_RATES: tuple[str, ...] = (
    "bounce_rate",
    "hard_bounce_rate",
    "complaint_rate",
    "unsubscribe_rate",
    "open_rate",
    "machine_open_share",
    "click_rate",
    "click_to_open_rate",
)
HEALTH_FLAG = "flag"
