"""The event store: a folder of canonical events, partitioned by month, fed export by export.

Layout::

    store/
      catalogue.json                 which input files were loaded (path, size, SHA-256, rows)
      contacts.parquet               every contact's number (contact_id -> engscore_contact_key)
      events/2026-11/part-<id>.parquet

The store keeps the canonical columns only (exports differ in their other columns; rules that
use an export's own columns read the export files directly), plus each event's contact number:
scoring groups and joins on those integers instead of the text ids, which on month files
(sorted by contact within each month only) is far faster. A contact keeps its number for
good; new contacts are numbered on from the highest, in id order. Month files are sorted by
contact number (then time), so scoring in ranges of numbers reads little beyond each range.
Stores made before the numbering have no ``contacts.parquet`` and month files sorted by id:
they are scored on the text ids until ``compact`` numbers them.

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
import pyarrow.parquet as pq

from engscore.config import IngestOptions
from engscore.errors import DataError
from engscore.io.ingest import (
    CONTACT_KEY,
    FileReport,
    LoadedEvents,
    load_exports,
    no_rejects,
)
from engscore.io.outputs import (
    PARQUET_ROW_GROUP,
    atomic_path,
    recover_interrupted,
    sha256_file,
    swap_folder,
    write_json,
)
from engscore.io.readers import first_line, resolve_inputs
from engscore.schema import CANONICAL_SCHEMA, CONTACT

CATALOGUE = "catalogue.json"
EVENTS = "events"
CONTACTS = "contacts.parquet"
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

    @property
    def contacts_file(self) -> Path:
        """The contact numbers (present once the store is numbered)."""
        return self.root / CONTACTS

    @property
    def numbered(self) -> bool:
        """True when the contacts are numbered and every event file carries the numbers.

        A file without them (written by an older engscore into this store) makes the store
        un-numbered until ``compact``: scored on the text ids, never on missing numbers.
        """
        if not self.contacts_file.is_file():
            return False
        return all(CONTACT_KEY in pq.read_schema(part).names for part in self.part_files())

    def scan(self) -> pl.LazyFrame:
        """All events as one lazy frame (canonical schema)."""
        return self._scan().drop(CONTACT_KEY, strict=False)

    def keyed_scan(self) -> pl.LazyFrame | None:
        """All events with their contact numbers, or None when the store is not numbered."""
        return self._scan() if self.numbered and self.part_files() else None

    def _scan(self) -> pl.LazyFrame:
        parts = self.part_files()
        if not parts:
            return pl.LazyFrame(schema=CANONICAL_SCHEMA)
        return pl.scan_parquet(parts, hive_partitioning=False, missing_columns="insert")

    def contact_numbers(self) -> pl.DataFrame:
        """``contact_id`` -> ``CONTACT_KEY`` of every contact numbered so far (none yet: empty)."""
        if not self.contacts_file.is_file():
            return pl.DataFrame(schema={CONTACT: pl.String, CONTACT_KEY: pl.UInt32})
        return read_contact_numbers(self.contacts_file)


def store_events(store: EventStore) -> LoadedEvents:
    """The store as scoring input: already canonical and de-duplicated."""
    rows = sum(pq.read_metadata(p).num_rows for p in store.part_files())
    keyed = store.keyed_scan()
    return LoadedEvents(
        valid=store.scan(),
        keyed=keyed,
        contact_numbers=store.contacts_file if keyed is not None else None,
        files=[FileReport(store.root, "engscore store", True, rows, 0)],
        rejects=no_rejects(),
        rows_rejected=0,
        reject_reasons={},
        machine_open_seconds=0.0,
        prepared=True,
    )


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
    loaded = load_exports([str(p) for p, _, _ in fresh], options)
    try:
        incoming = loaded.events.collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"cannot load: {first_line(exc)}") from exc
    # The store keeps the canonical columns: exports differ in their extra columns.
    incoming = incoming.select(list(CANONICAL_SCHEMA))
    added = _new_rows(store, incoming)
    if not store.part_files() or store.numbered:
        # Numbers first: a run killed before its events land leaves only unused numbers.
        added = _numbered(store, added)
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


def _numbered(store: EventStore, rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with their contacts' numbers; new contacts are numbered and saved first."""
    known = store.contact_numbers()
    fresh = (
        rows.select(pl.col(CONTACT).unique().sort()).join(known, on=CONTACT, how="anti").to_series()
    )
    # A new store gets its (maybe empty) contacts file at once: it is numbered from the start.
    if fresh.len() or not store.contacts_file.is_file():
        start = known.height  # numbers are dense: 0 .. height - 1
        numbers = pl.DataFrame(
            {CONTACT: fresh, CONTACT_KEY: pl.int_range(start, start + fresh.len(), eager=True)}
        ).cast({CONTACT_KEY: pl.UInt32})
        known = pl.concat([known, numbers])
        _write_contact_numbers(store, known)
    return rows.join(known, on=CONTACT, how="left", maintain_order="left")


