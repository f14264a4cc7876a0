"""Lifecycle status, seasonal and unengaged flags (SPEC section 5): calendar boundaries."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import pytest

from engscore.engine.status import STATUS_SCHEMA, STATUSES, contact_status, status_cutoffs
from engscore.errors import ConfigError
from engscore.rules import Rules, Status, rules_from_doc
from engscore.schema import CANONICAL_SCHEMA
from engscore.yamlconf import parse_yaml
from helpers import utc

AS_OF = utc(2026, 8, 31, 12)
US = timedelta(microseconds=1)


def ev(
    contact: str, event_type: str, timestamp: datetime, machine: bool | None = False
) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(CANONICAL_SCHEMA)
    row.update(contact_id=contact, event_type=event_type, timestamp=timestamp, is_machine=machine)
    return row


def frame(events: list[dict[str, Any]]) -> pl.LazyFrame:
    return pl.DataFrame(events, schema=CANONICAL_SCHEMA).lazy()


def rules_of(**spec: Any) -> Rules:
    return Rules.model_validate(spec)


def run(
    events: list[dict[str, Any]], rules: Rules | None = None, as_of: datetime = AS_OF
) -> dict[str, dict[str, Any]]:
    out = contact_status(frame(events), rules or Rules(), as_of).collect()
    assert out.schema == STATUS_SCHEMA
    return {row["contact_id"]: row for row in out.iter_rows(named=True)}


def statuses(
    events: list[dict[str, Any]], rules: Rules | None = None, as_of: datetime = AS_OF
) -> dict[str, str]:
    return {c: r["status"] for c, r in run(events, rules, as_of).items()}


# --- cut-offs -------------------------------------------------------------------------------


def test_cutoffs_use_calendar_months() -> None:
    cut = status_cutoffs(Status(), AS_OF)
    assert cut["at_risk"] == utc(2026, 5, 31, 12)
    assert cut["inactive"] == utc(2026, 2, 28, 12)  # 31 August - 6 months saturates
    assert cut["lapsed"] == utc(2025, 8, 31, 12)
    assert cut["seasonal_from"] == utc(2025, 8, 1, 12)
    assert cut["seasonal_to"] == utc(2025, 9, 30, 12)
    assert cut["unengaged_after"] == AS_OF - timedelta(days=180)


def test_statuses_constant() -> None:
    assert STATUSES == ("active", "at_risk", "inactive", "lapsed", "never_engaged")


# --- status -----------------------------------------------------------------------------------


def test_each_status() -> None:
    events = [
        ev("a", "open", utc(2026, 8, 1)),
        ev("b", "click", utc(2026, 4, 15)),
        ev("c", "purchase", utc(2025, 12, 1)),
        ev("d", "reply", utc(2024, 1, 1)),
        ev("e", "send", utc(2026, 8, 30)),
        ev("e", "delivered", utc(2026, 8, 30)),
    ]
    assert statuses(events) == {
        "a": "active",
        "b": "at_risk",
        "c": "inactive",
        "d": "lapsed",
        "e": "never_engaged",
    }


@pytest.mark.parametrize(
    ("cut_off", "at", "after"),
    [
        (utc(2026, 5, 31, 12), "at_risk", "active"),
        (utc(2026, 2, 28, 12), "inactive", "at_risk"),
        (utc(2025, 8, 31, 12), "lapsed", "inactive"),
    ],
)
def test_exact_boundaries(cut_off: datetime, at: str, after: str) -> None:
    """Engagement exactly at a cut-off has the older status; one microsecond later, the newer."""
    events = [ev("at", "open", cut_off), ev("after", "open", cut_off + US)]
    assert statuses(events) == {"at": at, "after": after}


def test_february_cut_off_is_not_march() -> None:
    """6 months before 31 August is 28 February (not 3 March as 183 days would be)."""
    as_of = utc(2026, 8, 31)
    events = [
        ev("feb28", "open", utc(2026, 2, 28)),
        ev("mar1", "open", utc(2026, 3, 1)),
    ]
    assert statuses(events, as_of=as_of) == {"feb28": "inactive", "mar1": "at_risk"}


def test_latest_engagement_decides() -> None:
    events = [
        ev("a", "open", utc(2024, 1, 1)),
        ev("a", "click", utc(2026, 8, 20)),
        ev("a", "send", utc(2026, 8, 30)),
    ]
    assert statuses(events) == {"a": "active"}


def test_sends_only_is_never_engaged() -> None:
    events = [ev("s", "send", utc(2026, 8, 1)), ev("s", "send", utc(2026, 7, 1))]
    row = run(events)["s"]
    assert row == {
        "contact_id": "s",
        "status": "never_engaged",
        "seasonal": False,
        "unengaged": False,
    }


def test_machine_opens_are_not_engagement() -> None:
    events = [
        ev("m", "open", utc(2026, 8, 30), machine=True),
        ev("m", "click", utc(2026, 8, 29), machine=True),
        ev("m", "open", utc(2025, 1, 1)),
        ev("only", "open", utc(2026, 8, 30), machine=True),
        ev("null", "open", utc(2026, 8, 30), machine=None),  # unknown counts as human
    ]
    assert statuses(events) == {"m": "lapsed", "only": "never_engaged", "null": "active"}
    kept = rules_of(exclude_machine_opens=False)
    assert statuses(events, kept) == {"m": "active", "only": "active", "null": "active"}


def test_without_is_machine_column() -> None:
    events = frame([ev("a", "open", utc(2026, 8, 30), machine=True)]).drop("is_machine")
    out = contact_status(events, Rules(), AS_OF).collect()
    assert out.row(0, named=True)["status"] == "active"


def test_events_after_as_of_are_ignored() -> None:
    events = [
        ev("a", "open", utc(2025, 1, 1)),
        ev("a", "open", AS_OF + US),
        ev("later", "open", AS_OF + US),
        ev("now", "open", AS_OF),
    ]
    assert statuses(events) == {"a": "lapsed", "now": "active"}


def test_custom_engaged_events() -> None:
    events = [ev("a", "page_view", utc(2026, 8, 30)), ev("a", "open", utc(2026, 1, 1))]
    assert statuses(events, rules_of(engaged_events=["open", "click"])) == {"a": "inactive"}


def test_custom_thresholds() -> None:
    rules = rules_of(status={"at_risk_after": "30d", "inactive_after": "2m", "lapsed_after": "1y"})
    cut = status_cutoffs(rules.status, AS_OF)
    assert cut["at_risk"] == utc(2026, 8, 1, 12)
    assert cut["inactive"] == utc(2026, 6, 30, 12)
    events = [
        ev("a", "open", utc(2026, 8, 1, 12) + US),
        ev("b", "open", utc(2026, 8, 1, 12)),
        ev("c", "open", utc(2026, 6, 30, 12)),
        ev("d", "open", utc(2025, 8, 31, 12) + US),
        ev("e", "open", utc(2025, 8, 31, 12)),
    ]
    assert statuses(events, rules) == {
        "a": "active",
        "b": "at_risk",
        "c": "inactive",
        "d": "inactive",
        "e": "lapsed",
    }


def test_no_events_no_rows() -> None:
    assert run([]) == {}


# --- seasonal ---------------------------------------------------------------------------------


def test_seasonal_window_edges() -> None:
    """Window [2025-08-01 12:00, 2025-09-30 12:00], both ends inclusive."""
    events = [
        ev("from", "open", utc(2025, 8, 1, 12)),
        ev("before", "open", utc(2025, 8, 1, 12) - US),
        ev("to", "purchase", utc(2025, 9, 30, 12)),
        ev("past", "purchase", utc(2025, 9, 30, 12) + US),
        ev("centre", "click", utc(2025, 8, 31, 12)),
        ev("send", "send", utc(2025, 8, 31, 12)),
        ev("machine", "open", utc(2025, 8, 31, 12), machine=True),
    ]
    rows = run(events)
    assert {c: r["seasonal"] for c, r in rows.items()} == {
        "from": True,
        "before": False,
        "to": True,
        "past": False,
        "centre": True,
        "send": False,
        "machine": False,
    }
    assert rows["centre"]["status"] == "lapsed"  # seasonal is a flag beside the status


def test_seasonal_counts_custom_purchase_events() -> None:
    """A purchase counts even when purchases are not engagement."""
    rules = rules_of(
        engaged_events=["open"],
        rfm={"purchase_events": ["order"]},
        status={"seasonal_window": "1w"},
    )
    events = [
        ev("order", "order", utc(2025, 9, 7, 12)),
        ev("late", "order", utc(2025, 9, 7, 12) + US),
        ev("click", "click", utc(2025, 8, 31)),
    ]
    rows = run(events, rules)
    assert {c: r["seasonal"] for c, r in rows.items()} == {
        "order": True,
        "late": False,
        "click": False,
    }
    assert rows["order"]["status"] == "never_engaged"


# --- unengaged --------------------------------------------------------------------------------


def _mailed(contact: str, kind: str, n: int, start: datetime) -> list[dict[str, Any]]:
    return [ev(contact, kind, start + timedelta(days=7 * i)) for i in range(n)]


def test_unengaged_counts_deliveries_in_window() -> None:
    start = AS_OF - timedelta(days=180)  # exclusive: a delivery exactly here is outside
    events = [
        *_mailed("five", "delivered", 5, start + US),
        *_mailed("four", "delivered", 4, start + US),
        ev("four", "delivered", start),
        *_mailed("opened", "delivered", 5, start + US),
        ev("opened", "open", AS_OF),
        *_mailed("clicked", "delivered", 5, start + US),
        ev("clicked", "click", start + US),
        *_mailed("old_open", "delivered", 5, start + US),
        ev("old_open", "open", start),
        *_mailed("bot", "delivered", 5, start + US),
        ev("bot", "open", AS_OF - US, machine=True),
        *_mailed("replied", "delivered", 5, start + US),
        ev("replied", "reply", AS_OF),  # only opens and clicks clear the flag
    ]
    rows = run(events)
    assert {c: r["unengaged"] for c, r in rows.items()} == {
        "five": True,
        "four": False,
        "opened": False,
        "clicked": False,
        "old_open": True,
        "bot": True,
        "replied": True,
    }
    kept = run(events, rules_of(exclude_machine_opens=False))
    assert kept["bot"]["unengaged"] is False


def test_unengaged_falls_back_to_sends_without_deliveries() -> None:
    start = utc(2026, 5, 1)
    events = [
        *_mailed("sends", "send", 5, start),
        # This contact's export has deliveries, so its sends are not counted.
        *_mailed("has_delivered", "send", 5, start),
        ev("has_delivered", "delivered", utc(2025, 1, 1)),
        *_mailed("few_sends", "send", 4, start),
        *_mailed("both", "send", 5, start),
        *_mailed("both", "delivered", 5, start),
        ev("future", "delivered", AS_OF + US),  # after as_of: not a delivery
        *_mailed("future", "send", 5, start),
    ]
    rows = run(events)
    assert {c: r["unengaged"] for c, r in rows.items()} == {
        "sends": True,
        "has_delivered": False,
        "few_sends": False,
        "both": True,
        "future": True,
    }


def test_unengaged_custom_thresholds() -> None:
    rules = rules_of(status={"unengaged_deliveries": 2, "unengaged_window": "30d"})
    events = [
        *_mailed("two", "delivered", 2, utc(2026, 8, 10)),
        ev("one", "delivered", utc(2026, 8, 10)),
        ev("one", "delivered", utc(2026, 7, 1)),  # outside 30 days
    ]
    assert {c: r["unengaged"] for c, r in run(events, rules).items()} == {
        "two": True,
        "one": False,
    }


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "block",
    [
        "at_risk_after: 6m\n  inactive_after: 6m",
        "at_risk_after: 3m\n  inactive_after: 60d",
        "lapsed_after: 6m",
    ],
)
def test_thresholds_must_increase(block: str) -> None:
    text = textwrap.dedent("""\
        version: 1
        status:
          {block}
        """).format(block=block)
    with pytest.raises(ConfigError) as caught:
        rules_from_doc(parse_yaml(text, "r.yaml"))
    message = str(caught.value)
    assert message.startswith("r.yaml:2: status:")
    assert "thresholds must increase" in message


def test_bad_unengaged_deliveries() -> None:
    text = "status:\n  unengaged_deliveries: 0\n"
    with pytest.raises(ConfigError, match=r"^r\.yaml:2: status\.unengaged_deliveries:"):
        rules_from_doc(parse_yaml(text, "r.yaml"))
