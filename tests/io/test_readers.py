"""Readers: input resolution, formats, gzip, content checks, encodings, nested JSON."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from engscore.errors import ConfigError, DataError
from engscore.io import readers
from engscore.io.readers import detect_format, resolve_inputs, scan_file

ROWS = [
    {"contact_id": "a@x.com", "event_type": "open", "timestamp": "2024-01-01T00:00:00Z"},
    {"contact_id": "b@x.com", "event_type": "click", "timestamp": "2024-01-02T00:00:00Z"},
]


def write_all_formats(folder: Path) -> list[Path]:
    frame = pl.DataFrame(ROWS)
    paths = []
    frame.write_csv(folder / "a.csv")
    frame.write_csv(folder / "b.tsv", separator="\t")
    frame.write_parquet(folder / "c.parquet")
    frame.write_ndjson(folder / "d.jsonl")
    (folder / "e.json").write_text(json.dumps(ROWS))
    (folder / "f.json").write_text(json.dumps({"emails": ROWS, "total_items": 2}))
    with gzip.open(folder / "g.csv.gz", "wb") as handle:
        handle.write((folder / "a.csv").read_bytes())
    with gzip.open(folder / "h.jsonl.gz", "wb") as handle:
        handle.write((folder / "d.jsonl").read_bytes())
    paths = sorted(folder.iterdir())
    return paths


def test_every_format_reads_the_same_rows(tmp_path: Path) -> None:
    write_all_formats(tmp_path)
    items = resolve_inputs([str(tmp_path)])
    assert [i.path.name for i in items] == [
        "a.csv", "b.tsv", "c.parquet", "d.jsonl", "e.json", "f.json", "g.csv.gz", "h.jsonl.gz"
    ]  # fmt: skip
    for item in items:
        frame = scan_file(item).collect()
        assert (
            frame.select(pl.col("contact_id", "event_type", "timestamp").cast(pl.String)).rows(
                named=True
            )
            == ROWS
        ), item.path


def test_globs_and_duplicates(tmp_path: Path) -> None:
    write_all_formats(tmp_path)
    items = resolve_inputs([str(tmp_path / "*.csv"), str(tmp_path / "a.csv")])
    assert [i.path.name for i in items] == ["a.csv"]


def test_detect_format() -> None:
    assert detect_format(Path("x.CSV.gz")) == ("csv", True)
    assert detect_format(Path("x.ndjson")) == ("jsonl", False)
    assert detect_format(Path("x.xlsx")) == ("xlsx", False)
    assert detect_format(Path("x.xls")) is None


def test_nested_json_is_flattened(tmp_path: Path) -> None:
    path = tmp_path / "ses.jsonl"
    record = {"eventType": "Open", "mail": {"destination": ["a@x.com"], "tags": {"k": ["v"]}}}
    path.write_text(json.dumps(record) + "\n")
    frame = scan_file(resolve_inputs([str(path)])[0]).collect()
    assert frame.columns == ["eventType", "mail.destination", "mail.tags.k"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "empty.csv: file is empty"),
        ("blank.jsonl", b"\n\n", "blank.jsonl: file is empty"),
        ("fake.parquet", b"a,b\n1,2\n", "fake.parquet: not a Parquet file"),
        ("real.csv", b"PAR1\x00\x00", "real.csv: is a Parquet file"),
        ("text.json", b"hello", "text.json: not JSON"),
        ("sheet.xlsx", b"a,b\n1,2\n", "sheet.xlsx: not an .xlsx workbook"),
        ("plain.csv.gz", b"a,b\n", "plain.csv.gz: named .gz but is not gzip-compressed"),
        ("zipped.csv", gzip.compress(b"a,b\n"), "zipped.csv: file is gzip-compressed"),
        ("bad.json", b"[{]", "bad.json:1: invalid JSON"),
        ("scalar.json", b"[1, 2]", "scalar.json: expected a JSON array of objects"),
        ("latin.csv", "email\nrené@x.com\n".encode("latin-1"), "latin.csv:2: not UTF-8 text"),
    ],
)
def test_bad_files(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message.replace(".", r"\.")):
        scan_file(resolve_inputs([str(path)])[0])


def test_non_utf8_suggests_encoding_and_reads_with_it(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("contact_id\nrené@x.com\n".encode("latin-1"))
    with pytest.raises(DataError, match="--encoding"):
        scan_file(resolve_inputs([str(path)])[0])
    frame = scan_file(resolve_inputs([str(path)])[0], encoding="latin-1").collect()
    assert frame["contact_id"].to_list() == ["rené@x.com"]
    with pytest.raises(ConfigError, match="unknown encoding 'klingon'"):
        scan_file(resolve_inputs([str(path)])[0], encoding="klingon")


def test_missing_inputs(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.csv: file not found"):
        resolve_inputs([str(tmp_path / "nope.csv")])
    with pytest.raises(DataError, match="no file matches this pattern"):
        resolve_inputs([str(tmp_path / "*.parquet")])
    with pytest.raises(DataError, match="folder holds no"):
        resolve_inputs([str(tmp_path)])
    (tmp_path / "x.xls").write_text("x")
    with pytest.raises(DataError, match="x.xls: unknown file type"):
        resolve_inputs([str(tmp_path / "x.xls")])


def test_a_parquet_file_in_pieces_gives_every_row_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Row groups of 2, 2, 2, 2, 2 and 7 rows; pieces of whole groups up to 4 rows: 4, 4, 2
    # and the large group on its own.
    path = tmp_path / "export.parquet"
    frame = pl.DataFrame({"n": range(17), "s": [f"v{i}" for i in range(17)]})
    with pq.ParquetWriter(path, frame.to_arrow().schema) as writer:
        writer.write_table(frame.head(10).to_arrow(), row_group_size=2)
        writer.write_table(frame.tail(7).to_arrow(), row_group_size=7)
    monkeypatch.setattr(readers, "PIECE_ROWS", 4)
    item = resolve_inputs([str(path)])[0]
    pieces = scan_file(item, in_pieces=True)
    plan = pieces.explain(engine="streaming")
    assert plan.count("Parquet SCAN") == 4
    for slice_ in ("offset: 0, len: 4", "offset: 4, len: 4", "offset: 8, len: 2"):
        assert slice_ in plan
    assert "offset: 10, len: 7" in plan
    assert pieces.collect(engine="streaming").equals(frame)
    assert pieces.collect().equals(frame)
    assert scan_file(item).collect().equals(frame)
