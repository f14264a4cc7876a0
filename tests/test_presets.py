"""Every provider preset on a fixture built from the provider's documented field names.

Each fixture has a machine open (where the provider flags one), hard and soft bounces, a skipped
event type, a custom type and mixed-case e-mails. The expected counts were checked by hand
against the fixtures (see each preset module's docstring for the mapping).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from engscore.config import IngestOptions
from engscore.errors import DataError
from engscore.io.events import load_events
from engscore.io.readers import resolve_inputs, scan_file
from engscore.presets import PRESETS, detect_preset
from engscore.presets.base import MapContext
from helpers import utc

PRESET_FIXTURES = Path(__file__).parent / "fixtures" / "presets"

Counts = dict[str, dict[str, int]]

EXPECTED: dict[str, tuple[str, Counts, int, list[str]]] = {
    # fixture: (preset, per-contact counts by type, machine events, bounce types)
    "sendgrid.json": (
        "sendgrid",
        {"alice": {"click": 1, "delivered": 1, "open": 2, "send": 1},
         "bob": {"bounce": 1, "send": 1}, "carol": {"bounce": 1},
         "dave": {"complaint": 1, "group_resubscribe": 1, "unsubscribe": 1}},
        1, ["hard", "soft"],
    ),
    "sendgrid_events.csv": (
        "sendgrid",
        {"alice": {"click": 1, "delivered": 1, "open": 2, "send": 1}, "bob": {"bounce": 1},
         "carol": {"bounce": 1, "dropped": 1}},
        1, ["hard", "soft"],
    ),
    "mailgun_webhooks.csv": (
        "mailgun",
        {"alice": {"click": 1, "delivered": 1, "open": 2, "send": 1}, "bob": {"bounce": 1},
         "carol": {"bounce": 1, "unsubscribe": 1}, "dave": {"list_member_uploaded": 1}},
        1, ["hard", "soft"],
    ),
    "mailgun_events.json": (
        "mailgun",
        {"alice": {"click": 1, "delivered": 1, "open": 1}, "bob": {"complaint": 1}},
        1, [],
    ),
    "ses_events.jsonl": (
        "ses",
        {"alice": {"click": 1, "delivered": 1, "open": 2, "send": 1},
         "bob": {"bounce": 1, "send": 1}, "carol": {"bounce": 1, "complaint": 1},
         "dave": {"reject": 1}},
        1, ["hard", "soft"],
    ),
    "postmark.json": (
        "postmark",
        {"alice": {"click": 1, "delivered": 1, "open": 2}, "bob": {"bounce": 1},
         "carol": {"bounce": 1}, "dave": {"complaint": 1},
         "erin": {"resubscribe": 1, "unsubscribe": 1}},
        1, ["hard", "soft"],
    ),
    "brevo_webhooks.csv": (
        "brevo",
        {"alice": {"click": 1, "delivered": 1, "open": 2, "send": 1}, "bob": {"bounce": 1},
         "carol": {"bounce": 1}, "dave": {"complaint": 1, "unsubscribe": 1},
         "erin": {"blocked": 1}},
        1, ["hard", "soft"],
    ),
    "klaviyo_metrics.csv": (
        "klaviyo",
        {"alice": {"click": 1, "delivered": 1, "open": 2, "purchase": 1},
         "bob": {"click": 1, "open": 1}, "carol": {"bounce": 1},
         "dave": {"complaint": 1, "unsubscribe": 1},
         "erin": {"page_view": 1, "started_checkout": 1}},
        3, ["hard"],
    ),
    "mailchimp_email_activity.json": (
        "mailchimp",
        {"alice": {"click": 1, "open": 2}, "bob": {"bounce": 1}, "carol": {"bounce": 1}},
        0, ["hard", "soft"],
    ),
    "mailchimp_email_activity.jsonl": (
        "mailchimp", {"erin": {"click": 1, "open": 1}}, 0, [],
    ),
    "sfmc_tracking_extract.csv": (
        "sfmc",
        {"alice": {"click": 1, "open": 1, "send": 1}, "bob": {"bounce": 1},
         "carol": {"bounce": 1}, "dave": {"survey": 1, "unsubscribe": 1}},
        0, ["hard", "soft"],
    ),
    "sfmc__Open.csv": ("sfmc", {"frank": {"open": 2}}, 0, []),
    # Issue 18: real payloads (see README.md beside the fixtures for the documentation pages).
    "sendgrid_webhook_post.json": (
        "sendgrid",
        {"alice": {"click": 1, "delivered": 1, "open": 1, "send": 1}, "bob": {"bounce": 1},
         "carol": {"bounce": 1}, "dave": {"complaint": 1, "unsubscribe": 1}},
        1, ["hard", "soft"],
    ),
    "sendgrid_webhook_post.jsonl": (
        "sendgrid",
        {"alice": {"click": 1, "delivered": 1, "open": 1, "send": 1}, "bob": {"bounce": 1},
         "carol": {"bounce": 1}, "dave": {"complaint": 1, "unsubscribe": 1}},
        1, ["hard", "soft"],
    ),
    "brevo_marketing_webhooks.json": (
        "brevo",
        {"alice": {"click": 1, "delivered": 1, "open": 2}, "bob": {"bounce": 1},
         "carol": {"bounce": 1}, "dave": {"complaint": 1, "unsubscribe": 1}},
        1, ["hard", "soft"],
    ),
    "ses_sns_envelopes.jsonl": (
        "ses",
        {"alice": {"click": 1, "delivered": 1, "open": 1, "send": 1},
         "bob": {"bounce": 1, "send": 1}, "erin": {"unsubscribe": 1}},
        1, ["hard"],
    ),
    "ses_sns_notifications.json": (
        "ses",
        {"carol": {"complaint": 1, "delivered": 1}, "frank": {"bounce": 1}},
        0, ["soft"],
    ),
    "mailgun_account_events.json": (
        "mailgun",
        {"alice": {"delivered": 1, "open": 1, "send": 1}, "bob": {"bounce": 1},
         "carol": {"bounce": 1}, "dave": {"reject": 1}},
        1, ["hard", "soft"],
    ),
}  # fmt: skip


def events(name: str, **options: object) -> pl.DataFrame:
    loaded = load_events([str(PRESET_FIXTURES / name)], IngestOptions(**options))  # type: ignore[arg-type]
    return loaded.events.collect().sort("contact_id", "timestamp", "event_type")


def test_every_preset_has_a_fixture() -> None:
    covered = {preset for preset, *_ in EXPECTED.values()}
    assert covered == set(PRESETS) - {"generic"}
    assert {p.name for p in PRESET_FIXTURES.iterdir()} - {"README.md"} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_auto_detects_the_preset(name: str) -> None:
    item = resolve_inputs([str(PRESET_FIXTURES / name)])[0]
    columns = scan_file(item).collect_schema().names()
    detected = detect_preset(columns)
    assert detected is not None and detected.name == EXPECTED[name][0]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_counts_machine_and_bounces(name: str) -> None:
    preset, counts, machine, bounces = EXPECTED[name]
    frame = events(name, preset=preset)
    got: Counts = {}
    for contact, kind, n in frame.group_by("contact_id", "event_type").len().iter_rows():
        assert contact == contact.strip().lower()
        got.setdefault(contact.split("@")[0], {})[kind] = n
    assert got == counts
    assert int(frame["is_machine"].sum()) == machine
    assert sorted(frame["bounce_type"].drop_nulls()) == bounces
    assert frame.equals(events(name))  # auto gives the same as the named preset


def at(frame: pl.DataFrame, contact: str, kind: str) -> list[datetime]:
    rows = frame.filter(pl.col("contact_id").str.starts_with(contact), pl.col("event_type") == kind)
    return rows["timestamp"].to_list()


def test_timestamps_per_provider() -> None:
    # SendGrid: epoch seconds.
    assert at(events("sendgrid.json"), "alice", "click") == [utc(2024, 3, 1, 11, 1, 40)]
    # SendGrid CSV: epoch seconds as text.
    assert at(events("sendgrid_events.csv"), "carol", "dropped") == [utc(2024, 3, 1, 10, 3, 20)]
    # Mailchimp: ISO 8601 with an offset, inside the exploded activity list.
    assert at(events("mailchimp_email_activity.json"), "alice", "click") == [utc(2024, 3, 1, 12, 1)]
    # Mailgun: fractional epoch seconds.
    assert at(events("mailgun_webhooks.csv"), "alice", "delivered") == [
        utc(2024, 3, 1, 10, 0, 10, 500000)
    ]
    # SES: the event's own time, not mail.timestamp (10:00:00).
    ses = events("ses_events.jsonl")
    assert at(ses, "alice", "delivered") == [utc(2024, 3, 1, 10, 0, 2, 123000)]
    assert at(ses, "carol", "complaint") == [utc(2024, 3, 3, 8)]
    # Postmark: ReceivedAt with an offset.
    assert at(events("postmark.json"), "alice", "open")[1] == utc(2024, 3, 1, 18)
    # Brevo: ts_epoch (ms), not the CET `date` (03:30 on the DST change day).
    brevo = events("brevo_webhooks.csv")
    assert at(brevo, "alice", "delivered") == [utc(2024, 3, 1, 10, 0, 2, 456000)]
    assert at(brevo, "alice", "open")[1] == utc(2024, 3, 31, 1, 30)
    # SFMC: fixed UTC-6, US and ISO notations, whatever --timezone says.
    sfmc = events("sfmc_tracking_extract.csv", timezone="Europe/Paris")
    assert at(sfmc, "alice", "send") == [utc(2024, 3, 1, 10)]
    assert at(sfmc, "alice", "click") == [utc(2024, 3, 1, 12)]
    assert at(events("sfmc__Open.csv"), "frank", "open") == [
        utc(2024, 3, 5, 14),
        utc(2024, 7, 5, 14),
    ]


def test_provider_specific_fields() -> None:
    klaviyo = events("klaviyo_metrics.csv")
    purchase = klaviyo.filter(pl.col("event_type") == "purchase")
    assert purchase["amount"].to_list() == [129.9]  # Ordered Product lines are not counted again
    machine = klaviyo.filter(pl.col("is_machine"))
    assert sorted(machine["event_type"]) == ["click", "open", "open"]
    ses = events("ses_events.jsonl")
    assert ses.filter(pl.col("event_type") == "click")["url"].to_list() == [
        "https://shop.example.com/pricing"
    ]
    # SES and Postmark have no machine flag: the Apple proxy user agent heuristic applies.
    assert ses.filter(pl.col("is_machine"))["user_agent"].to_list() == ["Mozilla/5.0"]
    mailgun = events("mailgun_events.json")
    assert mailgun.filter(pl.col("is_machine"))["event_type"].to_list() == ["open"]


def test_missing_columns_name_the_preset(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("email,when\na@x.com,2024-01-01\n")
    expected = r"missing required column 'event', 'timestamp' for preset 'sendgrid' \(columns"
    with pytest.raises(DataError, match=expected + r" found: email, when\)"):
        events_of_path(path, "sendgrid")
    with pytest.raises(DataError, match="for preset 'klaviyo': the metric name"):
        events_of_path(path, "klaviyo")


def events_of_path(path: Path, preset: str) -> pl.DataFrame:
    return load_events([str(path)], IngestOptions(preset=preset)).events.collect()


#: Exports without the provider's machine flag column: a delivery, then an open a second later.
UNFLAGGED = {
    "sendgrid": "email,timestamp,event,sg_event_id,sg_message_id\n"
    "a@x.com,1709287205,delivered,e1,m1\na@x.com,1709287206,open,e2,m1\n",
    "mailgun": "event,timestamp,id,recipient,message.headers.message-id\n"
    "delivered,1709287205.0,e1,a@x.com,m1\nopened,1709287206.0,e2,a@x.com,m1\n",
    "klaviyo": "Event ID,Metric Name,Timestamp,Email,Campaign Name\n"
    "e1,Received Email,2024-03-01T10:00:05Z,a@x.com,Spring\n"
    "e2,Opened Email,2024-03-01T10:00:06Z,a@x.com,Spring\n",
}


@pytest.mark.parametrize("preset", sorted(UNFLAGGED))
def test_without_the_flag_column_the_heuristic_applies(tmp_path: Path, preset: str) -> None:
    # A column of False would tell ingest the provider had checked, and hide machine opens.
    path = tmp_path / "export.csv"
    path.write_text(UNFLAGGED[preset])
    item = resolve_inputs([str(path)])[0]
    raw = scan_file(item)
    schema = raw.collect_schema()
    mapped = PRESETS[preset].mapper(raw, schema, MapContext(source=path))
    assert "is_machine" not in mapped.collect_schema()
    frame = events_of_path(path, preset)
    opens = frame.filter(pl.col("event_type") == "open")
    assert opens["is_machine"].to_list() == [True]


def test_mailchimp_empty_report(tmp_path: Path) -> None:
    path = tmp_path / "activity.json"
    path.write_text(
        '{"emails": [], "campaign_id": "c1", "total_items": 0,'
        ' "_links": [{"rel": "self", "href": "https://x"}]}'
    )
    # Detected and mapped like any report; an empty one is a warning, not a failure.
    loaded = load_events([str(path)])
    assert loaded.warnings == [f"{path}: file holds no events"]
    assert loaded.events.collect().is_empty()


EXAMPLES = Path(__file__).parent.parent / "examples" / "exports"


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.iterdir()))
def test_example_exports_are_detected_and_clean(name: str) -> None:
    # Every sample shipped to users must load with `auto` and without a rejected row.
    loaded = load_events([str(EXAMPLES / name)])
    assert [f.preset for f in loaded.files] == [name.split("_")[0]]
    assert loaded.rows_rejected == 0
    assert loaded.events.collect().height > 0
