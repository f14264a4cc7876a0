"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

FIXTURES = Path(__file__).parent / "fixtures"

# No per-example time limit: a Polars query's latency varies with the machine's load, and
# speed is measured by the benchmarks, never by tests (hypothesis' 200 ms default tripped
# on a busy 2-core machine).
settings.register_profile("engscore", deadline=None)
settings.load_profile("engscore")


@pytest.fixture
def fixtures() -> Path:
    """The fixtures folder."""
    return FIXTURES


@pytest.fixture(scope="session")
def example_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated example dataset (events.parquet, contacts.csv, raw_export.csv)."""
    from helpers import load_generator

    folder = tmp_path_factory.mktemp("example")
    load_generator().main([str(folder), "--events", "20000", "--contacts", "800", "--seed", "7"])
    return folder
