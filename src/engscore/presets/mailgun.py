"""``mailgun``: Mailgun events, as the Events API returns them (``items``) or as webhooks send
them (fields under ``event-data``).

Fields (Mailgun "Events" and "Webhooks" docs): ``event``, ``timestamp`` (epoch seconds, float),
``id``, ``recipient``, ``severity`` (``permanent``/``temporary`` on ``failed``), ``url``
(clicked), ``client-info.bot`` (machine opens and clicks), ``client-info.user-agent``,
``message.headers.message-id``, ``user-variables.campaign_id`` (a custom variable, when set).

``client-info.bot`` names the bot Mailgun detected (``apple``, ``gmail``, ``generic``; empty for
none): ``is_machine`` comes from it when the column exists, else engscore's heuristic applies.
Every documented event type (Mailgun "Event types"): ``accepted``→send, ``rejected``→reject
(Mailgun refused to send), ``delivered``, ``failed``→bounce, ``opened``→open,
``clicked``→click, ``unsubscribed``→unsubscribe, ``complained``→complaint, ``stored``
(inbound routes: skipped), ``list_member_uploaded`` and ``list_member_upload_error`` (kept
under their own name), ``list_uploaded`` (a whole mailing list: account-level). A ``rejected``
or ``list_member_upload_error`` event without a recipient concerns the request, not a
contact: account-level too. Account-level events are skipped and counted, not rejected.
"""

from __future__ import annotations

import polars as pl

from engscore.presets.base import (
    ACCOUNT_LEVEL,
    MapContext,
    Preset,
    account_level,
    bounce_by_value,
    coalesce_present,
    col_or_null,
    drop_skipped,
    map_events,
    present_only,
    require,
)

WEBHOOK_PREFIX = "event-data."
EVENT_MAP: dict[str, str | None] = {
    "accepted": "send",
    "delivered": "delivered",
    "failed": "bounce",
    "opened": "open",
    "clicked": "click",
    "unsubscribed": "unsubscribe",
    "complained": "complaint",
    "rejected": "reject",
    "list_member_uploaded": "list_member_uploaded",
    "list_member_upload_error": "list_member_upload_error",
    # Stored messages (inbound routes) are not engagement: skipped.
    "stored": None,
    # A whole mailing list was uploaded: no recipient by design.
    "list_uploaded": ACCOUNT_LEVEL,
}
#: Events that concern the request rather than a contact when they carry no recipient.
ACCOUNT_LEVEL_WITHOUT_RECIPIENT = ("rejected", "list_member_upload_error")


def _map(frame: pl.LazyFrame, schema: pl.Schema, ctx: MapContext) -> pl.LazyFrame:
    if f"{WEBHOOK_PREFIX}event" in schema:
        # Webhook payloads nest the event under "event-data"; drop the wrapper.
        names = {c: c[len(WEBHOOK_PREFIX) :] for c in schema if c.startswith(WEBHOOK_PREFIX)}
        frame = frame.drop([c for c in schema if c in names.values()]).rename(names)
        schema = frame.collect_schema()
    # Account-level events have no recipient: a file of them alone has no such column.
    require(schema, ("event", "timestamp"), ctx, "mailgun")
    machine = None
    if "client-info.bot" in schema:
        bot = pl.col("client-info.bot").cast(pl.String).str.strip_chars().str.to_lowercase()
        # `bot` names the bot ("apple", "gmail", "generic") and is empty when none was seen.
        machine = bot.is_not_null() & ~bot.is_in(["", "false", "0", "none"])
    recipient = col_or_null(schema, "recipient", pl.String()).str.strip_chars()
    name = pl.col("event").cast(pl.String).str.strip_chars().str.to_lowercase()
    about_request = name.is_in(ACCOUNT_LEVEL_WITHOUT_RECIPIENT) & (
        recipient.is_null() | (recipient == "")
    )
    mapped = frame.with_columns(
        contact_id=col_or_null(schema, "recipient"),
        _raw_event=pl.col("event"),
        event_type=account_level(map_events(pl.col("event"), EVENT_MAP), about_request),
        event_id=col_or_null(schema, "id"),
        campaign_id=coalesce_present(
            schema, "user-variables.campaign_id", "message.headers.message-id", dtype=pl.String()
        ),
        url=col_or_null(schema, "url"),
        user_agent=col_or_null(schema, "client-info.user-agent"),
        bounce_type=bounce_by_value(col_or_null(schema, "severity"), ["permanent"], ["temporary"]),
        **present_only(is_machine=machine),
    )
    return drop_skipped(mapped)


PRESET = Preset(
    name="mailgun",
    description="Mailgun Events API items or webhook event-data (event, recipient, timestamp)",
    signature=("event", "recipient", "timestamp", "id"),
    alternatives=(("event-data.event", "event-data.recipient", "event-data.timestamp"),),
    mapper=_map,
    flags_machine_opens=True,
    priority=15,
    event_map=EVENT_MAP,
)
