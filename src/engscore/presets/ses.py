"""``ses``: Amazon SES event records: event publishing (Firehose JSON-lines, SNS) and the older
SNS notifications.

Fields (SES "Contents of event data that Amazon SES publishes to Amazon SNS" / "... to Firehose",
https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html):
``eventType`` — every documented value: ``Send``, ``Delivery``, ``Open``, ``Click``, ``Bounce``,
``Complaint``, ``Reject``, ``Rendering Failure`` (with a space; ``RenderingFailure`` and
``renderingFailure`` in other places of the docs are the same name), ``DeliveryDelay``,
``Subscription``; without event publishing the field is ``notificationType`` (``Bounce``,
``Complaint``, ``Delivery``) and is read the same way. ``mail.messageId``,
``mail.timestamp`` (when the mail was sent), ``mail.destination`` (a list of recipients), and
one object per event type with the event's own time: ``delivery.timestamp``,
``open.timestamp``/``open.userAgent``, ``click.timestamp``/``click.link``/``click.userAgent``,
``bounce.timestamp``/``bounce.bounceType`` (``Permanent``, ``Transient``, ``Undetermined``)/
``bounce.bouncedRecipients[].emailAddress``,
``complaint.timestamp``/``complaint.complainedRecipients[].emailAddress``.

Records delivered through Amazon SNS (each one an SNS envelope, ``"Type": "Notification"``,
the SES record as a JSON string in ``Message``) are unwrapped by the JSON reader
(:mod:`engscore.io.json_records`) before this preset or ``auto`` sees them.

The event time is the event object's timestamp; ``mail.timestamp`` is used only for ``Send``,
``Reject`` and ``RenderingFailure``, which have none. A record becomes one event per recipient:
bounced or complained recipients for those types, ``mail.destination`` otherwise.

SES has no event id and no machine-open flag: ``event_id`` is ``mail.messageId``, event type,
recipient and event time joined by ``|``; ``campaign_id`` is ``mail.messageId``; engscore's
heuristic flags machine opens (``open.userAgent`` is kept as ``user_agent``). Skipped:
``DeliveryDelay`` (a retry in progress), ``RenderingFailure`` (a template error, never sent).
``Reject`` is kept as ``reject``; ``Subscription`` (a List-Unsubscribe or preference-page change)
becomes ``unsubscribe``.
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
    require,
)

EVENT_MAP: dict[str, str | None] = {
    "send": "send",
    "delivery": "delivered",
    "open": "open",
    "click": "click",
    "bounce": "bounce",
    "complaint": "complaint",
    "reject": "reject",
    "subscription": "unsubscribe",
    # Delays are retries in progress and rendering failures are template errors: skipped.
    "deliverydelay": None,
    "rendering failure": None,
}
_EVENT_TIMES = (
    "delivery.timestamp",
    "open.timestamp",
    "click.timestamp",
    "bounce.timestamp",
    "complaint.timestamp",
    "deliveryDelay.timestamp",
    "subscription.timestamp",
    "mail.timestamp",
)


def _addresses(schema: pl.Schema, column: str) -> pl.Expr:
    """Recipient e-mails from a list of ``{emailAddress: ...}`` objects."""
    if column not in schema:
        return pl.lit(None, dtype=pl.List(pl.String))
    return pl.col(column).list.eval(pl.element().struct.field("emailAddress"))


def _map(frame: pl.LazyFrame, schema: pl.Schema, ctx: MapContext) -> pl.LazyFrame:
    if "notificationType" not in schema:
        require(schema, ("eventType",), ctx, "ses")
    require(schema, ("mail.destination",), ctx, "ses")
    kind = coalesce_present(schema, "eventType", "notificationType", dtype=pl.String())
    destination = pl.col("mail.destination")
    # A record trimmed of its recipient list still names the mail's recipients.
    recipients = (
        pl.when(kind == "Bounce")
        .then(pl.coalesce(_addresses(schema, "bounce.bouncedRecipients"), destination))
        .when(kind == "Complaint")
        .then(pl.coalesce(_addresses(schema, "complaint.complainedRecipients"), destination))
        .otherwise(destination)
    )
    with_recipients = frame.with_columns(contact_id=recipients).explode("contact_id")
    timestamp = coalesce_present(schema, *_EVENT_TIMES, dtype=pl.String())
    mapped = with_recipients.with_columns(
        _raw_event=kind,
        event_type=map_events(kind, EVENT_MAP),
        timestamp=timestamp,
        # SES has no per-event id: message, type, recipient and time identify an event.
        event_id=pl.concat_str(
            [col_or_null(schema, "mail.messageId"), kind, pl.col("contact_id"), timestamp],
            separator="|",
        ),
        campaign_id=col_or_null(schema, "mail.messageId"),
        url=col_or_null(schema, "click.link"),
        user_agent=coalesce_present(schema, "open.userAgent", "click.userAgent"),
        bounce_type=bounce_by_value(
            col_or_null(schema, "bounce.bounceType"), ["Permanent"], ["Transient"]
        ),  # "Undetermined" gets no bounce type
    )
    return drop_skipped(mapped)


PRESET = Preset(
    name="ses",
    description="Amazon SES event publishing records (eventType, mail.*, open/click/bounce.*)",
    signature=("eventType", "mail.messageId", "mail.destination"),
    alternatives=(("notificationType", "mail.messageId", "mail.destination"),),
    mapper=_map,
    priority=20,
    event_map=EVENT_MAP,
)
