"""The purchase summary of the events and the predictions per contact."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest
from cdnow_data import CDNOW, CDNOW_END, cdnow_events, close

import engscore.engine.predict.summary as summary_module
from engscore.engine.predict.models import (
    BgNbdParams,
    ConvergenceError,
    GammaGammaParams,
    MbgNbdParams,
    fit_bgnbd,
    fit_gamma_gamma,
)
from engscore.engine.predict.summary import (
    SUMMARY_COLUMNS,
    duration_days,
    output_columns,
    predict_contacts,
    purchase_summary,
)
from engscore.errors import ConfigError
from engscore.rules import Predict, Rfm, Rules
from engscore.schema import CANONICAL_SCHEMA
from helpers import utc


def test_purchase_summary_reproduces_the_published_cdnow_summary() -> None:
    ours = purchase_summary(cdnow_events(), Rfm(), CDNOW_END).collect()
    published = pl.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")
    joined = ours.join(
        published.with_columns(contact_id=pl.col("ID").cast(pl.String).str.zfill(4)),
        on="contact_id",
        how="full",
        coalesce=True,
    )
    assert ours.height == joined.height == 2357
    assert (joined["frequency"] == joined["x"]).all()
    # The published file rounds to two decimals.
    for ours_name, theirs in (("recency", "t_x"), ("T", "T_right"), ("monetary_value", "zbar")):
        gap = joined.select((pl.col(ours_name) - pl.col(theirs)).abs().max()).item()
        assert gap <= 0.005 + 1e-9


def test_fits_on_our_own_summary_of_the_transactions() -> None:
    summary = purchase_summary(cdnow_events(), Rfm(), CDNOW_END).collect()
    x, t_x, T, m = (summary[c].to_numpy() for c in SUMMARY_COLUMNS[1:])
    bg = fit_bgnbd(x, t_x, T)
    assert close(bg.r, 0.243) and close(bg.alpha, 4.414)
    assert close(bg.a, 0.793) and close(bg.b, 2.426)
    gg = fit_gamma_gamma(x[x > 0], m[x > 0])
    assert close(gg.p, 6.25) and close(gg.q, 3.74) and close(gg.v, 15.44)


def test_duration_days_and_output_columns() -> None:
    assert duration_days(Predict().period) == 90
    assert duration_days(Predict().horizon) == 365.25
    config = Predict.model_validate({"period": "2w"})
    assert output_columns(config) == ("p_alive", "expected_purchases_2w", "clv")
    assert output_columns(Predict()) == ("p_alive", "expected_purchases_90d", "clv")


# --------------------------------------------------------------------------- the summary

AS_OF = utc(2024, 6, 30, 12)


def ev(
    contact: str, timestamp: datetime, amount: float | None, kind: str = "purchase"
) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(CANONICAL_SCHEMA)
    row.update(contact_id=contact, event_type=kind, timestamp=timestamp, amount=amount)
    return row


def frame(rows: list[dict[str, Any]]) -> pl.LazyFrame:
    return pl.DataFrame(rows, schema=CANONICAL_SCHEMA).lazy()


def test_purchase_summary_by_hand() -> None:
    rows = [
        # a: first day 1 June (two purchases, 10 + 5), repeat days 8 June (20 + 4, two
        # purchases) and 29 June (30); a purchase after as_of is ignored.
        ev("a", utc(2024, 6, 1, 9), 10.0),
        ev("a", utc(2024, 6, 1, 18), 5.0),
        ev("a", utc(2024, 6, 8, 0, 30), 20.0),
        ev("a", utc(2024, 6, 8, 23, 59), 4.0),
        ev("a", utc(2024, 6, 29, 12), 30.0),
        ev("a", utc(2024, 6, 30, 13), 1000.0),
        ev("a", utc(2024, 6, 20), None, kind="open"),
        # b: one day only (a null amount counts as 0).
        ev("b", utc(2024, 6, 23, 8), None),
        ev("b", utc(2024, 6, 23, 9), 7.0),
        # c: only after as_of: not a buyer.
        ev("c", utc(2024, 7, 1), 3.0),
    ]
    out = purchase_summary(frame(rows), Rfm(), AS_OF).collect()
    assert out.columns == list(SUMMARY_COLUMNS)
    assert out.schema["frequency"] == pl.Int64
    assert out.to_dicts() == [
        {
            "contact_id": "a",
            "frequency": 2,
            "recency": 28 / 7,
            "T": 29.5 / 7,
            "monetary_value": (24.0 + 30.0) / 2,
        },
        {"contact_id": "b", "frequency": 0, "recency": 0.0, "T": 7.5 / 7, "monetary_value": 0.0},
    ]
    in_days = purchase_summary(frame(rows), Rfm(), AS_OF, unit_days=1.0).collect()
    assert in_days["recency"].to_list() == [28.0, 0.0]
    assert in_days["T"].to_list() == [29.5, 7.5]


def test_purchase_summary_uses_the_rfm_settings() -> None:
    rows = [ev("a", utc(2024, 6, 1), 1.0, kind="order"), ev("a", utc(2024, 6, 2), 1.0)]
    rows[0]["url"] = None
    config = Rfm.model_validate({"purchase_events": ["order"]})
    out = purchase_summary(frame(rows), config, AS_OF).collect()
    assert out["frequency"].to_list() == [0]
    with pytest.raises(ConfigError, match="price"):
        purchase_summary(frame(rows), Rfm.model_validate({"amount_column": "price"}), AS_OF)


# --------------------------------------------------------------------------- per contact


def simulated_events(buyers: int, seed: int, as_of: datetime) -> pl.LazyFrame:
    """Purchases of ``buyers`` customers from a day-level MBG/NBD-like process."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for i in range(buyers):
        contact = f"c{i:05d}"
        age = int(rng.integers(30, 720))
        first = as_of - timedelta(days=age, hours=3)
        rate, drop = rng.gamma(0.8, 1 / 40), rng.beta(1.0, 3.0)
        spend = rng.gamma(4.0, 10.0)
        day = 0.0
        rows.append(ev(contact, first, round(rng.gamma(6.0, spend / 6.0), 2)))
        while rng.random() >= drop:
            day += rng.exponential(1 / rate)
            if day > age:
                break
            when = first + timedelta(days=day)
            rows.append(ev(contact, when, round(rng.gamma(6.0, spend / 6.0), 2)))
    return frame(rows)


