"""Issue 18: every real provider payload loads.

One test group per class of failure: JSON fields whose type varies between records, event
names missing from presets, SES events delivered through SNS, and account-level events. The
fixtures are in ``fixtures/presets`` (their documentation pages in the README there); the
per-contact counts, machine flags and bounce types of each are checked in ``test_presets``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from engscore.cli import app
from engscore.config import IngestOptions
from engscore.errors import DataError
from engscore.io.events import ingest_to_file, load_events
from engscore.presets import PRESETS
from engscore.presets.base import event_key
from engscore.score import ScoreRequest, prepare_scoring
from helpers import utc

FIXTURES = Path(__file__).parent / "fixtures" / "presets"
runner = CliRunner()


def frame_of(*paths: Path, **options: object) -> pl.DataFrame:
    loaded = load_events([str(p) for p in paths], IngestOptions(**options))  # type: ignore[arg-type]
    return loaded.events.collect().sort("contact_id", "timestamp", "event_type")


def at(frame: pl.DataFrame, contact: str, kind: str) -> list[datetime]:
    rows = frame.filter(pl.col("contact_id").str.starts_with(contact), pl.col("event_type") == kind)
    return rows["timestamp"].to_list()


# 1. A JSON field whose type varies between records.


def test_sendgrid_category_string_or_array_loads_as_text() -> None:
    post = frame_of(FIXTURES / "sendgrid_webhook_post.json")
    # The same events as JSON-lines (read by Polars, which orders extra columns its own
    # way) give the same frame.
    lines = frame_of(FIXTURES / "sendgrid_webhook_post.jsonl")
    assert post.equals(lines.select(post.columns))
    categories = dict(zip(post["event_type"], post["category"], strict=True))
    assert categories["send"] == "cat facts"
    assert categories["delivered"] == '["category1", "category2"]'
    assert at(post, "alice", "click") == [utc(2024, 3, 1, 11, 1, 40)]
    assert post.filter(pl.col("is_machine"))["event_type"].to_list() == ["open"]


@pytest.mark.parametrize("on_error", ["fail", "skip"])
def test_cli_ingests_the_mixed_webhook_post(tmp_path: Path, on_error: str) -> None:
    output = tmp_path / "events.parquet"
    args = ["ingest", str(FIXTURES / "sendgrid_webhook_post.json"), "-o", str(output)]
    result = runner.invoke(app, [*args, "--on-error", on_error])
    assert result.exit_code == 0, result.output
    assert "unexpected" not in result.output
    assert pl.read_parquet(output).height == 8


RECORDS = [
    {"contact_id": "a@x.com", "event_type": "open", "timestamp": 1709287200, "tags": "one",
     "flag": True, "meta": {"n": 1, "list": ["x"]}, "score": 1},
    {"contact_id": "b@x.com", "event_type": "click", "timestamp": "2024-03-01T10:00:00Z",
     "tags": ["one", "two"], "flag": 1, "meta": {"n": "many", "list": [2, "y"]}, "score": 1.5},
    {"contact_id": "c@x.com", "event_type": "open", "timestamp": 1709287300, "tags": {"k": "v"},
     "flag": None, "meta": "none", "score": None},
]  # fmt: skip


@pytest.mark.parametrize("shape", ["array", "lines", "concatenated", "wrapped"])
def test_any_json_shape_loads_whatever_the_types(tmp_path: Path, shape: str) -> None:
    if shape == "array":
        path = tmp_path / "events.json"
        path.write_text(json.dumps(RECORDS))
    elif shape == "lines":
        path = tmp_path / "events.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    elif shape == "concatenated":
        # Firehose-style: JSON objects one after another, no separator.
        path = tmp_path / "events.jsonl"
        path.write_text("".join(json.dumps(r) for r in RECORDS))
    else:
        path = tmp_path / "events.json"
        path.write_text(json.dumps({"data": RECORDS, "total": 3}))
    frame = frame_of(path)
    assert frame["contact_id"].to_list() == ["a@x.com", "b@x.com", "c@x.com"]
    assert frame["timestamp"].to_list() == [
        utc(2024, 3, 1, 10),
        utc(2024, 3, 1, 10),
        utc(2024, 3, 1, 10, 1, 40),
    ]
    # Varying fields are text: strings as they are, the rest as their JSON text.
    assert frame["tags"].to_list() == ["one", '["one", "two"]', '{"k": "v"}']
    assert frame["flag"].to_list() == ["true", "1", None]
    assert frame["meta"].to_list() == [
        '{"n": 1, "list": ["x"]}',
        '{"n": "many", "list": [2, "y"]}',
        "none",
    ]
    # Integers and decimals together are numbers, not text.
    assert frame["score"].to_list() == [1.0, 1.5, None]


def test_nested_fields_that_vary_are_text_and_the_rest_keeps_its_type(tmp_path: Path) -> None:
    records = [
        {"contact_id": "a@x.com", "event_type": "open", "timestamp": 1709287200,
         "mail": {"source": "s@x.com", "size": 10, "tag": "a"}},
        {"contact_id": "b@x.com", "event_type": "open", "timestamp": 1709287200,
         "mail": {"source": "s@x.com", "size": 12, "tag": ["a", "b"]}},
    ]  # fmt: skip
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records))
    frame = frame_of(path)
    assert frame["mail.size"].to_list() == [10, 12]
    assert frame["mail.tag"].to_list() == ["a", '["a", "b"]']


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"contact_id": "a@x.com"}\n{"contact_id": \n')
    with pytest.raises(DataError, match=r"events\.jsonl:2: invalid JSON"):
        frame_of(path)


# 2. Event names missing from presets.


def test_brevo_marketing_bounces_are_bounces() -> None:
    frame = frame_of(FIXTURES / "brevo_marketing_webhooks.json")
    bounces = frame.filter(pl.col("event_type") == "bounce")
    assert dict(zip(bounces["contact_id"], bounces["bounce_type"], strict=True)) == {
        "bob@example.com": "hard",
        "carol@example.com": "soft",
    }
    # ts_event (UTC seconds), never the CET `date` strings.
    assert at(frame, "bob", "bounce") == [utc(2024, 3, 1, 10, 0, 5)]
    assert at(frame, "alice", "click") == [utc(2024, 3, 1, 12, 1)]
    assert frame.filter(pl.col("event_type") == "click")["url"].to_list() == [
        "https://shop.example.com/pricing"
    ]


def test_hard_bounced_contacts_are_suppressed(tmp_path: Path) -> None:
    request = ScoreRequest(
        events=[str(FIXTURES / "brevo_marketing_webhooks.json")], as_of=utc(2024, 4, 1)
    )
    prepared = prepare_scoring(request)
    bounced = prepared.events.filter(pl.col("bounce_type") == "hard").collect()
    assert bounced["contact_id"].to_list() == ["bob@example.com"]


@pytest.mark.parametrize(
    ("preset", "spellings", "expected"),
    [
        ("ses", ["Rendering Failure", "RenderingFailure", "renderingFailure"], None),
        ("brevo", ["hard_bounced", "hardBounce", "hard_bounce"], "bounce"),
        ("brevo", ["soft_bounced", "softBounce"], "bounce"),
        ("brevo", ["uniqueOpened", "unique_opened"], None),
    ],
)
def test_spellings_of_one_name_map_alike(
    preset: str, spellings: list[str], expected: str | None
) -> None:
    mapping = {event_key(k): v for k, v in PRESETS[preset].event_map.items()}
    assert {mapping[event_key(s)] for s in spellings} == {expected}


def test_no_preset_maps_two_spellings_of_a_name_differently() -> None:
    for preset in PRESETS.values():
        seen: dict[str, str | None] = {}
        for name, target in preset.event_map.items():
            assert seen.setdefault(event_key(name), target) == target, (preset.name, name)


def test_rendering_failures_and_delays_are_skipped() -> None:
    frame = frame_of(FIXTURES / "ses_sns_envelopes.jsonl")
    assert "dave@example.com" not in frame["contact_id"].to_list()  # Rendering Failure
    assert "carol@example.com" not in frame["contact_id"].to_list()  # DeliveryDelay
    assert not frame["event_type"].str.contains("rendering").any()


def test_presets_command_lists_event_names() -> None:
    result = runner.invoke(app, ["presets"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for name in ("hard_bounced→bounce", "rendering failure (skipped)", "account_status_change"):
        assert name in result.output


# 3. SES events delivered through SNS.


def test_ses_through_sns_is_unwrapped() -> None:
    frame = frame_of(FIXTURES / "ses_sns_envelopes.jsonl")
    # The SES event's own time, not the SNS envelope's Timestamp (10:00:10).
    assert at(frame, "alice", "delivered") == [utc(2024, 3, 1, 10, 0, 2, 123000)]
    assert at(frame, "bob", "bounce") == [utc(2024, 3, 1, 10, 0, 5)]
    assert at(frame, "erin", "unsubscribe") == [utc(2024, 3, 3, 8)]
    # No machine flag in SES: the heuristic (Apple's bare user agent) flags the open.
    assert frame.filter(pl.col("is_machine"))["user_agent"].to_list() == ["Mozilla/5.0"]
    assert "Message" not in frame.columns and "TopicArn" not in frame.columns


def test_ses_notifications_through_sns_are_read_as_events() -> None:
    frame = frame_of(FIXTURES / "ses_sns_notifications.json", preset="ses")
    assert at(frame, "carol", "complaint") == [utc(2024, 3, 3, 8)]
    assert at(frame, "frank", "bounce") == [utc(2024, 3, 1, 10, 0, 6)]
    # SNS's SubscriptionConfirmation is no event: left out, not rejected.
    assert frame.height == 3


def test_sns_envelopes_as_a_json_array(tmp_path: Path) -> None:
    lines = (FIXTURES / "ses_sns_envelopes.jsonl").read_text().splitlines()
    path = tmp_path / "sns.json"
    path.write_text("[" + ",\n".join(lines) + "]")
    assert frame_of(path).equals(frame_of(FIXTURES / "ses_sns_envelopes.jsonl"))


# 4. Account-level events.


def test_account_level_events_are_skipped_and_counted() -> None:
    loaded = load_events([str(FIXTURES / "sendgrid_webhook_post.json")])
    assert loaded.rows_rejected == 0 and loaded.rows_skipped == 1
    assert any(w.endswith("skipped: 1 account-level event") for w in loaded.warnings)
    mailgun = load_events([str(FIXTURES / "mailgun_account_events.json")])
    assert mailgun.rows_skipped == 2  # list_uploaded, rejected without a recipient
    assert any(w.endswith("skipped: 2 account-level events") for w in mailgun.warnings)


def test_ingest_summary_counts_them(tmp_path: Path) -> None:
    output = tmp_path / "events.parquet"
    summary = ingest_to_file([str(FIXTURES / "mailgun_account_events.json")], output)
    assert summary.rows_skipped == 2 and summary.rows_rejected == 0
    assert summary.duplicates_dropped == 0 and summary.rows_kept == 6
    result = runner.invoke(
        app, ["ingest", str(FIXTURES / "sendgrid_webhook_post.json"), "-o", str(output)]
    )
    assert result.exit_code == 0, result.output
    assert "account-level events skipped" in result.output
    assert "skipped: 1 account-level event" in result.output


def test_score_summary_reports_them(tmp_path: Path) -> None:
    request = ScoreRequest(
        events=[str(FIXTURES / "sendgrid_webhook_post.json")], as_of=utc(2024, 4, 1)
    )
    prepared = prepare_scoring(request, scratch=tmp_path / "scratch")
    assert any("skipped: 1 account-level event" in w for w in prepared.warnings)


def test_a_per_recipient_event_without_recipient_is_still_rejected(tmp_path: Path) -> None:
    items = json.loads((FIXTURES / "mailgun_account_events.json").read_text())["items"]
    del items[1]["recipient"]  # a `delivered` event
    path = tmp_path / "mailgun.json"
    path.write_text(json.dumps({"items": items, "paging": {}}))
    with pytest.raises(DataError, match=r"1 row rejected .*mailgun\.json:2: missing contact_id"):
        load_events([str(path)])
    loaded = load_events([str(path)], IngestOptions(on_error="skip"))
    assert loaded.rows_rejected == 1 and loaded.rows_skipped == 2
    assert loaded.reject_reasons == {"missing contact_id": 1}
    assert loaded.rejects.collect()["line"].to_list() == [2]
