"""The HTML report: golden file, escaping, empty data, and a real browser."""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from engscore.charts import nice_ticks
from engscore.health import report_health
from engscore.io.events import load_events
from engscore.report import (
    ReportInputs,
    ReportRequest,
    build_context,
    engagement_section,
    render,
    run_report,
)
from engscore.rules import load_rules
from engscore.schema import CONTACT
from engscore.score import ScoreRequest, compute_scores, prepare_scoring
from helpers import utc

AS_OF = utc(2026, 11, 1)
GENERATED = utc(2026, 11, 2, 6, 30)
GOLDEN = Path(__file__).parent / "fixtures" / "report" / "example.html"
XSS = "<script>alert(1)</script>"


def example_report(example_data: Path) -> str:
    events = str(example_data / "events.parquet")
    prepared = prepare_scoring(ScoreRequest(events=[events], as_of=AS_OF))
    scores = compute_scores(prepared).table
    rules = load_rules(None).rules
    inputs = ReportInputs(
        scores=scores,
        as_of=AS_OF,
        grades=rules.grade_order(),
        rfm_bins=rules.rfm.bins,
        events=prepared.events,
        contacts=example_data / "contacts.csv",
        by=["country", "age_band"],
        sources=["scores.parquet", "events.parquet"],
        health=report_health(load_events([events]), AS_OF),
    )
    return render(build_context(inputs, "Example engagement report", GENERATED))


def test_golden_html_for_the_example_data(example_data: Path) -> None:
    html = example_report(example_data)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(html, "utf-8")
    assert html == GOLDEN.read_text("utf-8"), "rerun with UPDATE_GOLDEN=1 if the change is meant"


def test_report_is_self_contained_and_small(example_data: Path) -> None:
    html = example_report(example_data)
    for fetch in ("<script", "<link", "<img", "src=", "@import", "url(", "http://", "https://"):
        assert fetch not in html, fetch
    assert len(html.encode()) < 200_000
    for title in (
        "Score distribution",
        "RFM",
        "Engagement over time",
        "List health",
        "Inactivity curve",
    ):
        assert title in html
    assert "by country" in html and "Top campaigns" in html


def tiny_scores(contact: str) -> pl.DataFrame:
    events = pl.LazyFrame(
        {
            CONTACT: [contact] * 30 + ["b@x.com"] * 30,
            "event_type": (["delivered", "click"] * 15) * 2,
            "timestamp": [utc(2026, 10, 1)] * 60,
            "campaign_id": [XSS] * 60,
            "is_machine": [False] * 60,
        }
    )
    return events.collect()


def test_names_from_the_data_are_escaped(tmp_path: Path) -> None:
    events = tiny_scores(XSS)
    path = tmp_path / "events.parquet"
    events.write_parquet(path)
    prepared = prepare_scoring(ScoreRequest(events=[str(path)], as_of=AS_OF))
    scores = compute_scores(prepared).table
    rules = load_rules(None).rules
    inputs = ReportInputs(
        scores=scores,
        as_of=AS_OF,
        grades=rules.grade_order(),
        rfm_bins=5,
        events=prepared.events,
    )
    html = render(build_context(inputs, f"Report {XSS}", GENERATED))
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_empty_and_tiny_data_say_so_in_words(tmp_path: Path) -> None:
    rules = load_rules(None).rules
    for contacts in (0, 1):
        ids = ["ann@x.com"][:contacts]
        events = pl.LazyFrame(
            {
                CONTACT: ids,
                "event_type": ["open"][:contacts],
                "timestamp": [utc(2026, 10, 1)][:contacts],
            },
            schema={
                CONTACT: pl.String,
                "event_type": pl.String,
                "timestamp": pl.Datetime("us", "UTC"),
            },
        )
        path = tmp_path / f"e{contacts}.parquet"
        events.collect().write_parquet(path)
        prepared = prepare_scoring(ScoreRequest(events=[str(path)], as_of=AS_OF))
        inputs = ReportInputs(
            scores=compute_scores(prepared).table,
            as_of=AS_OF,
            grades=rules.grade_order(),
            rfm_bins=5,
            events=prepared.events,
        )
        html = render(build_context(inputs, "Tiny", GENERATED))
        assert "No contact has bought anything yet" in html
        if contacts == 0:
            assert "No contacts were scored" in html
            assert "No contacts at this as-of instant." in html


