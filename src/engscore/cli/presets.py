"""``engscore presets``: list the built-in export presets."""

from __future__ import annotations

from rich.table import Table

from engscore.cli.app import app, handle_errors, reporter
from engscore.presets import PRESETS
from engscore.presets.base import describe_event_map


@app.command("presets")
@handle_errors
def presets_command() -> None:
    """List the built-in presets: the columns that identify each, their machine-open source and
    every event name they know (mapped, kept, skipped or account-level)."""
    table = Table(title="Presets (--preset NAME; auto detects them from these columns)")
    table.add_column("preset", style="bold")
    table.add_column("identified by")
    table.add_column("machine opens")
    table.add_column("what it reads")
    table.add_column("event names → canonical")
    for preset in PRESETS.values():
        table.add_row(
            preset.name,
            ", ".join(preset.signature),
            "export flag, else heuristic" if preset.flags_machine_opens else "heuristic",
            preset.description,
            describe_event_map(preset.event_map),
        )
    reporter().console.print(table)
