"""``engscore score`` and ``engscore explain``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from engscore.cli.app import app, handle_errors, reporter
from engscore.cli.options import (
    DebugOpt,
    EventsArg,
    LogFormatOpt,
    QuietOpt,
    ScoreOptions,
    with_score_options,
)
from engscore.engine.ledger import STATUS_TEXT
from engscore.explain import Explanation, explain_contact
from engscore.score import ScoreSummary, prepare_scoring, run_score
from engscore.spark.launch import score_on_spark
from engscore.timestamps import format_instant
from engscore.ui import human_int

Engine = Literal["polars", "spark"]


@app.command("score")
@handle_errors
@with_score_options
def score_command(
    events: EventsArg,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Scores file (.parquet or .csv).")
    ] = Path("scores.parquet"),
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            help="polars (this machine) or spark (a Spark cluster or local[N]; needs the "
            "engscore[spark] extra and Java 17). With spark, -o names a folder of Parquet files.",
        ),
    ] = "polars",
    spark_master: Annotated[
        str | None,
        typer.Option("--spark-master", help="Spark master URL, e.g. local[2] (default: local[*])."),
    ] = None,
    partitions: Annotated[
        int | None,
        typer.Option("--partitions", min=1, help="Spark: contact buckets (default 200)."),
    ] = None,
    options: ScoreOptions = ScoreOptions(),
    quiet: QuietOpt = False,
    log_format: LogFormatOpt = "text",
    debug: DebugOpt = False,
) -> None:
    """Apply point rules to events: one row per contact with score, groups and grade."""
    request = options.request(events)
    with reporter().step(f"scoring {len(events)} input(s) with {engine}"):
        if engine == "spark":
            summary = score_on_spark(
                request, output, spark_master or "local[*]", partitions, Path.cwd()
            )
        else:
            summary = run_score(request, output, record_in=Path.cwd())
    render_score_summary(summary)


def _number(value: float) -> str:
    return f"{value:,.1f}"


def render_score_summary(summary: ScoreSummary) -> None:
    """Warnings, then contacts, grade counts and score percentiles."""
    out = reporter()
    for note in summary.warnings:
        out.warning(note)
    as_of = format_instant(summary.as_of)
    rows = [
        ("as of", as_of),
        ("rules", summary.rules),
        ("contacts", human_int(summary.contacts)),
    ]
    rows.append(("by grade", ""))
    for name, count in summary.grades:
        share = f" ({count / summary.contacts:.0%})" if summary.contacts else ""
        rows.append((f"  {name}", human_int(count) + share))
    rows.append(("by status", ""))
    for name, count in summary.statuses:
        share = f" ({count / summary.contacts:.0%})" if summary.contacts else ""
        rows.append((f"  {name.replace('_', ' ')}", human_int(count) + share))
    rows.append(("buyers (RFM scored)", human_int(summary.buyers)))
    if summary.mean is not None:
        rows.append(("mean score", _number(summary.mean)))
    rows += [(f"score {key}", _number(value)) for key, value in summary.percentiles.items()]
    out.table(
        f"Scored into {summary.output}",
        rows,
        output=str(summary.output),
        as_of=as_of,
        contacts=summary.contacts,
        grades=dict(summary.grades),
        statuses=dict(summary.statuses),
        buyers=summary.buyers,
        mean=summary.mean,
        percentiles=summary.percentiles,
    )


Format = Literal["text", "json"]


@app.command("explain")
@handle_errors
@with_score_options
def explain_command(
    contact: Annotated[str, typer.Argument(help="Contact id or e-mail address.")],
    events: EventsArg,
    output_format: Annotated[
        Format, typer.Option("--format", help="text (a table) or json (for machines).")
    ] = "text",
    options: ScoreOptions = ScoreOptions(),
    quiet: QuietOpt = False,
    log_format: LogFormatOpt = "text",
    debug: DebugOpt = False,
) -> None:
    """The point ledger of one contact: every matching event, what it earned and why."""
    request = options.request(events)
    prepared = prepare_scoring(request)
    for note in prepared.warnings:
        reporter().warning(note)
    explanation = explain_contact(prepared, contact)
    if output_format == "json":
        sys.stdout.write(json.dumps(explanation.to_json(), indent=2) + "\n")
    else:
        render_explanation(explanation)
    if not explanation.found:
        reporter().warning(f"{explanation.contact_id}: no events at or before the as-of instant")


def _points(value: float | None) -> str:
    return "" if value is None else f"{value:+,.4f}"


def render_explanation(explanation: Explanation) -> None:
    """The ledger as a table on stdout, then the group totals and the score."""
    console = Console(file=sys.stdout, highlight=False, soft_wrap=False, width=160)
    as_of = format_instant(explanation.as_of)
    table = Table(
        title=f"{explanation.contact_id} as of {as_of} ({explanation.rules})",
        title_justify="left",
    )
    for name, justify in (
        ("time (UTC)", "left"),
        ("event", "left"),
        ("rule", "left"),
        ("raw", "right"),
        ("decay", "right"),
        ("points", "right"),
        ("note", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for line in explanation.lines.iter_rows(named=True):
        stamp = line["timestamp"]
        detail = line["url"] or line["campaign_id"] or ""
        event = f"{line['event_type'] or ''} {detail}".strip()
        table.add_row(
            f"{stamp:%Y-%m-%d %H:%M:%S}" if stamp else "",
            event,
            f"{line['rule']} ({line['group']})",
            _points(line["raw_points"]),
            "" if line["decay_factor"] is None else f"{line['decay_factor']:.4f}",
            _points(line["points"]),
            STATUS_TEXT.get(line["status"], line["status"]),
        )
    if explanation.clamp:
        table.add_row("", "", "min/max score", "", "", _points(explanation.clamp), "clamp")
    console.print(table)
    groups = ", ".join(f"score_{g} {v:,.4f}" for g, v in explanation.groups.items())
    grade = f", grade {explanation.grade}" if explanation.grade else ""
    console.print(f"score {explanation.score:,.4f}{grade} ({groups})", markup=False)
