"""The ingest stage end to end: presets, normalisation, dedup, rejects, outputs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from engscore.config import IngestOptions
from engscore.errors import ConfigError, DataError
from engscore.io import ingest
from engscore.io.events import ingest_to_file, load_events
from engscore.io.ingest import CONTACT_KEY

INGEST = Path(__file__).parents[1] / "fixtures" / "ingest"


def events_of(*paths: Path | str, **options: object) -> pl.DataFrame:
    loaded = load_events([str(p) for p in paths], IngestOptions(**options))  # type: ignore[arg-type]
    return loaded.events.collect().sort("contact_id", "timestamp", "event_type")


def test_clean_file_is_normalised() -> None:
    frame = events_of(INGEST / "clean.csv")
    assert frame.columns[:9] == [
        "contact_id", "event_type", "timestamp", "event_id", "campaign_id", "url", "amount",
        "is_machine", "bounce_type",
    ]  # fmt: skip
    assert frame.schema["timestamp"] == pl.Datetime("us", "UTC")
    counts = dict(frame.group_by("contact_id").len().iter_rows())
    # Duplicates dropped: e2 by event_id, bob's purchase as an exact duplicate row.
    assert counts == {"alice@example.com": 2, "bob@example.com": 2, "CRM-42": 1,
                      "carol@example.com": 1}  # fmt: skip
    by_id = {r["event_id"]: r for r in frame.iter_rows(named=True) if r["event_id"]}
    assert by_id["e2"]["event_type"] == "click"  # "Clicked" synonym
    assert by_id["e2"]["timestamp"] == datetime(2024, 3, 1, 10, 5, 0, 123456, tzinfo=UTC)
    assert by_id["e4"]["bounce_type"] == "hard"
    assert by_id["e4"]["timestamp"] == datetime(2024, 3, 1, 10, 46, 40, 123000, tzinfo=UTC)
    assert by_id["e5"]["timestamp"] == datetime(2024, 3, 1, 11, tzinfo=UTC)
    assert by_id["e5"]["is_machine"] is True
    assert by_id["e6"]["event_type"] == "webinar_attended"  # custom types are kept
    purchase = frame.filter(pl.col("event_type") == "purchase")
    assert purchase["amount"].to_list() == [19.9]


def test_output_is_sorted_and_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    ingest_to_file([str(INGEST / "clean.csv")], first)
    ingest_to_file([str(INGEST / "clean.csv")], second)
    assert first.read_bytes() == second.read_bytes()
    frame = pl.read_parquet(first)
    assert frame.equals(frame.sort(["contact_id", "timestamp", "event_type"], maintain_order=True))


def test_bucketed_write_equals_single_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        {"contact_id": f"c{i % 37}@x.com", "event_type": ["open", "click", "delivered"][i % 3],
         "timestamp": f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z", "event_id": f"e{i % 481}",
         "campaign_id": f"k{i % 5}"}
        for i in range(600)
    ]  # fmt: skip
    source = tmp_path / "many.csv"
    pl.DataFrame(rows).write_csv(source)
    whole, bucketed = tmp_path / "whole.parquet", tmp_path / "bucketed.parquet"
    ingest_to_file([str(source)], whole)
    monkeypatch.setattr(ingest, "BUCKET_ROWS", 50)
    summary = ingest_to_file([str(source)], bucketed)
    assert pl.read_parquet(whole).equals(pl.read_parquet(bucketed))
    # i and i + 481 share an id and a contact (481 = 13 * 37): 119 duplicates.
    assert summary.rows_kept == 481 and summary.duplicates_dropped == 119
    assert not list(tmp_path.glob(".engscore-*")), "temporary partitions are removed"


def test_reading_in_batches_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two files (Parquet, and CSV with an extra column and bad rows) read in batches of 64
    # rows and written in ranges of 50 give the events, rejects and line numbers of one pass.
    rows = [
        {"contact_id": f"c{i % 37}@x.com", "event_type": ["open", "click", "delivered"][i % 3],
         "timestamp": f"2024-02-{1 + i % 28:02d}T{i % 24:02d}:00:00Z", "event_id": f"p{i % 370}"}
        for i in range(400)
    ]  # fmt: skip
    pl.DataFrame(rows).write_parquet(tmp_path / "a.parquet")
    extra = [
        {**row, "event_id": f"q{i}", "country": "NL",
         "timestamp": "garbage" if i in (5, 130, 250) else row["timestamp"]}
        for i, row in enumerate(rows[:300])
    ]  # fmt: skip
    pl.DataFrame(extra).write_csv(tmp_path / "b.csv")
    inputs = [str(tmp_path / "a.parquet"), str(tmp_path / "b.csv")]
    options = IngestOptions(on_error="skip")
    whole = ingest_to_file(inputs, tmp_path / "whole.parquet", options)
    monkeypatch.setattr(ingest, "BATCH_ROWS", 64)
    monkeypatch.setattr(ingest, "_FLUSH_ROWS", 100)
    monkeypatch.setattr(ingest, "BUCKET_ROWS", 50)
    batched = ingest_to_file(inputs, tmp_path / "batched.parquet", options)
    assert pl.read_parquet(tmp_path / "whole.parquet").equals(
        pl.read_parquet(tmp_path / "batched.parquet")
    )
    assert (batched.rows_read, batched.rows_rejected, batched.rows_kept) == (700, 3, 667)
    assert (whole.rows_kept, whole.duplicates_dropped) == (667, 30)  # p0..p29 twice
    rejects = pl.read_csv(tmp_path / "batched.rejects.csv")
    assert rejects["line"].to_list() == [7, 132, 252]  # CSV lines: header + 1-based rows
    assert rejects.equals(pl.read_csv(tmp_path / "whole.rejects.csv"))
    with pytest.raises(DataError, match=r"b\.csv:7: unparseable timestamp 'garbage'"):
        ingest_to_file(inputs, tmp_path / "fails.parquet")


def test_failed_ingest_leaves_nothing_behind(tmp_path: Path) -> None:
    # Validation spills valid rows beside the output; a failure removes them and the folders
    # made for them.
    output = tmp_path / "new" / "folder" / "out.parquet"
    with pytest.raises(DataError):
        ingest_to_file([str(INGEST / "bad_rows.csv")], output)
    assert list(tmp_path.iterdir()) == []


def test_same_event_id_for_other_contacts_is_kept() -> None:
    # Some providers' ids name the message, shared by its recipients.
    frame = events_of(INGEST / "shared_message_id.csv")
    assert frame["contact_id"].to_list() == ["a@x.com", "b@x.com"]


def test_summary_counts(tmp_path: Path) -> None:
    summary = ingest_to_file([str(INGEST / "clean.csv")], tmp_path / "out.parquet")
    assert (summary.rows_read, summary.rows_rejected, summary.duplicates_dropped) == (8, 0, 2)
    assert (summary.rows_kept, summary.contacts, summary.machine_opens) == (6, 4, 1)
    assert summary.first_event == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert summary.files[0].preset == "generic" and summary.files[0].detected


def test_csv_output(tmp_path: Path) -> None:
    ingest_to_file([str(INGEST / "clean.csv")], tmp_path / "out.csv")
    text = (tmp_path / "out.csv").read_text()
    assert text.splitlines()[1].startswith("CRM-42,open,2024-03-01T11:00:00.000000Z")


def test_rejected_rows_fail_by_default(tmp_path: Path) -> None:
    output = tmp_path / "out.parquet"
    with pytest.raises(DataError) as caught:
        ingest_to_file([str(INGEST / "bad_rows.csv")], output)
    message = str(caught.value)
    assert message.startswith("4 rows rejected (first 3: ")
    assert "bad_rows.csv:3: unparseable timestamp 'not-a-date'" in message
    assert "bad_rows.csv:4: missing contact_id" in message
    assert "--on-error skip" in message
    assert not output.exists()


def test_rejected_rows_skipped_into_rejects_file(tmp_path: Path) -> None:
    output = tmp_path / "out.parquet"
    summary = ingest_to_file([str(INGEST / "bad_rows.csv")], output, IngestOptions(on_error="skip"))
    assert summary.rows_kept == 2 and summary.rows_rejected == 4
    assert summary.reject_reasons == {
        "missing contact_id": 1, "missing event_type": 1, "missing timestamp": 1,
        "unparseable timestamp": 1,
    }  # fmt: skip
    rejects = pl.read_csv(tmp_path / "out.rejects.csv")
    assert rejects["line"].to_list() == [3, 4, 5, 6]
    assert rejects["timestamp"].to_list()[0] == "not-a-date"


def test_a_blank_timestamp_is_missing_not_unparseable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # White space only: blank, found by the parse of the batch (its other rows are ISO 8601
    # in UTC), the same in memory and through the on-disk path.
    from engscore.io import collected

    source = tmp_path / "blank.csv"
    source.write_text(
        'contact_id,event_type,timestamp\na@x.com,open,2024-03-01T10:00:00Z\nb@x.com,open,"   "\n'
    )
    for most_rows in (collected.MAX_ROWS_IN_MEMORY, 0):
        monkeypatch.setattr(collected, "MAX_ROWS_IN_MEMORY", most_rows)
        output = tmp_path / f"out{most_rows}.parquet"
        summary = ingest_to_file([str(source)], output, IngestOptions(on_error="skip"))
        assert summary.rows_kept == 1
        assert summary.reject_reasons == {"missing timestamp": 1}


def test_mixed_time_zones_need_timezone(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"mixed_zones.csv: column 'timestamp' mixes 1 values"):
        events_of(INGEST / "mixed_zones.csv")
    frame = events_of(INGEST / "mixed_zones.csv", timezone="America/New_York")
    assert frame["timestamp"].to_list() == [
        datetime(2024, 3, 1, 10, tzinfo=UTC),
        datetime(2024, 3, 1, 15, tzinfo=UTC),
    ]


def test_undetectable_export_lists_columns() -> None:
    with pytest.raises(DataError, match=r"cannot tell which export.*columns found: email, kind"):
        events_of(INGEST / "unknown_columns.csv")


def test_missing_required_column_names_it() -> None:
    with pytest.raises(DataError) as caught:
        events_of(INGEST / "unknown_columns.csv", preset="generic")
    assert "missing required column 'contact_id', 'event_type', 'timestamp'" in str(caught.value)
    assert "(columns found: email, kind, when)" in str(caught.value)


def test_unknown_preset_and_timezone() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'hubspot'"):
        events_of(INGEST / "clean.csv", preset="hubspot")
    with pytest.raises(ConfigError, match="unknown time zone"):
        events_of(INGEST / "clean.csv", timezone="Nowhere/Land")


def test_mixed_formats_and_folders(tmp_path: Path) -> None:
    pl.read_csv(INGEST / "clean.csv").write_ndjson(tmp_path / "copy.jsonl")
    frame = events_of(INGEST / "clean.csv", tmp_path)
    assert frame.height == 6  # the JSON-lines copy adds only duplicates


def test_custom_mapping_file() -> None:
    frame = events_of(INGEST / "custom_export.csv", mapping=INGEST / "custom_mapping.yaml")
    rows = frame.select("contact_id", "event_type", "timestamp", "bounce_type", "source").rows()
    assert rows == [
        ("a@x.com", "open", datetime(2024, 3, 1, 9, tzinfo=UTC), None, "legacy-esp"),
        ("b@x.com", "bounce", datetime(2024, 3, 1, 10, 30, tzinfo=UTC), "hard", "legacy-esp"),
        ("c@x.com", "click", datetime(2024, 3, 2, 8, 15, tzinfo=UTC), None, "legacy-esp"),
    ]
    # --timezone wins over the mapping file's zone.
    utc_frame = events_of(
        INGEST / "custom_export.csv", mapping=INGEST / "custom_mapping.yaml", timezone="UTC"
    )
    assert utc_frame["timestamp"][0] == datetime(2024, 3, 1, 10, tzinfo=UTC)


def test_bad_mapping_file_says_where() -> None:
    with pytest.raises(ConfigError) as caught:
        events_of(INGEST / "custom_export.csv", mapping=INGEST / "bad_mapping.yaml")
    lines = str(caught.value).splitlines()
    assert lines[0].endswith("bad_mapping.yaml:2: columns: unknown canonical column 'event_typ'; "
                             "choose from contact_id, event_type, timestamp, event_id, "
                             "campaign_id, url, amount, is_machine, bounce_type")  # fmt: skip
    assert lines[1].endswith("bad_mapping.yaml:5: timezone: unknown time zone 'Mars/Olympus': "
                             "use an IANA name such as 'Europe/Paris' or 'UTC'")  # fmt: skip


def test_ingested_file_is_read_back_without_rework(tmp_path: Path) -> None:
    output = tmp_path / "events.parquet"
    ingest_to_file([str(INGEST / "clean.csv")], output)
    loaded = load_events([str(output)])
    assert loaded.prepared and loaded.files[0].rows_read == 6
    written = pl.read_parquet(output)
    # Read as written (sorted); the contact numbers are for the scorer only.
    assert loaded.events.collect().equals(written.drop(CONTACT_KEY))
    assert loaded.keyed is not None and loaded.keyed.collect().equals(written)
    # A plain Parquet file with the same rows goes through the full path.
    plain = tmp_path / "plain.parquet"
    pl.read_parquet(output).write_parquet(plain)
    assert not load_events([str(plain)]).prepared


def test_parquet_output_numbers_contacts_in_id_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engscore.io import outputs

    events = tmp_path / "events.csv"
    rows = [f"c{i % 37:02d}@x.org,open,2026-01-{1 + i % 28:02d}T10:00:00Z" for i in range(500)]
    events.write_text("contact_id,event_type,timestamp\n" + "\n".join(rows) + "\n")
    output = tmp_path / "events.parquet"
    # Several contact ranges and row groups: the numbering runs on across them.
    monkeypatch.setattr(ingest, "BUCKET_ROWS", 60)
    monkeypatch.setattr(ingest, "BATCH_ROWS", 50)
    monkeypatch.setattr(outputs, "PARQUET_ROW_GROUP", 40)
    ingest_to_file([str(events)], output)
    written = pl.read_parquet(output)
    expected = written["contact_id"].rank("dense").cast(pl.UInt32) - 1
    assert written[CONTACT_KEY].to_list() == expected.to_list()
    assert written[CONTACT_KEY].max() == 36
    metadata = pq.read_schema(output).metadata or {}
    assert metadata[b"engscore.contact_key"] == b"1"
    # A CSV output is for people and other tools: no numbers.
    ingest_to_file([str(events)], tmp_path / "events.csv.out.csv")
    assert CONTACT_KEY not in pl.read_csv(tmp_path / "events.csv.out.csv").columns


def test_an_ingested_file_can_be_ingested_again(tmp_path: Path) -> None:
    # It used to fail: the fast path for canonical files skipped what ingest needs.
    first = tmp_path / "first.parquet"
    ingest_to_file([str(INGEST / "clean.csv")], first)
    again = tmp_path / "again.parquet"
    ingest_to_file([str(first)], again)
    assert again.read_bytes() == first.read_bytes()
    as_csv = tmp_path / "again.csv"
    ingest_to_file([str(first)], as_csv)
    assert pl.read_csv(as_csv).height == 6
