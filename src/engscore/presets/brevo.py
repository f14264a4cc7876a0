"""``brevo``: Brevo (Sendinblue) transactional and marketing webhook records.

Fields (Brevo "Transactional webhooks" / "Marketing webhooks" docs): ``event``, ``email``,
``message-id``, ``ts_epoch`` (UTC, milliseconds), ``ts_event`` (UTC, seconds), ``ts``, ``date``
(a CET/CEST wall-clock string — never used: it is ambiguous at DST changes), ``link``, ``tag``,
``camp_id`` and ``URL`` (marketing), ``reason``. Brevo reports Apple Mail Privacy Protection
opens as ``proxy_open`` / ``unique_proxy_open``.

Every documented event name. Transactional webhooks
(https://developers.brevo.com/docs/transactional-webhooks): ``request``/``sent``, ``delivered``,
``opened``, ``unique_opened``, ``proxy_open``, ``unique_proxy_open``, ``click``,
``hard_bounce``, ``soft_bounce``, ``invalid_email``, ``blocked``, ``spam``, ``deferred``,
``unsubscribed``, ``error``. Marketing webhooks
(https://developers.brevo.com/docs/marketing-webhooks): ``spam``, ``opened``, ``click``,
``hard_bounced``, ``soft_bounced``, ``delivered``, ``unsubscribe``, ``proxy_open``,
``contact_deleted``, ``contact_updated``, ``list_addition``, ``unique_coupon_sent``. The
webhook-settings API spells them in camelCase (``hardBounce``, ``uniqueOpened``): the same
names, since names match whatever their separators.

Skipped: ``unique_opened`` and ``unique_proxy_open`` (Brevo sends them besides ``opened`` /
``proxy_open`` for the first open: counting both would double it) and ``deferred``.
``invalid_email`` (the address does not exist) is a hard bounce. Kept under their own name:
``blocked`` (Brevo did not send: the address is on a blocklist), ``error``, ``list_addition``,
``contact_updated``, ``contact_deleted``, ``unique_coupon_sent``.
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
from engscore.timestamps import from_epoch

EVENT_MAP: dict[str, str | None] = {
    "request": "send",
    "sent": "send",
    "delivered": "delivered",
    "opened": "open",
    "proxy_open": "open",
    "click": "click",
    "clicked": "click",
    "hard_bounce": "bounce",
    "hard_bounced": "bounce",  # marketing webhooks
    "soft_bounce": "bounce",
    "soft_bounced": "bounce",  # marketing webhooks
    "invalid_email": "bounce",
    "invalid": "bounce",
    "spam": "complaint",
    "complaint": "complaint",
    "unsubscribed": "unsubscribe",
    "unsubscribe": "unsubscribe",
    "reply": "reply",
    "blocked": "blocked",
    "error": "error",
    "list_addition": "list_addition",
    "contact_updated": "contact_updated",
    "contact_deleted": "contact_deleted",
    "unique_coupon_sent": "unique_coupon_sent",
    # First-open duplicates of `opened`/`proxy_open`, and retries in progress: skipped.
    "unique_opened": None,
    "unique_proxy_open": None,
    "deferred": None,
}
_HARD = ("hard_bounce", "hardbounce", "hard_bounced", "invalid_email", "invalid")
_SOFT = ("soft_bounce", "softbounce", "soft_bounced")


def _map(frame: pl.LazyFrame, schema: pl.Schema, ctx: MapContext) -> pl.LazyFrame:
    require(schema, ("email", "event"), ctx, "brevo")
    epochs = [c for c in ("ts_epoch", "ts_event", "ts") if c in schema]
    if not epochs:
        require(schema, ("ts_epoch",), ctx, "brevo")
    raw = pl.col("event").cast(pl.String).str.to_lowercase()
    # Each epoch field converts on its own unit guess (ms vs s) before coalescing.
    timestamp = pl.coalesce([from_epoch(pl.col(c).cast(pl.Float64, strict=False)) for c in epochs])
    mapped = frame.with_columns(
        contact_id=pl.col("email"),
        _raw_event=pl.col("event"),
        event_type=map_events(pl.col("event"), EVENT_MAP),
        timestamp=timestamp,
        event_id=pl.concat_str(
            [col_or_null(schema, "message-id", pl.String()), raw, timestamp.cast(pl.String)],
            separator="|",
        ),
        campaign_id=coalesce_present(schema, "camp_id", "tag", "message-id", dtype=pl.String()),
        # Transactional webhooks call the clicked URL `link`, marketing webhooks `URL`.
        url=coalesce_present(schema, "link", "URL", dtype=pl.String()),
        bounce_type=bounce_by_value(pl.col("event"), _HARD, _SOFT),
        is_machine=raw.str.replace_all(r"[\s_\-]", "").is_in(["proxyopen", "uniqueproxyopen"]),
    )
    return drop_skipped(mapped)


PRESET = Preset(
    name="brevo",
    description="Brevo/Sendinblue webhooks (event, email, ts_epoch/ts_event; never `date`)",
    signature=("email", "event", "ts_event"),
    alternatives=(("email", "event", "ts_epoch"), ("email", "event", "message-id", "ts")),
    mapper=_map,
    flags_machine_opens=True,
    priority=25,
    event_map=EVENT_MAP,
)
