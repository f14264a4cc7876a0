"""Writing outputs: atomic, deterministic files."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from engscore.io.outputs import write_frame


def test_parquet_bytes_do_not_depend_on_chunking(tmp_path: Path) -> None:
    # Scores are put together from contact ranges; the file must not show it.
    rows = 300_000
    frame = pl.DataFrame(
        {"contact_id": [f"c{i:07d}" for i in range(rows)], "score": [i / 7 for i in range(rows)]}
    )
    pieces = pl.concat([frame.slice(i, 15_000) for i in range(0, rows, 15_000)], rechunk=False)
    assert pieces.n_chunks() == 20
    for metadata in (None, {"engscore.test": "1"}):
        write_frame(frame, tmp_path / "one.parquet", metadata=metadata)
        write_frame(pieces, tmp_path / "pieces.parquet", metadata=metadata)
        assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "pieces.parquet").read_bytes()
