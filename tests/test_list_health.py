"""``engscore health`` end to end (``engscore.health``): the golden CSV, every way of reading
the events giving the same table, atomic outputs, ``--since``, the providers file, and the
report's List health section (golden) and headline sentence."""

from __future__ import annotations

import os
import re
from pathlib import Path

import polars as pl
import pytest

from engscore.engine.health import WATCH
from engscore.errors import ConfigError, DataError
from engscore.health import (
    HealthRequest,
    HealthViews,
    flagged_groups,
    group_name,
    report_health,
    run_health,
    since_instant,
)
from engscore.io.events import ingest_to_file, load_events
from engscore.io.store import EventStore, append
from engscore.providers import default_providers_text, load_providers
from engscore.report import ReportInputs, build_context, health_verdict, render
from engscore.rules import load_rules
from engscore.score import ScoreRequest, compute_scores, prepare_scoring
from helpers import utc

FIXTURES = Path(__file__).parent / "fixtures" / "health"
EVENTS = FIXTURES / "events.csv"
GOLDEN_CSV = FIXTURES / "by_campaign_provider.csv"
GOLDEN_SECTION = FIXTURES / "report_section.html"
AS_OF = utc(2026, 12, 1)
GENERATED = utc(2026, 12, 2, 6, 30)


def request(*events: Path | str, **options: object) -> HealthRequest:
    settings: dict[str, object] = {"by": ("campaign", "provider"), "min_delivered": 4}
    settings.update(options)
    return HealthRequest(events=[str(e) for e in events], as_of=AS_OF, **settings)  # type: ignore[arg-type]


def golden(path: Path, text: str) -> None:
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, "utf-8")
    assert text == path.read_text("utf-8"), "rerun with UPDATE_GOLDEN=1 if the change is meant"


def test_golden_csv(tmp_path: Path) -> None:
    output = tmp_path / "health.csv"
    result = run_health(request(EVENTS, min_delivered=1), output)
    golden(GOLDEN_CSV, output.read_text("utf-8"))
    assert result.flagged() == ["c1 / Yahoo"]  # cat's complaint: 1 of 1 delivered
    assert result.flagged(WATCH) == ["c1 / example.com"]  # dan's bounce: 1 of 2 sent
    assert result.sends_counted and result.warnings == ()
    again = tmp_path / "again.csv"
    run_health(request(EVENTS, min_delivered=1), again)
    assert again.read_bytes() == output.read_bytes()
    parquet = tmp_path / "health.parquet"
    run_health(request(EVENTS, min_delivered=1), parquet)
    assert pl.read_parquet(parquet).equals(pl.read_csv(output), null_equal=True)


def test_every_way_of_reading_gives_the_same_table(tmp_path: Path) -> None:
    expected = run_health(request(EVENTS, min_delivered=1)).table
    ingested = tmp_path / "events.parquet"
    ingest_to_file([str(EVENTS)], ingested)  # numbered: contacts grouped by number
    as_csv = tmp_path / "events-out.csv"
    ingest_to_file([str(EVENTS)], as_csv)  # not numbered
    store = EventStore(tmp_path / "store")
    append(store, [str(EVENTS)])
    for source in (ingested, as_csv, store.root):
        assert run_health(request(source, min_delivered=1)).table.equals(expected), source
    by_month = run_health(request(store.root, by=("month", "domain"))).table
    assert by_month.equals(run_health(request(EVENTS, by=("month", "domain"))).table)


def test_no_sends_and_nothing_to_rate(tmp_path: Path) -> None:
    result = run_health(request(FIXTURES / "no_sends.csv", by=()))
    assert not result.sends_counted and result.table["sent"].item() == 6 + 4
    empty = run_health(request(EVENTS, by=(), since=utc(2026, 11, 10)))
    assert empty.warnings == (
        "no send or delivery from 2026-11-10T00:00:00Z up to 2026-12-01T00:00:00Z: no rates",
    )


def test_bad_input_leaves_no_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(EVENTS.read_text() + "zed@x.com,open,not-a-time,c1,false,\n")
    output = tmp_path / "health.csv"
    with pytest.raises(DataError, match=r"1 row rejected .*bad.csv:36: unparseable timestamp"):
        run_health(request(bad), output)
    assert not output.exists() and list(tmp_path.iterdir()) == [bad]
    with pytest.raises(ConfigError, match="must be one of"):
        run_health(request(bad, by=("country",)), output)
    with pytest.raises(ConfigError, match=r"health\.txt: output must end in \.parquet or \.csv"):
        run_health(request(EVENTS), tmp_path / "health.txt")


def test_since() -> None:
    assert since_instant(None, AS_OF) is None
    assert since_instant("3m", AS_OF) == utc(2026, 9, 1)
    assert since_instant("90d", AS_OF) == utc(2026, 9, 2)
    assert since_instant("2026-10-01", AS_OF, "Europe/Paris") == utc(2026, 9, 30, 22)
    with pytest.raises(ConfigError, match=r"^--since: 'soon' is neither a duration"):
        since_instant("soon", AS_OF)
    with pytest.raises(ConfigError, match="is not before the as-of instant"):
        since_instant("2026-12-01", AS_OF)


