"""The Typer app, its global options and the error boundary every command goes through.

Command modules import ``app``, ``handle_errors`` and ``reporter`` from here and register
themselves; ``engscore.cli`` imports them all, so this module imports no command.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from engscore import __version__
from engscore.errors import EXIT_DATA, EngscoreError
from engscore.ui import LogFormat, Reporter

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="engscore",
    help="Batch engagement analysis of exported e-mail marketing data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class Settings:
    """Global options, set by the app callback for the command that runs."""

    debug = False
    reporter = Reporter()


def reporter() -> Reporter:
    """The reporter configured by the global options."""
    return Settings.reporter


def _version(value: bool) -> None:
    if value:
        typer.echo(f"engscore {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only warnings and errors."),
    log_format: LogFormat = typer.Option(
        "text", "--log-format", help="Log lines as text or one JSON object per line."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of failures."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Batch engagement analysis of exported e-mail marketing data."""
    Settings.debug = debug
    Settings.reporter = Reporter(quiet=quiet, log_format=log_format)


def handle_errors(command: Callable[P, R]) -> Callable[P, R]:
    """The error boundary: EngscoreError -> message + its exit code; no traceback without --debug.

    Commands may also take ``quiet``, ``log_format`` and ``debug`` themselves (so the common
    options work after the command name too); given there, they win over the global ones.
    """

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if kwargs.get("debug"):
            Settings.debug = True
        quiet = bool(kwargs.get("quiet")) or Settings.reporter.quiet
        log_format = kwargs.get("log_format") or "text"
        if log_format == "text":
            log_format = Settings.reporter.log_format
        Settings.reporter = Reporter(quiet=quiet, log_format=log_format)  # type: ignore[arg-type]
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except EngscoreError as exc:
            if Settings.debug:
                raise
            for line in exc.message.splitlines():
                reporter().error(line)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            reporter().error("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            if Settings.debug:
                raise
            reporter().error(
                f"unexpected {type(exc).__name__}: {exc}".splitlines()[0]
                + " (rerun with --debug for the traceback, and please report it)"
            )
            raise typer.Exit(EXIT_DATA) from None

    return wrapper
