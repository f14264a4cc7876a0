"""`engscore score`, `explain` and `rules ...` through the CLI: exit codes, messages, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from engscore.cli import app
from engscore.engine.thresholds import round_threshold, suggest_thresholds
from engscore.io.contacts import load_contacts, normalise_contact_id
from engscore.timestamps import parse_instant
from helpers import utc

runner = CliRunner()
ROOT = Path(__file__).parents[2]
AS_OF = "2026-11-01T00:00:00Z"


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `engscore score` records its output in ./.engscore/: keep that out of the repository.
    monkeypatch.chdir(tmp_path)


def run(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def test_score_writes_scores_and_summary(example_data: Path, tmp_path: Path) -> None:
    output = tmp_path / "scores.csv"
    code, out = run("score", example_data / "events.parquet", "--as-of", AS_OF, "-o", output)
    assert code == 0, out
    assert "as of" in out and "2026-11-01T00:00:00Z" in out
    for word in ("contacts", "hot", "warm", "cold", "score p50"):
        assert word in out
    scores = pl.read_csv(output)
    assert scores.columns[:4] == ["contact_id", "score", "score_engagement", "grade"]


def test_score_json_log_has_the_summary(example_data: Path, tmp_path: Path) -> None:
    code, out = run(
        "score",
        example_data / "events.parquet",
        "--as-of",
        AS_OF,
        "-o",
        tmp_path / "s.parquet",
        "--log-format",
        "json",
    )
    assert code == 0, out
    records = [json.loads(line) for line in out.splitlines()]
    summary = next(r for r in records if "grades" in r)
    assert set(summary["grades"]) == {"hot", "warm", "cold"}
    assert summary["as_of"] == AS_OF


def test_score_with_contacts_and_profile_rules(example_data: Path, tmp_path: Path) -> None:
    output = tmp_path / "s.parquet"
    code, out = run(
        "score",
        example_data / "events.parquet",
        "-r",
        ROOT / "rules" / "b2b-lead-scoring.yaml",
        "--contacts",
        example_data / "contacts.csv",
        "--as-of",
        AS_OF,
        "-o",
        output,
    )
    assert code == 0, out
    assert "score_fit" in pl.read_parquet(output).columns


def test_score_bad_rules_exit_2_with_file_line(example_data: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("points:\n  - name: opened\n    event: open\n    points: ten\n")
    output = tmp_path / "s.parquet"
    code, out = run("score", example_data / "events.parquet", "-r", rules, "-o", output)
    assert code == 2
    assert f"{rules}:4: points[0].points: must be a number" in out
    assert "Traceback" not in out and not output.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as-of", "yesterday"], "--as-of: 'yesterday' is not a date or time"),
        (["-o", "scores.xlsx"], "output must end in .parquet or .csv"),
        (["-r", "missing.yaml"], "missing.yaml: file not found"),
    ],
)
def test_score_usage_errors_exit_2(
    example_data: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    code, out = run("score", example_data / "events.parquet", *args)
    assert code == 2, out
    assert message in out


def test_score_missing_events_exit_1(tmp_path: Path) -> None:
    code, out = run("score", tmp_path / "none.csv", "-o", tmp_path / "s.parquet")
    assert code == 1
    assert "none.csv: file not found" in out


def top_contact(example_data: Path) -> str:
    code, out = run(
        "score", example_data / "events.parquet", "--as-of", AS_OF, "-o", example_data / "s.csv"
    )
    assert code == 0, out
    scores = pl.read_csv(example_data / "s.csv")
    return str(scores.sort("score", descending=True)["contact_id"][0])


def test_explain_json_lines_add_up_to_the_score(example_data: Path) -> None:
    contact = top_contact(example_data)
    code, out = run(
        "explain", contact, example_data / "events.parquet", "--as-of", AS_OF, "--format", "json"
    )
    assert code == 0, out
    report = json.loads(out)
    scores = pl.read_csv(example_data / "s.csv").filter(pl.col("contact_id") == contact)
    assert report["found"] and report["score"] == pytest.approx(scores["score"][0], abs=1e-9)
    total = sum(line["points"] for line in report["lines"]) + report["clamp"]
    assert total == pytest.approx(report["score"], abs=1e-9)
    assert {line["status"] for line in report["lines"]} >= {"earned"}


def test_explain_text_table_and_case_insensitive_email(example_data: Path) -> None:
    contact = top_contact(example_data)
    code, out = run("explain", contact.upper(), example_data / "events.parquet", "--as-of", AS_OF)
    assert code == 0, out
    assert contact in out and "earned" in out and "score " in out


def test_explain_unknown_contact_warns(example_data: Path) -> None:
    code, out = run("explain", "nobody@example.org", example_data / "events.parquet")
    assert code == 0
    assert "nobody@example.org: no events at or before the as-of instant" in out


def test_rules_validate_ok_and_bad(tmp_path: Path) -> None:
    code, out = run("rules", "validate", ROOT / "rules" / "default.yaml")
    assert code == 0, out
    assert "valid:" in out and "grades hot >= 100" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nreset:\n  after_inactive: 6 months\n")
    code, out = run("rules", "validate", bad)
    assert code == 2
    assert f"{bad}:3: reset.after_inactive: '6 months' is not a duration" in out


def test_rules_validate_warns_on_custom_event_type(tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text("points:\n  - name: webinar\n    event: webinar_attended\n    points: 30\n")
    code, out = run("rules", "validate", rules)
    assert code == 0
    assert f"warning: {rules}:3: points[0].event: 'webinar_attended' is not a canonical" in out


def test_suggest_thresholds(example_data: Path) -> None:
    code, out = run(
        "rules", "suggest-thresholds", example_data / "events.parquet", "--as-of", AS_OF
    )
    assert code == 0, out
    assert "mean score" in out and "suggested warm" in out and "grades: {hot:" in out


def test_threshold_suggestion_arithmetic() -> None:
    scores = pl.Series([0.0] * 50 + [float(v) for v in range(1, 101)])
    suggestion = suggest_thresholds(scores)
    assert suggestion.positive == 100
    assert suggestion.warm == 50  # median of 1..100 = 50.5, rounded to a round number
    assert suggestion.hot == 90  # 90th percentile = 90.1
    assert sum(suggestion.counts.values()) == 150
    assert suggest_thresholds(pl.Series([0.0, -3.0])).counts == {"hot": 0, "warm": 0, "cold": 2}
    assert [round_threshold(v) for v in (0.0, 3.14, 14.6, 47.0, 83.0, 1234.0)] == [
        0.0,
        3.1,
        15.0,
        47.0,
        85.0,
        1200.0,
    ]


def test_parse_instant_forms() -> None:
    assert parse_instant("2026-11-01") == utc(2026, 11, 1)
    assert parse_instant("2026-11-01T06:00:00Z") == utc(2026, 11, 1, 6)
    assert parse_instant("2026-11-01T00:00", "Europe/Paris") == utc(2026, 10, 31, 23)
    assert parse_instant("2026-11-01", "-06:00") == utc(2026, 11, 1, 6)


def test_contacts_file_key_and_types(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text("Email,size\n Ann@X.com ,12\nann@x.com,99\nbob@y.com,7\n")
    contacts = load_contacts(path).collect()
    assert contacts["contact_id"].to_list() == ["ann@x.com", "bob@y.com"]
    assert contacts["size"].dtype == pl.Int64 and contacts["size"].to_list() == [12, 7]
    assert normalise_contact_id("  Bob@Y.com ") == "bob@y.com"
    assert normalise_contact_id(" CRM-42 ") == "CRM-42"
