"""``klaviyo``: Klaviyo event exports (metric exports as CSV, or API events flattened).

Klaviyo names events by metric: ``Received Email``, ``Opened Email``, ``Clicked Email``,
``Bounced Email``, ``Marked Email as Spam``, ``Unsubscribed from Email Marketing``, ``Placed
Order``, ``Viewed Product``, ``Active on Site``, ``Submitted Form``. Columns accepted (first
present wins): e-mail ``Email``/``$email``/``email``/``profile.email``; metric ``Metric
Name``/``Metric``/``metric``/``metric.name``; time ``Timestamp``/``datetime``/``timestamp``/
``attributes.datetime``; id ``$event_id``/``Event ID``/``id``; campaign ``Campaign
Name``/``$message``/``campaign``; value ``$value``/``Value``/``value``; URL ``URL``/``$url``.

Machine activity: Klaviyo tags every ``Opened Email`` with a true/false ``Apple Privacy Open``
property and every ``Clicked Email`` with ``Bot Click`` (``machine_open`` in some exports); a
column of one of those names (or ending in ``.<name>`` for flattened API events) gives
``is_machine``, and rows whose metric is itself named ``Apple Privacy Open``/``Bot Click`` are
flagged too. An export without any such column gets engscore's heuristic instead (a column of
``False`` would switch it off).

Skipped: ``Ordered Product`` (one line of a ``Placed Order``: counting both would double the
revenue) and ``Dropped Email``. Other metrics (``Started Checkout``) are kept lower-cased.
"""

from __future__ import annotations

import polars as pl

from engscore.errors import DataError
from engscore.presets.base import (
    MapContext,
    Preset,
    coalesce_present,
    drop_skipped,
    map_events,
    parse_bool,
    present_only,
)

EVENT_MAP: dict[str, str | None] = {
    "received email": "delivered",
    "opened email": "open",
    "apple privacy open": "open",
    "clicked email": "click",
    "bot click": "click",
    "bounced email": "bounce",
    "dropped email": None,
    "marked email as spam": "complaint",
    "unsubscribed": "unsubscribe",
    "unsubscribed from email marketing": "unsubscribe",
    "unsubscribed from list": "unsubscribe",
    "placed order": "purchase",
    "ordered product": None,  # one line of a Placed Order: counting both would double revenue
    "viewed product": "page_view",
    "active on site": "page_view",
    "submitted form": "form_submit",
    "replied to email": "reply",
}
EMAIL = ("Email", "$email", "email", "profile.email", "Profile Email")
METRIC = ("Metric Name", "Metric", "metric", "metric.name", "Event")
TIME = ("Timestamp", "datetime", "timestamp", "attributes.datetime", "Datetime")
MACHINE_FLAGS = ("Apple Privacy Open", "Bot Click", "machine_open", "$machine_open")


def _first(schema: pl.Schema, names: tuple[str, ...], what: str, ctx: MapContext) -> str:
    for name in names:
        if name in schema:
            return name
    found = ", ".join(schema.names())
    raise DataError(
        f"{ctx.source}: missing required column for preset 'klaviyo': {what} "
        f"(one of {', '.join(repr(n) for n in names)}; columns found: {found})"
    )


def _map(frame: pl.LazyFrame, schema: pl.Schema, ctx: MapContext) -> pl.LazyFrame:
    email = _first(schema, EMAIL, "the e-mail", ctx)
    metric = _first(schema, METRIC, "the metric name", ctx)
    when = _first(schema, TIME, "the time", ctx)
    name = pl.col(metric).cast(pl.String).str.strip_chars().str.to_lowercase()
    flags = [parse_bool(pl.col(c)) for c in schema if c.rsplit(".", 1)[-1] in MACHINE_FLAGS]
    machine = None
    if flags:
        machine = name.is_in(["apple privacy open", "bot click"]) | pl.any_horizontal(flags)
    bounce_type = coalesce_present(schema, "Bounce Type", "bounce_type", dtype=pl.String())
    mapped = frame.with_columns(
        contact_id=pl.col(email),
        _raw_event=pl.col(metric),
        event_type=map_events(pl.col(metric), EVENT_MAP),
        timestamp=pl.col(when),
        event_id=coalesce_present(schema, "$event_id", "Event ID", "id", dtype=pl.String()),
        campaign_id=coalesce_present(
            schema, "Campaign Name", "$message", "campaign", "Campaign", dtype=pl.String()
        ),
        url=coalesce_present(schema, "URL", "$url", "url", dtype=pl.String()),
        amount=coalesce_present(schema, "$value", "Value", "value", dtype=pl.String()),
        **present_only(is_machine=machine),
        bounce_type=pl.when(name == "bounced email").then(
            bounce_type.str.to_lowercase().str.extract(r"(hard|soft)")
        ),
    )
    return drop_skipped(mapped)


PRESET = Preset(
    name="klaviyo",
    description="Klaviyo metric/event exports (Email, Metric Name, Timestamp, $value, ...)",
    signature=("Metric Name", "Timestamp"),
    alternatives=(("$email", "metric.name"), ("Email", "Metric", "Timestamp")),
    mapper=_map,
    flags_machine_opens=True,
    priority=25,
    event_map=EVENT_MAP,
)
