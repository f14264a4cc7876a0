"""The example data generator: deterministic, canonical, with every persona's signature."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from engscore.config import IngestOptions
from engscore.io.events import load_events
from engscore.schema import CANONICAL_SCHEMA
from helpers import load_generator


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("gen")
    load_generator().main([str(folder), "--events", "20000", "--contacts", "800", "--seed", "7"])
    return folder


def test_deterministic(generated: Path, tmp_path: Path) -> None:
    load_generator().main([str(tmp_path), "--events", "20000", "--contacts", "800", "--seed", "7"])
    for name in ("events.parquet", "contacts.csv", "raw_export.csv"):
        assert (generated / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_canonical_schema_and_personas(generated: Path) -> None:
    events = pl.read_parquet(generated / "events.parquet")
    assert dict(list(events.schema.items())[:9]) == CANONICAL_SCHEMA
    assert 15_000 < events.height < 25_000
    types = set(events["event_type"])
    assert {"send", "delivered", "open", "click", "purchase", "unsubscribe", "bounce"} <= types
    machine = events.filter(pl.col("is_machine"))
    assert machine.height > 0 and set(machine["event_type"]) == {"open"}
    assert set(machine["user_agent"]) == {"Mozilla/5.0"}
    assert events.filter(pl.col("event_type") == "purchase")["amount"].min() > 0  # type: ignore[operator]
    assert set(events["bounce_type"].drop_nulls()) == {"hard", "soft"}
    end = datetime(2026, 10, 31, tzinfo=UTC)
    last_human = events.filter(
        ~pl.col("is_machine") & pl.col("event_type").is_in(["open", "click"])
    )
    silent = last_human.group_by("contact_id").agg(pl.col("timestamp").max())
    assert silent.filter(pl.col("timestamp") < datetime(2026, 4, 30, tzinfo=UTC)).height > 0
    november = events.filter(
        (pl.col("event_type") == "purchase") & (pl.col("timestamp").dt.month().is_in([11, 12]))
    )
    assert november.height > 0
    assert events["timestamp"].max() < end  # type: ignore[operator]
    contacts = pl.read_csv(generated / "contacts.csv")
    assert contacts.columns == [
        "email", "first_name", "country", "job_title", "company_size", "source", "signup_date",
        "age_band", "gender",
    ]  # fmt: skip
    assert contacts.height == 800


def test_raw_export_has_the_documented_bad_rows(generated: Path) -> None:
    loaded = load_events([str(generated / "raw_export.csv")], IngestOptions(on_error="skip"))
    assert loaded.reject_reasons == load_generator().RAW_BAD_ROWS
    events = loaded.events.collect()
    assert events.height == loaded.rows_read - loaded.rows_rejected - 20  # 20 duplicates
    assert (events["contact_id"] == events["contact_id"].str.to_lowercase()).all()
