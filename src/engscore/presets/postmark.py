"""``postmark``: Postmark webhook / Messages API records, one per ``RecordType``.

Fields (Postmark "Webhooks" docs), by record type: ``Delivery`` (``Recipient``,
``DeliveredAt``), ``Open`` (``Recipient``, ``ReceivedAt``, ``UserAgent``), ``Click``
(``Recipient``, ``ReceivedAt``, ``OriginalLink``, ``UserAgent``), ``Bounce`` (``Email``,
``BouncedAt``, ``Type`` such as ``HardBounce``/``SoftBounce``, ``ID``), ``SpamComplaint``
(``Email``, ``BouncedAt``), ``SubscriptionChange`` (``Recipient``, ``ChangedAt``,
``SuppressSending``). Common: ``MessageID``, ``Tag``, ``MessageStream``.

Postmark has no per-event id: ``MessageID``, ``RecordType`` and the event time make one.
Postmark does not flag machine opens, so engscore's heuristic applies (``UserAgent``). No record
type is skipped; a ``SubscriptionChange`` with ``SuppressSending`` false becomes ``resubscribe``.
"""

from __future__ import annotations

import polars as pl

from engscore.presets.base import (
    MapContext,
    Preset,
    bounce_by_value,
    coalesce_present,
    col_or_null,
    drop_skipped,
    map_events,
    parse_bool,
    require,
)

EVENT_MAP: dict[str, str | None] = {
    "delivery": "delivered",
    "open": "open",
    "click": "click",
    "bounce": "bounce",
    "spamcomplaint": "complaint",
    "subscriptionchange": "unsubscribe",
}
#: Postmark bounce ``Type`` values (Bounce API "bounce types") that mean the address will not
#: accept mail, and those that may clear up. Others (``Unknown``, ``SpamNotification``,
#: ``ChallengeVerification``...) get no bounce type.
HARD_TYPES = ("HardBounce", "BadEmailAddress", "ManuallyDeactivated")
SOFT_TYPES = ("SoftBounce", "Transient", "DnsError", "AutoResponder", "Blocked", "DMARCPolicy")


def _map(frame: pl.LazyFrame, schema: pl.Schema, ctx: MapContext) -> pl.LazyFrame:
    require(schema, ("RecordType",), ctx, "postmark")
    kind = pl.col("RecordType").cast(pl.String)
    event = map_events(kind, EVENT_MAP)
    if "SuppressSending" in schema:
        # A subscription change that lifts suppression is a re-subscribe, not an unsubscribe.
        resubscribe = (kind == "SubscriptionChange") & ~parse_bool(pl.col("SuppressSending"))
        event = pl.when(resubscribe).then(pl.lit("resubscribe")).otherwise(event)
    timestamp = coalesce_present(
        schema, "DeliveredAt", "ReceivedAt", "BouncedAt", "ChangedAt", dtype=pl.String()
    )
    mapped = frame.with_columns(
        contact_id=coalesce_present(schema, "Recipient", "Email"),
        _raw_event=kind,
        event_type=event,
        timestamp=timestamp,
        event_id=pl.concat_str(
            [col_or_null(schema, "MessageID", pl.String()), kind, timestamp], separator="|"
        ),
        campaign_id=coalesce_present(schema, "Tag", "MessageStream"),
        url=col_or_null(schema, "OriginalLink"),
        user_agent=col_or_null(schema, "UserAgent"),
        bounce_type=pl.when(kind == "Bounce").then(
            bounce_by_value(col_or_null(schema, "Type"), HARD_TYPES, SOFT_TYPES)
        ),
    )
    return drop_skipped(mapped)


PRESET = Preset(
    name="postmark",
    description="Postmark webhooks / Messages API (RecordType, Recipient or Email, *At times)",
    signature=("RecordType", "MessageID"),
    mapper=_map,
    priority=20,
    event_map=EVENT_MAP,
)
