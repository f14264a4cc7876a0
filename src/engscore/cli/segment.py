"""``engscore segment``: segment files from the scores of the last ``engscore score`` run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engscore.cli.app import app, handle_errors, reporter
from engscore.cli.options import AsOfOpt, DebugOpt, LogFormatOpt, QuietOpt, RulesOpt
from engscore.config import command_defaults
from engscore.segments import SegmentReport, SegmentRequest, run_segment
from engscore.timestamps import parse_instant
from engscore.ui import human_int


@app.command("segment")
@handle_errors
def segment_command(
    scores: Annotated[
        Path | None,
        typer.Option(
            "--scores", help="Scores file (default: what the last `engscore score` here wrote)."
        ),
    ] = None,
    inactive: Annotated[
        str | None,
        typer.Option(
            "--inactive",
            help="Also write inactive_<D>: no engagement for at least D (e.g. 6m, 90d, 1y).",
        ),
    ] = None,
    segments_file: Annotated[
        Path | None,
        typer.Option("--segments", help="Segment definitions file (YAML)."),
    ] = None,
    rules: RulesOpt = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for the segment files.")
    ] = Path("segments"),
    compare: Annotated[
        Path | None,
        typer.Option(
            "--compare",
            help="Previous segments folder to count who entered and left "
            "(default: the output folder's previous contents).",
        ),
    ] = None,
    as_of: AsOfOpt = None,
    quiet: QuietOpt = False,
    log_format: LogFormatOpt = "text",
    debug: DebugOpt = False,
) -> None:
    """Write segment files (CSV + Parquet per segment, manifest.json) ready to re-import."""
    project = command_defaults()
    request = SegmentRequest(
        workdir=Path.cwd(),
        output=output,
        scores=scores,
        rules=rules or project.rules,
        segments_file=segments_file or project.segments,
        inactive=inactive,
        compare=compare,
        as_of=parse_instant(as_of) if as_of is not None else None,
    )
    render_segments(run_segment(request))


def _change(value: int | None) -> str:
    return "-" if value is None else human_int(value)


def render_segments(report: SegmentReport) -> None:
    """One line per segment: rows, mailing or not, entered and left since the previous run."""
    rows = [("as of", report.as_of)]
    for result in report.segments:
        kind = "" if result.mailing else " (not for mailing)"
        moved = (
            f"  +{_change(result.entered)} / -{_change(result.left)}"
            if report.compared_with is not None
            else ""
        )
        rows.append((f"{result.name}{kind}", f"{human_int(result.rows)}{moved}"))
    compared = f"; entered/left vs {report.compared_with}" if report.compared_with else ""
    reporter().table(
        f"Segments written to {report.output}/{compared}",
        rows,
        output=str(report.output),
        as_of=report.as_of,
        segments={
            r.name: {"rows": r.rows, "entered": r.entered, "left": r.left} for r in report.segments
        },
    )
