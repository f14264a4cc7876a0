"""Exports downloaded from the providers' web UIs, and ``.xlsx`` input.

The contacts exports (Mailchimp audience, Brevo contacts) are refused as events with a
one-line error pointing to ``--contacts``, and read fine as contacts files. The Klaviyo metric
export downloaded from the web app is read by the ``klaviyo`` preset, from CSV or from a
workbook; its naive times are read in ``--timezone`` (UTC by default).
"""

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from engscore.config import IngestOptions
from engscore.errors import DataError
from engscore.io.contacts import load_contacts
from engscore.io.events import load_events
from engscore.io.readers import detect_format, resolve_inputs, scan_file
from engscore.presets import detect_preset
from engscore.presets.contact_exports import contacts_export
from engscore.schema import CANONICAL_SCHEMA
from helpers import utc

FIXTURES = Path(__file__).parent / "fixtures"
UI_EXPORTS = FIXTURES / "ui_exports"
PRESET_FIXTURES = FIXTURES / "presets"
CONTACT_FILES = {
    "mailchimp_audience_subscribed.csv": "a Mailchimp audience export",
    "brevo_contacts.csv": "a Brevo contacts export",
}


def columns(path: Path) -> list[str]:
    return scan_file(resolve_inputs([str(path)])[0]).collect_schema().names()


def to_xlsx(csv: Path, target: Path, *, typed: bool = False) -> Path:
    """The CSV's rows written as a workbook: every cell as the CSV's text, or (``typed``) as
    numbers where the CSV column holds numbers, as a spreadsheet would."""
    pl.read_csv(csv, infer_schema=typed).write_excel(target)
    return target


@pytest.mark.parametrize("name", sorted(CONTACT_FILES))
@pytest.mark.parametrize("preset", ["auto", "generic", "mailchimp", "brevo"])
def test_contacts_exports_are_refused_as_events(name: str, preset: str) -> None:
    path = UI_EXPORTS / name
    with pytest.raises(DataError) as caught:
        load_events([str(path)], IngestOptions(preset=preset))
    message = str(caught.value)
    assert "\n" not in message
    assert message == (
        f"{path}: this is {CONTACT_FILES[name]}, a contacts file (one row per contact, "
        f"no events); pass it to `engscore score` as --contacts {path}"
    )


@pytest.mark.parametrize("name", sorted(CONTACT_FILES))
def test_contacts_exports_read_as_contacts(name: str) -> None:
    contacts = load_contacts(UI_EXPORTS / name).collect()
    assert contacts["contact_id"].to_list() in (
        ["alice@example.com", "bob@example.com"],
        ["carol@example.com", "dave@example.com"],
    )


def test_contacts_export_as_a_workbook_is_refused_and_typed_as_contacts(tmp_path: Path) -> None:
    path = to_xlsx(UI_EXPORTS / "brevo_contacts.csv", tmp_path / "contacts.xlsx", typed=True)
    with pytest.raises(DataError, match="a Brevo contacts export, a contacts file"):
        load_events([str(path)])
    contacts = load_contacts(path).collect()
    assert contacts["contact_id"].to_list() == ["carol@example.com", "dave@example.com"]
    # Contacts are typed (profile rules compare numbers), events are text.
    assert contacts.schema["COMPANY_SIZE"].is_integer()


def test_no_event_export_is_taken_for_a_contacts_export() -> None:
    for path in PRESET_FIXTURES.iterdir():
        if path.name != "README.md":
            assert contacts_export(columns(path)) is None, path.name
    for name in CONTACT_FILES:
        # Nor does any preset claim them (were the refusal ever removed).
        assert detect_preset(columns(UI_EXPORTS / name)) is None


def test_klaviyo_ui_export_from_a_workbook_matches_the_csv(tmp_path: Path) -> None:
    csv = PRESET_FIXTURES / "klaviyo_metrics.csv"
    xlsx = to_xlsx(csv, tmp_path / "klaviyo_metrics.xlsx", typed=True)
    assert detect_preset(columns(xlsx)) is not None
    from_csv = load_events([str(csv)])
    from_xlsx = load_events([str(xlsx)])
    assert [f.preset for f in from_xlsx.files] == ["klaviyo"]
    order = ("contact_id", "timestamp", "event_type")
    csv_events = from_csv.events.collect().sort(order)
    xlsx_events = from_xlsx.events.collect().sort(order)
    # The canonical columns; extras differ as a spreadsheet shows them ($value 129.90 -> 129.9).
    assert xlsx_events.select(list(CANONICAL_SCHEMA)).equals(
        csv_events.select(list(CANONICAL_SCHEMA))
    )
    got: dict[str, dict[str, int]] = {}
    for contact, kind, n in xlsx_events.group_by("contact_id", "event_type").len().iter_rows():
        got.setdefault(contact.split("@")[0], {})[kind] = n
    assert got == {
        "alice": {"click": 1, "delivered": 1, "open": 2, "purchase": 1},
        "bob": {"click": 1, "open": 1},
        "carol": {"bounce": 1},
        "dave": {"complaint": 1, "unsubscribe": 1},
        "erin": {"page_view": 1, "started_checkout": 1},
    }


@pytest.mark.parametrize(
    ("zone", "expected"),
    [(None, utc(2024, 3, 1, 10, 0, 2)), ("America/New_York", utc(2024, 3, 1, 15, 0, 2))],
)
def test_naive_ui_times_are_read_in_the_timezone(
    tmp_path: Path, zone: str | None, expected: object
) -> None:
    xlsx = to_xlsx(PRESET_FIXTURES / "klaviyo_metrics.csv", tmp_path / "k.xlsx")
    frame = load_events([str(xlsx)], IngestOptions(timezone=zone)).events.collect()
    received = frame.filter(pl.col("event_type") == "delivered")
    assert received["timestamp"].to_list() == [expected]


def test_xlsx_cells_are_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "mixed.xlsx"
    pl.DataFrame(
        {
            "contact_id": ["a@x.com", "b@x.com"],
            "event_type": ["open", "click"],
            "timestamp": [datetime(2024, 1, 15, 9, 30), datetime(2024, 1, 16, 10)],
            "amount": [1.5, 2.0],
            "url": [None, None],
        }
    ).write_excel(path)
    assert detect_format(path) == ("xlsx", False)
    frame = scan_file(resolve_inputs([str(path)])[0]).collect()
    assert all(dtype == pl.String for dtype in frame.dtypes)
    assert frame["timestamp"].to_list() == ["2024-01-15 09:30:00", "2024-01-16 10:00:00"]
    # A column empty on every row is kept.
    assert "url" in frame.columns
    events = load_events([str(path)]).events.collect().sort("timestamp")
    assert events["timestamp"].to_list() == [utc(2024, 1, 15, 9, 30), utc(2024, 1, 16, 10)]


def test_gzipped_workbook(tmp_path: Path) -> None:
    plain = to_xlsx(PRESET_FIXTURES / "klaviyo_metrics.csv", tmp_path / "k.xlsx")
    packed = tmp_path / "k2.xlsx.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert load_events([str(packed)]).events.collect().height == (
        load_events([str(plain)]).events.collect().height
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"Email,Metric Name\n", "not an .xlsx workbook (no ZIP header)"),
        (b"PK\x03\x04not really a zip archive", "cannot read the workbook: "),
    ],
)
def test_unreadable_workbook_is_one_line_naming_the_file(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "broken.xlsx"
    path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        load_events([str(path)])
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text
