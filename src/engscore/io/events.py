"""Events from any input: an event store folder, or export files (``engscore ingest``'s
output among them). What every command that reads events calls."""

from __future__ import annotations

from pathlib import Path

from engscore.config import IngestOptions
from engscore.io.ingest import LoadedEvents, check_options, load_exports, sorted_exports
from engscore.io.store import EventStore, is_store, store_events


def load_events(inputs: list[str], options: IngestOptions | None = None) -> LoadedEvents:
    """The events of ``inputs``: one store folder as it is, else export files, read, mapped
    and validated (``load_exports``: it says what is an error)."""
    options = options or IngestOptions()
    check_options(options)
    if len(inputs) == 1 and is_store(Path(inputs[0])):
        return store_events(EventStore(Path(inputs[0])))
    return load_exports(inputs, options)


def load_events_sorted(
    inputs: list[str], scratch: Path, options: IngestOptions | None = None
) -> LoadedEvents:
    """``load_events`` for a whole scoring: a store as it is, exports sorted by contact into
    ``scratch`` first (``sorted_exports``), so that the scoring reads them once."""
    options = options or IngestOptions()
    check_options(options)
    if len(inputs) == 1 and is_store(Path(inputs[0])):
        return store_events(EventStore(Path(inputs[0])))
    return sorted_exports(inputs, scratch, options)
