"""Exports read once into memory, compact, for a scoring of every contact.

``engscore score export.parquet`` on a file that ``engscore ingest`` did not write: the inputs
are read, mapped, canonicalised and validated in one streaming pass that keeps, per row, only
what scoring reads. Contact ids become dense numbers in id order (the numbering ``engscore
ingest`` writes) through a categorical built in that same pass, without sorting the events;
event ids and the columns of rows without one become 64-bit duplicate keys. Validation figures,
de-duplication and the machine-open heuristic then run on the frame in memory: nothing is
written to disk and the input is read a second time only to report rejected rows.

Inputs too large for memory (``fits_in_memory``) go through ``sorted_exports`` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from engscore.config import IngestOptions
from engscore.engine.normalise import (
    INTERNAL_COLUMNS,
    LINE_BITS,
    REJECT_REASONS,
    SKIPPED_ACCOUNT_LEVEL,
    duplicate_key,
    flag_machine_opens,
    keyed_duplicates,
)
from engscore.io.ingest import (
    CONTACT_KEY,
    LoadedEvents,
    _file_reports,
    _plan,
    _read_errors,
    _rejected_rows_error,
    _Source,
    check_options,
    no_rejects,
)
from engscore.io.readers import InputFile, resolve_inputs
from engscore.schema import CANONICAL_SCHEMA, CONTACT

#: Rows the in-memory path takes at most (about 60 bytes a row once compact, plus the
#: scoring's working memory); larger inputs are sorted into a scratch folder instead.
MAX_ROWS_IN_MEMORY = 40_000_000
#: Bytes of a CSV or JSON file per event, about (a rough estimate of text inputs' rows).
_TEXT_BYTES_PER_ROW = 50
#: Whether a row has an event id (its duplicate key is the id's hash, else the row's).
_HAS_ID = "_has_id"
#: The duplicate key (``engine.normalise.duplicate_key``).
_DUPLICATE_KEY = "_dup"
_REJECT_ENUM = pl.Enum(REJECT_REASONS)


def estimated_rows(items: list[InputFile]) -> int:
    """Rows of the inputs: exact for Parquet (its footer), estimated from the size for text."""
    rows = 0
    for item in items:
        if item.format == "parquet" and not item.compressed:
            try:
                rows += pq.read_metadata(item.path).num_rows
                continue
            except (OSError, pa.ArrowException):
                pass  # the read reports what is wrong with the file
        size = item.path.stat().st_size
        rows += size * (8 if item.compressed else 1) // _TEXT_BYTES_PER_ROW
    return rows


def fits_in_memory(inputs: list[str]) -> bool:
    """Whether ``collect_exports`` may take these inputs (see ``MAX_ROWS_IN_MEMORY``)."""
    return estimated_rows(resolve_inputs(inputs)) <= MAX_ROWS_IN_MEMORY


@dataclass(frozen=True)
class _Compact:
    """The one pass's result: every row (rejected ones too), compact, in input order."""

    frame: pl.DataFrame
    #: The contact ids of the pass's categorical, in code order.
    categories: pl.Series


def _compact_query(
    sources: list[_Source], columns: set[str] | None, categories: pl.Categories
) -> pl.LazyFrame:
    """Canonical rows of every source with the columns scoring reads (``columns``: the
    non-canonical ones to keep; None keeps them all), the contact as a categorical, and
    the duplicate key in place of ``event_id``."""
    canonical = pl.concat([source.events for source in sources], how="diagonal_relaxed")
    canonical = canonical.drop(CONTACT_KEY, strict=False)
    schema = canonical.collect_schema()
    content = [name for name in schema.names() if name not in INTERNAL_COLUMNS]
    kept = [
        name
        for name in content
        if name != "event_id"
        and (name in CANONICAL_SCHEMA or columns is None or name in columns or name == "user_agent")
    ]
    if columns is not None and "event_id" in columns:
        kept.append("event_id")
    machine_heuristic = any(source.heuristic for source in sources)
    return canonical.select(
        pl.col(CONTACT).cast(pl.Categorical(categories)),
        *(name for name in kept if name != CONTACT),
        pl.col("event_id").is_not_null().alias(_HAS_ID),
        duplicate_key(content).alias(_DUPLICATE_KEY),
        "_ord",
        pl.col("_reject").cast(_REJECT_ENUM),
        "_naive",
        *(["_heuristic"] if machine_heuristic else []),
    )


def _events_schema(sources: list[_Source]) -> pl.Schema:
    """The columns the events have (as ``load_exports`` gives them), read from no row."""
    canonical = pl.concat([source.events for source in sources], how="diagonal_relaxed")
    schema = canonical.drop(CONTACT_KEY, strict=False).collect_schema()
    return pl.Schema({n: t for n, t in schema.items() if n not in INTERNAL_COLUMNS})


