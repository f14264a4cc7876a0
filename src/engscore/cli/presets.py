"""``engscore presets``: list the built-in export presets."""

from __future__ import annotations

from rich.table import Table

from engscore.cli.app import app, handle_errors, reporter
from engscore.presets import PRESETS


@app.command("presets")
@handle_errors
def presets_command() -> None:
    """List the built-in presets, the columns that identify each, and their machine-open source."""
    table = Table(title="Presets (--preset NAME; auto detects them from these columns)")
    table.add_column("preset", style="bold")
    table.add_column("identified by")
    table.add_column("machine opens")
    table.add_column("what it reads")
    for preset in PRESETS.values():
        table.add_row(
            preset.name,
            ", ".join(preset.signature),
            "export flag, else heuristic" if preset.flags_machine_opens else "heuristic",
            preset.description,
        )
    reporter().console.print(table)
