"""Writing outputs atomically: a temporary name in the target folder, renamed into place.

A failed or killed run never leaves a partial file under the final name, and the previous
output stays untouched until the new one is complete (SPEC section 4).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from engscore.errors import ConfigError, DataError

FRAME_FORMATS = {".parquet": "parquet", ".csv": "csv"}


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


def write_frame(frame: pl.LazyFrame | pl.DataFrame, target: Path) -> None:
    """Write a frame to ``target`` (.parquet or .csv) atomically, streaming when lazy."""
    fmt = output_format(target)
    with atomic_path(target) as temporary:
        try:
            if isinstance(frame, pl.LazyFrame):
                if fmt == "parquet":
                    frame.sink_parquet(temporary, engine="streaming")
                else:
                    frame.sink_csv(temporary, engine="streaming")
            elif fmt == "parquet":
                frame.write_parquet(temporary)
            else:
                frame.write_csv(temporary)
        except OSError as exc:
            raise DataError(f"{target}: cannot write: {exc.strerror or exc}") from exc