def test_the_packaged_providers_and_a_file_of_ones_own(tmp_path: Path) -> None:
    packaged = dict(load_providers().providers)
    assert packaged["Gmail"] == ("gmail.com", "googlemail.com")
    assert packaged["Microsoft"] == ("outlook.*", "hotmail.*", "live.*", "msn.com")
    assert packaged["Yahoo"] == ("yahoo.*", "ymail.com", "aol.com")
    assert packaged["Apple"] == ("icloud.com", "me.com", "mac.com")
    assert "version: 1" in default_providers_text()
    own = tmp_path / "providers.yaml"
    own.write_text("version: 1\nproviders:\n  Example: [Example.COM]\n")
    result = run_health(request(EVENTS, by=("provider",), providers=own))
    assert result.table["provider"].to_list()[:2] == ["Example", "gmail.com"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nproviders:\n  Gmail: [gmail.com]\n  Other: [gmail.com]\n", r":4: .*already"),
        ("version: 1\nproviders:\n  Gmail:\n    - gmail.com\n    - '*.google'\n", r":5: .*\[1\]"),
        ("version: 1\nprovider:\n  Gmail: [gmail.com]\n", r":2: provider: unknown key"),
        ("version: 2\nproviders: {}\n", r":1: version"),
        ("- gmail.com\n", r":1: a providers file is a mapping"),
        ("version: 1\nproviders: !!python/object:os.system {}\n", r":2: invalid YAML"),
    ],
)
def test_providers_file_mistakes_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "providers.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"providers\.yaml{message}"):
        load_providers(path)


def fixture_report(views: HealthViews) -> str:
    prepared = prepare_scoring(ScoreRequest(events=[str(EVENTS)], as_of=AS_OF))
    rules = load_rules(None).rules
    inputs = ReportInputs(
        scores=compute_scores(prepared).table,
        as_of=AS_OF,
        grades=rules.grade_order(),
        rfm_bins=rules.rfm.bins,
        events=prepared.events,
        health=views,
    )
    return render(build_context(inputs, "Health fixture", GENERATED))


def test_golden_report_section() -> None:
    views = report_health(load_events([str(EVENTS)]), AS_OF, min_delivered=2)
    html = fixture_report(views)
    section = re.search(r'<section id="health">.*?</section>\n', html, re.S)
    assert section is not None
    golden(GOLDEN_SECTION, section.group(0))
    assert '<a href="#health">List health</a>' in html
    # The headline sentence, under the inactive share.
    assert (
        '<p class="verdict">Complaint rate 40.00% in October 2026: above Gmail&#39;s 0.3% '
        "limit. Bounce rate 14.29%: above the 2% guideline.</p>"
    ) in html


def views_of(monthly: list[tuple[str, int, int, int, int]]) -> HealthViews:
    """Views whose monthly table has (month, sent, delivered, bounced, complaints)."""
    from engscore.engine.health import health_table

    facts = pl.DataFrame(
        {
            "month": [utc(int(m[:4]), int(m[5:]), 1) for m, *_ in monthly],
            "sends": [r[1] for r in monthly],
            "delivered": [r[2] for r in monthly],
            "bounced": [r[3] for r in monthly],
            "complaints": [r[4] for r in monthly],
        }
    ).with_columns(
        pl.lit(0, dtype=pl.Int64).alias(name)
        for name in (
            "hard_bounced",
            "soft_bounced",
            "unsubscribes",
            "human_openers",
            "machine_opens",
            "clickers",
            "human_opens",
        )
    )
    by_month = health_table(facts.lazy(), ("month",), None, 100).collect()
    empty = by_month.head(0)
    return HealthViews(by_month, empty, empty, 100, True)


def test_the_headline_sentence() -> None:
    assert health_verdict(None) == ""
    assert health_verdict(views_of([("2026-10", 1000, 1000, 0, 4)])) == (
        "Complaint rate 0.40% in October 2026: above Gmail's 0.3% limit. "
        "Bounce rate 0.00%: under the 2% guideline."
    )
    assert health_verdict(views_of([("2026-10", 1000, 1000, 20, 3)])) == (
        "Complaint rate 0.30% in October 2026: at Gmail's 0.3% limit. "
        "Bounce rate 2.00%: at the 2% guideline."
    )
    assert health_verdict(
        views_of([("2026-09", 1000, 1000, 0, 5), ("2026-10", 1000, 1000, 30, 2)])
    ) == (
        "Complaint rate 0.20% in October 2026: under Gmail's 0.3% limit, above Google's "
        "recommended 0.1%. Bounce rate 3.00%: above the 2% guideline. "
        "Over the 0.3% limit in 1 other month: 2026-09."
    )
    # The latest month with enough deliveries speaks (November's 50 are too few).
    assert health_verdict(
        views_of([("2026-10", 1000, 1000, 0, 0), ("2026-11", 50, 50, 0, 5)])
    ).startswith("Complaint rate 0.00% in October 2026: under Google's recommended 0.1%.")
    assert health_verdict(views_of([("2026-11", 50, 50, 0, 0)])) == (
        "List health: no month has 100 deliveries, so there are no complaint or bounce rates yet."
    )


def test_flagged_group_names() -> None:
    table = run_health(request(EVENTS, by=("campaign", "domain"), min_delivered=0)).table
    assert flagged_groups(table, ("campaign", "domain")) == ["c1 / yahoo.co.uk"]
    # gus's bounce is 1 of 1 sent, but with no delivery there are no rates.
    assert flagged_groups(table, ("campaign", "domain"), WATCH) == ["c1 / example.com"]
    everything = run_health(request(EVENTS, by=(), min_delivered=0)).table
    assert flagged_groups(everything, ()) == ["all"]  # 2 complaints in 8 deliveries
    assert group_name({"campaign_id": None, "provider": None}, ("campaign", "provider")) == (
        "(no campaign) / (no domain)"
    )
