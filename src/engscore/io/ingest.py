"""The ingest stage: inputs -> presets -> canonical, validated, de-duplicated events.

``load_exports`` reads export files (``engscore.io.events.load_events``, what every command
that reads events calls, adds the event store); ``ingest_on_disk`` is the ``engscore ingest``
command for inputs too large for memory (``io.collected`` does the rest). Validation is one
pass over the inputs in batches (row counts, reject reasons, time-zone mix) so bad data is
reported before any output exists; the events themselves stay lazy for the caller to collect
or stream once.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from engscore import timestamps
from engscore.config import IngestOptions
from engscore.engine.normalise import (
    SKIPPED_ACCOUNT_LEVEL,
    canonicalise,
    drop_duplicates,
    finalise,
    flag_machine_opens,
)
from engscore.errors import ConfigError, DataError
from engscore.io.outputs import ChunkWriter, atomic_path, output_format, write_frame
from engscore.io.readers import (
    InputFile,
    collect_schema,
    first_line,
    flatten_structs,
    resolve_inputs,
    scan_file,
)
from engscore.mapping import load_mapping
from engscore.presets import PRESET_NAMES, detect_preset, get_preset
from engscore.presets.base import MapContext, Preset
from engscore.presets.contact_exports import contacts_export, refusal
from engscore.schema import CONTACT

_SHOWN_REJECTS = 3
#: Input rows per batch when ingest reads the inputs itself (validation, partitioning).
BATCH_ROWS = 100_000
#: Valid rows held back before they are appended to their range files.
_FLUSH_ROWS = 5 * BATCH_ROWS
#: Rows per contact range when writing: bounds the memory of sorting and de-duplication.
BUCKET_ROWS = 250_000
#: Bookkeeping columns only validation and the rejects file use.
_REPORT_COLUMNS = ("_file", "_line", "_reject", "_naive", "_raw_timestamp")
#: What the rejects file is made of.
_REJECT_COLUMNS = ("_file", "_line", "_reject", "_ord", CONTACT, "event_type", "_raw_timestamp")
#: Parquet metadata marking a file written by ``engscore ingest`` (already normalised).
EVENTS_METADATA_KEY = b"engscore.events"
EVENTS_FORMAT_VERSION = b"1"
#: An integer per contact in a Parquet file written by ``engscore ingest``: 0, 1, 2 ... in
#: ``contact_id`` order. Scoring groups and joins on it instead of the text ids (far cheaper).
CONTACT_KEY = "engscore_contact_key"
#: Parquet metadata saying the file's ``CONTACT_KEY`` column is that numbering.
CONTACT_KEY_METADATA = b"engscore.contact_key"
CONTACT_KEY_VERSION = b"1"


@dataclass(frozen=True)
class FileReport:
    """What ingest made of one input file."""

    path: Path
    preset: str
    detected: bool
    rows_read: int
    rows_rejected: int
    #: Account-level events (no recipient by design): skipped, not rejected.
    rows_skipped: int = 0


@dataclass
class LoadedEvents:
    """Validated inputs (lazy) and what was read to get them."""

    #: Valid rows with bookkeeping columns, before machine-open flags and de-duplication.
    valid: pl.LazyFrame
    files: list[FileReport]
    rejects: pl.LazyFrame
    rows_rejected: int
    reject_reasons: dict[str, int]
    machine_open_seconds: float
    #: Sorted contact ids that split the valid rows into ranges of about BUCKET_ROWS rows.
    contact_bounds: list[str] = field(default_factory=list)
    #: Things the user should know that do not stop the run (e.g. an input with no events).
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        """Rows read over all files (after a preset's explode, before rejects)."""
        return sum(f.rows_read for f in self.files)

    @property
    def rows_skipped(self) -> int:
        """Account-level events skipped over all files (read, neither kept nor rejected)."""
        return sum(f.rows_skipped for f in self.files)

    #: True when ``valid`` is already prepared (one events file written by ``engscore ingest``).
    prepared: bool = False
    #: The valid rows written out by validation, when asked for.
    spill: _Spill | None = None
    #: The events with ``CONTACT_KEY`` (an ``engscore ingest`` Parquet output), else None.
    keyed: pl.LazyFrame | None = None
    #: True when the events are sorted by contact, then time (one ``engscore ingest`` output).
    presorted: bool = False
    #: The file of ``contact_id`` -> ``CONTACT_KEY``, when kept apart from the events (a store's).
    contact_numbers: Path | None = None
    #: ``CONTACT_KEY`` (as ``contact_id``) -> ``_contact_text``, when made in memory
    #: (``io.collected``).
    contact_names: pl.DataFrame | None = None

    @property
    def events(self) -> pl.LazyFrame:
        """The canonical events, machine opens flagged and duplicates dropped (in no order)."""
        if self.prepared:
            return self.valid
        return prepare_events(self.valid, self.machine_open_seconds, sort=False)


def prepare_events(
    valid: pl.LazyFrame, machine_open_seconds: float, sort: bool = True
) -> pl.LazyFrame:
    """Flag machine opens, drop duplicates and (optionally) sort; drop bookkeeping columns.

    All of it is per contact, so it works on any subset of whole contacts (ingest runs it on
    contact ranges to bound memory).
    """
    return finalise(drop_duplicates(flag_machine_opens(valid, machine_open_seconds)), sort)


def no_rejects() -> pl.LazyFrame:
    """The rejects of inputs that are already canonical: none."""
    return pl.LazyFrame(schema={"file": pl.String, "line": pl.Int64, "reason": pl.String})


def _ingested_events(items: list[InputFile]) -> LoadedEvents | None:
    """The fast path: a single Parquet file written by ``engscore ingest`` needs no work."""
    if len(items) != 1 or items[0].format != "parquet" or items[0].compressed:
        return None
    try:
        footer = pq.read_metadata(items[0].path)
    except (OSError, pa.ArrowException):
        return None  # the normal path reports what is wrong with the file
    metadata = footer.metadata or {}
    if metadata.get(EVENTS_METADATA_KEY) != EVENTS_FORMAT_VERSION:
        return None
    scan = pl.scan_parquet(items[0].path)
    # The marks travel with the schema, so a file glued together from two ingest outputs by
    # another tool keeps them: the row-group statistics tell whether the order still holds.
    ordered = _ascending_row_groups(footer, CONTACT)
    keyed = (
        ordered
        and metadata.get(CONTACT_KEY_METADATA) == CONTACT_KEY_VERSION
        and _ascending_row_groups(footer, CONTACT_KEY)
    )
    return LoadedEvents(
        valid=scan.drop(CONTACT_KEY, strict=False),
        keyed=scan if keyed else None,
        files=[FileReport(items[0].path, "engscore events", True, footer.num_rows, 0)],
        rejects=no_rejects(),
        rows_rejected=0,
        reject_reasons={},
        machine_open_seconds=0.0,
        prepared=True,
        presorted=ordered,
    )


def row_group_ranges(footer: pq.FileMetaData, column: str) -> list[tuple[Any, Any]] | None:
    """(min, max) of ``column`` in each row group, from the statistics; None when the column
    or any statistics are missing."""
    try:
        index = footer.schema.names.index(column)
    except ValueError:
        return None
    ranges = []
    for group in range(footer.num_row_groups):
        stats = footer.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max:
            return None
        ranges.append((stats.min, stats.max))
    return ranges


def _ascending_row_groups(footer: pq.FileMetaData, column: str) -> bool:
    """Whether ``column``'s row groups follow each other in order (each one's maximum at or
    below the next one's minimum)."""
    ranges = row_group_ranges(footer, column)
    return ranges is not None and all(
        high <= low for (_, high), (low, _) in zip(ranges, ranges[1:], strict=False)
    )


@dataclass(frozen=True)
class IngestSummary:
    """The figures ``engscore ingest`` reports."""

    files: list[FileReport]
    output: Path
    rows_read: int
    rows_rejected: int
    reject_reasons: dict[str, int]
    duplicates_dropped: int
    rows_kept: int
    machine_opens: int
    contacts: int
    first_event: datetime | None
    last_event: datetime | None
    rejects_file: Path | None
    warnings: list[str] = field(default_factory=list)
    #: Account-level events skipped (read, neither kept nor rejected).
    rows_skipped: int = 0


def choose_preset(
    item: InputFile, schema: pl.Schema, options: IngestOptions
) -> tuple[Preset, bool]:
    """The preset (or mapping file) that reads ``item``, and whether it was detected."""
    if options.mapping is not None:
        # A mapping file is the user's own reading of the columns: it may map any of them.
        return load_mapping(options.mapping), False
    export = contacts_export(schema.names())
    if export is not None:
        # Whatever the preset: its "missing column" error would not say what the file is.
        raise DataError(refusal(item.path, export))
    if options.preset.lower() != "auto":
        return get_preset(options.preset), False
    preset = detect_preset(schema.names())
    if preset is None:
        found = ", ".join(schema.names()[:15]) + (", ..." if len(schema) > 15 else "")
        raise DataError(
            f"{item.path}: cannot tell which export this is (columns found: {found}); "
            f"pass --preset ({', '.join(PRESET_NAMES)}) or --mapping FILE"
        )
    return preset, True


def _line_numbers(frame: pl.LazyFrame, item: InputFile, first_row: int = 0) -> pl.LazyFrame:
    # CSV lines and sheet rows count the header; JSON-lines lines are records; other formats
    # number records.
    offset = (2 if item.format in ("csv", "tsv", "xlsx") else 1) + first_row
    return frame.with_row_index("_line", offset=offset)


@dataclass(frozen=True)
class Source:
    """One input file and how it maps to canonical events."""

    index: int
    item: InputFile
    raw: pl.LazyFrame
    schema: pl.Schema
    preset: Preset
    detected: bool
    zone: str
    #: The export has no machine flag of its own: apply the heuristic.
    heuristic: bool

    def canonical(
        self, raw: pl.LazyFrame, first_row: int = 0, contacts_as_read: bool = False
    ) -> pl.LazyFrame:
        """``raw`` rows of this file (starting at row ``first_row``) as canonical events
        (``contacts_as_read``: see ``canonicalise``)."""
        ctx = MapContext(source=self.item.path, timezone=self.zone)
        mapped = self.preset.mapper(_line_numbers(raw, self.item, first_row), self.schema, ctx)
        return canonicalise(
            mapped,
            self.index,
            self.zone,
            heuristic_machine_opens=self.heuristic,
            contacts_as_read=contacts_as_read,
        )

    @property
    def events(self) -> pl.LazyFrame:
        """The whole file as canonical events (lazy)."""
        return self.canonical(self.raw)


def plan_sources(
    items: list[InputFile], options: IngestOptions, in_pieces: bool = False
) -> list[Source]:
    """Each input's scan, preset and zone (``in_pieces``: see ``readers.scan_file``)."""
    sources: list[Source] = []
    for index, item in enumerate(items):
        raw = scan_file(item, options.encoding, in_pieces)
        schema = collect_schema(raw, item.path)
        preset, detected = choose_preset(item, schema, options)
        zone = options.timezone or preset.timezone or "UTC"
        mapped = preset.mapper(
            _line_numbers(raw, item), schema, MapContext(source=item.path, timezone=zone)
        )
        # The heuristic applies only where the export itself says nothing about machine opens.
        provider_flags = "is_machine" in collect_schema(mapped, item.path)
        sources.append(Source(index, item, raw, schema, preset, detected, zone, not provider_flags))
    return sources


def _canonical_batches(source: Source) -> Iterator[pl.DataFrame]:
    """The file's canonical rows (bookkeeping columns included), ``BATCH_ROWS`` at a time.

    Polars' streaming engine keeps several row groups of a Parquet file in flight, about
    1.4 GB for a 20M-row export even when only copying it; pyarrow reads one slice at a time,
    so memory stays near one batch whatever the file's size.
    """
    item = source.item
    raw_batches: Iterator[pl.DataFrame]
    if item.format == "parquet" and not item.compressed:
        arrow_batches = pq.ParquetFile(item.path).iter_batches(batch_size=BATCH_ROWS)
        raw_batches = (_frame(batch) for batch in arrow_batches)
    else:
        raw_batches = iter(source.raw.collect_batches(chunk_size=BATCH_ROWS, engine="streaming"))
    first_row = 0
    for raw in raw_batches:
        # The same column types as the lazy scan, whichever reader produced the batch.
        batch = flatten_structs(raw.lazy(), item.path).cast(source.schema)
        yield source.canonical(batch, first_row).collect()
        first_row += raw.height


def _detached(frame: pl.DataFrame) -> pl.DataFrame:
    """A copy that owns its data: a filtered string column still points into the whole
    batch's buffers, so keeping a few rows of every batch would keep every batch."""
    return pl.DataFrame(frame.to_dict(as_series=False), schema=frame.schema)


def _frame(batch: pa.RecordBatch) -> pl.DataFrame:
    frame = pl.from_arrow(batch)
    assert isinstance(frame, pl.DataFrame)  # a record batch is always a frame
    return frame


def read_errors(items: list[InputFile]) -> Callable[[Exception], DataError]:
    def error(exc: Exception) -> DataError:
        names = ", ".join(str(i.path) for i in items[:3]) + (" ..." if len(items) > 3 else "")
        reason = first_line(exc)
        if "utf-8" in reason.lower() or "utf8" in reason.lower():
            reason += "; pass --encoding (e.g. --encoding latin-1) with the file's encoding"
        return DataError(f"{names}: cannot read: {reason}")

    return error


class _Spill:
    """Rows of every input in input order (the valid ones, or the rejected ones): an Arrow IPC
    file ``name`` in a temporary folder created (on first write) inside ``folder``.

    Rows are conformed to the columns given to ``start`` (for valid rows, the union over the
    inputs: files may differ in their extra columns). Categoricals are written as text: an
    IPC file allows one dictionary per column, and every batch brings its own; ``batches``
    gives them as text, ``scan`` and ``restore`` as the categoricals they were. ``remove``
    deletes the folder.
    """

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.name = name
        self.columns: pl.Schema | None = None
        self.path: Path | None = None
        self._writer: pa.ipc.RecordBatchFileWriter | None = None
        self._made: list[Path] = []

    def start(self, columns: pl.Schema) -> None:
        """Set the columns every batch is conformed to."""
        self.columns = columns

    def write(self, rows: pl.DataFrame) -> None:
        """Append rows (conformed to the columns)."""
        assert self.columns is not None, "start() first"
        table = conform(rows, self.columns).cast(self._as_text()).to_arrow()
        if self._writer is None:
            missing = [p for p in (self.folder, *self.folder.parents) if not p.exists()]
            self.folder.mkdir(parents=True, exist_ok=True)
            self._made = missing
            self.path = Path(tempfile.mkdtemp(prefix=".engscore-", dir=self.folder)) / self.name
            # IPC, not Parquet: read back once, and far cheaper to write.
            options = pa.ipc.IpcWriteOptions(compression="zstd")
            self._writer = pa.ipc.new_file(self.path, table.schema, options=options)
        self._writer.write_table(table)

    def _categoricals(self) -> pl.Schema:
        assert self.columns is not None, "start() first"
        categorical = (pl.Categorical, pl.Enum)
        return pl.Schema({n: t for n, t in self.columns.items() if isinstance(t, categorical)})

    def _as_text(self) -> pl.Schema:
        return pl.Schema(dict.fromkeys(self._categoricals(), pl.String()))

    def restore(self, spilled: pl.LazyFrame) -> pl.LazyFrame:
        """Rows read from this spill (or from files of its batches) with their categoricals
        given back."""
        return spilled.cast(self._categoricals())

    def scan(self) -> pl.LazyFrame:
        """The rows written, lazily, in the columns' own types."""
        assert self.path is not None, "nothing written"
        return self.restore(pl.scan_ipc(self.path))

    def close(self) -> None:
        """Finish the file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def batches(self) -> Iterator[pl.DataFrame]:
        """The rows back, one written batch at a time (none when nothing was written), with
        categoricals as text (``restore`` gives them back)."""
        if self.path is None:
            return
        with pa.ipc.open_file(self.path) as reader:
            for index in range(reader.num_record_batches):
                frame = pl.from_arrow(reader.get_batch(index))
                assert isinstance(frame, pl.DataFrame)  # a record batch is always a frame
                yield frame

    def remove(self) -> None:
        """Close and delete the temporary folder."""
        self.close()
        if self.path is not None:
            shutil.rmtree(self.path.parent, ignore_errors=True)
            self.path = None
        # Folders made for the spill go too, unless the output has landed in them.
        for made in self._made:
            with contextlib.suppress(OSError):
                made.rmdir()


def conform(rows: pl.DataFrame, columns: pl.Schema) -> pl.DataFrame:
    """``rows`` with exactly ``columns``, in order: missing ones null, others cast."""
    present = rows.columns
    return rows.select(
        pl.col(name).cast(dtype) if name in present else pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in columns.items()
    )


def _validate(
    sources: list[Source], spill: _Spill | None = None, rejects_spill: _Spill | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Per-file counts, reject reasons, the first rejects and a contact sample, batch by batch.

    Each batch gives small partial results that add up (counts, reasons), keep the first few
    (rejects, in input order) or concatenate (the 1-in-64 row sample of contact ids that gives
    the contact ranges for bucketed writing). With ``spill`` and ``rejects_spill``, the valid
    and the rejected rows are also written there, so writing the events and the rejects file
    does not read and map the inputs a second time.
    """
    counts: list[pl.DataFrame] = []
    reasons: list[pl.DataFrame] = []
    shown: list[pl.DataFrame] = []
    samples: list[pl.DataFrame] = []
    skipped = pl.col("_reject") == SKIPPED_ACCOUNT_LEVEL
    rejected = pl.col("_reject").is_not_null() & ~skipped
    valid = pl.col("_reject").is_null()
    for source in sources:
        for batch in _canonical_batches(source):
            counts.append(
                batch.group_by("_file").agg(
                    rows=pl.len(),
                    rejected=rejected.sum(),
                    skipped=skipped.sum(),
                    naive=(pl.col("_naive") & valid).sum(),
                    aware=(~pl.col("_naive") & valid).sum(),
                )
            )
            rejects = batch.filter(rejected)
            reasons.append(rejects.group_by("_reject").len())
            shown.append(
                _detached(
                    rejects.select("_file", "_line", "_reject", "_raw_timestamp", "_ord")
                    .sort("_ord")
                    .head(_SHOWN_REJECTS)
                )
            )
            samples.append(
                _detached(batch.filter(valid & (pl.col("_ord") % 64 == 0)).select(CONTACT))
            )
            if spill is not None:
                spill.write(batch.filter(valid))
            if rejects_spill is not None and rejects.height:
                rejects_spill.write(rejects)
    per_file = (
        pl.concat(counts).group_by("_file").agg(pl.all().sum()).sort("_file")
        if counts
        else pl.DataFrame(schema={"_file": pl.Int32, "rows": pl.UInt32})
    )
    by_reason = (
        pl.concat(reasons).group_by("_reject").agg(pl.col("len").sum())
        if reasons
        else pl.DataFrame(schema={"_reject": pl.String, "len": pl.UInt32})
    )
    first_rejects = pl.concat(shown).sort("_ord").head(_SHOWN_REJECTS) if shown else pl.DataFrame()
    sample = pl.concat(samples) if samples else pl.DataFrame(schema={CONTACT: pl.String})
    return per_file, by_reason, first_rejects, sample


def check_options(options: IngestOptions) -> None:
    """Config errors of the options themselves (an unknown time zone or --on-error value)."""
    if options.timezone is not None:
        timestamps.check_timezone(options.timezone)
    if options.on_error not in ("fail", "skip"):
        raise ConfigError(f"--on-error must be 'fail' or 'skip', not {options.on_error!r}")


def load_exports(
    inputs: list[str],
    options: IngestOptions | None = None,
    spill: _Spill | None = None,
    rejects_spill: _Spill | None = None,
) -> LoadedEvents:
    """Read, map and validate export files; return the canonical events as a lazy query.

    One events file written by ``engscore ingest`` is taken as it is, except when ingest
    writes the inputs out again (``spill``): then it goes the whole way (validated,
    de-duplicated, sorted and numbered). Raises DataError for unreadable files, missing
    columns, a time-zone mix without ``--timezone``, and (with ``on_error="fail"``) any
    rejected row. ``engscore.io.events.load_events`` also takes an event store.
    """
    options = options or IngestOptions()
    check_options(options)
    items = resolve_inputs(inputs)
    canonical = options.mapping is None and options.preset.lower() in ("auto", "generic")
    if spill is None and canonical:
        ingested = _ingested_events(items)
        if ingested is not None:
            return ingested
    sources = plan_sources(items, options)
    combined = pl.concat([source.events for source in sources], how="diagonal_relaxed")
    # Another ingest output's contact numbering means nothing here: it is made afresh.
    combined = combined.drop(CONTACT_KEY, strict=False)
    schema = combined.collect_schema()
    if spill is not None:
        spill.start(combined.drop(_REPORT_COLUMNS, strict=False).collect_schema())
    if rejects_spill is not None:
        rejects_spill.start(pl.Schema({name: schema[name] for name in _REJECT_COLUMNS}))
    try:
        counts, reason_counts, shown, sampled = _validate(sources, spill, rejects_spill)
    except (pl.exceptions.PolarsError, pa.ArrowException, OSError) as exc:
        raise read_errors(items)(exc) from exc
    finally:
        for written in (spill, rejects_spill):
            if written is not None:
                written.close()

    reports, notes = file_reports(sources, counts, options)
    rejected = sum(r.rows_rejected for r in reports)
    reason_map = dict(sorted(zip(reason_counts["_reject"], reason_counts["len"], strict=True)))
    if rejected and options.on_error == "fail":
        raise rejected_rows_error(rejected, shown, items)
    rejected_rows = (
        rejects_spill.scan()
        if rejects_spill is not None and rejects_spill.path is not None
        else combined.filter(
            pl.col("_reject").is_not_null() & (pl.col("_reject") != SKIPPED_ACCOUNT_LEVEL)
        )
    )
    needs_heuristic = any(source.heuristic for source in sources)
    return LoadedEvents(
        valid=combined.filter(pl.col("_reject").is_null()),
        files=reports,
        rejects=rejects_table(rejected_rows, items),
        rows_rejected=rejected,
        reject_reasons=reason_map,
        machine_open_seconds=options.machine_open_seconds if needs_heuristic else 0.0,
        contact_bounds=_bucket_bounds(
            sampled["contact_id"],
            int(counts["rows"].sum()) - rejected - sum(r.rows_skipped for r in reports),
        ),
        warnings=notes,
        spill=spill,
    )


def ingested_output(inputs: list[str], options: IngestOptions) -> LoadedEvents | None:
    """The events of one ``engscore ingest`` output still sorted by contact, taken as they
    are (the scoring's fastest input), or None."""
    if options.mapping is None and options.preset.lower() in ("auto", "generic"):
        ingested = _ingested_events(resolve_inputs(inputs))
        if ingested is not None and ingested.presorted:
            return ingested
    return None


def sorted_exports(
    inputs: list[str], scratch: Path, options: IngestOptions | None = None
) -> LoadedEvents:
    """The exports as ``engscore ingest`` writes them, in a file in ``scratch``: validated,
    de-duplicated, sorted by contact and numbered, which the scoring reads fastest.

    The raw inputs are read once (the validation pass writes the valid rows out by contact
    range); what was read (files, rejects, warnings) is reported as for ``load_exports``, with
    the same errors. One ``engscore ingest`` output is taken as it is. The caller removes
    ``scratch``.
    """
    options = options or IngestOptions()
    check_options(options)
    ingested = ingested_output(inputs, options)
    if ingested is not None:
        return ingested
    spill = _Spill(scratch, "valid.arrow")
    try:
        loaded = load_exports(inputs, options, spill)
        output = scratch / "events.parquet"
        try:
            _write_bucketed(loaded, output, lambda done, total: None)
        except pl.exceptions.PolarsError as exc:
            raise DataError(f"cannot score: {first_line(exc)}") from exc
    finally:
        spill.remove()
    written = _ingested_events(resolve_inputs([str(output)]))
    assert written is not None and written.presorted
    return replace(
        written,
        files=loaded.files,
        rows_rejected=loaded.rows_rejected,
        reject_reasons=loaded.reject_reasons,
        warnings=loaded.warnings,
    )


def file_reports(
    sources: list[Source], counts: pl.DataFrame, options: IngestOptions
) -> tuple[list[FileReport], list[str]]:
    """What each input gave (from the validation's counts), and the notes about them."""
    by_file = {row["_file"]: row for row in counts.iter_rows(named=True)}
    reports = []
    notes = []
    for index, source in enumerate(sources):
        item, preset, detected = source.item, source.preset, source.detected
        row = by_file.get(index, {"rows": 0, "rejected": 0, "skipped": 0, "naive": 0, "aware": 0})
        if row["skipped"]:
            # Events without a recipient by design (account changes, list uploads).
            n = row["skipped"]
            notes.append(f"{item.path}: skipped: {n} account-level event{'s' if n != 1 else ''}")
        if row["rows"] == 0:
            # A header-only export is what a quiet day looks like; say so, do not fail cron.
            notes.append(f"{item.path}: file holds no events")
        if row["naive"] and row["aware"] and options.timezone is None:
            raise DataError(
                f"{item.path}: column 'timestamp' mixes {row['aware']} values with a UTC offset "
                f"and {row['naive']} without; pass --timezone ZONE for the ones without"
            )
        reports.append(
            FileReport(
                item.path, preset.name, detected, row["rows"], row["rejected"], row["skipped"]
            )
        )
    return reports, notes


def rejected_rows_error(rejected: int, shown: pl.DataFrame, items: list[InputFile]) -> DataError:
    """The error of ``on_error="fail"``, with the first rejected rows."""
    examples = "; ".join(
        f"{items[r['_file']].path}:{r['_line']}: {r['_reject']}"
        + (f" {r['_raw_timestamp']!r}" if r["_reject"] == "unparseable timestamp" else "")
        for r in shown.iter_rows(named=True)
    )
    more = f" (first {len(shown)}: {examples})"
    return DataError(
        f"{rejected} row{'s' if rejected != 1 else ''} rejected{more}; "
        "fix them or pass --on-error skip to leave them out "
        "(`engscore ingest` writes them to a rejects file)"
    )


def left_out_note(rejected: int, reasons: dict[str, int]) -> str:
    """The warning of a command that left rejected rows out (``on_error="skip"``) without
    writing them anywhere (``score``, ``health``): how many, and why."""
    why = ", ".join(f"{reason}: {count:,}" for reason, count in sorted(reasons.items()))
    return (
        f"{rejected:,} rejected row(s) left out ({why}); "
        "`engscore ingest --on-error skip` writes them to a rejects file"
    )


def rejects_table(rejected_rows: pl.LazyFrame, items: list[InputFile]) -> pl.LazyFrame:
    """The rejects file's columns, in input order."""
    return rejected_rows.sort("_ord").select(
        pl.col("_file")
        .replace_strict(
            list(range(len(items))), [str(i.path) for i in items], return_dtype=pl.String
        )
        .alias("file"),
        pl.col("_line").alias("line"),
        pl.col("_reject").alias("reason"),
        "contact_id",
        "event_type",
        pl.col("_raw_timestamp").alias("timestamp"),
    )


#: Contact ranges at most: each flush of the partitioning writes to every range, so more
#: ranges mean more, smaller writes (at 100M rows, 400 ranges made the on-disk path take
#: twice its linear share of time).
MAX_RANGES = 100


def _bucket_bounds(sample: pl.Series, rows: int) -> list[str]:
    buckets = min(-(-rows // BUCKET_ROWS), MAX_RANGES)
    if buckets <= 1 or sample.is_empty():
        return []
    ordered = sample.sort()
    # Heavy contacts repeat in the sample; a repeated bound would make an empty range.
    return sorted({ordered[len(ordered) * i // buckets] for i in range(1, buckets)})


def default_rejects_path(output: Path) -> Path:
    """``events.parquet`` -> ``events.rejects.csv`` beside it."""
    return output.with_name(f"{output.stem}.rejects.csv")


def ingest_on_disk(
    inputs: list[str],
    output: Path,
    options: IngestOptions | None = None,
    rejects_path: Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    """``engscore ingest`` in bounded memory: write the normalised events (sorted,
    deterministic) to ``output`` through contact-range files in a temporary folder beside it
    (``engscore.io.events.ingest_to_file`` picks this or the in-memory way).

    With ``on_error="skip"`` rejected rows go to ``rejects_path`` (default
    ``<output stem>.rejects.csv``). Both files are written atomically. ``on_progress(done,
    total)`` is called as the stages (validate, partition, each contact range) complete.
    """
    options = options or IngestOptions()
    output_format(output)
    progress = on_progress or (lambda done, total: None)
    spill = _Spill(output.parent, "valid.arrow")
    rejects_spill = _Spill(output.parent, "rejects.arrow")
    try:
        loaded = load_exports(inputs, options, spill, rejects_spill)
        progress(1, len(loaded.contact_bounds) + 3)
        written_rejects: Path | None = None
        if loaded.rows_rejected:
            written_rejects = rejects_path or default_rejects_path(output)
            write_frame(loaded.rejects, written_rejects)
        try:
            stats = _write_bucketed(loaded, output, progress)
        except pl.exceptions.PolarsError as exc:
            raise DataError(f"cannot ingest: {first_line(exc)}") from exc
    finally:
        rejects_spill.remove()
        spill.remove()  # last: it made the folders, if any were missing (it writes first)
    return ingest_summary(
        loaded.files,
        output,
        loaded.reject_reasons,
        stats,
        written_rejects,
        loaded.warnings,
    )


def ingest_summary(
    files: list[FileReport],
    output: Path,
    reject_reasons: dict[str, int],
    written: OutputStats,
    rejects_file: Path | None,
    warnings: list[str],
) -> IngestSummary:
    """The figures of an ingest from its files' reports and what was written."""
    rows_read = sum(f.rows_read for f in files)
    rejected = sum(f.rows_rejected for f in files)
    skipped = sum(f.rows_skipped for f in files)
    return IngestSummary(
        files=files,
        output=output,
        rows_read=rows_read,
        rows_rejected=rejected,
        reject_reasons=reject_reasons,
        duplicates_dropped=rows_read - rejected - skipped - written.rows,
        rows_kept=written.rows,
        machine_opens=written.machine_opens,
        contacts=written.contacts,
        first_event=written.first,
        last_event=written.last,
        rejects_file=rejects_file,
        warnings=warnings,
        rows_skipped=skipped,
    )


def _write_bucketed(
    loaded: LoadedEvents, output: Path, progress: Callable[[int, int], None]
) -> OutputStats:
    """Write the events sorted, one contact range at a time, atomically.

    Sorting and de-duplicating 20M events at once needs several times their size in memory.
    Both are per-contact, so the valid rows are first written, batch by batch, into
    contact-range partitions (a temporary folder beside the output), then each range is
    prepared and appended in order: the file is globally sorted and peak memory is about one
    range.
    """
    fmt = output_format(output)
    # Only the Parquet output is numbered: it is what later commands read fast; a CSV output
    # is for people and other tools.
    numbered = fmt == "parquet"
    metadata = {EVENTS_METADATA_KEY: EVENTS_FORMAT_VERSION}
    if numbered:
        metadata[CONTACT_KEY_METADATA] = CONTACT_KEY_VERSION
    with (
        atomic_path(output) as temporary,
        tempfile.TemporaryDirectory(prefix=".engscore-", dir=temporary.parent) as work,
        ChunkWriter(temporary, fmt, metadata) as writer,
    ):
        spill = loaded.spill
        if spill is None or spill.path is None:
            parts = [loaded.valid]  # inputs that need no validation, or no valid rows
        elif loaded.contact_bounds:
            ranges = _partition(spill, loaded.contact_bounds, Path(work))
            spill.remove()  # split up: free its disk space now
            parts = [spill.restore(pl.scan_ipc(path)) for path in ranges]
        else:
            parts = [spill.scan()]
        total = len(parts) + 2
        progress(2, total)
        stats: list[pl.DataFrame] = []
        contacts_before = 0
        for done, part in enumerate(parts, start=3):
            events = prepare_events(part, loaded.machine_open_seconds).collect()
            range_stats = _range_stats(events)
            if numbered:
                # Ranges are contiguous and each is sorted: the numbering runs on across them.
                key = pl.col(CONTACT).rle_id().cast(pl.UInt32) + contacts_before
                events = events.with_columns(key.alias(CONTACT_KEY))
                contacts_before += int(range_stats["contacts"].item())
            writer.write(events)
            stats.append(range_stats)
            progress(done, total)
    return OutputStats.of(stats)


def _partition(spill: _Spill, contact_bounds: list[str], work: Path) -> list[Path]:
    """Split the spilled valid rows into one Arrow file per contact range (``contact_bounds``
    are the sorted lower bounds of the ranges after the first), keeping input order within
    each range.
    """
    bounds = pl.Series(contact_bounds, dtype=pl.String)
    paths = [work / f"range-{i:04d}.arrow" for i in range(len(contact_bounds) + 1)]
    # Arrow IPC, not Parquet: these files are read once, and IPC costs almost nothing to
    # write (Parquet encoding was a fifth of the ingest time).
    writers: dict[int, pa.ipc.RecordBatchFileWriter] = {}
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    # Rows wait per range until a few batches have come: one write per range per batch would
    # make thousands of tiny row groups.
    pending: dict[int, list[pl.DataFrame]] = {}

    def flush() -> None:
        for index, frames in sorted(pending.items()):
            table = pl.concat(frames).to_arrow()
            if index not in writers:
                writers[index] = pa.ipc.new_file(paths[index], table.schema, options=options)
            writers[index].write_table(table)
        pending.clear()

    try:
        waiting = 0
        for valid in spill.batches():
            # The range of each row: a binary search among the bounds.
            ranges = bounds.search_sorted(valid[CONTACT], side="right")
            split = valid.with_columns(_range=ranges).partition_by(
                "_range", as_dict=True, include_key=False
            )
            for (index,), rows in split.items():
                pending.setdefault(int(index), []).append(rows)
            waiting += valid.height
            if waiting >= _FLUSH_ROWS:
                flush()
                waiting = 0
        flush()
    finally:
        for writer in writers.values():
            writer.close()
    return [path for index, path in enumerate(paths) if index in writers]


@dataclass(frozen=True)
class OutputStats:
    rows: int
    machine_opens: int
    contacts: int
    first: datetime | None
    last: datetime | None

    @classmethod
    def of(cls, ranges: list[pl.DataFrame]) -> OutputStats:
        """The whole output's figures from its ranges' (contact ranges do not overlap)."""
        if not ranges:
            return cls(0, 0, 0, None, None)
        row = (
            pl.concat(ranges)
            .select(
                pl.col("rows", "machine_opens", "contacts").sum(),
                pl.col("first").min(),
                pl.col("last").max(),
            )
            .row(0, named=True)
        )
        return cls(**row)


def _range_stats(events: pl.DataFrame) -> pl.DataFrame:
    """The summary figures of one written contact range (one row)."""
    return events.select(
        rows=pl.len(),
        machine_opens=(pl.col("is_machine") & (pl.col("event_type") == "open")).sum(),
        contacts=pl.col(CONTACT).n_unique(),
        first=pl.col("timestamp").min(),
        last=pl.col("timestamp").max(),
    )
