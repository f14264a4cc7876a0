"""The event store: a folder of canonical events, partitioned by month, fed export by export.

Layout::

    store/
      catalogue.json                 which input files were loaded (path, size, SHA-256, rows)
      events/2026-11/part-<id>.parquet

The store keeps the canonical columns only (exports differ in their other columns; rules that
use an export's own columns read the export files directly).

Appending an export that was already loaded (same size and content hash, under any name) adds
nothing; a new export adds only events the store does not hold yet: same contact and event id,
or, without an event id, the same row. Event files are written first and the catalogue last,
each atomically, so a run killed half-way leaves at worst event files whose export is not in
the catalogue yet: the next run loads it again and de-duplication adds nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from engscore.errors import DataError
from engscore.ingest import IngestOptions, load_events
from engscore.outputs import (
    atomic_path,
    recover_interrupted,
    sha256_file,
    swap_folder,
    write_json,
)
from engscore.readers import first_line, resolve_inputs
from engscore.schema import CANONICAL_SCHEMA

CATALOGUE = "catalogue.json"
EVENTS = "events"
#: Rows per row group of the (contact-sorted) month files: small enough that scoring in
#: contact ranges reads little beyond its range (on a 100M-event store, 262k-row groups made
#: the score step 48 s, 64k-row groups 40 s).
STORE_ROW_GROUP = 65_536
#: Columns that identify an event without an id (the canonical ones).
IDENTITY = list(CANONICAL_SCHEMA)


def is_store(path: Path) -> bool:
    """True for a folder that holds an event store."""
    return path.is_dir() and (path / CATALOGUE).is_file()


@dataclass
class EventStore:
    """A store folder (created on first append)."""

    root: Path

    @property
    def events_folder(self) -> Path:
        """Where the month partitions live."""
        return self.root / EVENTS

    def catalogue(self) -> list[dict[str, Any]]:
        """The loaded files, oldest first."""
        path = self.root / CATALOGUE
        if not path.is_file():
            return []
        try:
            entries = json.loads(path.read_text("utf-8"))["files"]
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{path}: not an engscore store catalogue") from exc
        return list(entries)

    def part_files(self) -> list[Path]:
        """Every event file, in month and name order."""
        for month in self.events_folder.glob("*"):
            recover_interrupted(month)
        return sorted(self.events_folder.glob("*/*.parquet"))

    def scan(self) -> pl.LazyFrame:
        """All events as one lazy frame (canonical schema)."""
        parts = self.part_files()
        if not parts:
            return pl.LazyFrame(schema=CANONICAL_SCHEMA)
        return pl.scan_parquet(parts, hive_partitioning=False, missing_columns="insert")


@dataclass(frozen=True)
class AppendResult:
    """What an append did."""

    new_files: list[Path]
    skipped_files: list[Path]
    rows_read: int
    rows_added: int
    months: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        """Rows of the new files that the store already held."""
        return self.rows_read - self.rows_added


def _digest(path: Path) -> tuple[int, str]:
    return path.stat().st_size, sha256_file(path)


def append(
    store: EventStore, inputs: list[str], options: IngestOptions | None = None
) -> AppendResult:
    """Load the inputs that are not in the catalogue yet and add their new events."""
    items = resolve_inputs(inputs)
    known = {(entry["size"], entry["sha256"]) for entry in store.catalogue()}
    fresh: list[tuple[Path, int, str]] = []
    skipped: list[Path] = []
    seen_now: set[tuple[int, str]] = set()
    for item in items:
        size, digest = _digest(item.path)
        if (size, digest) in known or (size, digest) in seen_now:
            skipped.append(item.path)
        else:
            fresh.append((item.path, size, digest))
            seen_now.add((size, digest))
    if not fresh:
        return AppendResult([], skipped, 0, 0)
    loaded = load_events([str(p) for p, _, _ in fresh], options)
    try:
        incoming = loaded.events.collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"cannot load: {first_line(exc)}") from exc
    # The store keeps the canonical columns: exports differ in their extra columns.
    incoming = incoming.select(list(CANONICAL_SCHEMA))
    added = _new_rows(store, incoming)
    months = _write_months(store, added)
    entries = store.catalogue()
    for path, size, digest in fresh:
        entries.append({"path": str(path), "size": size, "sha256": digest})
    store.root.mkdir(parents=True, exist_ok=True)
    write_json({"version": 1, "files": entries, "rows": _row_count(store)}, store.root / CATALOGUE)
    return AppendResult(
        new_files=[p for p, _, _ in fresh],
        skipped_files=skipped,
        rows_read=incoming.height,
        rows_added=added.height,
        months=months,
    )


def _month(column: str = "timestamp") -> pl.Expr:
    return pl.col(column).dt.strftime("%Y-%m")


def _new_rows(store: EventStore, incoming: pl.DataFrame) -> pl.DataFrame:
    """Rows of ``incoming`` the store does not hold (by contact + event id, else row identity)."""
    if incoming.is_empty():
        return incoming
    months = incoming.select(_month().unique())["timestamp"].to_list()
    existing_parts = [
        p for month in months for p in sorted((store.events_folder / month).glob("*.parquet"))
    ]
    if not existing_parts:
        return incoming
    existing = pl.scan_parquet(existing_parts, missing_columns="insert")
    with_id = incoming.filter(pl.col("event_id").is_not_null())
    without_id = incoming.filter(pl.col("event_id").is_null())
    known_ids = existing.filter(pl.col("event_id").is_not_null()).select("contact_id", "event_id")
    new_with_id = with_id.lazy().join(known_ids, on=["contact_id", "event_id"], how="anti")
    known_rows = existing.filter(pl.col("event_id").is_null()).select(IDENTITY)
    new_without_id = without_id.lazy().join(known_rows, on=IDENTITY, how="anti", nulls_equal=True)
    return pl.concat([new_with_id, new_without_id]).collect()


def _write_months(store: EventStore, rows: pl.DataFrame) -> list[str]:
    """One new part file per month touched, named by its content (idempotent on retry)."""
    if rows.is_empty():
        return []
    ordered = rows.with_columns(_month=_month()).sort(
        ["_month", "contact_id", "timestamp", "event_type"], maintain_order=True
    )
    months = []
    for (month,), part in ordered.group_by("_month", maintain_order=True):
        data = part.drop("_month")
        digest = hashlib.sha256(data.hash_rows().to_numpy().tobytes()).hexdigest()[:16]
        target = store.events_folder / str(month) / f"part-{digest}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as temporary:
            data.write_parquet(temporary, compression="zstd", row_group_size=STORE_ROW_GROUP)
        months.append(str(month))
    return months


def _row_count(store: EventStore) -> int:
    parts = store.part_files()
    if not parts:
        return 0
    return int(pl.scan_parquet(parts).select(pl.len()).collect().item())


@dataclass(frozen=True)
class StoreInfo:
    """``engscore store info``."""

    root: Path
    files_loaded: int
    months: int
    part_files: int
    rows: int
    contacts: int
    first_event: datetime | None
    last_event: datetime | None
    bytes_on_disk: int


def info(store: EventStore) -> StoreInfo:
    """Figures about a store (DataError when the folder is not one)."""
    if not is_store(store.root):
        raise DataError(
            f"{store.root}: not an event store (no {CATALOGUE}); fill one with "
            "`engscore ingest EXPORTS --store DIR`"
        )
    parts = store.part_files()
    if parts:
        row = (
            store.scan()
            .select(
                rows=pl.len(),
                contacts=pl.col("contact_id").n_unique(),
                first=pl.col("timestamp").min(),
                last=pl.col("timestamp").max(),
            )
            .collect(engine="streaming")
            .row(0, named=True)
        )
    else:
        row = {"rows": 0, "contacts": 0, "first": None, "last": None}
    return StoreInfo(
        root=store.root,
        files_loaded=len(store.catalogue()),
        months=len({p.parent.name for p in parts}),
        part_files=len(parts),
        rows=int(row["rows"]),
        contacts=int(row["contacts"]),
        first_event=row["first"],
        last_event=row["last"],
        bytes_on_disk=sum(p.stat().st_size for p in parts),
    )


def compact(store: EventStore) -> int:
    """Merge each month's part files into one; returns how many months were compacted.

    Each month folder is rebuilt beside itself and swapped in whole, so a kill leaves either
    the old files or the new file, never both.
    """
    if not is_store(store.root):
        raise DataError(f"{store.root}: not an event store (no {CATALOGUE})")
    compacted = 0
    for month in sorted(p for p in store.events_folder.glob("*") if p.is_dir()):
        recover_interrupted(month)
        parts = sorted(month.glob("*.parquet"))
        if len(parts) < 2:
            continue
        data = (
            pl.scan_parquet(parts, missing_columns="insert")
            .sort(["contact_id", "timestamp", "event_type"], maintain_order=True)
            .collect()
        )
        fresh = month.with_name(f".{month.name}.tmp-{os.getpid()}")
        fresh.mkdir()
        data.write_parquet(
            fresh / "part-compacted.parquet", compression="zstd", row_group_size=STORE_ROW_GROUP
        )
        swap_folder(fresh, month)
        compacted += 1
    return compacted
