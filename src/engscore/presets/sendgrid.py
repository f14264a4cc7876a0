"""``sendgrid``: SendGrid Event Webhook records (JSON, JSON-lines or a CSV of the same fields).

Fields (SendGrid "Event Webhook Reference"): ``email``, ``timestamp`` (epoch seconds), ``event``,
``sg_event_id``, ``sg_message_id``, ``url`` (click), ``useragent``, ``type`` (``bounce`` or
``blocked`` on bounce events), ``sg_machine_open`` (Apple Mail Privacy Protection opens),
``marketing_campaign_id`` / ``singlesend_id`` (Marketing Campaigns).

Every documented event name (Event Webhook Reference, "Delivery events", "Engagement events",
"Account events"): ``processed``, ``dropped``, ``delivered``, ``deferred``, ``bounce`` (``type``
``bounce`` or ``blocked``), ``open``, ``click``, ``spamreport``, ``unsubscribe``,
``group_unsubscribe``, ``group_resubscribe``, ``account_status_change``.
Skipped: ``deferred`` (a retry in progress); ``account_status_change`` is an account-level
event (a compliance action on the account, no recipient): skipped and counted. Kept under their
own name: ``dropped`` (SendGrid never sent the message) and ``group_resubscribe`` (it lifts an
earlier unsubscribe in scoring). Without an ``sg_machine_open`` column (older
exports), engscore's machine-open heuristic applies, using ``useragent``.
"""

from __future__ import annotations

import polars as pl

from engscore.presets.base import (
    ACCOUNT_LEVEL,
    MapContext,
    Preset,
    bounce_by_value,
    coalesce_present,
    col_or_null,
    drop_skipped,
    map_events,
    parse_bool,
    present_only,
    require,
)

EVENT_MAP: dict[str, str | None] = {
    "processed": "send",
    "delivered": "delivered",
    "open": "open",
    "click": "click",
    "bounce": "bounce",
    "spamreport": "complaint",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
    "dropped": "dropped",
    "group_resubscribe": "group_resubscribe",
    # A deferral is a retry in progress, not an outcome: skipped.
    "deferred": None,
    # A compliance action on the account: no recipient by design.
    "account_status_change": ACCOUNT_LEVEL,
}


def _map(frame: pl.LazyFrame, schema: pl.Schema, ctx: MapContext) -> pl.LazyFrame:
    require(schema, ("email", "event", "timestamp"), ctx, "sendgrid")
    mapped = frame.with_columns(
        contact_id=pl.col("email"),
        _raw_event=pl.col("event"),
        event_type=map_events(pl.col("event"), EVENT_MAP),
        event_id=col_or_null(schema, "sg_event_id"),
        campaign_id=coalesce_present(
            schema, "marketing_campaign_id", "singlesend_id", "sg_message_id", dtype=pl.String()
        ),
        url=col_or_null(schema, "url"),
        user_agent=col_or_null(schema, "useragent"),
        # "blocked" is a refusal the sender may retry; "bounce" a permanent failure.
        bounce_type=bounce_by_value(col_or_null(schema, "type"), ["bounce"], ["blocked"]),
        **present_only(
            is_machine=parse_bool(pl.col("sg_machine_open"))
            if "sg_machine_open" in schema
            else None
        ),
    )
    return drop_skipped(mapped)


PRESET = Preset(
    name="sendgrid",
    description="SendGrid Event Webhook (email, event, timestamp, sg_event_id, ...)",
    signature=("email", "event", "timestamp", "sg_event_id"),
    alternatives=(("email", "event", "timestamp", "sg_message_id"),),
    mapper=_map,
    flags_machine_opens=True,
    priority=20,
    event_map=EVENT_MAP,
)