def _validation(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per-file counts (rows, rejected, naive and aware valid timestamps) and reject reasons,
    in the shapes ``ingest._validate`` gives."""
    skipped = pl.col("_reject") == SKIPPED_ACCOUNT_LEVEL
    rejected = pl.col("_reject").is_not_null() & ~skipped
    valid = pl.col("_reject").is_null()
    counts = (
        frame.lazy()
        .group_by((pl.col("_ord") // (1 << LINE_BITS)).cast(pl.Int32).alias("_file"))
        .agg(
            rows=pl.len(),
            rejected=rejected.sum(),
            skipped=skipped.sum(),
            naive=(pl.col("_naive") & valid).sum(),
            aware=(~pl.col("_naive") & valid).sum(),
        )
        .sort("_file")
    )
    reasons = frame.lazy().filter(rejected).group_by(pl.col("_reject").cast(pl.String)).len()
    per_file, by_reason = pl.collect_all([counts, reasons])
    return per_file, by_reason


def _first_rejects(sources: list[_Source], count: int) -> pl.DataFrame:
    """The first rejected rows with their raw timestamps: read again, only when there are
    rejects to show."""
    canonical = pl.concat([source.events for source in sources], how="diagonal_relaxed")
    rejected = pl.col("_reject").is_not_null() & (pl.col("_reject") != SKIPPED_ACCOUNT_LEVEL)
    return (
        canonical.filter(rejected)
        .select("_file", "_line", "_reject", "_raw_timestamp", "_ord")
        .head(count)
        .collect(engine="streaming")
    )


def _contact_numbers(compact: _Compact) -> tuple[pl.Series, pl.DataFrame]:
    """Each category code's contact number (dense, in id order, as ``engscore ingest``
    numbers) and the number -> id table."""
    ids = compact.categories
    order = ids.arg_sort()
    number_of_code = order.arg_sort().cast(pl.UInt32)
    names = pl.DataFrame(
        {
            CONTACT: pl.int_range(ids.len(), dtype=pl.UInt32, eager=True),
            "_contact_text": ids.gather(order),
        }
    )
    return number_of_code, names


def collect_exports(
    inputs: list[str],
    options: IngestOptions | None = None,
    columns: set[str] | None = None,
    check: Callable[[pl.Schema], None] | None = None,
) -> LoadedEvents:
    """The exports read in one pass into memory, validated, de-duplicated and numbered.

    The same rows, reports and errors as ``load_exports`` followed by ``prepare_events``.
    ``columns``: the non-canonical input columns the caller reads (None: all); ``check`` is
    called with the events' whole schema before any row is read. The result's ``keyed``
    events carry contact numbers and ``contact_names`` maps them back to ids.
    """
    options = options or IngestOptions()
    check_options(options)
    items = resolve_inputs(inputs)
    sources = _plan(items, options)
    if check is not None:
        check(_events_schema(sources))
    categories = pl.Categories.random()
    query = _compact_query(sources, columns, categories)
    try:
        frame = query.collect(engine="streaming")
        per_file, by_reason = _validation(frame)
    except (pl.exceptions.PolarsError, pa.ArrowException, OSError) as exc:
        raise _read_errors(items)(exc) from exc
    reports, notes = _file_reports(sources, per_file, options)
    rejected = sum(r.rows_rejected for r in reports)
    if rejected and options.on_error == "fail":
        raise _rejected_rows_error(rejected, _first_rejects(sources, 3), items)
    reason_map = dict(sorted(zip(by_reason["_reject"], by_reason["len"], strict=True)))
    compact = _Compact(frame, categories.to_series())
    number_of_code, names = _contact_numbers(compact)
    del compact
    frame = frame.with_columns(
        number_of_code.gather(frame[CONTACT].to_physical()).alias(CONTACT_KEY)
    )
    if rejected or any(r.rows_skipped for r in reports):
        # Rejected and skipped rows take no part in what follows (the heuristic's deliveries,
        # the first of duplicates); they are few.
        frame = frame.filter(pl.col("_reject").is_null())
    heuristic = any(source.heuristic for source in sources)
    if heuristic and options.machine_open_seconds:
        # Before de-duplication, as ``prepare_events``: a dropped copy of a delivery still
        # dates it.
        frame = flag_machine_opens(frame.lazy(), options.machine_open_seconds).collect()
    # Rows are dropped lazily, in the scoring's passes over the frame: a filtered copy of
    # the whole frame would double its memory for a moment.
    keep = ~keyed_duplicates(frame, CONTACT, _HAS_ID, _DUPLICATE_KEY)
    bookkeeping = {*INTERNAL_COLUMNS, _HAS_ID, _DUPLICATE_KEY}
    events = frame.lazy().filter(keep).select(c for c in frame.columns if c not in bookkeeping)
    return LoadedEvents(
        valid=events.with_columns(pl.col(CONTACT).cast(pl.String)).drop(CONTACT_KEY),
        keyed=events,
        contact_names=names,
        files=reports,
        rejects=no_rejects(),
        rows_rejected=rejected,
        reject_reasons=reason_map,
        machine_open_seconds=0.0,
        warnings=notes,
        prepared=True,
    )
