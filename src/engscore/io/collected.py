"""Exports read once into memory, compact, for a scoring of every contact.

``engscore score export.parquet`` on a file that ``engscore ingest`` did not write: the inputs
are read, mapped, canonicalised and validated in one streaming pass that keeps, per row, only
what scoring reads. Contact ids become dense numbers in id order (the numbering ``engscore
ingest`` writes) through a categorical of the ids as read, built in that same pass, without
sorting the events (e-mail addresses are lower-cased once per distinct id, not per row);
event ids and the columns of rows without one become 64-bit duplicate keys; text columns of
few values are held as categoricals (``_FEW_VALUES``), given back as text to the queries.
Validation figures, de-duplication and the machine-open heuristic then run on the frame in
memory: nothing is written to disk and the input is read a second time only to report
rejected rows.

Inputs too large for memory (``fits_in_memory``) go through ``sorted_exports`` instead.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from engscore.config import IngestOptions
from engscore.engine.normalise import (
    INTERNAL_COLUMNS,
    REJECT_REASONS,
    SKIPPED_ACCOUNT_LEVEL,
    canonical_contact,
    duplicate_key,
    flag_machine_opens,
    keyed_duplicates,
)
from engscore.errors import DataError
from engscore.io.ingest import (
    CONTACT_KEY,
    CONTACT_KEY_METADATA,
    CONTACT_KEY_VERSION,
    EVENTS_FORMAT_VERSION,
    EVENTS_METADATA_KEY,
    FileReport,
    IngestSummary,
    LoadedEvents,
    OutputStats,
    Source,
    check_options,
    default_rejects_path,
    file_reports,
    ingest_summary,
    no_rejects,
    plan_sources,
    read_errors,
    rejected_rows_error,
    rejects_table,
)
from engscore.io.outputs import (
    PARQUET_ROW_GROUP,
    ChunkWriter,
    atomic_path,
    output_format,
    write_frame,
)
from engscore.io.readers import InputFile, first_line, resolve_inputs
from engscore.schema import (
    BOUNCE_TYPE,
    BOUNCE_TYPES,
    CANONICAL_SCHEMA,
    CONTACT,
    EVENT_TYPE,
    TIMESTAMP,
)

#: Rows the in-memory path takes at most (about 50 bytes a row once compact, plus the
#: scoring's working memory); larger inputs are sorted into a scratch folder instead.
MAX_ROWS_IN_MEMORY = 40_000_000
#: Bytes of a CSV or JSON file per event, about (a rough estimate of text inputs' rows).
_TEXT_BYTES_PER_ROW = 50
#: Peak memory per byte of input data (a CSV's size, a Parquet file's uncompressed size),
#: about, as measured on the benchmark exports (ingest of a SendGrid CSV: 6; score: 2 to 4).
_MEMORY_PER_DATA_BYTE = 5
#: The share of the available memory the in-memory path may count on.
_MEMORY_SHARE = 0.75
#: Whether a row has an event id (its duplicate key is the id's hash, else the row's).
_HAS_ID = "_has_id"
#: The duplicate key (``engine.normalise.duplicate_key``).
_DUPLICATE_KEY = "_dup"
_REJECT_ENUM = pl.Enum(REJECT_REASONS)
_REJECTED = pl.col("_reject").is_not_null() & (pl.col("_reject") != SKIPPED_ACCOUNT_LEVEL)


def _input_size(item: InputFile) -> tuple[int, int]:
    """(rows, bytes of data) of one input: exact for Parquet (its footer: rows and the
    uncompressed size), estimated from the file size for text."""
    if item.format == "parquet" and not item.compressed:
        try:
            footer = pq.read_metadata(item.path)
            data = sum(footer.row_group(i).total_byte_size for i in range(footer.num_row_groups))
            return footer.num_rows, data
        except (OSError, pa.ArrowException):
            pass  # the read reports what is wrong with the file
    # A workbook is a ZIP archive: its cells take several times its size, like a .gz file's.
    packed = item.compressed or item.format == "xlsx"
    size = item.path.stat().st_size * (8 if packed else 1)
    return size // _TEXT_BYTES_PER_ROW, size


def estimated_rows(items: list[InputFile]) -> int:
    """Rows of the inputs: exact for Parquet (its footer), estimated from the size for text."""
    return sum(_input_size(item)[0] for item in items)


def available_memory() -> int | None:
    """Bytes of memory the system can give without swapping (Linux ``MemAvailable``, else
    the free pages), or None where neither is known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def fits_in_memory(inputs: list[str]) -> bool:
    """Whether ``collect_exports`` and ``ingest_in_memory`` may take these inputs: at most
    ``MAX_ROWS_IN_MEMORY`` rows, and about ``_MEMORY_PER_DATA_BYTE`` times their data within
    ``_MEMORY_SHARE`` of the available memory. Either way gives the same output."""
    sizes = [_input_size(item) for item in resolve_inputs(inputs)]
    if sum(rows for rows, _ in sizes) > MAX_ROWS_IN_MEMORY:
        return False
    available = available_memory()
    needed = _MEMORY_PER_DATA_BYTE * sum(data for _, data in sizes)
    return available is None or needed <= _MEMORY_SHARE * available


