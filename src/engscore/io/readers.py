"""Readers: resolve inputs (files, globs, folders) and scan each file into a LazyFrame.

CSV/TSV and Parquet are scanned lazily; JSON and JSON-lines are read by
:mod:`engscore.io.json_records` (any record shape, types settled over every record, SNS
notifications unwrapped); Excel workbooks (``.xlsx``, the first sheet) are read whole by Polars
through ``fastexcel`` (calamine). Any of them may be gzip-compressed (``.gz``). CSV and Excel
columns are read as strings so a stray value never breaks type inference half-way through a
file; normalisation parses and reports them.
"""

from __future__ import annotations

import glob
import gzip
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastexcel
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from engscore.errors import ConfigError, DataError
from engscore.io.json_records import read_json_records

FORMATS = ("csv", "tsv", "parquet", "json", "jsonl", "xlsx")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".xlsx": "xlsx",
}
#: What ``unknown file type`` lists.
EXTENSIONS_TEXT = ".csv .tsv .parquet .json .jsonl .ndjson .xlsx (optionally .gz)"
_PARQUET_MAGIC = b"PAR1"
#: An .xlsx workbook is a ZIP archive.
_ZIP_MAGIC = b"PK\x03\x04"
_GZIP_MAGIC = b"\x1f\x8b"
_SNIFF_BYTES = 1 << 16


@dataclass(frozen=True)
class InputFile:
    """One input file with its detected format."""

    path: Path
    format: str
    compressed: bool


def detect_format(path: Path) -> tuple[str, bool] | None:
    """``(format, gzip)`` from the file name, or None for files engscore does not read."""
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    if compressed:
        suffixes = suffixes[:-1]
    if not suffixes or suffixes[-1] not in _EXTENSIONS:
        return None
    return _EXTENSIONS[suffixes[-1]], compressed


def resolve_inputs(specs: list[str]) -> list[InputFile]:
    """Expand files, globs and folders (recursively) into a sorted, de-duplicated file list."""
    if not specs:
        raise ConfigError("no input files given")
    found: dict[Path, InputFile] = {}
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*") if p.is_file())
            candidates = [p for p in candidates if detect_format(p) is not None]
            if not candidates:
                raise DataError(f"{spec}: folder holds no CSV, TSV, Parquet, JSON or .xlsx files")
        elif any(ch in spec for ch in "*?["):
            candidates = sorted(Path(p) for p in glob.glob(spec, recursive=True))
            candidates = [p for p in candidates if p.is_file()]
            if not candidates:
                raise DataError(f"{spec}: no file matches this pattern")
        elif path.exists():
            candidates = [path]
        else:
            raise DataError(f"{spec}: file not found")
        for candidate in candidates:
            detected = detect_format(candidate)
            if detected is None:
                raise DataError(
                    f"{candidate}: unknown file type; expected one of {EXTENSIONS_TEXT}"
                )
            found.setdefault(candidate, InputFile(candidate, *detected))
    return list(found.values())


