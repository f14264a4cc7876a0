"""The command-line interface: a thin Typer layer over the library.

Each command parses options, calls one core function and renders its result. Errors from the
core (:class:`engscore.errors.EngscoreError`) are turned into a one-line message and the exit
code the SPEC promises; any other exception too, unless ``--debug`` asks for the traceback.
"""

from __future__ import annotations

from engscore.cli.tuning import tune_process

tune_process()  # before the command modules below load numpy and Polars

from engscore.cli.app import app  # noqa: E402

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()


# Command modules register themselves on `app`.
from engscore.cli import health as _health  # noqa: E402, F401
from engscore.cli import ingest as _ingest  # noqa: E402, F401
from engscore.cli import presets as _presets  # noqa: E402, F401
from engscore.cli import project as _project  # noqa: E402, F401
from engscore.cli import report as _report  # noqa: E402, F401
from engscore.cli import rules as _rules  # noqa: E402, F401
from engscore.cli import score as _score  # noqa: E402, F401
from engscore.cli import segment as _segment  # noqa: E402, F401