def _canonical(sources: list[Source], contacts_as_read: bool = False) -> pl.LazyFrame:
    """Every source's canonical rows, bookkeeping columns included (as ``load_exports``;
    ``contacts_as_read``: see ``engine.normalise.canonicalise``)."""
    canonical = pl.concat(
        [source.canonical(source.raw, contacts_as_read=contacts_as_read) for source in sources],
        how="diagonal_relaxed",
    )
    return canonical.drop(CONTACT_KEY, strict=False)


def _compact_query(
    sources: list[Source], columns: set[str] | None, categories: pl.Categories, narrow: bool
) -> tuple[pl.LazyFrame, list[str]]:
    """Canonical rows of every source with the columns the caller reads (``columns``: the
    non-canonical ones to keep, ``event_id`` only when named; None keeps them all), the
    contact as a categorical, and the duplicate key; and the text columns it holds as
    categoricals (``_FEW_VALUES``; ``_as_read`` gives them back as text). ``narrow``: the
    categoricals of ``_NARROW`` take its smaller codes (the collect fails, ``_too_many``,
    when a column has more values)."""
    # Contact ids as read (trimmed): each distinct one is keyed (lower-cased if an e-mail
    # address) when numbered (``_contact_numbers``), not each row. 3 to 5 CPU-seconds less
    # over a 20M-row CSV.
    canonical = _canonical(sources, contacts_as_read=True)
    schema = canonical.collect_schema()
    content = [n for n in schema.names() if n not in INTERNAL_COLUMNS]
    kept = [
        name
        for name in content
        if columns is None
        or name in columns
        or (name in CANONICAL_SCHEMA and name != "event_id")
        or name == "user_agent"
    ]
    machine_heuristic = any(source.heuristic for source in sources)
    categorised = [n for n in kept if n in _FEW_VALUES and schema[n] == pl.String]
    many = len(sources) > 1
    query = canonical.select(
        pl.col(CONTACT).cast(pl.Categorical(categories)),
        *(
            pl.col(name).cast(_compact_type(name, narrow)) if name in categorised else pl.col(name)
            for name in kept
            if name != CONTACT
        ),
        pl.col("event_id").is_not_null().alias(_HAS_ID),
        duplicate_key(content).alias(_DUPLICATE_KEY),
        # One byte a row for up to 256 files, not the four of the canonical rows' Int32;
        # none for one file (``_validation``).
        *([pl.col("_file").cast(pl.UInt8 if len(sources) <= 256 else pl.UInt32)] * many),
        pl.col("_reject").cast(_REJECT_ENUM),
        "_naive",
        *(["_heuristic"] if machine_heuristic else []),
    )
    return query, categorised


