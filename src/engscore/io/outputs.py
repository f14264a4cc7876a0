"""Writing outputs atomically: a temporary name in the target folder, renamed into place.

A failed or killed run never leaves a partial file under the final name, and the previous
output stays untouched until the new one is complete (SPEC section 4).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import polars as pl
import pyarrow.parquet as pq

from engscore.errors import ConfigError, DataError

FRAME_FORMATS = {".parquet": "parquet", ".csv": "csv"}
PARQUET_ROW_GROUP = 1_000_000
#: Timestamps are UTC: write them as ISO 8601 with a ``Z`` so every tool reads them right.
CSV_DATETIME = "%Y-%m-%dT%H:%M:%S%.6fZ"


def output_format(path: Path) -> str:
    """``parquet`` or ``csv`` from the output file name; anything else is a usage error."""
    try:
        return FRAME_FORMATS[path.suffix.lower()]
    except KeyError:
        raise ConfigError(
            f"{path}: output must end in .parquet or .csv (got {path.suffix or 'no extension'!r})"
        ) from None


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``target``; rename it onto ``target`` only on success."""
    target = Path(target)
    if target.parent and not target.parent.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"{target.parent}: cannot create folder: {exc.strerror}") from exc
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()


@contextmanager
def scratch_folder(target: Path) -> Iterator[Path]:
    """A temporary folder beside ``target`` (same disk, where the user has room for the
    output), removed with what is in it on the way out, error or not; a parent folder made
    for it goes too when nothing was written there."""
    parent = Path(target).parent
    made = not parent.exists()
    try:
        parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=".engscore-", dir=parent))
    except OSError as exc:
        raise DataError(f"{parent}: cannot create a temporary folder: {exc.strerror}") from exc
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if made and not any(parent.iterdir()):
            parent.rmdir()


def write_frame(
    frame: pl.LazyFrame | pl.DataFrame, target: Path, metadata: dict[str, str] | None = None
) -> None:
    """Write a frame to ``target`` (.parquet or .csv) atomically, streaming when lazy.

    ``metadata`` goes into a Parquet file's key-value metadata (CSV has nowhere to keep it).
    """
    fmt = output_format(target)
    with atomic_path(target) as temporary:
        try:
            if metadata and fmt == "parquet":
                collected = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
                # A set row-group size makes the bytes independent of how the frame is
                # chunked (without it, row groups follow the chunks).
                collected.write_parquet(
                    temporary, metadata=metadata, row_group_size=PARQUET_ROW_GROUP
                )
            elif isinstance(frame, pl.LazyFrame):
                if fmt == "parquet":
                    frame.sink_parquet(temporary, engine="streaming")
                else:
                    frame.sink_csv(temporary, engine="streaming", datetime_format=CSV_DATETIME)
            elif fmt == "parquet":
                frame.write_parquet(temporary, row_group_size=PARQUET_ROW_GROUP)
            else:
                frame.write_csv(temporary, datetime_format=CSV_DATETIME)
        except OSError as exc:
            raise DataError(f"{target}: cannot write: {exc.strerror or exc}") from exc


class ChunkWriter:
    """Append DataFrames to one Parquet or CSV file (same schema each time).

    Used where a result is produced in ordered pieces, to keep memory at one piece.
    """

    def __init__(self, path: Path, fmt: str, metadata: dict[bytes, bytes] | None = None) -> None:
        self.path = path
        self.format = fmt
        self.metadata = metadata or {}
        self._parquet: pq.ParquetWriter | None = None
        self._csv: IO[bytes] | None = None

    def write(self, chunk: pl.DataFrame) -> None:
        """Append one chunk."""
        if self.format == "parquet":
            # One Arrow chunk per column: the writer's page and dictionary-fallback boundaries
            # follow the chunks, which vary with thread timing; rechunked, the bytes do not.
            table = chunk.rechunk().to_arrow()
            table = table.replace_schema_metadata(
                {**(table.schema.metadata or {}), **self.metadata}
            )
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema, compression="zstd")
            self._parquet.write_table(table, row_group_size=PARQUET_ROW_GROUP)
        else:
            header = self._csv is None
            if self._csv is None:
                self._csv = self.path.open("wb")
            chunk.write_csv(self._csv, include_header=header, datetime_format=CSV_DATETIME)

    def close(self) -> None:
        """Finish the file (an empty result still gets a valid, empty file)."""
        if self._parquet is not None:
            self._parquet.close()
        elif self._csv is not None:
            self._csv.close()
        else:
            self.path.touch()

    def __enter__(self) -> ChunkWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, hex; of a folder (Spark's part files), of its Parquet
    files' bytes in name order."""
    if path.is_dir():
        digest = hashlib.sha256()
        for part in sorted(path.glob("*.parquet")):
            with part.open("rb") as handle:
                digest.update(hashlib.file_digest(handle, "sha256").digest())
        return digest.hexdigest()
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def write_json(document: object, target: Path) -> None:
    """Write ``document`` as indented, key-sorted JSON, atomically (deterministic bytes)."""
    with atomic_path(target) as temporary:
        try:
            temporary.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", "utf-8")
        except OSError as exc:
            raise DataError(f"{target}: cannot write: {exc.strerror or exc}") from exc


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_interrupted(target: Path) -> None:
    """Clean up after a run that was killed while writing ``target``.

    A killed run leaves ``.<name>.tmp-<pid>`` (an incomplete new folder: removed) and, if it
    died between the two renames of the swap, ``.<name>.old-<pid>`` with no ``target``: the
    old folder is put back. Folders of runs still alive are left alone.
    """
    for leftover in sorted(target.parent.glob(f".{target.name}.*-*")):
        kind, _, pid = leftover.name.removeprefix(f".{target.name}.").partition("-")
        if kind not in ("tmp", "old") or not pid.isdigit() or pid_alive(int(pid)):
            continue
        if kind == "old" and not target.exists():
            os.replace(leftover, target)
        else:
            shutil.rmtree(leftover, ignore_errors=True)


def swap_folder(new: Path, target: Path) -> None:
    """Replace the folder ``target`` with ``new``: the old one stays until the new is in place."""
    if not target.exists():
        os.replace(new, target)
        return
    if not target.is_dir():
        raise DataError(f"{target}: exists and is not a folder")
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.replace(target, old)
    try:
        os.replace(new, target)
    except OSError:
        os.replace(old, target)
        raise
    shutil.rmtree(old)


def shown_path(path: Path, root: Path | None) -> str:
    """``path`` as written into manifests: relative to ``root`` when inside it.

    Relative paths make a project's outputs the same wherever the project folder lives.
    """
    if root is None:
        return str(path)
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
