"""``engscore health``: deliverability rates per group against the mailbox providers' limits."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from engscore.cli.app import app, handle_errors, reporter
from engscore.cli.options import (
    DebugOpt,
    EncodingOpt,
    EventsArg,
    LogFormatOpt,
    MachineWindowOpt,
    MappingOpt,
    OnErrorOpt,
    PresetOpt,
    QuietOpt,
    TimezoneOpt,
    as_of_instant,
    ingest_options,
)
from engscore.config import command_defaults
from engscore.engine.health import DEFAULT_MIN_DELIVERED, GROUPINGS, OVER_LIMIT, WATCH
from engscore.health import (
    NO_VALUE,
    HealthRequest,
    HealthResult,
    run_health,
    since_instant,
)
from engscore.schema import HEALTH_KEYS
from engscore.timestamps import format_instant
from engscore.ui import human_int


@app.command("health")
@handle_errors
def health_command(
    events: EventsArg,
    by: Annotated[
        list[str] | None,
        typer.Option(
            "--by",
            help=f"Group by {', '.join(GROUPINGS)} (repeatable: their combinations). "
            "Default: one row for everything.",
            show_default=False,
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Count events up to this instant (ISO 8601; naive values in --timezone). "
            "Default: now.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Count events from this long before --as-of (90d, 6m, 1y) or from this date.",
        ),
    ] = None,
    min_delivered: Annotated[
        int | None,
        typer.Option(
            "--min-delivered",
            help="Groups with fewer deliveries get counts but no rates. "
            f"Default: {DEFAULT_MIN_DELIVERED} (or engscore.yaml's).",
            show_default=False,
        ),
    ] = None,
    providers: Annotated[
        Path | None,
        typer.Option(
            "--providers", help="Mailbox providers file (YAML) in place of the packaged map."
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the table (.csv or .parquet) instead of printing it."
        ),
    ] = None,
    preset: PresetOpt = None,
    timezone: TimezoneOpt = None,
    mapping: MappingOpt = None,
    on_error: OnErrorOpt = None,
    encoding: EncodingOpt = None,
    machine_open_window: MachineWindowOpt = None,
    quiet: QuietOpt = False,
    log_format: LogFormatOpt = "text",
    debug: DebugOpt = False,
) -> None:
    """List health: bounce, complaint, unsubscribe, open and click rates per group, flagged
    against Gmail's and Yahoo's limits."""
    project = command_defaults()
    options = ingest_options(preset, timezone, mapping, on_error, encoding, machine_open_window)
    instant = as_of_instant(as_of, options.timezone)
    request = HealthRequest(
        events=events,
        as_of=instant,
        by=tuple(by or ()),
        since=since_instant(since, instant, options.timezone or "UTC"),
        min_delivered=(
            min_delivered
            if min_delivered is not None
            else project.min_delivered
            if project.min_delivered is not None
            else DEFAULT_MIN_DELIVERED
        ),
        providers=providers or project.providers,
        ingest=options,
    )
    with reporter().step(f"list health of {len(events)} input(s)"):
        result = run_health(request, output)
    render_health(result)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


#: The columns printed (the file has them all): header, column, is it a rate.
_SHOWN = (
    ("sent", "sent", False),
    ("delivered", "delivered", False),
    ("bounced", "bounced", False),
    ("complaints", "complaints", False),
    ("unsubs", "unsubscribes", False),
    ("bounce rate", "bounce_rate", True),
    ("complaint rate", "complaint_rate", True),
    ("unsub rate", "unsubscribe_rate", True),
    ("open rate", "open_rate", True),
    ("click rate", "click_rate", True),
    ("machine share", "machine_open_share", True),
)


def _cell(row: dict[str, Any], key: str) -> str:
    value = row[HEALTH_KEYS[key]]
    return NO_VALUE.get(key, "-") if value is None else str(value)


def render_health(result: HealthResult) -> None:
    """The table on stdout (without ``-o``), then what was found on stderr."""
    out = reporter()
    for note in result.warnings:
        out.warning(note)
    window = (
        f"from {format_instant(result.since)} to {format_instant(result.as_of)}"
        if result.since
        else f"up to {format_instant(result.as_of)}"
    )
    grouping = f"by {', '.join(result.by)}" if result.by else "of all events"
    if result.output is None:
        console = Console(file=sys.stdout, highlight=False, soft_wrap=False, width=200)
        # The title on a line of its own: as the table's, rich pads it to the table's width.
        console.print(f"List health {grouping}, {window}", markup=False)
        table = Table()
        for key in result.by:
            table.add_column(key)
        for header, _, _ in _SHOWN:
            table.add_column(header, justify="right")
        table.add_column("flag")
        for row in result.table.iter_rows(named=True):
            cells = [_cell(row, key) for key in result.by]
            cells += [
                _rate(row[column]) if is_rate else human_int(row[column])
                for _, column, is_rate in _SHOWN
            ]
            table.add_row(*cells, row["flag"] or "")
        console.print(table)
    else:
        out.info(
            f"list health {grouping} ({window}): {human_int(result.table.height)} group(s) "
            f"written to {result.output}",
            output=str(result.output),
            groups=result.table.height,
        )
    if not result.sends_counted:
        out.info("no send events in the data: sent = deliveries + bounces")
    over, watch = result.flagged(OVER_LIMIT), result.flagged(WATCH)
    if over:
        out.warning(
            f"{len(over)} group(s) over the 0.3% complaint limit: {_names(over)}", over_limit=over
        )
    if watch:
        out.info(
            f"{len(watch)} group(s) to watch (complaints ≥ 0.1% or bounces ≥ 2%): {_names(watch)}",
            watch=watch,
        )
    if not over and not watch:
        out.info(
            f"no group over the limits (rated: {result.min_delivered:,}+ deliveries)",
        )


def _names(names: list[str], shown: int = 10) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