#: Text columns of few distinct values, or mostly null, that the compact table holds as
#: categoricals: 4 bytes a row and each distinct value once, against a 16-byte view a row
#: plus the text of every long value (a fifth of the table at 20M events). Not event ids:
#: a categorical of one value a row would cost more.
_FEW_VALUES = frozenset({EVENT_TYPE, "campaign_id", "url", "bounce_type", "user_agent"})


#: Columns of ``_FEW_VALUES`` whose categoricals take codes of fewer bytes than four, when
#: ``narrow``: an export has a few dozen event names, and rarely ten thousand campaigns.
#: 0.1 GB less a 20M-event table; an export with more values is read again with four-byte
#: codes.
_NARROW = {EVENT_TYPE: pl.UInt8, "campaign_id": pl.UInt16}


def _compact_type(name: str, narrow: bool) -> pl.DataType:
    """How the compact table holds the text column ``name`` (one of ``_FEW_VALUES``)."""
    if name == BOUNCE_TYPE:
        # Canonicalisation leaves only these values (``engine.normalise``): one byte a row.
        return pl.Enum(BOUNCE_TYPES)
    physical = _NARROW.get(name, pl.UInt32) if narrow else pl.UInt32
    return pl.Categorical(pl.Categories.random(physical=physical))


def _too_many(error: pl.exceptions.PolarsError) -> bool:
    """Whether ``error`` is a categorical's codes running out (``_NARROW``)."""
    return "more categories than the maximum allowed" in str(error)


def _as_read(texts: list[str]) -> list[pl.Expr]:
    """Expressions giving the ``texts`` columns back as the text they were read as."""
    return [pl.col(name).cast(pl.String) for name in texts]


#: Polars' setting of how many Parquet row groups its streaming reader fetches ahead.
_ROW_GROUP_READ_AHEAD = "POLARS_ROW_GROUP_PREFETCH_SIZE"