def rules_with(**predict_config: Any) -> Rules:
    return Rules.model_validate({"predict": predict_config})


def test_predict_contacts_fits_and_predicts() -> None:
    as_of = utc(2025, 1, 1)
    events = simulated_events(600, 1, as_of)
    result = predict_contacts(events, rules_with(), as_of)
    assert result.message is None, result.message
    assert isinstance(result.purchase_params, MbgNbdParams)
    assert isinstance(result.spend_params, GammaGammaParams)
    assert result.column_names == ("p_alive", "expected_purchases_90d", "clv")
    out = result.frame
    assert out is not None
    assert out.columns == ["contact_id", "p_alive", "expected_purchases_90d", "clv"]
    assert out.height == result.buyers == 600 and out["contact_id"].is_sorted()
    assert out.null_count().row(0) == (0, 0, 0, 0)
    assert ((out["p_alive"] >= 0) & (out["p_alive"] <= 1)).all()
    assert (out["expected_purchases_90d"] >= 0).all() and (out["clv"] >= 0).all()
    summary = purchase_summary(events, Rules().rfm, as_of).collect()
    one_time = out.filter(summary["frequency"] == 0)
    assert one_time.height > 0 and (one_time["p_alive"] < 1).all()
    assert "MBG/NBD" in result.describe() and "Gamma-Gamma" in result.describe()


def test_predict_contacts_with_bgnbd_and_other_period() -> None:
    as_of = utc(2025, 1, 1)
    events = simulated_events(300, 2, as_of)
    result = predict_contacts(events, rules_with(model="bgnbd", period="4w"), as_of)
    assert isinstance(result.purchase_params, BgNbdParams)
    assert result.frame is not None
    assert result.frame.columns[2] == "expected_purchases_4w"
    summary = purchase_summary(events, Rules().rfm, as_of).collect()
    one_time = result.frame.filter(summary["frequency"] == 0)
    assert (one_time["p_alive"] == 1).all()  # BG/NBD cannot rank one-time buyers


def test_too_few_buyers_says_so() -> None:
    as_of = utc(2025, 1, 1)
    result = predict_contacts(simulated_events(40, 3, as_of), rules_with(), as_of)
    assert result.frame is None and result.purchase_params is None
    assert result.message is not None
    assert "40 buyer(s)" in result.message and "at least 100" in result.message
    assert "predict.min_buyers" in result.message
    assert result.column_names == ("p_alive", "expected_purchases_90d", "clv")


def test_too_few_repeat_buyers_says_so() -> None:
    as_of = utc(2025, 1, 1)
    rows = [ev(f"c{i}", as_of - timedelta(days=i), 10.0) for i in range(150)]
    rows += [ev(f"c{i}", as_of - timedelta(hours=1), 5.0) for i in range(100, 103)]
    result = predict_contacts(frame(rows), rules_with(), as_of)
    assert result.frame is None
    assert result.message is not None
    assert "3 repeat buyer(s)" in result.message and "predict.min_repeat_buyers" in result.message


def test_disabled_predictions() -> None:
    as_of = utc(2025, 1, 1)
    result = predict_contacts(simulated_events(200, 4, as_of), rules_with(enabled=False), as_of)
    assert result.frame is None and result.message is not None
    assert "predict.enabled: false" in result.message


def test_a_fit_that_does_not_converge_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(*args: Any) -> MbgNbdParams:
        raise ConvergenceError("MBG/NBD: the fit did not converge (test)")

    monkeypatch.setattr(summary_module, "fit_mbgnbd", failing)
    as_of = utc(2025, 1, 1)
    result = predict_contacts(simulated_events(200, 5, as_of), rules_with(), as_of)
    assert result.frame is None and result.message is not None
    assert "did not fit" in result.message and "did not converge" in result.message


def test_without_amounts_clv_is_null_and_explained() -> None:
    as_of = utc(2025, 1, 1)
    events = simulated_events(300, 6, as_of).with_columns(amount=pl.lit(None, pl.Float64))
    result = predict_contacts(events, rules_with(), as_of)
    assert result.frame is not None and result.spend_params is None
    assert result.frame["clv"].null_count() == result.frame.height
    assert result.frame["p_alive"].null_count() == 0
    assert result.message is not None and "clv not computed" in result.message