def test_engagement_months_run_from_the_first_event_to_the_last() -> None:
    events = pl.LazyFrame(
        {
            "event_type": ["send", "open", "send", "click", "open", "purchase"],
            "timestamp": [
                utc(2025, 12, 31, 23),
                utc(2026, 1, 5),
                utc(2026, 2, 5),  # a month of sends only
                utc(2026, 4, 30, 23, 59),  # no event at all in March
                utc(2026, 4, 1),
                utc(2026, 12, 1),  # after as_of: not shown
            ],
            "is_machine": [False, True, False, False, False, False],
        },
        schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
    )
    section = engagement_section(events, AS_OF)
    counts, share = section.charts
    assert [t.label for t in counts.x_ticks] == [
        "2025-12",
        "2026-01",
        "2026-02",
        "2026-03",
        "2026-04",
    ]
    shown = {s.name: [dot[2].rsplit(": ", 1)[1] for dot in s.dots] for s in counts.series}
    assert shown == {
        "human opens": ["0", "0", "0", "0", "1"],
        "machine opens": ["0", "1", "0", "0", "0"],
        "clicks": ["0", "0", "0", "0", "1"],
        "purchases": ["0", "0", "0", "0", "0"],
    }
    nothing = engagement_section(events.filter(pl.col("timestamp") > AS_OF), AS_OF)
    assert nothing.notes == ["No events at or before the as-of instant."]


def test_report_command_end_to_end(example_data: Path, tmp_path: Path) -> None:
    scores = tmp_path / "scores.parquet"
    from engscore.score import run_score

    run_score(ScoreRequest(events=[str(example_data / "events.parquet")], as_of=AS_OF), scores)
    output = tmp_path / "report.html"
    summary = run_report(
        ReportRequest(workdir=tmp_path, output=output, scores=scores, generated_at=GENERATED)
    )
    assert summary.used_events  # found through the scores' recorded inputs
    assert output.stat().st_size == summary.size_bytes
    again = tmp_path / "again.html"
    run_report(ReportRequest(workdir=tmp_path, output=again, scores=scores, generated_at=GENERATED))
    assert again.read_bytes() == output.read_bytes()


def test_nice_ticks() -> None:
    assert nice_ticks(0, 1234) == [0, 500, 1000, 1500]
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="Chromium not installed (.ci/run installs it)",
)
def test_report_in_headless_chromium(example_data: Path, tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    page_file = tmp_path / "report.html"
    page_file.write_text(example_report(example_data), "utf-8")
    requests: list[str] = []
    problems: list[str] = []
    assert CHROMIUM is not None, "CI must install Chromium"
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda request: requests.append(request.url))
        page.on(
            "console",
            lambda message: problems.append(message.text) if message.type == "error" else None,
        )
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(page_file.as_uri())
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        svg_count = page.locator("svg").count()
        # Labels on dark heat-map cells are drawn white: the style sheet must not repaint them.
        white_labels = page.evaluate(
            "() => [...document.querySelectorAll('text[fill=\"#ffffff\"]')]"
            ".map(t => getComputedStyle(t).fill)"
        )
        browser.close()
    assert [url for url in requests if url != page_file.as_uri()] == []
    assert problems == []
    assert svg_count >= 6
    assert white_labels and set(white_labels) == {"rgb(255, 255, 255)"}
    assert shot.stat().st_size > 50_000
    _ = datetime  # keep the import for type-checkers of the lambdas above
