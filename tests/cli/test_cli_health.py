"""``engscore health`` on the command line: the table, the file, exit codes and one-line errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from engscore.cli import app

runner = CliRunner()
FIXTURE = Path(__file__).parents[1] / "fixtures" / "health" / "events.csv"
AS_OF = ("--as-of", "2026-12-01")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ENGSCORE_CONFIG", raising=False)
    shutil.copy(FIXTURE, tmp_path / "events.csv")
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["health", *args])
    return result.exit_code, result.output


def test_prints_the_table_and_names_the_groups_over_the_limit(workdir: Path) -> None:
    code, out = run("events.csv", *AS_OF, "--by", "campaign", "--min-delivered", "4")
    assert code == 0, out
    assert "List health by campaign, up to 2026-12-01T00:00:00Z" in out
    assert "complaint rate" in out and "(no campaign)" in out
    assert "│ c1 " in out and "20.00%" in out and "over_limit" in out
    assert "warning: 1 group(s) over the 0.3% complaint limit: c1" in out
    assert list(workdir.iterdir()) == [workdir / "events.csv"]  # nothing written


def test_writes_the_file(workdir: Path) -> None:
    code, out = run("events.csv", *AS_OF, "--by", "month", "--since", "3m", "-o", "h.parquet")
    assert code == 0, out
    assert "list health by month (from 2026-09-01T00:00:00Z to 2026-12-01T00:00:00Z)" in out
    table = pl.read_parquet(workdir / "h.parquet")
    assert table["month"].to_list() == ["2026-09", "2026-10", "2026-11"]
    assert table["delivered"].to_list() == [3, 5, 0]
    assert "complaint rate" not in out  # the table went to the file
    code, out = run("events.csv", *AS_OF, "--by", "provider", "-o", "h.csv", "-q")
    assert (code, out) == (0, "")
    assert (workdir / "h.csv").read_text().startswith("provider,sent,delivered,bounced,")


BY = "must be one of campaign, provider, domain, month"
AS_OF_UTC = "2026-12-01T00:00:00Z"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--by", "country"), f"--by 'country': {BY}"),
        (("--by", "month", "--by", "Campaign"), f"--by 'Campaign': {BY}"),
        (
            ("--since", "lately"),
            "--since: 'lately' is neither a duration (90d, 6m, 1y) nor a date (2026-01-01)",
        ),
        (
            ("--since", "2027-01-01"),
            f"--since: 2027-01-01T00:00:00Z is not before the as-of instant {AS_OF_UTC}",
        ),
        (("--min-delivered", "-5"), "--min-delivered must be 0 or more"),
        (("-o", "health.xlsx"), "health.xlsx: output must end in .parquet or .csv (got '.xlsx')"),
        (("--providers", "nowhere.yaml"), "nowhere.yaml: file not found"),
    ],
)
def test_usage_mistakes_are_one_line_and_exit_2(
    workdir: Path, args: tuple[str, ...], message: str
) -> None:
    code, out = run("events.csv", *AS_OF, *args)
    assert (code, out.strip()) == (2, f"error: {message}")
    assert list(workdir.iterdir()) == [workdir / "events.csv"]


def test_a_bad_providers_file_names_its_line(workdir: Path) -> None:
    (workdir / "providers.yaml").write_text("version: 1\nproviders:\n  Gmail: [gmail.com, '@']\n")
    code, out = run("events.csv", *AS_OF, "--by", "provider", "--providers", "providers.yaml")
    assert code == 2
    assert out.startswith("error: providers.yaml:3: providers.Gmail[1]: '@' is not a domain")
    assert len(out.strip().splitlines()) == 1


def test_bad_data_exits_1_without_output(workdir: Path) -> None:
    code, out = run("missing.csv", *AS_OF, "-o", "h.csv")
    assert code == 1 and out.startswith("error: ") and len(out.strip().splitlines()) == 1
    (workdir / "bad.csv").write_text("contact_id,event_type,timestamp\na@x.com,open,soon\n")
    code, out = run("bad.csv", *AS_OF, "-o", "h.csv")
    assert code == 1 and "bad.csv:2: unparseable timestamp 'soon'" in out
    assert not (workdir / "h.csv").exists()
    code, out = run("bad.csv", *AS_OF, "--on-error", "skip", "-o", "h.csv")
    assert code == 0 and "warning: 1 rejected row(s) left out" in out


def test_the_project_gives_providers_and_minimum(workdir: Path) -> None:
    (workdir / "mine.yaml").write_text("version: 1\nproviders:\n  Example: [example.com]\n")
    (workdir / "engscore.yaml").write_text(
        "version: 1\nhealth:\n  providers: mine.yaml\n  min_delivered: 1\n"
    )
    code, out = run("events.csv", *AS_OF, "--by", "provider", "-o", "h.csv")
    assert code == 0, out
    table = pl.read_csv(workdir / "h.csv")
    assert "Example" in table["provider"].to_list() and "Gmail" not in table["provider"]
    assert table.filter(pl.col("provider") == "gmail.com")["open_rate"].item() == 1.0
    (workdir / "engscore.yaml").write_text("version: 1\nhealth:\n  by: [country]\n")
    code, out = run("events.csv", *AS_OF)
    assert code == 2
    assert out.strip() == (
        f"error: {workdir / 'engscore.yaml'}:3: health.by: 'country': must be one of "
        "campaign, provider, domain, month"
    )
