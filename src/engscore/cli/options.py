"""Options shared by the commands that read events (``ingest``, ``score``, ``explain`` ...)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from engscore.config import command_defaults
from engscore.io.ingest import IngestOptions, OnError
from engscore.presets import PRESET_NAMES
from engscore.score import ScoreRequest
from engscore.timestamps import parse_instant
from engscore.ui import LogFormat

QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only warnings and errors.")]
LogFormatOpt = Annotated[
    LogFormat, typer.Option("--log-format", help="Log lines as text or one JSON object per line.")
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of failures.")]
EventsArg = Annotated[
    list[str],
    typer.Argument(
        help="Event files, globs or folders (CSV, TSV, Parquet, JSON, JSON-lines; .gz too).",
        show_default=False,
    ),
]
PresetOpt = Annotated[
    str,
    typer.Option("--preset", "-p", help=f"Export format: {', '.join(PRESET_NAMES)}."),
]
TimezoneOpt = Annotated[
    str | None,
    typer.Option("--timezone", help="Time zone of naive timestamps (IANA name; default UTC)."),
]
MappingOpt = Annotated[
    Path | None,
    typer.Option("--mapping", help="Custom mapping file (YAML) for any other export."),
]
OnErrorOpt = Annotated[
    OnError,
    typer.Option("--on-error", help="Bad rows: fail (default), or skip them into a rejects file."),
]
EncodingOpt = Annotated[
    str, typer.Option("--encoding", help="Text encoding of CSV inputs (e.g. latin-1).")
]
MachineWindowOpt = Annotated[
    float,
    typer.Option(
        "--machine-open-window",
        help="Opens this many seconds after delivery count as machine opens "
        "(for exports without a machine flag; 0 turns it off).",
        min=0,
    ),
]


def ingest_options(
    preset: str = "auto",
    timezone: str | None = None,
    mapping: Path | None = None,
    on_error: OnError = "fail",
    encoding: str = "utf-8",
    machine_open_window: float = 2.0,
) -> IngestOptions:
    """Bundle the common ingest options."""
    return IngestOptions(
        preset=preset,
        timezone=timezone,
        mapping=mapping,
        on_error=on_error,
        encoding=encoding,
        machine_open_seconds=machine_open_window,
    )


RulesOpt = Annotated[
    Path | None,
    typer.Option("--rules", "-r", help="Rules file (YAML); default: the packaged default rules."),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Score as of this instant (ISO 8601, e.g. 2026-11-01 or 2026-11-01T06:00:00Z; "
        "naive values in --timezone). Default: now.",
    ),
]
ContactsOpt = Annotated[
    Path | None,
    typer.Option("--contacts", help="Contacts file (contact_id or email + attributes)."),
]


def as_of_instant(text: str | None, timezone: str | None) -> datetime:
    """``--as-of`` as a UTC instant; default now, to the second (printed so runs can repeat)."""
    if text is None:
        return datetime.now(UTC).replace(microsecond=0)
    return parse_instant(text, timezone or "UTC")


def score_request(
    events: list[str],
    as_of: str | None,
    rules: Path | None,
    contacts: Path | None,
    preset: str,
    timezone: str | None,
    mapping: Path | None,
    on_error: OnError,
    encoding: str,
    machine_open_window: float,
) -> ScoreRequest:
    """The options of a scoring command, with ``engscore.yaml``'s settings for those not given."""
    project = command_defaults()
    zone = timezone or project.timezone
    return ScoreRequest(
        events=events,
        as_of=as_of_instant(as_of, zone),
        rules_path=rules or project.rules,
        contacts_path=contacts or project.contacts,
        ingest=ingest_options(
            preset if preset != "auto" or project.preset is None else project.preset,
            zone,
            mapping,
            on_error,
            encoding,
            machine_open_window,
        ),
    )