def read_contact_numbers(path: Path) -> pl.DataFrame:
    """A store's ``contacts.parquet``; DataError (naming it and the way out) when unreadable."""
    try:
        return pl.read_parquet(path, columns=[CONTACT, CONTACT_KEY])
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(
            f"{path}: cannot read the contact numbers ({first_line(exc)}); delete it and run "
            "`engscore store compact` to number the store again"
        ) from exc


def _write_contact_numbers(store: EventStore, numbers: pl.DataFrame) -> None:
    store.root.mkdir(parents=True, exist_ok=True)
    with atomic_path(store.contacts_file) as temporary:
        numbers.write_parquet(temporary, compression="zstd", row_group_size=PARQUET_ROW_GROUP)


def _write_months(store: EventStore, rows: pl.DataFrame) -> list[str]:
    """One new part file per month touched, named by its content (idempotent on retry)."""
    if rows.is_empty():
        return []
    ordered = rows.with_columns(_month=_month()).sort(
        ["_month", *_order(rows.columns)], maintain_order=True
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


def _order(columns: list[str]) -> list[str]:
    """How month files are sorted: by contact number (by id before numbering), then time."""
    return [CONTACT_KEY if CONTACT_KEY in columns else CONTACT, "timestamp", "event_type"]


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
    #: Whether the events carry contact numbers (``compact`` adds them to older stores).
    numbered: bool


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
        numbered=store.numbered,
    )


def compact(store: EventStore) -> int:
    """Merge each month's part files into one; returns how many months were compacted.

    A store that is not numbered (made before contact numbering, or given a file without the
    numbers by an older engscore) is numbered afresh here: ``contacts.parquet`` is removed,
    every month is rewritten with the new numbers, and ``contacts.parquet`` is written last,
    so a kill leaves the store un-numbered (still correct, scored on text ids) and the next
    ``compact`` numbers it again. Each month folder is rebuilt beside itself and swapped in
    whole, so a kill leaves either the old files or the new file, never both.
    """
    if not is_store(store.root):
        raise DataError(f"{store.root}: not an event store (no {CATALOGUE})")
    numbers: pl.DataFrame | None = None
    if not store.numbered and store.part_files():
        # The old numbers go first: a kill while the months are renumbered must leave the
        # store un-numbered, not numbered two ways.
        store.contacts_file.unlink(missing_ok=True)
        # Dense numbers in id order, from the events themselves: the same on any retry.
        ids = store.scan().select(pl.col(CONTACT).unique()).collect(engine="streaming")
        ids = ids.sort(CONTACT)
        numbers = ids.with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias(CONTACT_KEY))
    compacted = 0
    for month in sorted(p for p in store.events_folder.glob("*") if p.is_dir()):
        recover_interrupted(month)
        parts = sorted(month.glob("*.parquet"))
        if len(parts) < 2 and numbers is None:
            continue
        merged = pl.scan_parquet(parts, missing_columns="insert")
        if numbers is not None:
            merged = merged.drop(CONTACT_KEY, strict=False).join(
                numbers.lazy(), on=CONTACT, how="left", maintain_order="left"
            )
        order = _order(merged.collect_schema().names())
        data = merged.sort(order, maintain_order=True).collect()
        fresh = month.with_name(f".{month.name}.tmp-{os.getpid()}")
        fresh.mkdir()
        data.write_parquet(
            fresh / "part-compacted.parquet", compression="zstd", row_group_size=STORE_ROW_GROUP
        )
        swap_folder(fresh, month)
        compacted += 1
    if numbers is not None:
        _write_contact_numbers(store, numbers)
    return compacted
