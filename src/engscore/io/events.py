"""Events from any input: an event store folder, or export files (``engscore ingest``'s
output among them). What every command that reads events calls."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from engscore.config import IngestOptions
from engscore.io.collected import collect_exports, fits_in_memory, ingest_in_memory
from engscore.io.ingest import (
    IngestSummary,
    LoadedEvents,
    check_options,
    ingest_on_disk,
    ingested_output,
    load_exports,
    sorted_exports,
)
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
    inputs: list[str],
    scratch: Path,
    options: IngestOptions | None = None,
    columns: set[str] | None = None,
    check: Callable[[pl.Schema], None] | None = None,
    event_type_codes: bool = False,
) -> LoadedEvents:
    """``load_events`` for a whole scoring: a store or an ``engscore ingest`` output as it
    is; other exports read once into memory (``collect_exports``: ``columns``, ``check`` and
    ``event_type_codes`` are its), or, when too large for that, sorted by contact into
    ``scratch`` first (``sorted_exports``), so that the scoring reads them once."""
    options = options or IngestOptions()
    check_options(options)
    if len(inputs) == 1 and is_store(Path(inputs[0])):
        return store_events(EventStore(Path(inputs[0])))
    ingested = ingested_output(inputs, options)
    if ingested is None and fits_in_memory(inputs):
        return collect_exports(inputs, options, columns, check, event_type_codes)
    loaded = ingested or sorted_exports(inputs, scratch, options)
    if check is not None:
        check(loaded.events.collect_schema())
    return loaded


def ingest_to_file(
    inputs: list[str],
    output: Path,
    options: IngestOptions | None = None,
    rejects_path: Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    """``engscore ingest``: write the normalised events (validated, de-duplicated, sorted by
    contact and time, numbered in a Parquet output) to ``output``, atomically.

    In memory (one read, one sort, one write) when the inputs fit (``fits_in_memory``), else
    through contact-range files on disk; both write the same rows in the same order. With
    ``on_error="skip"`` rejected rows go to ``rejects_path`` (default ``<output
    stem>.rejects.csv``). ``on_progress(done, total)`` is called as stages complete.
    """
    options = options or IngestOptions()
    check_options(options)
    if fits_in_memory(inputs):
        return ingest_in_memory(inputs, output, options, rejects_path, on_progress)
    return ingest_on_disk(inputs, output, options, rejects_path, on_progress)
