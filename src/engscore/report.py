"""``engscore report``: one self-contained HTML file from the scores (and events, segments).

Aggregates are computed here into a typed context (``ReportContext``); the jinja2 template only
lays them out. Nothing per contact goes into the page, so a report on a million contacts is as
small as one on a thousand. Charts are inline SVG built from ``engscore.charts`` geometry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import polars as pl
from jinja2 import Environment, PackageLoader, StrictUndefined

from engscore import __version__
from engscore.charts import (
    BLUE,
    GREEN,
    GREY,
    ORANGE,
    PURPLE,
    VERMILLION,
    Chart,
    bar_chart,
    heat_map,
    histogram,
    horizontal_bars,
    human,
    line_chart,
    percent,
    rate_chart,
)
from engscore.config import IngestOptions
from engscore.durations import Duration
from engscore.engine.exprs import machine_flag
from engscore.engine.health import (
    BOUNCE_WATCH,
    COMPLAINT_LIMIT,
    COMPLAINT_WATCH,
    DEFAULT_MIN_DELIVERED,
    OVER_LIMIT,
)
from engscore.engine.status import STATUSES
from engscore.errors import ConfigError, DataError
from engscore.health import NO_VALUE, HealthViews, report_health
from engscore.io.contacts import load_contacts
from engscore.io.events import load_events
from engscore.io.outputs import atomic_path, shown_path
from engscore.io.scores_file import (
    locate_scores,
    read_scores,
    recorded_rules,
    scores_schema,
)
from engscore.rfm_map import SEGMENT_NAMES
from engscore.rules import load_rules
from engscore.schema import CONTACT
from engscore.segments import SUPPRESSED

STATUS_LABELS = {
    "active": "Active",
    "at_risk": "At risk",
    "inactive": "Inactive",
    "lapsed": "Lapsed",
    "never_engaged": "Never engaged",
}
#: Seed material: 20-50% of a typical list is inactive.
TYPICAL_INACTIVE = (0.20, 0.50)
HISTOGRAM_BINS = 24
MONTHS_SHOWN = 24
TOP_CAMPAIGNS = 10
MIN_DELIVERED = 20
BREAKDOWN_VALUES = 12


@dataclass(frozen=True)
class Figure:
    """A headline number: label, formatted value, and a share or comment."""

    label: str
    value: str
    detail: str = ""
    tone: str = ""


@dataclass(frozen=True)
class Table:
    """A table of formatted cells; ``numeric`` columns are right-aligned."""

    headers: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    caption: str = ""


@dataclass(frozen=True)
class Section:
    """A titled part of the report: charts, tables and plain-words notes."""

    title: str
    anchor: str
    intro: str = ""
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReportContext:
    """Everything the template shows."""

    title: str
    generated_at: str
    as_of: str
    version: str
    sources: list[str]
    headline: list[Figure]
    inactive_verdict: str
    sections: list[Section]
    #: The list health in a sentence (empty without events).
    health_verdict: str = ""


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def headline(scores: pl.DataFrame) -> tuple[list[Figure], str]:
    """Contacts, each status, the inactive share against the typical range, suppressed, buyers."""
    total = scores.height
    counts = dict(scores.group_by("status").len().iter_rows()) if total else {}
    figures = [Figure("Contacts", human(total))]
    for status in STATUSES:
        count = _int(counts.get(status))
        figures.append(Figure(STATUS_LABELS[status], human(count), percent(count, total), status))
    quiet = sum(_int(counts.get(s)) for s in ("inactive", "lapsed", "never_engaged"))
    share = quiet / total if total else 0.0
    low, high = TYPICAL_INACTIVE
    if not total:
        verdict = "No contacts at this as-of instant."
    elif share < low:
        verdict = f"{share:.0%} of the list is inactive: below the typical {low:.0%}–{high:.0%}."
    elif share <= high:
        verdict = f"{share:.0%} of the list is inactive: within the typical {low:.0%}–{high:.0%}."
    else:
        verdict = (
            f"{share:.0%} of the list is inactive: above the typical {low:.0%}–{high:.0%}; "
            "a sunset policy would protect deliverability."
        )
    figures.append(Figure("Inactive share", f"{share:.0%}", "inactive, lapsed or never engaged"))
    suppressed = _int(scores.select(SUPPRESSED.sum()).item()) if total else 0
    figures.append(Figure("Suppressed", human(suppressed), percent(suppressed, total)))
    buyers = _int(scores["r"].is_not_null().sum()) if total and "r" in scores.columns else 0
    figures.append(Figure("Buyers", human(buyers), percent(buyers, total)))
    return figures, verdict


def score_section(scores: pl.DataFrame, grades: list[tuple[str, float]]) -> Section:
    """Histogram of non-zero scores with the grade thresholds, and the grade counts."""
    section = Section("Score distribution", "scores")
    if not scores.height:
        section.notes.append("No contacts were scored, so there is no distribution to show.")
        return section
    values = scores["score"]
    zero = _int((values == 0).sum())
    drawn = values.filter(values != 0)
    if drawn.len():
        low = min(float(drawn.min()), 0.0)  # type: ignore[arg-type]
        high = max(float(drawn.max()), max((t for _, t in grades), default=0.0))  # type: ignore[arg-type]
        if high <= low:
            high = low + 1
        step = (high - low) / HISTOGRAM_BINS
        edges = [low + i * step for i in range(HISTOGRAM_BINS + 1)]
        index = ((drawn - low) / step).floor().clip(0, HISTOGRAM_BINS - 1).cast(pl.Int64)
        counts = [0] * HISTOGRAM_BINS
        for bucket, count in pl.DataFrame({"b": index}).group_by("b").len().iter_rows():
            counts[int(bucket)] = int(count)
        section.charts.append(
            histogram(edges, counts, grades, "Contacts by score", "score", "contacts")
        )
    if zero:
        section.notes.append(
            f"{human(zero)} contacts ({percent(zero, scores.height)}) score exactly 0 "
            "(nothing recent, or reset) and are left out of the chart."
        )
    by_grade = dict(scores.group_by("grade").len().iter_rows())
    rows = [
        [
            name,
            f"≥ {threshold:g}",
            human(_int(by_grade.get(name))),
            percent(_int(by_grade.get(name)), scores.height),
        ]
        for name, threshold in grades
    ]
    section.tables.append(
        Table(["grade", "threshold", "contacts", "share"], rows, [False, True, True, True])
    )
    return section


def rfm_section(scores: pl.DataFrame, bins: int) -> Section:
    """R x F heat map (count, mean monetary) and the size of each named RFM segment."""
    section = Section(
        "RFM",
        "rfm",
        "Buyers scored on recency (R, recent = high), frequency (F) and monetary value (M).",
    )
    if "r" not in scores.columns or not _int(scores["r"].is_not_null().sum()):
        section.notes.append(
            "No contact has bought anything yet, so there is no RFM to show: "
            "RFM needs purchase events."
        )
        return section
    buyers = scores.filter(pl.col("r").is_not_null())
    grid = buyers.group_by("r", "f").agg(n=pl.len(), mean=pl.col("monetary").mean())
    cells = {
        (int(r), int(f)): (int(n), float(mean) if mean is not None else None)
        for r, f, n, mean in grid.iter_rows()
    }
    levels = list(range(bins, 0, -1))
    section.charts.append(
        heat_map(
            levels,
            list(range(1, bins + 1)),
            cells,
            "Buyers by R and F",
            "frequency score",
            "recency score",
        )
    )
    for axis, what in (("f", "number of purchases"), ("r", "days since the last purchase")):
        used = set(buyers[axis].cast(pl.Int64).to_list())
        empty = [f"{axis.upper()}={level}" for level in range(1, bins + 1) if level not in used]
        if empty:
            section.notes.append(
                f"{' and '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty: many buyers "
                f"share the same {what}, and equal values never split across scores."
            )
    sizes = dict(buyers.group_by("rfm_segment").len().iter_rows())
    names = [n for n in SEGMENT_NAMES if n in sizes] + sorted(
        n for n in sizes if n not in SEGMENT_NAMES and n is not None
    )
    values = [float(sizes[n]) for n in names]
    labels = [f"{human(sizes[n])} ({percent(sizes[n], buyers.height)})" for n in names]
    section.charts.append(
        horizontal_bars(names, values, "Buyers per RFM segment", "buyers", GREEN, labels)
    )
    return section


def prediction_section(scores: pl.DataFrame) -> Section:
    """P(alive) by months since the last purchase, and the predicted totals."""
    section = Section(
        "Predicted value",
        "predicted",
        "Buy-till-you-die model: the chance each buyer is still a customer (P(alive)) and "
        "what they are expected to buy.",
    )
    has = "p_alive" in scores.columns and _int(scores["p_alive"].is_not_null().sum()) > 0
    if not has:
        section.notes.append(
            "No predictions: the model needs enough buyers and repeat buyers (see the warnings "
            "of `engscore score`), or predictions are turned off in the rules."
        )
        return section
    buyers = scores.filter(pl.col("p_alive").is_not_null())
    months = (pl.col("recency_days") / 30.4375).floor().cast(pl.Int64).clip(0, 24)
    curve = dict(buyers.group_by(months.alias("m")).agg(pl.col("p_alive").mean()).iter_rows())
    labels = [str(m) for m in range(24)] + ["24+"]
    values = [float(curve.get(m, 0.0) or 0.0) for m in range(25)]
    section.charts.append(
        line_chart(
            labels,
            [("mean P(alive)", BLUE, values)],
            "P(alive) by months since the last purchase",
            "months since the last purchase (30.4-day months)",
            "mean P(alive)",
            percent_axis=True,
            every_nth_label=2,
        )
    )
    expected = [c for c in scores.columns if c.startswith("expected_purchases_")]
    figures = []
    if expected:
        suffix = expected[0].removeprefix("expected_purchases_")
        try:
            period = Duration.parse(suffix).describe()
        except ValueError:
            period = suffix
        total = float(buyers[expected[0]].sum())
        figures.append(f"{human(total)} purchases expected over the next {period}")
    if "clv" in scores.columns and _int(buyers["clv"].is_not_null().sum()):
        figures.append(f"a total customer lifetime value of {human(float(buyers['clv'].sum()))}")
    if figures:
        section.notes.append(f"{human(buyers.height)} buyers: " + " and ".join(figures) + ".")
    return section


def _month_label(month: datetime) -> str:
    return f"{month:%Y-%m}"


def engagement_section(events: pl.LazyFrame | None, as_of: datetime) -> Section:
    """Opens (human and machine apart), clicks and purchases per month; machine-open share."""
    section = Section("Engagement over time", "engagement")
    if events is None:
        section.notes.append("Pass --events to see engagement per month.")
        return section
    schema = events.collect_schema()
    machine = machine_flag(schema)
    kind = pl.col("event_type")
    stamp = pl.col("timestamp")
    current = events.filter(stamp <= as_of)
    # Only the charted types are grouped by month (sends and deliveries, most of the events,
    # are not); the months shown run from the first event's to the last one's, a month
    # without any of them at zero. Half the time of grouping every event (100M-event store).
    counted = (kind == "open") | (kind == "click") | (kind == "purchase")
    per_month, span = pl.collect_all(
        [
            current.filter(counted)
            .group_by(month=stamp.dt.truncate("1mo"))
            .agg(
                human_opens=((kind == "open") & ~machine).sum(),
                machine_opens=((kind == "open") & machine).sum(),
                clicks=((kind == "click") & ~machine).sum(),
                purchases=(kind == "purchase").sum(),
            ),
            current.select(
                first=stamp.min().dt.truncate("1mo"), last=stamp.max().dt.truncate("1mo")
            ),
        ],
        engine="streaming",
    )
    first, last = span.row(0)
    if last is None:
        section.notes.append("No events at or before the as-of instant.")
        return section
    calendar = pl.datetime_range(first, last, "1mo", eager=True).cast(per_month.schema["month"])
    monthly = (
        calendar.alias("month")
        .tail(MONTHS_SHOWN)
        .to_frame()
        .join(per_month, on="month", how="left", maintain_order="left")
        .fill_null(0)
    )
    months = [_month_label(m) for m in monthly["month"]]
    nth = 1 if len(months) <= 12 else 2
    section.charts.append(
        line_chart(
            months,
            [
                ("human opens", BLUE, monthly["human_opens"].cast(pl.Float64).to_list()),
                ("machine opens", GREY, monthly["machine_opens"].cast(pl.Float64).to_list()),
                ("clicks", ORANGE, monthly["clicks"].cast(pl.Float64).to_list()),
                ("purchases", GREEN, monthly["purchases"].cast(pl.Float64).to_list()),
            ],
            "Events per month",
            "month",
            "events",
            every_nth_label=nth,
        )
    )
    opens = monthly["human_opens"] + monthly["machine_opens"]
    share = (monthly["machine_opens"] / opens).fill_nan(0.0).fill_null(0.0)
    section.charts.append(
        line_chart(
            months,
            [("machine share of opens", VERMILLION, share.to_list())],
            "Machine opens as a share of all opens",
            "month",
            "share of opens",
            percent_axis=True,
            every_nth_label=nth,
        )
    )
    section.notes.append(
        "Machine opens (Apple Mail Privacy Protection, security scanners) are counted apart: "
        "they earn no points and never make a contact active."
    )
    return section


def inactivity_section(scores: pl.DataFrame, as_of: datetime) -> Section:
    """How many contacts last engaged 0, 1, 2, ... 24+ months ago."""
    section = Section("Inactivity curve", "inactivity")
    engaged = scores.filter(pl.col("last_engaged_at").is_not_null()) if scores.height else scores
    never = scores.height - engaged.height
    if not engaged.height:
        section.notes.append("No contact has engaged yet (opens, clicks, replies, purchases ...).")
        return section
    days = (pl.lit(as_of) - pl.col("last_engaged_at")).dt.total_days()
    months = engaged.select((days / 30.4375).floor().cast(pl.Int64).clip(0, 24).alias("m"))
    counts = dict(months.group_by("m").len().iter_rows())
    labels = [str(m) for m in range(24)] + ["24+"]
    values = [float(counts.get(m, 0)) for m in range(25)]
    section.charts.append(
        bar_chart(
            labels,
            values,
            "Contacts by months since their last engagement",
            "months since last engagement (30.4-day months)",
            "contacts",
            ORANGE,
        )
    )
    if never:
        section.notes.append(f"{human(never)} contacts never engaged and are not in the curve.")
    return section


def segments_section(folder: Path | None) -> Section:
    """Segment sizes from ``manifest.json``, with entered/left since the previous run."""
    section = Section("Segments", "segments")
    manifest_path = folder / "manifest.json" if folder is not None else None
    if manifest_path is None or not manifest_path.is_file():
        section.notes.append(
            "Run `engscore segment` (or pass --segments DIR) to see segment sizes here."
        )
        return section
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
        segments = manifest["segments"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{manifest_path}: not a manifest written by engscore segment") from exc
    compared = manifest.get("compared_with") is not None
    rows = []
    for name, info in segments.items():
        moved = [
            human(info["entered"]) if info.get("entered") is not None else "-",
            human(info["left"]) if info.get("left") is not None else "-",
        ]
        rows.append(
            [
                name,
                "yes" if info.get("mailing") else "no",
                human(info["rows"]),
                *moved,
                info.get("description", ""),
            ]
        )
    headers = ["segment", "mailing", "contacts", "entered", "left", "who"]
    section.tables.append(Table(headers, rows, [False, False, True, True, True, False]))
    if not compared:
        section.notes.append(
            "Entered and left appear once there is a previous run to compare with."
        )
    return section


def breakdown_section(
    scores: pl.DataFrame, contacts: pl.DataFrame | None, by: list[str]
) -> Section:
    """Status, score and buyers by contact attribute (``--by country``)."""
    section = Section("Breakdown by contact attribute", "breakdown")
    if not by:
        section.notes.append("Pass --contacts FILE --by COLUMN (e.g. --by country) for breakdowns.")
        return section
    if contacts is None:
        raise ConfigError("--by needs --contacts FILE")
    joined = scores.join(contacts, on=CONTACT, how="left")
    for column in by:
        if column not in contacts.columns:
            raise ConfigError(
                f"--by {column}: the contacts file has no column {column!r} "
                f"(it has: {', '.join(contacts.columns)})"
            )
        value = pl.col(column).cast(pl.String).fill_null("(none)")
        table = (
            joined.group_by(value.alias("value"))
            .agg(
                n=pl.len(),
                active=(pl.col("status") == "active").sum(),
                quiet=pl.col("status").is_in(["inactive", "lapsed", "never_engaged"]).sum(),
                buyers=pl.col("r").is_not_null().sum() if "r" in joined.columns else pl.lit(0),
                mean=pl.col("score").mean(),
            )
            .sort(["n", "value"], descending=[True, False])
        )
        shown = table.head(BREAKDOWN_VALUES)
        rows = [
            [str(v), human(n), percent(a, n), percent(q, n), human(b), human(m or 0.0, 1)]
            for v, n, a, q, b, m in shown.iter_rows()
        ]
        rest = table.height - shown.height
        caption = f"by {column}" + (
            f" (the {BREAKDOWN_VALUES} largest of {table.height} values)" if rest > 0 else ""
        )
        section.tables.append(
            Table(
                [column, "contacts", "active", "inactive", "buyers", "mean score"],
                rows,
                [False, True, True, True, True, True],
                caption,
            )
        )
    return section


def campaigns_section(events: pl.LazyFrame | None, as_of: datetime) -> Section:
    """Top campaigns by human clicks per delivered mail."""
    section = Section(
        "Top campaigns", "campaigns", "Campaigns with the most clicks per delivered mail."
    )
    if events is None:
        section.notes.append("Pass --events to see the top campaigns.")
        return section
    schema = events.collect_schema()
    if "campaign_id" not in schema:
        section.notes.append("The events have no campaign column.")
        return section
    machine = machine_flag(schema)
    kind = pl.col("event_type")
    counts = (
        events.filter((pl.col("timestamp") <= as_of) & pl.col("campaign_id").is_not_null())
        .group_by("campaign_id")
        .agg(
            # Counts, not distinct contacts: sums stream in bounded memory on any store size.
            delivered=(kind == "delivered").sum(),
            sent=(kind == "send").sum(),
            clickers=((kind == "click") & ~machine).sum(),
        )
        .with_columns(base=pl.when(pl.col("delivered") > 0).then("delivered").otherwise("sent"))
        .filter(pl.col("base") >= MIN_DELIVERED)
        .with_columns(rate=pl.col("clickers") / pl.col("base"))
        .sort(["rate", "clickers", "campaign_id"], descending=[True, True, False])
        .head(TOP_CAMPAIGNS)
        .collect(engine="streaming")
    )
    if not counts.height:
        section.notes.append(f"No campaign reached {MIN_DELIVERED} deliveries yet.")
        return section
    rows = [
        [str(c), human(b), human(k), f"{r:.1%}"]
        for c, b, k, r in counts.select("campaign_id", "base", "clickers", "rate").iter_rows()
    ]
    section.tables.append(
        Table(
            ["campaign", "delivered", "clicks", "clicks per mail"], rows, [False, True, True, True]
        )
    )
    return section


TOP_PROVIDERS = 12
FLAGGED_CAMPAIGNS = 20
#: English month names (``%B`` would follow the machine's locale).
MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def _month_name(month: str) -> str:
    """``2026-11`` -> ``November 2026``."""
    year, number = month.split("-")
    return f"{MONTH_NAMES[int(number) - 1]} {year}"


def _calendar(first: str, last: str) -> list[str]:
    """Every ``YYYY-MM`` from ``first`` to ``last``."""
    year, month = (int(part) for part in first.split("-"))
    months = []
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _versus(count: int, base: int, limit: Fraction) -> str:
    """Where ``count / base`` stands against ``limit``, exactly: above, at or under."""
    share = Fraction(count, base)
    return "above" if share > limit else "at" if share == limit else "under"


def health_verdict(views: HealthViews | None) -> str:
    """The list health in plain words: the latest rated month's complaint rate against the
    limits (``complaint rate 0.42% in November 2026: above Gmail's 0.3% limit``), its bounce
    rate, and the other months over the limit."""
    if views is None or not views.by_month.height:
        return ""
    rated = views.by_month.filter(pl.col("complaint_rate").is_not_null())
    if not rated.height:
        return (
            f"List health: no month has {human(views.min_delivered)} deliveries, "
            "so there are no complaint or bounce rates yet."
        )
    latest = rated.row(rated.height - 1, named=True)
    when = _month_name(latest["month"])
    complaints, delivered = latest["complaints"], latest["delivered"]
    rate = _rate(latest["complaint_rate"])
    limit = _versus(complaints, delivered, COMPLAINT_LIMIT)
    if limit != "under":
        text = f"Complaint rate {rate} in {when}: {limit} Gmail's 0.3% limit."
    elif _versus(complaints, delivered, COMPLAINT_WATCH) != "under":
        watch = _versus(complaints, delivered, COMPLAINT_WATCH)
        text = (
            f"Complaint rate {rate} in {when}: under Gmail's 0.3% limit, "
            f"{watch} Google's recommended 0.1%."
        )
    else:
        text = f"Complaint rate {rate} in {when}: under Google's recommended 0.1%."
    if latest["bounce_rate"] is not None:
        bounce = _versus(latest["bounced"], latest["sent"], BOUNCE_WATCH)
        text += f" Bounce rate {_rate(latest['bounce_rate'])}: {bounce} the 2% guideline."
    others = [
        month
        for month, flag in rated.select("month", "flag").iter_rows()
        if flag == OVER_LIMIT and month != latest["month"]
    ]
    if others:
        text += (
            f" Over the 0.3% limit in {len(others)} other month{'s' if len(others) > 1 else ''}"
            f": {', '.join(others)}."
        )
    return text


def health_section(views: HealthViews | None) -> Section:
    """Complaint and bounce rates per month against the limits, the mailbox providers, and
    the campaigns that crossed a limit."""
    minimum = views.min_delivered if views is not None else DEFAULT_MIN_DELIVERED
    section = Section(
        "List health",
        "health",
        "Complaints (spam reports) and bounces against the mailbox providers' limits: since "
        "February 2024 Gmail and Yahoo require bulk senders to keep the spam rate under 0.3% "
        "(Google recommends under 0.1%), and deliverability guides keep bounces under 2%. "
        f"Rates need at least {human(minimum)} deliveries; machine opens are not opens.",
    )
    if views is None:
        section.notes.append("Pass --events to see the list health.")
        return section
    monthly = views.by_month
    if not int(monthly.get_column("sent").sum() or 0):
        section.notes.append("No sent or delivered mail at or before the as-of instant.")
        return section
    months = _calendar(monthly["month"].min(), monthly["month"].max())[-MONTHS_SHOWN:]  # type: ignore[arg-type]
    by_month = {row["month"]: row for row in monthly.iter_rows(named=True)}

    def values(column: str) -> list[float | None]:
        return [by_month[m][column] if m in by_month else None for m in months]

    nth = 1 if len(months) <= 12 else 2
    section.charts.append(
        rate_chart(
            months,
            [("complaint rate", BLUE, values("complaint_rate"))],
            [
                (float(COMPLAINT_WATCH), "0.1%: Google's recommendation", ORANGE),
                (float(COMPLAINT_LIMIT), "0.3%: Gmail's and Yahoo's limit", VERMILLION),
            ],
            "Complaint rate per month",
            "month",
            "complaints per delivered mail",
            every_nth_label=nth,
        )
    )
    section.charts.append(
        rate_chart(
            months,
            [
                ("bounce rate", BLUE, values("bounce_rate")),
                ("hard bounce rate", PURPLE, values("hard_bounce_rate")),
            ],
            [(float(BOUNCE_WATCH), "2%: deliverability guides", VERMILLION)],
            "Bounce rate per month",
            "month",
            "bounces per sent mail",
            every_nth_label=nth,
        )
    )
    if any(v is None for v in values("complaint_rate")):
        section.notes.append(
            f"Months with fewer than {human(minimum)} deliveries have no rate: the lines "
            "break there."
        )
    providers = views.by_provider.sort(
        ["delivered", "provider"], descending=[True, False], nulls_last=True
    )
    shown = providers.head(TOP_PROVIDERS)
    section.tables.append(
        Table(
            [
                "mailbox provider",
                "sent",
                "delivered",
                "bounce rate",
                "complaint rate",
                "unsubscribe rate",
                "open rate",
                "click rate",
                "machine opens",
                "flag",
            ],
            [
                [
                    row["provider"] if row["provider"] is not None else NO_VALUE["provider"],
                    human(row["sent"]),
                    human(row["delivered"]),
                    _rate(row["bounce_rate"]),
                    _rate(row["complaint_rate"]),
                    _rate(row["unsubscribe_rate"]),
                    _rate(row["open_rate"]),
                    _rate(row["click_rate"]),
                    _rate(row["machine_open_share"]),
                    row["flag"] or "",
                ]
                for row in shown.iter_rows(named=True)
            ],
            [False, True, True, True, True, True, True, True, True, False],
            "by mailbox provider"
            + (
                f" (the {TOP_PROVIDERS} largest of {providers.height})"
                if providers.height > TOP_PROVIDERS
                else ""
            ),
        )
    )
    flagged = views.by_campaign.filter(pl.col("flag").is_not_null()).sort(
        [pl.col("flag") == OVER_LIMIT, "complaint_rate", "bounce_rate", "campaign_id"],
        descending=[True, True, True, False],
        nulls_last=True,
    )
    if flagged.height:
        worst = flagged.head(FLAGGED_CAMPAIGNS)
        section.tables.append(
            Table(
                ["campaign", "sent", "delivered", "bounce rate", "complaint rate", "flag"],
                [
                    [
                        row["campaign_id"]
                        if row["campaign_id"] is not None
                        else NO_VALUE["campaign"],
                        human(row["sent"]),
                        human(row["delivered"]),
                        _rate(row["bounce_rate"]),
                        _rate(row["complaint_rate"]),
                        row["flag"],
                    ]
                    for row in worst.iter_rows(named=True)
                ],
                [False, True, True, True, True, False],
                "campaigns that crossed a limit: over_limit (complaints ≥ 0.3%), watch "
                "(complaints ≥ 0.1% or bounces ≥ 2%)"
                + (
                    f"; the {FLAGGED_CAMPAIGNS} worst of {flagged.height} "
                    "(`engscore health --by campaign` lists them all)"
                    if flagged.height > FLAGGED_CAMPAIGNS
                    else ""
                ),
            )
        )
    else:
        section.notes.append(
            f"No campaign crossed a limit (campaigns with at least {human(minimum)} "
            "deliveries are rated)."
        )
    if not views.sends_counted:
        section.notes.append(
            "The events have no send events: mails sent are counted as deliveries + bounces."
        )
    return section


@dataclass(frozen=True)
class ReportInputs:
    """What the report is made from (already read)."""

    scores: pl.DataFrame
    as_of: datetime
    grades: list[tuple[str, float]]
    rfm_bins: int
    events: pl.LazyFrame | None = None
    segments: Path | None = None
    contacts: Path | None = None
    by: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    #: The list health (``engscore.health.report_health``), made from the events.
    health: HealthViews | None = None


def build_context(inputs: ReportInputs, title: str, generated_at: datetime) -> ReportContext:
    """Compute every section's aggregates into the typed context."""
    contacts = None
    if inputs.contacts is not None:
        contacts = load_contacts(inputs.contacts).collect()
    figures, verdict = headline(inputs.scores)
    sections = [
        score_section(inputs.scores, inputs.grades),
        rfm_section(inputs.scores, inputs.rfm_bins),
        prediction_section(inputs.scores),
        engagement_section(inputs.events, inputs.as_of),
        health_section(inputs.health),
        inactivity_section(inputs.scores, inputs.as_of),
        segments_section(inputs.segments),
        breakdown_section(inputs.scores, contacts, inputs.by),
        campaigns_section(inputs.events, inputs.as_of),
    ]
    return ReportContext(
        title=title,
        generated_at=f"{generated_at:%Y-%m-%d %H:%M} UTC",
        as_of=f"{inputs.as_of:%Y-%m-%d %H:%M} UTC",
        version=__version__,
        sources=inputs.sources,
        headline=figures,
        inactive_verdict=verdict,
        sections=sections,
        health_verdict=health_verdict(inputs.health),
    )


def render(context: ReportContext) -> str:
    """The HTML page (jinja2, autoescape, StrictUndefined)."""
    environment = Environment(
        loader=PackageLoader("engscore", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return environment.get_template("report.html.j2").render(ctx=context)


@dataclass(frozen=True)
class ReportRequest:
    """``engscore report``'s inputs."""

    workdir: Path
    output: Path
    scores: Path | None = None
    events: list[str] | None = None
    segments: Path | None = None
    rules: Path | None = None
    contacts: Path | None = None
    by: list[str] = field(default_factory=list)
    title: str = "Engagement report"
    generated_at: datetime | None = None
    as_of: datetime | None = None
    ingest: IngestOptions = field(default_factory=IngestOptions)
    #: ``(folder, final)``: the inputs in ``folder`` are shown as in ``final``, the name the
    #: folder gets once written (``engscore run``'s work folder), so reruns read the same.
    published: tuple[Path, Path] | None = None
    #: The list health, when already made (``engscore run`` makes it for ``health.csv``);
    #: else made from the events with these providers and minimum.
    health: HealthViews | None = None
    providers: Path | None = None
    min_delivered: int = DEFAULT_MIN_DELIVERED

    def shown(self, path: Path) -> str:
        """``path`` as the report names it: relative to ``workdir``, at its published place."""
        if self.published is not None and path.is_relative_to(self.published[0]):
            path = self.published[1] / path.relative_to(self.published[0])
        return shown_path(path, self.workdir)


@dataclass(frozen=True)
class ReportSummary:
    """What ``engscore report`` wrote."""

    output: Path
    size_bytes: int
    contacts: int
    used_events: bool
    used_segments: bool


#: The scores columns the report reads, besides ``expected_purchases_<period>``.
REPORT_COLUMNS = frozenset(
    {
        "contact_id",
        "score",
        "grade",
        "status",
        "last_engaged_at",
        "recency_days",
        "monetary",
        "r",
        "f",
        "rfm_segment",
        "p_alive",
        "clv",
        *SUPPRESSED.meta.root_names(),
    }
)


def _reported(column: str) -> bool:
    return column in REPORT_COLUMNS or column.startswith("expected_purchases_")


def run_report(request: ReportRequest) -> ReportSummary:
    """``engscore report``: read scores (+ events, segments, contacts) and write the HTML."""
    if request.by and request.contacts is None:
        raise ConfigError("--by needs --contacts FILE")
    scores_path, made_from, as_of = locate_scores(request.workdir, request.scores, request.as_of)
    rules = load_rules(recorded_rules(made_from, request.rules)).rules
    schema = scores_schema(scores_path)
    for column in ("score", "grade", "status", "last_engaged_at"):
        if column not in schema:
            raise DataError(f"{scores_path}: not a scores file of this version (no {column!r})")
    # Only the columns the report reads: a third of the file, and of the memory (the whole
    # scores table of 4M contacts takes 2.3 GB).
    scores = read_scores(scores_path, [c for c in schema if _reported(c)])
    sources = [request.shown(scores_path)]
    inputs = request.events
    if inputs is None:
        recorded = [i.get("path") for i in made_from.get("inputs") or [] if isinstance(i, dict)]
        inputs = [p for p in recorded if isinstance(p, str) and Path(p).is_file()] or None
    loaded = load_events(inputs, request.ingest) if inputs else None
    events = loaded.events if loaded is not None else None
    health = request.health
    if health is None and loaded is not None:
        health = report_health(loaded, as_of, request.providers, request.min_delivered)
    sources += [request.shown(Path(i)) for i in inputs or []]
    segments = request.segments
    if segments is None and (request.workdir / "segments" / "manifest.json").is_file():
        segments = request.workdir / "segments"
    if segments is not None:
        sources.append(request.shown(segments))
    context = build_context(
        ReportInputs(
            scores=scores,
            as_of=as_of,
            grades=rules.grade_order(),
            rfm_bins=rules.rfm.bins,
            events=events,
            segments=segments,
            contacts=request.contacts,
            by=list(request.by),
            sources=sources,
            health=health,
        ),
        request.title,
        request.generated_at or datetime.now(UTC),
    )
    html = render(context)
    with atomic_path(request.output) as temporary:
        try:
            temporary.write_text(html, "utf-8")
        except OSError as exc:
            raise DataError(f"{request.output}: cannot write: {exc.strerror or exc}") from exc
    return ReportSummary(
        output=request.output,
        size_bytes=len(html.encode("utf-8")),
        contacts=scores.height,
        used_events=events is not None,
        used_segments=segments is not None,
    )
