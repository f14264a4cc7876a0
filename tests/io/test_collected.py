"""io.collected: exports read once into memory give what validation, de-duplication and
numbering on disk give (``load_exports`` + ``prepare_events``; ``sorted_exports``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from engscore import score as score_module
from engscore.config import IngestOptions
from engscore.errors import DataError
from engscore.io import collected
from engscore.io.collected import collect_exports, estimated_rows, fits_in_memory
from engscore.io.ingest import CONTACT_KEY, load_exports, prepare_events
from engscore.io.readers import resolve_inputs
from engscore.schema import CONTACT
from engscore.score import ScoreRequest, run_score

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
ORDER = [CONTACT, "timestamp", "event_type", "campaign_id", "url", "amount", "is_machine"]


def _on_disk(inputs: list[str], options: IngestOptions) -> pl.DataFrame:
    loaded = load_exports(inputs, options)
    events = prepare_events(loaded.valid, loaded.machine_open_seconds, sort=False).collect()
    return events.sort(ORDER, nulls_last=True)


def _in_memory(inputs: list[str], options: IngestOptions) -> pl.DataFrame:
    loaded = collect_exports(inputs, options)
    assert loaded.keyed is not None and loaded.contact_names is not None
    keyed = loaded.keyed.collect()
    # The numbers are dense and in id order, as `engscore ingest` numbers contacts.
    names = loaded.contact_names.sort(CONTACT)
    assert names[CONTACT].to_list() == list(range(names.height))
    assert names["_contact_text"].is_sorted()
    texts = keyed.select(CONTACT_KEY).join(
        names, left_on=CONTACT_KEY, right_on=CONTACT, how="left", maintain_order="left"
    )
    assert texts["_contact_text"].equals(keyed[CONTACT].cast(pl.String), check_names=False)
    events = loaded.events.collect()
    assert events.columns == [c for c in keyed.columns if c != CONTACT_KEY]
    return events.sort(ORDER, nulls_last=True)


def _raw_export(tmp_path: Path) -> Path:
    """Events with every kind of duplicate, mixed-case e-mails, ids without '@', site
    events without an event id and heuristic machine opens (no is_machine column)."""
    rows = [
        # contact, type, timestamp, event_id, campaign, url, amount
        ("Ann@Example.com ", "delivered", "2026-10-01T10:00:00Z", "d1", "c1", None, None),
        ("ann@example.com", "open", "2026-10-01T10:00:01Z", "o1", "c1", None, None),  # machine
        ("ann@example.com", "open", "2026-10-02T09:00:00Z", "o2", "c1", None, None),
        ("ann@example.com", "open", "2026-10-02T09:00:00Z", "o2", "c1", None, None),  # retry
        ("ANN@example.com", "open", "2026-10-03T09:00:00Z", "o2", "c1", None, None),  # same id
        ("bob@example.com", "page_view", "2026-10-05T12:00:00Z", None, None, "/pricing", None),
        ("bob@example.com", "page_view", "2026-10-05T12:00:00Z", None, None, "/pricing", None),
        ("bob@example.com", "page_view", "2026-10-05T12:00:00Z", None, None, "/demo", None),
        ("bob@example.com", "purchase", "2026-10-06T12:00:00Z", None, None, None, "19.90"),
        ("CRM-0042", "click", "2026-10-07T08:00:00Z", "k1", "c2", "/x", None),
        ("crm-0042", "click", "2026-10-07T08:00:00Z", "k1", "c2", "/x", None),
        ("CRM-0042", "Clicked", "2026-10-08T08:00:00Z", "k2", "c2", "/y", None),
        ("zed@example.com", "delivered", "2026-10-09T08:00:00Z", "d9", "c3", None, None),
        ("zed@example.com", "delivered", "2026-10-09T07:59:59Z", "d9", "c3", None, None),
        # 1.5 s after the kept delivery, 2.5 s after its dropped copy: the heuristic runs
        # before de-duplication, so this open is a person's.
        ("zed@example.com", "open", "2026-10-09T08:00:01.500Z", "o9", "c3", None, None),
    ]
    frame = pl.DataFrame(
        rows,
        schema=[
            "contact_id",
            "event_type",
            "timestamp",
            "event_id",
            "campaign_id",
            "url",
            "amount",
        ],
        orient="row",
    )
    path = tmp_path / "raw.csv"
    frame.write_csv(path)
    return path


def test_the_same_events_as_validation_and_deduplication_on_disk(tmp_path: Path) -> None:
    inputs = [str(_raw_export(tmp_path))]
    options = IngestOptions()
    expected = _on_disk(inputs, options)
    got = _in_memory(inputs, options)
    assert got.equals(expected)
    # What the fixture was made to show.
    assert got.height == 11
    ann = got.filter(pl.col(CONTACT) == "ann@example.com")
    assert ann["is_machine"].to_list() == [False, True, False]
    zed = got.filter(pl.col(CONTACT) == "zed@example.com")
    assert zed["is_machine"].to_list() == [False, False]
    assert got.filter(pl.col(CONTACT) == "crm-0042").height == 1  # case kept: two contacts


def test_machine_opens_are_dated_by_the_contacts_own_delivery(tmp_path: Path) -> None:
    # Amy's open comes a second after Zed's delivery of the same campaign, but she has no
    # delivery of her own: a person's open. (Grouped by campaign alone, it would be a
    # machine's.) In memory the heuristic groups by contact number, not by the id.
    path = tmp_path / "raw.csv"
    pl.DataFrame(
        {
            "contact_id": ["zed@example.com", "Amy@example.com"],
            "event_type": ["delivered", "open"],
            "timestamp": ["2026-10-09T08:00:00Z", "2026-10-09T08:00:01Z"],
            "campaign_id": ["c3", "c3"],
        }
    ).write_csv(path)
    options = IngestOptions()
    got = _in_memory([str(path)], options)
    assert got.equals(_on_disk([str(path)], options))
    assert got.filter(pl.col("event_type") == "open")["is_machine"].to_list() == [False]


def test_the_same_events_from_provider_payloads(fixtures: Path) -> None:
    for name, preset in (
        ("sendgrid_events.csv", "sendgrid"),
        ("mailgun_events.json", "mailgun"),
        ("ses_events.jsonl", "ses"),
        ("sendgrid_webhook_post.json", "sendgrid"),
        ("mailgun_account_events.json", "mailgun"),
    ):
        inputs = [str(fixtures / "presets" / name)]
        options = IngestOptions(preset=preset)
        assert _in_memory(inputs, options).equals(_on_disk(inputs, options)), name


def test_rejected_rows_are_reported_as_on_disk(fixtures: Path) -> None:
    bad = [str(fixtures / "ingest" / "bad_rows.csv")]
    with pytest.raises(DataError) as on_disk:
        load_exports(bad, IngestOptions())
    with pytest.raises(DataError) as in_memory:
        collect_exports(bad, IngestOptions())
    assert str(in_memory.value) == str(on_disk.value)
    skip = IngestOptions(on_error="skip")
    loaded, expected = collect_exports(bad, skip), load_exports(bad, skip)
    assert loaded.rows_rejected == expected.rows_rejected > 0
    assert loaded.reject_reasons == expected.reject_reasons
    assert [f.rows_read for f in loaded.files] == [f.rows_read for f in expected.files]
    assert _in_memory(bad, skip).equals(_on_disk(bad, skip))


def test_account_level_events_are_skipped_and_counted(fixtures: Path) -> None:
    inputs = [str(fixtures / "presets" / "mailgun_account_events.json")]
    options = IngestOptions(preset="mailgun")
    loaded, expected = collect_exports(inputs, options), load_exports(inputs, options)
    assert loaded.rows_skipped == expected.rows_skipped > 0
    assert loaded.warnings == expected.warnings


def test_a_rules_check_runs_before_any_row_is_read(tmp_path: Path) -> None:
    seen: list[list[str]] = []
    inputs = [str(_raw_export(tmp_path))]
    collect_exports(inputs, IngestOptions(), check=lambda schema: seen.append(schema.names()))
    assert seen == [[CONTACT, "event_type", "timestamp", "event_id", "campaign_id", "url",
                     "amount", "is_machine", "bounce_type"]]  # fmt: skip


RULES = Path(__file__).parents[2] / "rules"
FIXTURE_RULES = Path(__file__).parents[1] / "fixtures" / "rules"


@pytest.mark.parametrize(
    ("rules", "with_contacts", "raw"),
    [
        ("default.yaml", False, False),
        ("b2b-lead-scoring.yaml", True, False),  # profile rules: scored on the text ids
        ("b2c-newsletter.yaml", False, True),  # the generator's messy CSV, rows skipped
        # A condition reading the event type as text: the passes get text, not type codes.
        (FIXTURE_RULES / "type_as_text.yaml", False, False),
    ],
)
def test_scores_in_memory_equal_scores_through_a_sorted_copy(
    example_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rules: str | Path,
    with_contacts: bool,
    raw: bool,
) -> None:
    if raw:
        source = example_data / "raw_export.csv"
    else:
        events = pl.read_parquet(example_data / "events.parquet")
        source = tmp_path / "shuffled.parquet"
        shuffled = pl.concat([events, events.head(300)]).sample(fraction=1.0, shuffle=True, seed=3)
        shuffled.write_parquet(source, row_group_size=10_000)
    request = ScoreRequest(
        events=[str(source)],
        as_of=AS_OF,
        rules_path=RULES / rules,
        contacts_path=example_data / "contacts.csv" if with_contacts else None,
        ingest=IngestOptions(on_error="skip"),
    )
    run_score(request, tmp_path / "memory.parquet")
    # Scored in passes of a few contacts each (the events stay in memory): the same bytes.
    monkeypatch.setattr(score_module, "IN_MEMORY_BUCKET_ROWS", 3_000)
    run_score(request, tmp_path / "passes.parquet")
    monkeypatch.setattr(collected, "MAX_ROWS_IN_MEMORY", 0)
    run_score(request, tmp_path / "sorted.parquet")
    memory = (tmp_path / "memory.parquet").read_bytes()
    assert memory == (tmp_path / "passes.parquet").read_bytes()
    assert memory == (tmp_path / "sorted.parquet").read_bytes()
    assert pl.read_parquet(tmp_path / "memory.parquet")["score"].sum() > 0


def test_event_types_stay_codes_only_when_asked(tmp_path: Path) -> None:
    inputs = [str(_raw_export(tmp_path))]
    coded = collect_exports(inputs, IngestOptions(), event_type_codes=True)
    assert coded.keyed is not None
    assert isinstance(coded.keyed.collect_schema()["event_type"], pl.Categorical)
    assert coded.events.collect_schema()["event_type"] == pl.String
    as_text = collect_exports(inputs, IngestOptions())
    assert as_text.keyed is not None
    assert as_text.keyed.collect_schema()["event_type"] == pl.String
    # The same events either way, but for the type's dtype.
    assert (
        coded.keyed.collect()
        .with_columns(pl.col("event_type").cast(pl.String))
        .equals(as_text.keyed.collect())
    )


def test_contact_numbers_are_dense_in_key_order_and_shared_by_case_variants() -> None:
    ids = pl.Series(["b@x.com", "CRM-1", "A@X.com", "crm-1", "a@x.com", "B@x.COM", "c@x.com"])
    number_of_code, names = collected._contact_numbers(ids)
    assert names["_contact_text"].to_list() == ["CRM-1", "a@x.com", "b@x.com", "c@x.com", "crm-1"]
    assert names[CONTACT].to_list() == [0, 1, 2, 3, 4]
    assert number_of_code.to_list() == [2, 0, 1, 4, 1, 2, 3]
    # Only the codes the kept rows use get a number; the others stay null.
    present = pl.Series([6, 0, 0, 5], dtype=pl.UInt32)
    number_of_code, names = collected._contact_numbers(ids, present)
    assert names["_contact_text"].to_list() == ["b@x.com", "c@x.com"]
    assert number_of_code.to_list() == [0, None, None, None, None, 0, 1]
    empty, no_names = collected._contact_numbers(pl.Series([], dtype=pl.String))
    assert empty.len() == 0 and no_names.height == 0


def test_the_size_estimate_picks_the_path(tmp_path: Path) -> None:
    path = _raw_export(tmp_path)
    parquet = tmp_path / "raw.parquet"
    pl.read_csv(path).write_parquet(parquet)
    assert estimated_rows(resolve_inputs([str(parquet)])) == 15
    assert 10 <= estimated_rows(resolve_inputs([str(path)])) <= 30
    assert fits_in_memory([str(path)])


def test_inputs_that_would_crowd_memory_go_to_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(_raw_export(tmp_path))
    monkeypatch.setattr(collected, "available_memory", lambda: 1000)
    assert not fits_in_memory([path])
    monkeypatch.setattr(collected, "available_memory", lambda: None)
    assert fits_in_memory([path])
    monkeypatch.setattr(collected, "MAX_ROWS_IN_MEMORY", 5)
    assert not fits_in_memory([path])


def _header_only(tmp_path: Path) -> Path:
    path = tmp_path / "quiet-day.csv"
    path.write_text("contact_id,event_type,timestamp\n", encoding="utf-8")
    return path


def test_ingest_in_memory_writes_what_ingest_on_disk_writes(
    tmp_path: Path, fixtures: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engscore.io.events import ingest_to_file

    raw = _raw_export(tmp_path)
    bad = fixtures / "ingest" / "bad_rows.csv"
    for inputs, options in (
        ([str(raw)], IngestOptions()),
        ([str(raw), str(bad)], IngestOptions(on_error="skip")),
        ([str(fixtures / "presets" / "mailgun_account_events.json")], IngestOptions()),
        ([str(_header_only(tmp_path))], IngestOptions()),
    ):
        for suffix in ("parquet", "csv"):
            memory = tmp_path / f"memory.{suffix}"
            disk = tmp_path / f"disk.{suffix}"
            in_memory = ingest_to_file(inputs, memory, options)
            with monkeypatch.context() as patch:
                patch.setattr(collected, "MAX_ROWS_IN_MEMORY", 0)
                on_disk = ingest_to_file(inputs, disk, options)
            assert in_memory.rejects_file != on_disk.rejects_file or in_memory.rows_rejected == 0
            assert {**vars(in_memory), "output": None, "rejects_file": None} == {
                **vars(on_disk),
                "output": None,
                "rejects_file": None,
            }
            if suffix == "csv":
                assert memory.read_bytes() == disk.read_bytes()
            else:
                assert pl.read_parquet(memory).equals(pl.read_parquet(disk))
            if in_memory.rejects_file is not None and on_disk.rejects_file is not None:
                assert in_memory.rejects_file.read_bytes() == on_disk.rejects_file.read_bytes()


def test_the_output_order_key_and_its_fallback_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    # Contact number, time, event type (by its text, not its code), then input position:
    # the packed Int128 key and the four-key stable sort it stands in for give one order.
    events = pl.DataFrame(
        {
            CONTACT_KEY: [2, 0, 2, 0, 1, 0, 0, 2],
            "timestamp": [5, 3, 5, 3, 9, -4, 3, 5],
            "event_type": ["open", "send", "click", "open", "send", "open", "open", "open"],
        },
        schema_overrides={CONTACT_KEY: pl.UInt32},
    ).with_columns(
        pl.col("timestamp").cast(pl.Datetime("us", "UTC")),
        # Codes in the order met (open, send, click), not in the text's (click, open, send).
        pl.col("event_type").cast(pl.Categorical(pl.Categories.random())),
    )
    duplicates = pl.Series([False, False, False, False, False, False, True, False])
    expected = [5, 3, 1, 4, 2, 0, 7]
    assert collected._output_order(events, duplicates).to_list() == expected
    monkeypatch.setattr(collected, "_KEY_BITS", 8)
    assert collected._output_order(events, duplicates).to_list() == expected


def test_only_the_text_it_made_categorical_is_given_back_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The compact table holds event types (and the like) as categoricals and gives them back
    # as text; a column that was a categorical in the input stays one, in memory and through
    # the on-disk path (whose spill files allow one dictionary a column, and every row group
    # brings its own).
    from engscore.io.events import ingest_to_file

    source = tmp_path / "export.parquet"
    pl.DataFrame(
        {
            "contact_id": ["a@x.com", "b@x.com"] * 3,
            "event_type": ["open", "click"] * 3,
            "timestamp": ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"] * 3,
            "tier": ["gold", "silver", "bronze", "gold", "tin", "lead"],
        }
    ).with_columns(pl.col("tier").cast(pl.Categorical)).write_parquet(source, row_group_size=2)
    events = collect_exports([str(source)]).events.collect()
    assert events.schema["event_type"] == pl.String
    assert isinstance(events.schema["tier"], pl.Categorical)
    written = {}
    for path, most_rows in (("memory", collected.MAX_ROWS_IN_MEMORY), ("disk", 0)):
        monkeypatch.setattr(collected, "MAX_ROWS_IN_MEMORY", most_rows)
        ingest_to_file([str(source)], tmp_path / f"{path}.parquet", IngestOptions())
        written[path] = pl.read_parquet(tmp_path / f"{path}.parquet")
        assert written[path].schema["event_type"] == pl.String
        assert isinstance(written[path].schema["tier"], pl.Categorical)
    assert written["memory"].equals(written["disk"])


def test_more_event_names_than_one_byte_codes_number(tmp_path: Path) -> None:
    # Event types are held in one-byte codes: an export with more names than that is read
    # again with four-byte codes, and gives what the on-disk path gives.
    rows = [
        (f"c{i % 7}@x.com", f"custom_{i}", f"2026-10-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z")
        for i in range(300)
    ]
    path = tmp_path / "many.csv"
    pl.DataFrame(rows, schema=["contact_id", "event_type", "timestamp"], orient="row").write_csv(
        path
    )
    options = IngestOptions()
    got = _in_memory([str(path)], options)
    assert got.equals(_on_disk([str(path)], options))
    assert got["event_type"].n_unique() == 300


def test_narrow_codes_running_out_is_recognised() -> None:
    # The retry with four-byte codes hangs on Polars' wording of this error.
    narrow = pl.Categorical(pl.Categories.random(physical=pl.UInt8))
    with pytest.raises(pl.exceptions.ComputeError) as caught:
        pl.Series([f"v{i}" for i in range(300)]).cast(narrow)
    assert collected._too_many(caught.value)
    assert not collected._too_many(pl.exceptions.ComputeError("something else"))
