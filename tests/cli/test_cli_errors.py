"""Bad inputs to segment, report, run and contacts files: one-line errors, exit codes, no output."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from engscore.cli import app

runner = CliRunner()
EVENTS = "contact_id,event_type,timestamp\nann@x.com,open,2026-10-01T10:00:00Z\n"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with events and the scores of `engscore score` run in it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ENGSCORE_CONFIG", raising=False)
    (tmp_path / "events.csv").write_text(EVENTS)
    result = runner.invoke(app, ["score", "events.csv", "--as-of", "2026-11-01", "-q"])
    assert result.exit_code == 0, result.output
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_report_by_needs_contacts_and_a_known_column(workdir: Path) -> None:
    code, out = run("report", "--by", "country")
    assert (code, out.strip()) == (2, "error: --by needs --contacts FILE")
    (workdir / "contacts.csv").write_text("email,country\nann@x.com,FR\n")
    code, out = run("report", "--contacts", "contacts.csv", "--by", "age")
    assert code == 2
    assert "--by age: the contacts file has no column 'age' (it has: email, country" in out
    assert not (workdir / "report.html").exists()


def test_report_on_a_file_that_is_not_scores(workdir: Path) -> None:
    pl.DataFrame({"contact_id": ["a"]}).write_parquet(workdir / "other.parquet")
    code, out = run("report", "--scores", "other.parquet", "--as-of", "2026-11-01")
    assert code == 1
    assert "other.parquet: not a scores file of this version (no 'score')" in out
    assert not (workdir / "report.html").exists()


def test_report_with_a_broken_segments_manifest(workdir: Path) -> None:
    (workdir / "segs").mkdir()
    (workdir / "segs" / "manifest.json").write_text("{not json")
    code, out = run("report", "--segments", "segs")
    assert code == 1 and "manifest.json: not a manifest written by engscore segment" in out
    assert not (workdir / "report.html").exists()


def test_segment_bad_compare_folder(workdir: Path) -> None:
    code, out = run("segment", "--compare", "nowhere")
    assert code == 2 and "--compare: nowhere: not a segments folder" in out
    assert not (workdir / "segments").exists()


def test_segment_with_a_corrupt_last_score_record(workdir: Path) -> None:
    (workdir / ".engscore" / "last-score.json").write_text("[]")
    code, out = run("segment")
    assert code == 1 and "last-score.json: not a record written by engscore score" in out


def test_segment_csv_scores_of_unknown_time_need_as_of(workdir: Path) -> None:
    pl.read_parquet(workdir / "scores.parquet").write_csv(workdir / "scores.csv")
    code, out = run("segment", "--scores", "scores.csv")
    assert code == 2
    assert "scores.csv: the scores do not say when they were computed; pass --as-of" in out
    code, out = run("segment", "--scores", "scores.csv", "--as-of", "2026-11-01", "-q")
    assert code == 0, out


def test_segments_file_mistakes(workdir: Path) -> None:
    (workdir / "none.yaml").write_text("builtin_segments: false\n")
    code, out = run("segment", "--segments", "none.yaml")
    assert code == 2 and "no segments to write" in out
    (workdir / "list.yaml").write_text("- name: a\n")
    code, out = run("segment", "--segments", "list.yaml")
    assert code == 2 and "list.yaml:1: a segments file is a mapping" in out
    assert not (workdir / "segments").exists()


def test_contacts_must_be_one_file(workdir: Path) -> None:
    folder = workdir / "crm"
    folder.mkdir()
    for name in ("a.csv", "b.csv"):
        (folder / name).write_text("email,country\nann@x.com,FR\n")
    code, out = run("report", "--contacts", "crm", "--by", "country")
    assert code == 1 and "crm: --contacts takes one file, not 2" in out


def test_run_with_nothing_to_score_and_a_config_that_is_not_a_mapping(workdir: Path) -> None:
    assert run("init", "p", "-q")[0] == 0
    code, out = run("run", "-c", "p/engscore.yaml")
    assert code == 1 and "the store holds no events yet; nothing to score" in out
    assert not (workdir / "p" / "runs" / "latest").exists()
    (workdir / "p" / "engscore.yaml").write_text("- inputs\n")
    code, out = run("run", "-c", "p/engscore.yaml")
    assert code == 2 and "engscore.yaml:1: a project config is a mapping" in out


def test_score_of_a_broken_parquet_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The in-memory read scans Parquet in pieces after reading the footer itself: a broken
    # file still fails with the reader's one-line error, and writes nothing.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.parquet").write_bytes(b"PAR1" + b"\0" * 8 + b"garbagePAR1")
    code, out = run("score", "broken.parquet", "-o", "scores.csv")
    assert code == 1
    assert out.startswith("error: broken.parquet: cannot read: ")
    assert len(out.strip().splitlines()) == 1
    assert not (tmp_path / "scores.csv").exists()
