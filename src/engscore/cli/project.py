"""``engscore init``, ``engscore run`` and ``engscore store ...``: running a project from cron."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engscore.cli.app import app, handle_errors, reporter
from engscore.cli.options import (
    AsOfOpt,
    DebugOpt,
    LogFormatOpt,
    QuietOpt,
)
from engscore.config import config_path, init_project, load_project
from engscore.errors import ConfigError
from engscore.io.store import EventStore, compact, info
from engscore.timestamps import format_instant, parse_instant
from engscore.ui import human_int

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Project config (default: ./engscore.yaml)."),
]


@app.command("init")
@handle_errors
def init_command(
    folder: Annotated[Path, typer.Argument(help="Project folder.")] = Path("."),
    quiet: QuietOpt = False,
    log_format: LogFormatOpt = "text",
    debug: DebugOpt = False,
) -> None:
    """Create a project: engscore.yaml, rules.yaml, segments.yaml and incoming/."""
    for path in init_project(folder):
        reporter().info(f"created {path}")
    reporter().info(
        f"drop exports into {folder / 'incoming'}/, then run `engscore run` in {folder}"
    )


@app.command("run")
@handle_errors
def run_command(
    config: ConfigOpt = None,
    as_of: AsOfOpt = None,
    wait: Annotated[
        float,
        typer.Option(
            "--wait", help="If another run holds the lock, wait up to this many seconds.", min=0
        ),
    ] = 0.0,
    quiet: QuietOpt = False,
    log_format: LogFormatOpt = "text",
    debug: DebugOpt = False,
) -> None:
    """The nightly pipeline: new exports -> store -> score -> segments -> health -> report
    (atomic)."""
    path = config_path(config)
    if path is None:
        raise ConfigError("no engscore.yaml here: run `engscore init` first, or pass --config FILE")
    project = load_project(path)
    instant = parse_instant(as_of, project.config.inputs.timezone or "UTC") if as_of else None
    out = reporter()
    # Imported here: the report's modules (jinja2, charts) would slow every other command.
    from engscore.run import run_project

    summary = run_project(project, instant, wait, on_step=lambda name: out.info(f"step: {name}"))
    for note in summary.warnings:
        out.warning(note)
    out.info(
        summary.line(),
        run=str(summary.folder),
        as_of=format_instant(summary.as_of),
        new_files=summary.new_files,
        rows_added=summary.rows_added,
        contacts=summary.contacts,
        segments=dict(summary.segments),
        over_limit=summary.over_limit,
        seconds=round(summary.seconds, 2),
    )


store_app = typer.Typer(
    help="The event store: append exports, inspect, compact.", no_args_is_help=True
)
app.add_typer(store_app, name="store")


def _store_root(store: Path | None, config: Path | None) -> Path:
    if store is not None:
        return store
    path = config_path(config)
    if path is None:
        raise ConfigError("name the store folder, or run where engscore.yaml is (or pass --config)")
    project = load_project(path)
    return project.path(project.config.store)


StoreArg = Annotated[
    Path | None, typer.Argument(help="Store folder (default: the project's store).")
]


@store_app.command("info")
@handle_errors
def store_info_command(
    store: StoreArg = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    log_format: LogFormatOpt = "text",
    debug: DebugOpt = False,
) -> None:
    """Files loaded, months, events, contacts and time range of a store."""
    figures = info(EventStore(_store_root(store, config)))
    span = (
        f"{figures.first_event:%Y-%m-%d} → {figures.last_event:%Y-%m-%d}"
        if figures.first_event and figures.last_event
        else "-"
    )
    reporter().table(
        f"Store {figures.root}",
        [
            ("files loaded", human_int(figures.files_loaded)),
            ("months", human_int(figures.months)),
            ("event files", human_int(figures.part_files)),
            ("events", human_int(figures.rows)),
            ("contacts", human_int(figures.contacts)),
            ("time range", span),
            ("on disk", f"{figures.bytes_on_disk / 1e6:,.1f} MB"),
            (
                "contact numbers",
                "yes" if figures.numbered else "no: `engscore store compact` adds them",
            ),
        ],
        files_loaded=figures.files_loaded,
        events=figures.rows,
        contacts=figures.contacts,
        part_files=figures.part_files,
        numbered=figures.numbered,
    )


@store_app.command("compact")
@handle_errors
def store_compact_command(
    store: StoreArg = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    log_format: LogFormatOpt = "text",
    debug: DebugOpt = False,
) -> None:
    """Merge each month's small event files into one."""
    months = compact(EventStore(_store_root(store, config)))
    reporter().info(f"compacted {months} month(s)")
