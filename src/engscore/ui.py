"""Terminal output: human tables and logs on stderr, JSON log lines for machines.

Logs and summaries go to stderr so stdout stays clean for data (``explain --format json``).
No colours or progress bars when stderr is not a terminal (cron, pipes, CI).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

#: ``callback(done, total)``: the core reports progress through this, the UI draws it.
ProgressCallback = Callable[[int, int], None]

LogFormat = Literal["text", "json"]


@dataclass
class Reporter:
    """Where a command reports progress, warnings and its summary."""

    quiet: bool = False
    log_format: LogFormat = "text"

    @property
    def console(self) -> Console:
        """A console on the current stderr (looked up late so test runners can capture it)."""
        return Console(file=sys.stderr, highlight=False, soft_wrap=True)

    def _emit(self, level: str, message: str, **fields: Any) -> None:
        if self.log_format == "json":
            record = {
                "time": datetime.now(UTC).isoformat(timespec="seconds"),
                "level": level,
                "message": message,
                **fields,
            }
            print(json.dumps(record, default=str), file=sys.stderr)
        else:
            prefix = {"warning": "warning: ", "error": "error: "}.get(level, "")
            self.console.print(f"{prefix}{message}", markup=False)

    def info(self, message: str, **fields: Any) -> None:
        """A progress or summary line; hidden by --quiet."""
        if not self.quiet:
            self._emit("info", message, **fields)

    def warning(self, message: str, **fields: Any) -> None:
        """Something the user should know; always shown."""
        self._emit("warning", message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        """The failure that ends a command; always shown."""
        self._emit("error", message, **fields)

    def table(self, title: str, rows: list[tuple[str, str]], **fields: Any) -> None:
        """A two-column summary table (one JSON record in JSON mode)."""
        if self.quiet:
            return
        if self.log_format == "json":
            self._emit("info", title, **fields)
            return
        table = Table(title=title, show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column(justify="right")
        for key, value in rows:
            table.add_row(key, value)
        self.console.print(table)

    @contextmanager
    def progress(self, message: str) -> Iterator[ProgressCallback]:
        """A progress bar on a terminal; elsewhere one log line per tenth of the work."""
        started = time.perf_counter()
        if self.quiet or self.log_format == "json" or not sys.stderr.isatty():
            logged = [-1]

            def log(done: int, total: int) -> None:
                tenth = done * 10 // max(total, 1)
                if tenth > logged[0] and total > 3:  # small inputs: just the final line
                    logged[0] = tenth
                    self.info(f"{message}: {done}/{total}")

            yield log
        else:
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            with Progress(*columns, console=self.console, transient=True) as bar:
                task = bar.add_task(message, total=None)

                def draw(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                yield draw
        self.info(f"{message}: done in {time.perf_counter() - started:.1f} s")

    @contextmanager
    def step(self, message: str) -> Iterator[None]:
        """A long step: a spinner with elapsed time on a terminal, one log line otherwise."""
        started = time.perf_counter()
        if self.quiet or self.log_format == "json" or not sys.stderr.isatty():
            yield
            self.info(f"{message}: done in {time.perf_counter() - started:.1f} s")
            return
        with self.console.status(f"{message} ..."):
            yield
        self.info(f"{message}: done in {time.perf_counter() - started:.1f} s")


def human_int(value: int) -> str:
    """``1234567`` -> ``1,234,567``."""
    return f"{value:,}"
