"""Lifecycle status from the time since the last engagement (SPEC section 5), plus two flags.

Status
    ``L`` is the contact's last engagement: the latest event at or before ``as_of`` whose type
    is in ``engaged_events``, machine events excluded when ``exclude_machine_opens`` is true
    (the default; ``is_machine`` null counts as human). With the default thresholds
    (``status.at_risk_after`` 3m, ``inactive_after`` 6m, ``lapsed_after`` 12m)::

        active         L >  as_of - 3m
        at_risk        as_of - 6m  <  L <= as_of - 3m
        inactive       as_of - 12m <  L <= as_of - 6m
        lapsed         L <= as_of - 12m
        never_engaged  no engagement at or before as_of (e.g. sends and deliveries only)

    A threshold reads "no engagement for N": a contact whose last engagement was exactly 6
    months ago *is* inactive; one microsecond later it is still at risk. Months and years are
    calendar units (``Duration.subtract_from``): 6 months before 2026-08-31 is 2026-02-28. The
    cut-offs are computed once in Python (``status_cutoffs``) and compared as literals.

Seasonal
    True when the contact engaged (``engaged_events``) or bought (``rfm.purchase_events``)
    within ``status.seasonal_window`` (default 30d) either side of the same instant one year
    earlier, both ends inclusive: ``[as_of - 1y - window, as_of - 1y + window]``. Machine
    events never count. A seasonal buyer who has gone quiet is a reason not to sunset them yet.

Unengaged (Klaviyo style)
    True when, in the window ``(as_of - status.unengaged_window, as_of]`` (default 180d), the
    contact received at least ``status.unengaged_deliveries`` (default 5) ``delivered`` events
    and had no human ``open`` or ``click``. Many exports have sends but no deliveries: a contact
    with no ``delivered`` event at all (at or before ``as_of``) has its ``send`` events counted
    instead. A contact whose export has deliveries is judged on deliveries only, even if some
    sends in the window have no delivery (they bounced or are still pending).

Events after ``as_of`` are ignored throughout. The whole computation is one lazy ``group_by``.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from engscore.durations import Duration
from engscore.engine.exprs import latest, machine_flag
from engscore.rules import Rules, Status
from engscore.schema import CONTACT, EVENT_TYPE, TIMESTAMP

ACTIVE = "active"
AT_RISK = "at_risk"
INACTIVE = "inactive"
LAPSED = "lapsed"
NEVER_ENGAGED = "never_engaged"
#: Every status, from the most to the least engaged.
STATUSES = (ACTIVE, AT_RISK, INACTIVE, LAPSED, NEVER_ENGAGED)

STATUS_SCHEMA = pl.Schema(
    {
        CONTACT: pl.String,
        "status": pl.String,
        "seasonal": pl.Boolean,
        "unengaged": pl.Boolean,
    }
)

_ONE_YEAR = Duration(1, "y")
_OPEN_OR_CLICK = ("open", "click")


def status_cutoffs(status: Status, as_of: datetime) -> dict[str, datetime]:
    """The instants the status and flags are judged against, for ``as_of``.

    ``at_risk``, ``inactive``, ``lapsed``: a last engagement at or before the instant has at
    least that status. ``seasonal_from``/``seasonal_to``: the inclusive seasonal window one
    year back. ``unengaged_after``: the (exclusive) start of the unengaged window.
    """
    year_ago = _ONE_YEAR.subtract_from(as_of)
    return {
        AT_RISK: status.at_risk_after.subtract_from(as_of),
        INACTIVE: status.inactive_after.subtract_from(as_of),
        LAPSED: status.lapsed_after.subtract_from(as_of),
        "seasonal_from": status.seasonal_window.subtract_from(year_ago),
        "seasonal_to": status.seasonal_window.add_to(year_ago),
        "unengaged_after": status.unengaged_window.subtract_from(as_of),
    }


def excluded_machine(rules: Rules, schema: pl.Schema) -> pl.Expr:
    """True for the machine events the rules exclude (``exclude_machine_opens``)."""
    return machine_flag(schema) if rules.exclude_machine_opens else pl.lit(False)


def status_expr(last_engaged: pl.Expr, status: Status, as_of: datetime) -> pl.Expr:
    """The status of a last-engagement timestamp (null: ``never_engaged``)."""
    cut = status_cutoffs(status, as_of)
    return (
        pl.when(last_engaged.is_null())
        .then(pl.lit(NEVER_ENGAGED))
        .when(last_engaged <= cut[LAPSED])
        .then(pl.lit(LAPSED))
        .when(last_engaged <= cut[INACTIVE])
        .then(pl.lit(INACTIVE))
        .when(last_engaged <= cut[AT_RISK])
        .then(pl.lit(AT_RISK))
        .otherwise(pl.lit(ACTIVE))
    )


def status_aggregations(
    rules: Rules,
    as_of: datetime,
    human: pl.Expr,
    kind: pl.Expr | None = None,
    with_last_engaged: bool = True,
) -> dict[str, pl.Expr]:
    """The per-contact aggregations the status columns need (``human``: not a machine event;
    ``kind``: the event type, ``event_type`` unless given; ``with_last_engaged`` false: the
    caller aggregates the last engagement itself and passes it to ``status_columns``).

    For a ``group_by(contact_id)`` over the events at or before ``as_of``; ``status_columns``
    turns them into ``status``, ``seasonal`` and ``unengaged``. Split this way so the scores
    query computes them in the same pass as the other facts.
    """
    cut = status_cutoffs(rules.status, as_of)
    stamp = pl.col(TIMESTAMP)
    kind = pl.col(EVENT_TYPE) if kind is None else kind
    engaged = human & kind.is_in(rules.engaged_events)
    bought = human & kind.is_in(rules.rfm.purchase_events)
    seasonal = (engaged | bought) & stamp.is_between(
        cut["seasonal_from"], cut["seasonal_to"], closed="both"
    )
    recent = stamp > cut["unengaged_after"]
    last_engaged = {"_status_last_engaged": latest(stamp, engaged)} if with_last_engaged else {}
    # Keep MAILING_AGGREGATIONS in step: the ones that read sends and deliveries only.
    return {
        **last_engaged,
        "_status_seasonal": seasonal.any(),
        "_status_has_delivered": (kind == "delivered").any(),
        "_status_delivered": (recent & (kind == "delivered")).sum(),
        "_status_sent": (recent & (kind == "send")).sum(),
        "_status_opened": (recent & human & kind.is_in(_OPEN_OR_CLICK)).any(),
    }


#: The ``status_aggregations`` that read sends and deliveries only.
MAILING_AGGREGATIONS = ("_status_has_delivered", "_status_delivered", "_status_sent")


def status_columns(
    rules: Rules, as_of: datetime, last_engaged: pl.Expr | None = None
) -> dict[str, pl.Expr]:
    """``status``, ``seasonal``, ``unengaged`` from the ``status_aggregations`` columns (and
    ``last_engaged`` when they were made without it)."""
    if last_engaged is None:
        last_engaged = pl.col("_status_last_engaged")
    mailed = (
        pl.when(pl.col("_status_has_delivered"))
        .then(pl.col("_status_delivered"))
        .otherwise(pl.col("_status_sent"))
    )
    return {
        "status": status_expr(last_engaged, rules.status, as_of),
        "seasonal": pl.col("_status_seasonal"),
        "unengaged": (mailed >= rules.status.unengaged_deliveries) & ~pl.col("_status_opened"),
    }


def contact_status(events: pl.LazyFrame, rules: Rules, as_of: datetime) -> pl.LazyFrame:
    """One row per contact with an event at or before ``as_of``.

    Columns ``contact_id, status, seasonal, unengaged`` (see the module docstring), sorted by
    ``contact_id``; lazy, for the caller to collect.
    """
    schema = events.collect_schema()
    facts = (
        events.filter(pl.col(TIMESTAMP) <= as_of)
        .with_columns(_human=~excluded_machine(rules, schema))
        .group_by(CONTACT)
        .agg(**status_aggregations(rules, as_of, pl.col("_human")))
    )
    return facts.select(pl.col(CONTACT), **status_columns(rules, as_of)).sort(CONTACT)