def _head(path: Path, compressed: bool) -> bytes:
    try:
        if compressed:
            with gzip.open(path, "rb") as handle:
                return handle.read(_SNIFF_BYTES)
        with path.open("rb") as handle:
            return handle.read(_SNIFF_BYTES)
    except (OSError, EOFError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise DataError(f"{path}: cannot read: {reason}") from exc


def _check_content(item: InputFile) -> bytes:
    """Fail early when a file is empty or not what its extension says."""
    try:
        with item.path.open("rb") as handle:
            raw_head = handle.read(4)
    except OSError as exc:
        raise DataError(f"{item.path}: cannot read: {exc.strerror}") from exc
    if item.compressed and raw_head[:2] != _GZIP_MAGIC:
        raise DataError(f"{item.path}: named .gz but is not gzip-compressed")
    if not item.compressed and raw_head[:2] == _GZIP_MAGIC:
        raise DataError(f"{item.path}: file is gzip-compressed; name it {item.path.name}.gz")
    head = _head(item.path, item.compressed)
    if not head.strip():
        raise DataError(f"{item.path}: file is empty")
    is_parquet = head[:4] == _PARQUET_MAGIC
    if item.format == "parquet" and not is_parquet:
        raise DataError(f"{item.path}: not a Parquet file (no PAR1 header)")
    if item.format != "parquet" and is_parquet:
        raise DataError(f"{item.path}: is a Parquet file; name it .parquet")
    if item.format == "xlsx" and head[:4] != _ZIP_MAGIC:
        raise DataError(f"{item.path}: not an .xlsx workbook (no ZIP header)")
    if item.format in ("json", "jsonl") and head.lstrip()[:1] not in (b"{", b"["):
        raise DataError(f"{item.path}: not JSON (first character is not '{{' or '[')")
    return head


def check_utf8(path: Path, sample: bytes, encoding: str) -> None:
    """Raise a DataError suggesting ``--encoding`` when a text file is not UTF-8."""
    if encoding.lower().replace("-", "") not in ("utf8", "utf8sig"):
        return
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if len(sample) == _SNIFF_BYTES and exc.start >= len(sample) - 4:
            # A multi-byte character cut by the end of the sample, not an encoding problem.
            return
        line = sample[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: not UTF-8 text (byte 0x{sample[exc.start]:02x}); "
            "pass --encoding (e.g. --encoding latin-1) with the file's encoding"
        ) from exc


def _csv_from_other_encoding(item: InputFile, separator: str, encoding: str) -> pl.LazyFrame:
    opener: Any = gzip.open if item.compressed else open
    try:
        with opener(item.path, "rb") as handle:
            data = handle.read().decode(encoding)
    except LookupError as exc:
        raise ConfigError(f"unknown encoding {encoding!r}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{item.path}: not valid {encoding} text: {exc.reason}") from exc
    frame = pl.read_csv(data.encode("utf-8"), separator=separator, infer_schema=False)
    return frame.lazy()


#: Rows of a Parquet file that ``scan_file(..., in_pieces=True)`` reads at a time, about.
PIECE_ROWS = 1_000_000


def _parquet_in_pieces(path: Path) -> pl.LazyFrame:
    """A Parquet file scanned as consecutive pieces of whole row groups, about
    ``PIECE_ROWS`` rows each (a larger row group is a piece of its own), one after another.

    Polars' streaming reader decodes whole row groups, the next ones while the first is
    processed: a 1M-row group of an export is 0.2 GB decoded, and reading one piece at a
    time took a third less peak memory over the one pass of a 20M-event export, at the
    same speed. Only for reading every row: a filter cannot skip row groups through a piece
    (it applies after the slice).
    """
    try:
        footer = pq.read_metadata(path)
    except (OSError, pa.ArrowException):
        return pl.scan_parquet(path)  # the read reports what is wrong with the file
    pieces: list[tuple[int, int]] = []
    start = rows = 0
    for index in range(footer.num_row_groups):
        group = footer.row_group(index).num_rows
        if rows and rows + group > PIECE_ROWS:
            pieces.append((start, rows))
            start, rows = start + rows, 0
        rows += group
    pieces.append((start, rows))
    if len(pieces) == 1:
        return pl.scan_parquet(path)
    return pl.concat([pl.scan_parquet(path).slice(first, count) for first, count in pieces])


def scan_file(item: InputFile, encoding: str = "utf-8", in_pieces: bool = False) -> pl.LazyFrame:
    """Scan one file into a LazyFrame with nested structs flattened to ``a.b`` columns.

    ``in_pieces``: a Parquet file is read a million rows at a time (``_parquet_in_pieces``),
    for queries that read all of it.
    """
    head = _check_content(item)
    path = str(item.path)
    if item.format in ("csv", "tsv"):
        separator = "\t" if item.format == "tsv" else ","
        check_utf8(item.path, head, encoding)
        if encoding.lower().replace("-", "") not in ("utf8", "utf8sig"):
            frame = _csv_from_other_encoding(item, separator, encoding)
        else:
            frame = pl.scan_csv(path, separator=separator, infer_schema=False)
    elif item.format == "parquet":
        frame = _parquet_in_pieces(item.path) if in_pieces else pl.scan_parquet(path)
    elif item.format == "xlsx":
        frame = read_xlsx(item).lazy()
    else:
        check_utf8(item.path, head, "utf-8")
        lines = item.format == "jsonl"
        native = _native_json_lines(item) if lines else None
        frame = (
            native if native is not None else read_json_records(item.path, item.compressed, lines)
        ).lazy()
    return flatten_structs(frame, item.path)


def read_xlsx(item: InputFile, *, as_text: bool = True) -> pl.DataFrame:
    """The first sheet of an ``.xlsx`` workbook, its first row the header.

    ``as_text`` reads every cell as a string, as CSV files are read: one number typed into a
    column of dates must not change the column's type (date cells come out as
    ``2024-01-15 09:30:00``, naive: normalisation reads them in ``--timezone``). Columns empty
    on every row are kept, so a preset still finds them; blank rows are dropped, as blank CSV
    lines are. A workbook that cannot be read is a one-line DataError naming the file.
    """
    source: Path | io.BytesIO = item.path
    try:
        if item.compressed:
            with gzip.open(item.path, "rb") as handle:
                source = io.BytesIO(handle.read())
        return pl.read_excel(
            source,
            sheet_id=1,
            engine="calamine",
            infer_schema_length=0 if as_text else 1000,
            drop_empty_cols=False,
        )
    except (pl.exceptions.PolarsError, fastexcel.FastExcelError, OSError, EOFError) as exc:
        raise DataError(f"{item.path}: cannot read the workbook: {first_line(exc)}") from exc


#: Fields of an SNS envelope: records to unwrap (``json_records``), not events.
_SNS_FIELDS = ("Type", "Message")


def _native_json_lines(item: InputFile) -> pl.DataFrame | None:
    """A plain JSON-lines file read by Polars (types inferred over every record), several
    times faster than engscore's own reader; None when Polars cannot read it (invalid JSON,
    a value that is not an object) or it holds SNS envelopes or no record: the own reader
    then reads it and reports what is wrong."""
    if item.compressed:
        return None
    try:
        frame = pl.read_ndjson(item.path, infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError, ValueError):
        return None
    if frame.is_empty() or all(name in frame.columns for name in _SNS_FIELDS):
        return None
    return frame


def collect_schema(frame: pl.LazyFrame, source: Path) -> pl.Schema:
    """The frame's schema; a file Polars cannot even open is a DataError naming it."""
    try:
        return frame.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{source}: cannot read: {first_line(exc)}") from exc


def flatten_structs(frame: pl.LazyFrame, source: Path) -> pl.LazyFrame:
    """Replace struct columns by their fields, named ``parent.child`` (recursively)."""
    schema = collect_schema(frame, source)
    if not any(isinstance(t, pl.Struct) for t in schema.values()):
        return frame
    exprs: list[pl.Expr] = []

    def walk(expr: pl.Expr, name: str, dtype: Any) -> None:
        if isinstance(dtype, pl.Struct):
            for field in dtype.fields:
                walk(expr.struct.field(field.name), f"{name}.{field.name}", field.dtype)
        else:
            exprs.append(expr.alias(name))

    for name, dtype in schema.items():
        walk(pl.col(name), name, dtype)
    return frame.select(exprs)


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception message (Polars adds hints below it)."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__
