"""``engscore report``: a self-contained HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engscore.cli.app import app, handle_errors, reporter
from engscore.cli.options import (
    AsOfOpt,
    ContactsOpt,
    DebugOpt,
    LogFormatOpt,
    PresetOpt,
    QuietOpt,
    RulesOpt,
    TimezoneOpt,
    ingest_options,
)
from engscore.config import command_defaults
from engscore.engine.health import DEFAULT_MIN_DELIVERED
from engscore.timestamps import parse_instant


@app.command("report")
@handle_errors
def report_command(
    scores: Annotated[
        Path | None,
        typer.Option(
            "--scores", help="Scores file (default: what the last `engscore score` here wrote)."
        ),
    ] = None,
    events: Annotated[
        list[str] | None,
        typer.Option(
            "--events",
            help="Events for the monthly and campaign charts (repeatable; default: the inputs "
            "the scores were made from).",
        ),
    ] = None,
    segments: Annotated[
        Path | None,
        typer.Option("--segments", help="Segments folder (default: ./segments if present)."),
    ] = None,
    contacts: ContactsOpt = None,
    by: Annotated[
        list[str] | None,
        typer.Option("--by", help="Break down by this contacts-file column (repeatable)."),
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    title: Annotated[
        str | None, typer.Option("--title", help="Title of the report.", show_default=False)
    ] = None,
    generated_at: Annotated[
        str | None,
        typer.Option("--generated-at", help="Pin the 'generated' time (for identical reruns)."),
    ] = None,
    rules: RulesOpt = None,
    as_of: AsOfOpt = None,
    preset: PresetOpt = None,
    timezone: TimezoneOpt = None,
    quiet: QuietOpt = False,
    log_format: LogFormatOpt = "text",
    debug: DebugOpt = False,
) -> None:
    """Write a self-contained HTML report (no network needed to open it)."""
    project = command_defaults()
    # Imported here: jinja2 and the charts would slow every other command.
    from engscore.report import ReportRequest, run_report

    request = ReportRequest(
        workdir=Path.cwd(),
        output=output,
        scores=scores,
        events=events,
        segments=segments,
        rules=rules or project.rules,
        contacts=contacts or project.contacts,
        by=by or list(project.by),
        title=title or project.title or "Engagement report",
        generated_at=parse_instant(generated_at, "UTC", "--generated-at") if generated_at else None,
        as_of=parse_instant(as_of, timezone or "UTC") if as_of else None,
        ingest=ingest_options(preset, timezone),
        providers=project.providers,
        min_delivered=(
            project.min_delivered if project.min_delivered is not None else DEFAULT_MIN_DELIVERED
        ),
    )
    with reporter().step("writing the report"):
        summary = run_report(request)
    parts = (
        ["scores"]
        + (["events"] if summary.used_events else [])
        + (["segments"] if summary.used_segments else [])
    )
    reporter().info(
        f"report written to {summary.output} ({summary.size_bytes / 1024:,.0f} KiB; "
        f"{summary.contacts:,} contact{'' if summary.contacts == 1 else 's'}; "
        f"from {', '.join(parts)})",
        output=str(summary.output),
        size_bytes=summary.size_bytes,
    )
