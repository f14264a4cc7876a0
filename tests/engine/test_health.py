"""List health (``engine.health``): each definition by hand on a small fixture, the no-sends
case, the minimum-delivered rule, machine opens and bot clicks, mailbox providers, the limits
at their exact boundaries, and facts that add up to any grouping."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from engscore.engine.health import (
    FULL_GRAIN,
    OVER_LIMIT,
    WATCH,
    ContactDomains,
    MailboxProviders,
    grain_of,
    health_facts,
    health_table,
    parse_groupings,
    recipient_domain,
    sends_present,
)
from engscore.errors import ConfigError
from engscore.schema import HEALTH_COUNTS, HEALTH_FLAG, HEALTH_RATES
from helpers import utc

FIXTURE = Path(__file__).parents[1] / "fixtures" / "health"
AS_OF = utc(2026, 12, 1)
PROVIDERS = MailboxProviders(
    (
        ("Gmail", ("gmail.com", "googlemail.com")),
        ("Microsoft", ("outlook.*", "hotmail.*", "live.*", "msn.com")),
        ("Yahoo", ("yahoo.*", "ymail.com", "aol.com")),
        ("Apple", ("icloud.com", "me.com", "mac.com")),
    )
)


def fixture_events(name: str = "events.csv") -> pl.LazyFrame:
    """The hand-made fixture (see tests/fixtures/health/README.md) as canonical events."""
    return pl.scan_csv(
        FIXTURE / name,
        schema_overrides={"is_machine": pl.Boolean, "campaign_id": pl.String},
    ).with_columns(pl.col("timestamp").str.to_datetime(time_zone="UTC", time_unit="us"))


def table(
    events: pl.LazyFrame,
    by: tuple[str, ...],
    min_delivered: int = 4,
    since: datetime | None = None,
) -> dict[Any, dict[str, Any]]:
    """The health table as {key values: row}."""
    facts = health_facts(events, AS_OF, since, grain_of(by)).collect()
    rows = health_table(facts.lazy(), by, PROVIDERS, min_delivered).collect()
    keys = [c for c in rows.columns if c not in (*HEALTH_COUNTS, *HEALTH_RATES, HEALTH_FLAG)]
    return {
        tuple(row[k] for k in keys) if len(keys) != 1 else row[keys[0]]: row
        for row in rows.iter_rows(named=True)
    }


def test_each_definition_by_hand() -> None:
    rows = table(fixture_events(), ("campaign",))
    assert list(rows) == ["c1", "c2", None]  # keys sorted, no campaign last
    c1 = rows["c1"]
    # 7 sends (ivy's was never delivered), 5 deliveries, dan's hard bounce.
    assert {k: c1[k] for k in HEALTH_COUNTS} == {
        "sent": 7,
        "delivered": 5,
        "bounced": 1,
        "hard_bounced": 1,
        "soft_bounced": 0,
        "complaints": 1,
        "unsubscribes": 1,
        "human_openers": 3,  # ann (twice: one pair), cat, fay; bob's open is a machine's
        "machine_opens": 1,
        "clickers": 2,  # ann and fay; eve's is a bot click
    }
    assert c1["bounce_rate"] == pytest.approx(1 / 7)
    assert c1["hard_bounce_rate"] == pytest.approx(1 / 7)
    assert c1["complaint_rate"] == pytest.approx(1 / 5)
    assert c1["unsubscribe_rate"] == pytest.approx(1 / 5)
    assert c1["open_rate"] == pytest.approx(3 / 5)
    assert c1["machine_open_share"] == pytest.approx(1 / 5)  # of 5 open events, 1 a machine's
    assert c1["click_rate"] == pytest.approx(2 / 5)
    assert c1["click_to_open_rate"] == pytest.approx(2 / 3)
    assert c1["flag"] == OVER_LIMIT
    # c2: 3 deliveries, below the minimum of 4: counts, no rates, no flag.
    c2 = rows["c2"]
    assert (c2["sent"], c2["delivered"], c2["soft_bounced"], c2["human_openers"]) == (4, 3, 1, 2)
    assert all(c2[rate] is None for rate in HEALTH_RATES) and c2["flag"] is None
    # Bob's complaint came without a campaign: it is a group of its own, with no deliveries.
    assert (rows[None]["complaints"], rows[None]["delivered"], rows[None]["flag"]) == (1, 0, None)


def test_the_minimum_delivered_rule() -> None:
    events = fixture_events()
    assert table(events, ("campaign",), min_delivered=3)["c2"]["bounce_rate"] == 0.25
    assert table(events, ("campaign",), min_delivered=4)["c2"]["bounce_rate"] is None
    everything = table(events, (), min_delivered=100)[()]
    assert everything["delivered"] == 8 and everything["complaint_rate"] is None
    assert table(events, (), min_delivered=8)[()]["complaint_rate"] == pytest.approx(2 / 8)
    # --min-delivered 0 rates every group whose rate has a base.
    none = table(events, ("campaign",), min_delivered=0)[None]
    assert none["complaint_rate"] is None and none["bounce_rate"] is None  # no base at all


def test_without_send_events_sent_is_deliveries_plus_bounces() -> None:
    rows = table(fixture_events("no_sends.csv"), ("campaign",))
    assert rows["c1"]["sent"] == 6 and rows["c1"]["bounce_rate"] == pytest.approx(1 / 6)
    assert rows["c2"]["sent"] == 4
    facts = health_facts(fixture_events("no_sends.csv"), AS_OF).collect()
    assert not sends_present(facts)
    assert sends_present(health_facts(fixture_events(), AS_OF).collect())


def test_machine_opens_and_bot_clicks_are_not_people() -> None:
    t = utc(2026, 10, 1, 9)
    events = pl.LazyFrame(
        {
            "contact_id": ["a@x.com"] * 4 + ["b@x.com"] * 3,
            "event_type": ["delivered", "open", "open", "click"] + ["delivered", "open", "click"],
            "timestamp": [t + timedelta(minutes=m) for m in range(7)],
            "campaign_id": ["c"] * 7,
            "is_machine": [False, True, False, False, False, True, True],
        }
    )
    row = table(events, (), min_delivered=1)[()]
    # a: a machine open and a human one, one pair; b: only a proxy's open and a bot's click.
    assert (row["human_openers"], row["machine_opens"], row["clickers"]) == (1, 2, 1)
    assert row["open_rate"] == 0.5 and row["machine_open_share"] == pytest.approx(2 / 3)
    assert row["click_to_open_rate"] == 1.0


def test_an_opener_counts_in_the_month_of_the_first_open() -> None:
    rows = table(fixture_events(), ("month",))
    assert list(rows) == ["2026-09", "2026-10", "2026-11"]
    october = rows["2026-10"]
    # fay opened c1 in November: she is November's opener, not October's.
    assert (october["human_openers"], october["clickers"]) == (2, 1)
    assert (rows["2026-11"]["human_openers"], rows["2026-11"]["clickers"]) == (1, 1)
    assert rows["2026-11"]["delivered"] == 0 and rows["2026-11"]["open_rate"] is None
    # Bob's complaint without a campaign counts in October's complaints: 2 of 5.
    assert october["complaint_rate"] == pytest.approx(2 / 5) and october["flag"] == OVER_LIMIT
    assert rows["2026-09"]["flag"] is None  # 3 deliveries


def test_the_window_is_since_to_as_of() -> None:
    rows = table(fixture_events(), ("month",), since=utc(2026, 10, 1))
    assert list(rows) == ["2026-10", "2026-11"]
    early = health_facts(fixture_events(), utc(2026, 10, 20, 9), None, frozenset()).collect()
    assert early["sends"].item() == 4 + 7  # the sends at 09:00 on 20 October count, not later


def test_mailbox_providers() -> None:
    rows = table(fixture_events(), ("provider",))
    assert list(rows) == ["Apple", "Gmail", "Microsoft", "Yahoo", "example.com", None]
    gmail = rows["Gmail"]  # gmail.com and googlemail.com: ann, fay and ivy
    assert (gmail["sent"], gmail["delivered"], gmail["human_openers"], gmail["clickers"]) == (
        4,
        3,
        3,
        2,
    )
    assert rows["Microsoft"]["complaints"] == 1  # outlook.fr
    assert rows["Yahoo"]["complaints"] == 1  # yahoo.co.uk
    assert rows[None]["human_openers"] == 1  # crm-123 is no e-mail address
    domains = table(fixture_events(), ("domain",))
    assert set(domains) == {
        "gmail.com",
        "googlemail.com",
        "outlook.fr",
        "yahoo.co.uk",
        "icloud.com",
        "example.com",
        None,
    }


def test_provider_patterns() -> None:
    providers = MailboxProviders(
        (("Microsoft", ("live.*", "outlook.*")), ("Other", ("live.com", "outlook.co.*")))
    )
    domains = pl.Series(
        ["live.com", "live.fr", "outlook.co.uk", "outlook.com", "mylive.com", "live", None]
    )
    found = pl.select(providers.provider_of(pl.lit(domains))).to_series().to_list()
    # An exact domain wins over a pattern; among patterns, the first listed; else the domain.
    assert found == ["Other", "Microsoft", "Microsoft", "Microsoft", "mylive.com", "live", None]


def test_recipient_domain() -> None:
    ids = pl.Series(["ann@example.com", "crm-1", "a@b@c.org", "broken@", None])
    found = pl.select(recipient_domain(pl.lit(ids))).to_series().to_list()
    assert found == ["example.com", None, "c.org", None, None]


def _flag(complaints: int, delivered: int, bounced: int = 0, sent: int | None = None) -> Any:
    t = utc(2026, 10, 1)
    kinds = (
        ["send"] * (sent if sent is not None else delivered + bounced)
        + ["delivered"] * delivered
        + ["bounce"] * bounced
        + ["complaint"] * complaints
    )
    events = pl.LazyFrame(
        {
            "contact_id": [f"c{i}@x.com" for i in range(len(kinds))],
            "event_type": kinds,
            "timestamp": [t] * len(kinds),
        }
    )
    return table(events, (), min_delivered=1)[()]["flag"]


@pytest.mark.parametrize(
    ("complaints", "delivered", "expected"),
    [
        (3, 1000, OVER_LIMIT),  # 0.3% exactly
        (299, 100_000, WATCH),  # 0.299%
        (300, 100_000, OVER_LIMIT),
        (1, 1000, WATCH),  # 0.1% exactly
        (99, 100_000, None),  # 0.099%
        (0, 1000, None),
    ],
)
def test_complaint_limits_at_their_boundaries(
    complaints: int, delivered: int, expected: str | None
) -> None:
    assert _flag(complaints, delivered) == expected


def test_bounce_limit_at_its_boundary() -> None:
    assert _flag(0, 98, bounced=2) == WATCH  # 2 of 100 sent: 2% exactly
    assert _flag(0, 9801, bounced=199, sent=10_000) is None  # 1.99%
    assert _flag(0, 98, bounced=2, sent=101) is None  # 2 of 101


def test_numbered_events_give_the_same_facts() -> None:
    events = fixture_events().collect()
    ids = events["contact_id"].unique().sort()
    numbered = events.with_columns(
        pl.col("contact_id").replace_strict(ids, pl.int_range(ids.len(), eager=True))
    )
    domains = ContactDomains.of(pl.int_range(ids.len(), eager=True), ids)
    by_text = health_facts(events.lazy(), AS_OF).collect()
    by_number = health_facts(numbered.lazy(), AS_OF, None, FULL_GRAIN, domains).collect()
    order = ["campaign_id", "domain", "month"]
    assert by_number.sort(order, nulls_last=True).equals(by_text.sort(order, nulls_last=True))
    with pytest.raises(ValueError, match="need their domains"):
        health_facts(numbered.lazy(), AS_OF)


def test_facts_add_up_to_every_grouping() -> None:
    """One pass at the finest grain gives what each grouping's own pass gives."""
    events = fixture_events()
    full = health_facts(events, AS_OF).collect()
    for by in [(), ("campaign",), ("provider",), ("month",), ("campaign", "provider", "month")]:
        own = health_facts(events, AS_OF, None, grain_of(by)).collect()
        from_full = health_table(full.lazy(), by, PROVIDERS, 4).collect()
        assert from_full.equals(health_table(own.lazy(), by, PROVIDERS, 4).collect()), by


def test_columns_and_empty_events() -> None:
    empty = fixture_events().filter(pl.lit(False))
    rows = health_table(health_facts(empty, AS_OF).lazy(), ("month",), PROVIDERS).collect()
    assert rows.columns == ["month", *HEALTH_COUNTS, *HEALTH_RATES, HEALTH_FLAG]
    assert rows.height == 0
    one = health_table(health_facts(empty, AS_OF, None, frozenset()), ()).collect()
    assert one.height == 1 and one["sent"].item() == 0 and one["flag"].item() is None


def test_groupings_are_checked() -> None:
    assert parse_groupings(["month", "campaign", "month"]) == ("month", "campaign")
    with pytest.raises(ConfigError, match=r"^--by 'country': must be one of campaign, provider"):
        parse_groupings(["country"])
