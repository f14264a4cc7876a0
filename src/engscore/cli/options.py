"""Options shared by the commands that read events (``ingest``, ``score``, ``explain`` ...)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from engscore.config import IngestOptions, OnError, command_defaults
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
    str | None,
    typer.Option(
        "--preset",
        "-p",
        help=f"Export format: {', '.join(PRESET_NAMES)}. Default: auto (or engscore.yaml's).",
        show_default=False,
    ),
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
    OnError | None,
    typer.Option(
        "--on-error",
        help="Bad rows: fail (default), or skip them (ingest writes them to a rejects file).",
        show_default=False,
    ),
]
EncodingOpt = Annotated[
    str | None,
    typer.Option(
        "--encoding",
        help="Text encoding of CSV inputs (e.g. latin-1). Default: utf-8.",
        show_default=False,
    ),
]
MachineWindowOpt = Annotated[
    float | None,
    typer.Option(
        "--machine-open-window",
        help="Opens this many seconds after delivery count as machine opens "
        "(for exports without a machine flag; 0 turns it off). Default: 2.",
        min=0,
        show_default=False,
    ),
]


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


def ingest_options(
    preset: str | None = None,
    timezone: str | None = None,
    mapping: Path | None = None,
    on_error: OnError | None = None,
    encoding: str | None = None,
    machine_open_window: float | None = None,
) -> IngestOptions:
    """The ingest options given on the command line over ``engscore.yaml``'s ``inputs``
    (found in the working directory or ``$ENGSCORE_CONFIG``), over the built-in defaults."""
    return command_defaults().ingest.overridden(
        preset, timezone, mapping, on_error, encoding, machine_open_window
    )


@dataclass(frozen=True)
class ScoreOptions:
    """The options of every command that scores (``score``, ``explain``,
    ``rules suggest-thresholds``): what to score with and how to read the events."""

    rules: Path | None = None
    as_of: str | None = None
    contacts: Path | None = None
    preset: str | None = None
    timezone: str | None = None
    mapping: Path | None = None
    on_error: OnError | None = None
    encoding: str | None = None
    machine_open_window: float | None = None

    def request(self, events: list[str]) -> ScoreRequest:
        """The scoring request, with ``engscore.yaml``'s settings for the options not given."""
        project = command_defaults()
        ingest = project.ingest.overridden(
            self.preset,
            self.timezone,
            self.mapping,
            self.on_error,
            self.encoding,
            self.machine_open_window,
        )
        return ScoreRequest(
            events=events,
            as_of=as_of_instant(self.as_of, ingest.timezone),
            rules_path=self.rules or project.rules,
            contacts_path=self.contacts or project.contacts,
            ingest=ingest,
        )


#: ``ScoreOptions``' fields as command parameters: the first three follow the command's
#: arguments, the ingest options come before the common ``quiet``/``log_format``/``debug``.
_WHAT_TO_SCORE = (("rules", RulesOpt), ("as_of", AsOfOpt), ("contacts", ContactsOpt))
_HOW_TO_READ = (
    ("preset", PresetOpt),
    ("timezone", TimezoneOpt),
    ("mapping", MappingOpt),
    ("on_error", OnErrorOpt),
    ("encoding", EncodingOpt),
    ("machine_open_window", MachineWindowOpt),
)
_COMMON = ("quiet", "log_format", "debug")

R = TypeVar("R")


def with_score_options(command: Callable[..., R]) -> Callable[..., R]:
    """Give a command the ``ScoreOptions`` as options; it receives them as ``options``.

    Typer reads a command's signature: the wrapper's signature lists the bundle's fields in
    the command's place of ``options`` (so ``--help`` shows each option), and the call
    gathers them back into one ``ScoreOptions``.
    """
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "options"]
    keyword = inspect.Parameter.KEYWORD_ONLY

    def parameters(fields: tuple[tuple[str, Any], ...]) -> list[inspect.Parameter]:
        return [
            inspect.Parameter(name, keyword, default=None, annotation=kind) for name, kind in fields
        ]

    arguments = [p for p in own if p.default is inspect.Parameter.empty or _is_argument(p)]
    middle = [p for p in own if p not in arguments and p.name not in _COMMON]
    common = [p for p in own if p.name in _COMMON]
    names = [name for name, _ in _WHAT_TO_SCORE + _HOW_TO_READ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        options = ScoreOptions(**{name: kwargs.pop(name) for name in names if name in kwargs})
        return command(*args, options=options, **kwargs)

    listed = [
        *arguments,
        *parameters(_WHAT_TO_SCORE),
        *middle,
        *parameters(_HOW_TO_READ),
        *common,
    ]
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p.replace(kind=keyword) if p not in arguments else p for p in listed]
    )
    wrapper.__annotations__ = {p.name: p.annotation for p in listed} | {
        "return": signature.return_annotation
    }
    return wrapper


def _is_argument(parameter: inspect.Parameter) -> bool:
    metadata = getattr(parameter.annotation, "__metadata__", ())
    return any(isinstance(item, typer.models.ArgumentInfo) for item in metadata)
