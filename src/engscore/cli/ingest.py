"""``engscore ingest``: normalise exports into one canonical events file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
    ingest_options,
)
from engscore.io.events import ingest_to_file
from engscore.io.ingest import IngestSummary
from engscore.io.store import EventStore, append
from engscore.ui import human_int


@app.command("ingest")
@handle_errors
def ingest_command(
    events: EventsArg,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output file (.parquet or .csv).")
    ] = Path("events.parquet"),
    preset: PresetOpt = "auto",
    timezone: TimezoneOpt = None,
    mapping: MappingOpt = None,
    on_error: OnErrorOpt = "fail",
    rejects: Annotated[
        Path | None,
        typer.Option("--rejects", help="Where skipped rows go (default: <output>.rejects.csv)."),
    ] = None,
    encoding: EncodingOpt = "utf-8",
    machine_open_window: MachineWindowOpt = 2.0,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            help="Append to this event store instead of writing -o (files already loaded "
            "are skipped, known events not re-added).",
        ),
    ] = None,
    quiet: QuietOpt = False,
    log_format: LogFormatOpt = "text",
    debug: DebugOpt = False,
) -> None:
    """Load exports, map them to the canonical event schema and write one events file."""
    options = ingest_options(preset, timezone, mapping, on_error, encoding, machine_open_window)
    if store is not None:
        result = append(EventStore(store), events, options)
        reporter().info(
            f"{store}: {len(result.new_files)} new file(s), {len(result.skipped_files)} "
            f"already loaded; +{human_int(result.rows_added)} events "
            f"({human_int(result.duplicates)} already in the store)",
            new_files=[str(p) for p in result.new_files],
            rows_added=result.rows_added,
            duplicates=result.duplicates,
        )
        return
    with reporter().progress(f"ingesting {len(events)} input(s)") as on_progress:
        summary = ingest_to_file(events, output, options, rejects, on_progress)
    render_summary(summary)


def render_summary(summary: IngestSummary) -> None:
    """The ingest summary table (and warnings for rejected rows)."""
    out = reporter()
    for note in summary.warnings:
        out.warning(note)
    for report in summary.files:
        how = "detected" if report.detected else "given"
        out.info(
            f"{report.path}: preset {report.preset} ({how}), {human_int(report.rows_read)} rows"
        )
    span = (
        f"{summary.first_event:%Y-%m-%d %H:%M} → {summary.last_event:%Y-%m-%d %H:%M} UTC"
        if summary.first_event and summary.last_event
        else "-"
    )
    rows = [
        ("rows read", human_int(summary.rows_read)),
        ("rows rejected", human_int(summary.rows_rejected)),
        ("account-level events skipped", human_int(summary.rows_skipped)),
        ("duplicates dropped", human_int(summary.duplicates_dropped)),
        ("rows kept", human_int(summary.rows_kept)),
        ("machine opens flagged", human_int(summary.machine_opens)),
        ("contacts", human_int(summary.contacts)),
        ("time range", span),
    ]
    reasons = [(f"  {reason}", human_int(n)) for reason, n in summary.reject_reasons.items()]
    rows[2:2] = reasons
    if not summary.rows_skipped:
        rows = [row for row in rows if row[0] != "account-level events skipped"]
    out.table(
        f"Ingested into {summary.output}",
        rows,
        output=str(summary.output),
        rows_read=summary.rows_read,
        rows_rejected=summary.rows_rejected,
        rows_skipped=summary.rows_skipped,
        duplicates_dropped=summary.duplicates_dropped,
        rows_kept=summary.rows_kept,
        machine_opens=summary.machine_opens,
        contacts=summary.contacts,
    )
    if summary.rejects_file is not None:
        out.warning(
            f"{human_int(summary.rows_rejected)} rejected rows written to {summary.rejects_file}"
        )
