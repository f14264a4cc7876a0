"""`engscore ingest` through the CLI: exit codes, one-line errors, no partial outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from engscore.cli import app

INGEST = Path(__file__).parents[1] / "fixtures" / "ingest"
runner = CliRunner()


def run(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def test_ingest_writes_output_and_summary(tmp_path: Path) -> None:
    output = tmp_path / "events.parquet"
    code, out = run("ingest", INGEST / "clean.csv", "-o", output)
    assert code == 0, out
    assert "preset generic (detected)" in out
    assert "duplicates dropped" in out and "machine opens flagged" in out
    assert pl.read_parquet(output).height == 6


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    code, out = run(
        "ingest", INGEST / "clean.csv", "-o", tmp_path / "e.parquet", "--log-format", "json"
    )
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    summary = next(r for r in records if "rows_kept" in r)
    assert summary["rows_kept"] == 6 and summary["duplicates_dropped"] == 2


def test_quiet_prints_nothing_on_success(tmp_path: Path) -> None:
    code, out = run("ingest", INGEST / "clean.csv", "-o", tmp_path / "e.parquet", "--quiet")
    assert (code, out) == (0, "")


def test_bad_rows_exit_1_without_output(tmp_path: Path) -> None:
    output = tmp_path / "events.parquet"
    code, out = run("ingest", INGEST / "bad_rows.csv", "-o", output)
    assert code == 1
    assert out.startswith("error: 4 rows rejected (first 3: ")
    assert len(out.strip().splitlines()) == 1
    assert "Traceback" not in out
    assert list(tmp_path.iterdir()) == []


def test_failed_run_leaves_previous_output_untouched(tmp_path: Path) -> None:
    output = tmp_path / "events.parquet"
    assert run("ingest", INGEST / "clean.csv", "-o", output)[0] == 0
    before = output.read_bytes()
    assert run("ingest", INGEST / "bad_rows.csv", "-o", output)[0] == 1
    assert output.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.parquet"]


def test_skip_writes_rejects(tmp_path: Path) -> None:
    code, out = run(
        "ingest", INGEST / "bad_rows.csv", "-o", tmp_path / "e.parquet", "--on-error", "skip"
    )
    assert code == 0
    assert "warning: 4 rejected rows written to" in out
    assert (tmp_path / "e.rejects.csv").exists()


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    code, out = run("ingest", INGEST / "clean.csv", "--preset", "nope", "-o", tmp_path / "e.pq")
    assert code == 2 and out.startswith("error: ")
    code, out = run("ingest", INGEST / "clean.csv", "-o", tmp_path / "e.xlsx")
    assert code == 2 and "output must end in .parquet or .csv" in out
    code, out = run("ingest", INGEST / "clean.csv", "--on-error", "maybe")
    assert code == 2
    code, out = run("ingest", INGEST / "clean.csv", "--timezone", "Nowhere/Land")
    assert code == 2 and "unknown time zone" in out


def test_data_errors_exit_1(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "latin.csv").write_bytes("contact_id\nrené\n".encode("latin-1"))
    cases = {
        tmp_path / "missing.csv": "missing.csv: file not found",
        tmp_path / "empty.csv": "empty.csv: file is empty",
        tmp_path / "latin.csv": "latin.csv:2: not UTF-8 text (byte 0xe9); pass --encoding",
        INGEST / "mixed_zones.csv": "mixes 1 values with a UTC offset and 1 without",
        INGEST / "unknown_columns.csv": "cannot tell which export this is",
    }
    for path, message in cases.items():
        code, out = run("ingest", path, "-o", tmp_path / "out.parquet")
        assert code == 1, (path, out)
        assert message in out and "Traceback" not in out, out
    assert not (tmp_path / "out.parquet").exists()


def test_debug_shows_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest", str(tmp_path / "missing.csv"), "--debug"])
    assert result.exit_code == 1
    assert result.exception is not None  # re-raised for the traceback


def test_python_dash_m_works(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "engscore", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("engscore ")


def test_presets_lists_every_preset() -> None:
    code, out = run("presets")
    assert code == 0
    from engscore.presets import PRESETS

    for name in PRESETS:
        assert name in out


def test_header_only_export_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    # A quiet day's export holds only a header: cron must not fail on it.
    quiet_day = tmp_path / "quiet.csv"
    quiet_day.write_text("contact_id,event_type,timestamp\n")
    output = tmp_path / "events.parquet"
    code, out = run("ingest", quiet_day, INGEST / "clean.csv", "-o", output)
    assert code == 0, out
    assert f"warning: {quiet_day}: file holds no events" in out
    assert pl.read_parquet(output).height == 6
