"""``engscore rules validate`` and ``engscore rules suggest-thresholds``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engscore.cli.app import app, handle_errors, reporter
from engscore.cli.options import (
    DebugOpt,
    EventsArg,
    LogFormatOpt,
    PresetOpt,
    QuietOpt,
    ScoreOptions,
    ingest_options,
    with_score_options,
)
from engscore.score import (
    prepared_for_every_contact,
    score_distribution,
    validate_rules_file,
)
from engscore.ui import human_int

rules_app = typer.Typer(
    help="Check rules files and tune their grade thresholds.", no_args_is_help=True
)
app.add_typer(rules_app, name="rules")


@rules_app.command("validate")
@handle_errors
def validate_command(
    rules_file: Annotated[Path, typer.Argument(help="The rules file (YAML).")],
    events: Annotated[
        list[str] | None,
        typer.Argument(
            help="Optional events to check the columns of `where` and `unique_by` against.",
            show_default=False,
        ),
    ] = None,
    preset: PresetOpt = None,
    quiet: QuietOpt = False,
    log_format: LogFormatOpt = "text",
    debug: DebugOpt = False,
) -> None:
    """Check a rules file: errors give file:line and the field (exit 2)."""
    report = validate_rules_file(rules_file, events or [], ingest_options(preset))
    out = reporter()
    for note in report.warnings:
        out.warning(note)
    rules = report.rules_file.rules
    grades = ", ".join(f"{name} >= {value:g}" for name, value in rules.grade_order())
    out.info(
        f"{rules_file}: valid: {len(rules.points)} point rule(s), "
        f"{len(rules.profile)} profile rule(s); groups {', '.join(rules.groups)}; "
        f"grades {grades}",
        valid=True,
    )


@rules_app.command("suggest-thresholds")
@handle_errors
@with_score_options
def suggest_command(
    events: EventsArg,
    options: ScoreOptions = ScoreOptions(),
    quiet: QuietOpt = False,
    log_format: LogFormatOpt = "text",
    debug: DebugOpt = False,
) -> None:
    """Score the events and suggest warm/hot grade thresholds from the score distribution."""
    request = options.request(events)
    out = reporter()
    with prepared_for_every_contact(request) as prepared:
        for note in prepared.warnings:
            out.warning(note)
        suggestion = score_distribution(prepared)
    rows = [
        ("contacts", human_int(suggestion.contacts)),
        ("with a positive score", human_int(suggestion.positive)),
        ("mean score", f"{suggestion.mean:,.1f}"),
        ("mean positive score", f"{suggestion.mean_positive:,.1f}"),
    ]
    rows += [(f"score {k}", f"{v:,.1f}") for k, v in suggestion.percentiles.items()]
    rows += [(f"positive {k}", f"{v:,.1f}") for k, v in suggestion.percentiles_positive.items()]
    rows += [
        ("suggested warm (median of positive)", f"{suggestion.warm:g}"),
        ("suggested hot (90th pct of positive)", f"{suggestion.hot:g}"),
    ]
    rows += [(f"  {k} with these", human_int(v)) for k, v in suggestion.counts.items()]
    out.table(
        "Score distribution",
        rows,
        contacts=suggestion.contacts,
        positive=suggestion.positive,
        mean=suggestion.mean,
        percentiles=suggestion.percentiles,
        warm=suggestion.warm,
        hot=suggestion.hot,
    )
    if suggestion.positive == 0:
        out.warning("no contact has a positive score: nothing to base thresholds on")
        return
    out.info(
        f"in your rules file: grades: {{hot: {suggestion.hot:g}, warm: {suggestion.warm:g}, "
        "cold: 0}"
    )