@contextlib.contextmanager
def _short_read_ahead() -> Iterator[None]:
    """Polars' Parquet reader fetching one row group ahead per two threads, not its default
    of 16 or more (unless ``POLARS_ROW_GROUP_PREFETCH_SIZE`` is set): the same speed, and
    0.2 GB less at the peak of the one pass on 1M-row row groups. Polars reads the setting
    when a query starts."""
    if _ROW_GROUP_READ_AHEAD in os.environ:
        yield
        return
    os.environ[_ROW_GROUP_READ_AHEAD] = str(max(1, pl.thread_pool_size() // 2))
    try:
        yield
    finally:
        os.environ.pop(_ROW_GROUP_READ_AHEAD, None)


def _events_schema(sources: list[Source]) -> pl.Schema:
    """The columns the events have (as ``load_exports`` gives them), read from no row."""
    schema = _canonical(sources).collect_schema()
    return pl.Schema({n: t for n, t in schema.items() if n not in INTERNAL_COLUMNS})


def _validation(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per-file counts (rows, rejected, naive and aware valid timestamps) and reject reasons,
    in the shapes ``ingest._validate`` gives."""
    skipped = pl.col("_reject") == SKIPPED_ACCOUNT_LEVEL
    valid = pl.col("_reject").is_null()
    # One file's rows have no ``_file`` column (``_compact_query``).
    of_file = "_file" if "_file" in frame.columns else pl.lit(0, dtype=pl.UInt8).alias("_file")
    counts = (
        frame.lazy()
        .group_by(of_file)
        .agg(
            rows=pl.len(),
            rejected=_REJECTED.sum(),
            skipped=skipped.sum(),
            naive=(pl.col("_naive") & valid).sum(),
            aware=(~pl.col("_naive") & valid).sum(),
        )
        .sort("_file")
    )
    reasons = frame.lazy().filter(_REJECTED).group_by(pl.col("_reject").cast(pl.String)).len()
    per_file, by_reason = pl.collect_all([counts, reasons])
    return per_file, by_reason


def _rejected_rows(sources: list[Source]) -> pl.LazyFrame:
    """The rejected rows with their raw values, read again: the compact table keeps neither
    (only read when there are rejects to show or write)."""
    return _canonical(sources).filter(_REJECTED)


def _first_rejects(sources: list[Source], count: int) -> pl.DataFrame:
    """The first rejected rows, for the error of ``on_error="fail"``."""
    return (
        _rejected_rows(sources)
        .select("_file", "_line", "_reject", "_raw_timestamp", "_ord")
        .head(count)
        .collect(engine="streaming")
    )


def _contact_numbers(
    ids: pl.Series, present: pl.Series | None = None
) -> tuple[pl.Series, pl.DataFrame]:
    """Each category code's contact number (dense, in id order, as ``engscore ingest``
    numbers; null for codes not ``present``) and the number -> id table (``ids``: the
    categories in code order, ids as read: codes whose ids are one contact once keyed,
    ``canonical_contact``, share a number; ``present``: the codes the kept rows use, None
    for all)."""
    codes = (
        pl.int_range(ids.len(), dtype=pl.UInt32, eager=True)
        if present is None
        else present.drop_nulls().unique().sort().cast(pl.UInt32)
    )
    keys = pl.select(canonical_contact(pl.lit(ids.gather(codes)))).to_series()
    # A key's place among the sorted distinct keys is its number: one sort of the keys, each
    # numbered by the distinct keys before it (a third of the time of a binary search of
    # every key among the distinct ones: 0.4 s against 1.2 s for 840k ids).
    order = keys.arg_sort()
    ordered = keys.gather(order)
    first = ordered.ne_missing(ordered.shift(1))
    contacts = ordered.filter(first)
    numbers = pl.repeat(0, keys.len(), dtype=pl.UInt32, eager=True)
    numbers = numbers.scatter(order, first.cast(pl.UInt32).cum_sum() - 1)
    number_of_code = pl.Series(CONTACT_KEY, [None] * ids.len(), dtype=pl.UInt32)
    number_of_code = number_of_code.scatter(codes, numbers)
    dense = pl.int_range(contacts.len(), dtype=pl.UInt32, eager=True)
    names = pl.DataFrame({CONTACT: dense, "_contact_text": contacts})
    return number_of_code, names


@dataclass(frozen=True)
class _Read:
    """What the one pass gives: the valid rows, prepared but for dropping, and reports."""

    items: list[InputFile]
    sources: list[Source]
    #: Valid rows in input order, machine opens flagged, with ``CONTACT_KEY`` in place of
    #: the contact id (``names`` gives it back); the bookkeeping columns dropped.
    frame: pl.DataFrame
    #: The text columns ``frame`` holds as categoricals (``_compact_query``).
    categorised: list[str]
    #: True for the rows of ``frame`` that duplicate an earlier one.
    duplicates: pl.Series
    #: ``CONTACT_KEY`` (as ``contact_id``) -> ``_contact_text``.
    names: pl.DataFrame
    reports: list[FileReport]
    notes: list[str]
    rows_rejected: int
    reject_reasons: dict[str, int]

    def events(self, coded: frozenset[str] = frozenset()) -> pl.LazyFrame:
        """The events without duplicates and bookkeeping columns, with ``CONTACT_KEY``; the
        columns held as categoricals given back as text, but those named in ``coded``.

        Rows are dropped lazily, by the query that reads them: a filtered copy of the whole
        frame would double its memory for a moment. The contact ids are found from the
        numbers only by the queries that read them.
        """
        ids = pl.lit(self.names.get_column("_contact_text")).gather(pl.col(CONTACT_KEY))
        return (
            self.frame.lazy()
            .filter(~self.duplicates)
            .select(ids.alias(CONTACT), pl.all())
            .with_columns(_as_read([c for c in self.categorised if c not in coded]))
        )


def _collect_compact(
    sources: list[Source], columns: set[str] | None
) -> tuple[pl.DataFrame, pl.Categories, list[str]]:
    """The one pass of ``_compact_query``: the table, the contacts' categories and the
    columns held as categoricals. With narrow codes first, read again with four-byte codes
    when a column has more values than they number."""

    def collect(narrow: bool) -> tuple[pl.DataFrame, pl.Categories, list[str]]:
        categories = pl.Categories.random()
        query, categorised = _compact_query(sources, columns, categories, narrow)
        with _short_read_ahead():
            return query.collect(engine="streaming"), categories, categorised

    try:
        return collect(narrow=True)
    except pl.exceptions.ComputeError as exc:
        if not _too_many(exc):
            raise
    return collect(narrow=False)


def _read_once(
    inputs: list[str],
    options: IngestOptions,
    columns: set[str] | None,
    check: Callable[[pl.Schema], None] | None,
) -> _Read:
    """Read, map, validate and number the inputs in one streaming pass (see the module).

    Raises what ``load_exports`` raises, with the same messages.
    """
    check_options(options)
    items = resolve_inputs(inputs)
    # The pass reads every row: Parquet a million rows at a time (a third less memory).
    sources = plan_sources(items, options, in_pieces=True)
    if check is not None:
        check(_events_schema(sources))
    try:
        frame, categories, categorised = _collect_compact(sources, columns)
        per_file, by_reason = _validation(frame)
    except (pl.exceptions.PolarsError, pa.ArrowException, OSError) as exc:
        raise read_errors(items)(exc) from exc
    reports, notes = file_reports(sources, per_file, options)
    rejected = sum(r.rows_rejected for r in reports)
    if rejected and options.on_error == "fail":
        raise rejected_rows_error(rejected, _first_rejects(sources, 3), items)
    reasons = dict(sorted(zip(by_reason["_reject"], by_reason["len"], strict=True)))
    present = None
    if rejected or any(r.rows_skipped for r in reports):
        # Rejected and skipped rows take no part in what follows (the heuristic's deliveries,
        # the first of duplicates, the numbering: a contact only they name gets no number);
        # they are few.
        frame = frame.filter(pl.col("_reject").is_null())
        present = frame.get_column(CONTACT).to_physical()
    number_of_code, names = _contact_numbers(categories.to_series(), present)
    # Eager, but added beside the other columns: nothing else is copied. The numbers stand
    # for the contact from here on (the categorical holds ids as read, "Ann@x.com" apart
    # from "ann@x.com"); the categorical is freed now. (Not ``drop``, which would align the
    # chunks of the columns left, copying them all at once: the streaming collect chunks
    # some columns differently from others.)
    numbers = number_of_code.gather(frame[CONTACT].to_physical()).alias(CONTACT_KEY)
    frame = pl.DataFrame([*(c for c in frame.get_columns() if c.name != CONTACT), numbers])
    if any(source.heuristic for source in sources) and options.machine_open_seconds:
        # Before de-duplication, as ``prepare_events``: a dropped copy of a delivery still
        # dates it. Per contact number.
        seconds = options.machine_open_seconds
        frame = flag_machine_opens(frame.lazy(), seconds, CONTACT_KEY).collect()
    duplicates = keyed_duplicates(frame, CONTACT_KEY, _HAS_ID, _DUPLICATE_KEY)
    # What follows reads none of them: freed now.
    dropped = {*INTERNAL_COLUMNS, _HAS_ID, _DUPLICATE_KEY}
    frame = pl.DataFrame([column for column in frame.get_columns() if column.name not in dropped])
    return _Read(
        items, sources, frame, categorised, duplicates, names, reports, notes, rejected, reasons
    )


def collect_exports(
    inputs: list[str],
    options: IngestOptions | None = None,
    columns: set[str] | None = None,
    check: Callable[[pl.Schema], None] | None = None,
    event_type_codes: bool = False,
) -> LoadedEvents:
    """The exports read in one pass into memory, validated, de-duplicated and numbered.

    The same rows, reports and errors as ``load_exports`` followed by ``prepare_events``.
    ``columns``: the non-canonical input columns the caller reads (None: all); ``check`` is
    called with the events' whole schema before any row is read. The result's ``keyed``
    events carry contact numbers and ``contact_names`` maps them back to ids;
    ``event_type_codes``: their ``event_type`` stays a categorical, for a caller that only
    compares it with names (the scoring's type tests then compare integers: a fifth of its
    passes' time at 20M events), never reads it as text.
    """
    read = _read_once(inputs, options or IngestOptions(), columns, check)
    events = read.events()
    return LoadedEvents(
        valid=events.with_columns(pl.col(CONTACT).cast(pl.String)).drop(CONTACT_KEY),
        keyed=read.events(frozenset({EVENT_TYPE}) if event_type_codes else frozenset()),
        contact_names=read.names,
        files=read.reports,
        rejects=no_rejects(),
        rows_rejected=read.rows_rejected,
        reject_reasons=read.reject_reasons,
        machine_open_seconds=0.0,
        warnings=read.notes,
        prepared=True,
    )


def ingest_in_memory(
    inputs: list[str],
    output: Path,
    options: IngestOptions | None = None,
    rejects_path: Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    """``engscore ingest`` of inputs that fit in memory: the file ``ingest_on_disk`` writes,
    from one pass (``_read_once``), one sort by contact number (contacts are numbered in id
    order) and time, and one write. Arguments as ``ingest_on_disk``'s.
    """
    options = options or IngestOptions()
    fmt = output_format(output)
    progress = on_progress or (lambda done, total: None)
    read = _read_once(inputs, options, None, None)
    progress(1, 3)
    written_rejects: Path | None = None
    if read.rows_rejected:
        written_rejects = rejects_path or default_rejects_path(output)
        write_frame(rejects_table(_rejected_rows(read.sources), read.items), written_rejects)
    numbered = fmt == "parquet"
    others = [c for c in _output_columns(read.frame) if c != CONTACT]
    as_read = _as_read([c for c in read.categorised if c in others])
    metadata = {EVENTS_METADATA_KEY: EVENTS_FORMAT_VERSION}
    if numbered:
        metadata[CONTACT_KEY_METADATA] = CONTACT_KEY_VERSION
    try:
        stats = _figures(read)
        columns = read.frame.get_columns()
        read = replace(read, frame=pl.DataFrame())  # ``columns`` hold the only reference
        frame = _contiguous(columns)
        order = _output_order(frame, read.duplicates)
        progress(2, 3)
        # Numbers are dense and in id order: the id of number k is row k.
        texts = read.names.get_column("_contact_text")

        def rows(start: int) -> pl.DataFrame:
            piece = frame[order.slice(start, PARQUET_ROW_GROUP)]
            return piece.select(
                texts.gather(piece.get_column(CONTACT_KEY)).alias(CONTACT),
                *others,
                *([CONTACT_KEY] if numbered else []),
            ).with_columns(as_read)

        # One row group at a time, the next one gathered while this one is written: memory
        # stays near the events' own, and both cores work.
        with (
            atomic_path(output) as temporary,
            ChunkWriter(temporary, fmt, metadata) as writer,
            ThreadPoolExecutor(max_workers=1) as pool,
        ):
            # An empty output still gets its columns (one empty piece).
            starts = list(range(0, max(order.len(), 1), PARQUET_ROW_GROUP))
            coming = pool.submit(rows, starts[0])
            for following in [*starts[1:], None]:
                piece = coming.result()
                if following is not None:
                    coming = pool.submit(rows, following)
                writer.write(piece)
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"cannot ingest: {first_line(exc)}") from exc
    progress(3, 3)
    return ingest_summary(
        read.reports,
        output,
        read.reject_reasons,
        OutputStats.of([stats]),
        written_rejects,
        read.notes,
    )


def _contiguous(columns: list[pl.Series]) -> pl.DataFrame:
    """A frame of ``columns`` in one chunk each: rows are gathered by position four times
    faster than from the streaming collect's many chunks. Column by column, each chunked
    column freed as its copy is made (pass the only reference to the list): rechunking the
    whole frame at once would hold it twice."""
    contiguous = []
    while columns:
        contiguous.append(columns.pop(0).rechunk())
    return pl.DataFrame(contiguous)


def _figures(read: _Read) -> pl.DataFrame:
    """``ingest._range_stats`` of the whole output (contacts counted by number)."""
    return (
        read.frame.lazy()
        .filter(~read.duplicates)
        .select(
            rows=pl.len(),
            machine_opens=(pl.col("is_machine") & (pl.col(EVENT_TYPE) == "open")).sum(),
            contacts=pl.col(CONTACT_KEY).n_unique(),
            first=pl.col(TIMESTAMP).min(),
            last=pl.col(TIMESTAMP).max(),
        )
        .collect()
    )


#: Bits of the output order key (an Int128, kept positive).
_KEY_BITS = 127


def _output_order(frame: pl.DataFrame, duplicates: pl.Series) -> pl.Series:
    """The positions in ``frame`` of the rows to write (all but ``duplicates``), in the order
    ``engscore ingest`` writes them: contact (numbers are in id order), time, event type,
    input order (the frame's).

    One Int128 key a row (number, microseconds since the first event, the type's rank, the
    row's position), unique, sorted unstably and the positions read back from its low bits:
    a quarter of a stable sort of a key without the position (which also carried the rows
    along), a ninth of four sort columns with a string among them. The event type is a
    categorical (``_FEW_VALUES``): its codes are ranked by their text.
    """
    kept = frame.select(CONTACT_KEY, TIMESTAMP, EVENT_TYPE).with_row_index("_row")
    kept = kept.filter(~duplicates)
    if kept.is_empty():
        return kept.get_column("_row")
    dtype = frame.schema[EVENT_TYPE]
    assert isinstance(dtype, pl.Categorical)
    codes = kept.get_column(EVENT_TYPE).to_physical().unique()
    # The categories in code order: code k's text is row k.
    texts = dtype.categories.to_series().gather(codes)
    ranked = codes.gather(texts.arg_sort())
    time = pl.col(TIMESTAMP).dt.epoch("us")
    bounds = kept.select(pl.col(CONTACT_KEY).max(), time.min().alias("first"), time.max())
    numbers, first, last = bounds.row(0)
    row_bits = frame.height.bit_length()
    type_bits = ranked.len().bit_length()
    time_bits = (last - first).bit_length()
    if int(numbers).bit_length() + time_bits + type_bits + row_bits > _KEY_BITS:
        # Only for billions of rows or events ages apart: four sort keys.
        keys = [pl.col(CONTACT_KEY), pl.col(TIMESTAMP), pl.col(EVENT_TYPE).cast(pl.String)]
        return kept.sort(keys, maintain_order=True).get_column("_row")
    rank = (
        pl.col(EVENT_TYPE)
        .to_physical()
        .replace_strict(ranked, pl.int_range(ranked.len(), eager=True), return_dtype=pl.Int128)
    )
    key = (
        pl.col(CONTACT_KEY).cast(pl.Int128) * 2 ** (time_bits + type_bits + row_bits)
        + (time - first).cast(pl.Int128) * 2 ** (type_bits + row_bits)
        + rank * 2**row_bits
        + pl.col("_row").cast(pl.Int128)
    )
    positions = (key.sort() % 2**row_bits).cast(pl.UInt32).alias("_row")
    return kept.select(positions).get_column("_row")


def _output_columns(frame: pl.DataFrame) -> list[str]:
    """The event columns ``engscore ingest`` writes, in its order: canonical, then others."""
    bookkeeping = {*INTERNAL_COLUMNS, _HAS_ID, _DUPLICATE_KEY, CONTACT_KEY}
    return [c for c in frame.columns if c not in bookkeeping]
