"""Buy-till-you-die predictions: validated on CDNOW against the literature and on simulations."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import engscore.engine.predict as predict
from engscore.engine.predict import (
    SUMMARY_COLUMNS,
    BgNbdParams,
    ConvergenceError,
    GammaGammaParams,
    MbgNbdParams,
    ParetoNbdParams,
    clv,
    duration_days,
    expected_purchases,
    expected_spend,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_mbgnbd,
    fit_pareto_nbd,
    log_likelihood,
    output_columns,
    p_alive,
    predict_contacts,
    purchase_summary,
    simulate_bgnbd,
    simulate_gamma_gamma,
    simulate_pareto_nbd,
    spend_log_likelihood,
)
from engscore.errors import ConfigError
from engscore.rules import Predict, Rfm, Rules
from engscore.schema import CANONICAL_SCHEMA
from helpers import utc

CDNOW = Path(__file__).parent / "fixtures" / "predict"
#: End of the 39-week calibration period: T of a customer who first bought on 1 January 1997
#: is 272 / 7 = 38.86 weeks in the published summary.
CDNOW_END = utc(1997, 9, 30)
#: chi-squared(4) 99.9 % quantile: a likelihood-ratio bound for four parameters.
CHI2_4_999 = 18.467
CHI2_3_999 = 16.266


def close(value: float, target: float, tolerance: float = 0.005) -> bool:
    return abs(value / target - 1) <= tolerance


# --------------------------------------------------------------------------- CDNOW


@pytest.fixture(scope="module")
def cdnow() -> dict[str, np.ndarray[Any, np.dtype[np.float64]]]:
    """The published CDNOW calibration summary: x, t_x, T (weeks) and zbar per customer."""
    frame = pl.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")
    return {name: frame[name].to_numpy().astype(np.float64) for name in ("x", "t_x", "T", "zbar")}


def cdnow_events() -> pl.LazyFrame:
    """The CDNOW sample's transactions (one line per purchase, 1997-1998) as events."""
    rows = [line.split() for line in (CDNOW / "CDNOW_sample.txt").read_text().splitlines()]
    return pl.DataFrame(
        {
            "contact_id": [row[1] for row in rows],
            "event_type": ["purchase"] * len(rows),
            "timestamp": [datetime.strptime(row[2] + "+0000", "%Y%m%d%z") for row in rows],
            "amount": [float(row[4]) for row in rows],
        },
        schema={"contact_id": pl.String, "event_type": pl.String}
        | {
            "timestamp": CANONICAL_SCHEMA["timestamp"],
            "amount": pl.Float64,
        },
    ).lazy()


def test_cdnow_fixtures_agree() -> None:
    summary = pl.read_csv(CDNOW / "cdnow_customers_summary.csv")
    full = pl.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")
    assert summary.height == full.height == 2357
    assert summary["frequency"].to_list() == full["x"].to_list()
    assert summary["recency"].to_list() == full["t_x"].to_list()
    assert summary["T"].to_list() == full["T"].to_list()
    assert int((full["x"] > 0).sum()) == 946


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


def test_bgnbd_matches_fader_hardie_lee_2005(cdnow: dict[str, Any]) -> None:
    params = fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert close(params.r, 0.243) and close(params.alpha, 4.414)
    assert close(params.a, 0.793) and close(params.b, 2.426)
    assert params.log_likelihood == pytest.approx(-9582.4, abs=0.1)
    assert params.n == 2357
    # FHL 2005, section 5: a customer with x = 2, t_x = 30.43, T = 38.86 over the next 39 weeks.
    assert close(float(expected_purchases(params, 39, 2, 30.43, 38.86)[0]), 1.226)


def test_mbgnbd_matches_batislam_2007(cdnow: dict[str, Any]) -> None:
    params = fit_mbgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert close(params.r, 0.525) and close(params.alpha, 6.183)
    assert close(params.a, 0.891) and close(params.b, 1.614)


def test_pareto_nbd_matches_the_literature(cdnow: dict[str, Any]) -> None:
    params = fit_pareto_nbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert close(params.r, 0.553) and close(params.alpha, 10.578)
    assert close(params.s, 0.606) and close(params.beta, 11.669)
    assert params.log_likelihood == pytest.approx(-9595.0, abs=0.1)


def test_gamma_gamma_matches_fader_hardie_lee_2005(cdnow: dict[str, Any]) -> None:
    repeat = cdnow["x"] > 0
    params = fit_gamma_gamma(cdnow["x"][repeat], cdnow["zbar"][repeat])
    assert params.n == 946
    assert close(params.p, 6.25) and close(params.q, 3.74) and close(params.v, 15.44)


def test_fits_on_our_own_summary_of_the_transactions() -> None:
    summary = purchase_summary(cdnow_events(), Rfm(), CDNOW_END).collect()
    x, t_x, T, m = (summary[c].to_numpy() for c in SUMMARY_COLUMNS[1:])
    bg = fit_bgnbd(x, t_x, T)
    assert close(bg.r, 0.243) and close(bg.alpha, 4.414)
    assert close(bg.a, 0.793) and close(bg.b, 2.426)
    gg = fit_gamma_gamma(x[x > 0], m[x > 0])
    assert close(gg.p, 6.25) and close(gg.q, 3.74) and close(gg.v, 15.44)


#: lifetimes 0.11.3 on the CDNOW summary (see fixtures/predict/ATTRIBUTION.md), customers at
#: rows 0, 1, 2, 10, 100 and 500: P(alive), E[X(13 weeks)], 12-month CLV (monthly rate 1 %).
LIFETIMES_ROWS = [0, 1, 2, 10, 100, 500]
LIFETIMES: dict[str, dict[str, list[float]]] = {
    "bgnbd": {
        "p_alive": [0.72660913679906, 0.21222738807220765, 1.0, 0.4914267045808198,
                    0.8629500407103835, 1.0],
        "expected": [0.4571567871658557, 0.07469799170558768, 0.06981123750952979,
                     0.7124243135102108, 1.2705545051879288, 0.07453955219578506],
        "clv": [36.278495763623184, 4.637466328568497, 8.344093121810026, 66.65939704651682,
                74.9705042198776, 8.860591575280512],
    },
    "mbgnbd": {
        "p_alive": [0.7061262587154014, 0.17081963009210327, 0.3897164420501901,
                    0.46768169070153254, 0.8518393725067019, 0.3979354695495925],
        "expected": [0.4768382873636763, 0.07030926247965424, 0.056027079747714495,
                     0.681234922865993, 1.2592615671196257, 0.06088593885130293],
        "clv": [37.185153892696746, 4.285471930735775, 6.55587038350952, 62.65416995109758,
                73.0288173518817, 7.07968407073833],
    },
}  # fmt: skip
LIFETIMES_SPEND = [24.65861618923485, 18.91147986992482, 35.171002152506844, 29.902779930378674,
                   18.899360577047883, 35.171002152506844]  # fmt: skip


def test_predictions_agree_with_lifetimes(cdnow: dict[str, Any]) -> None:
    x, t_x, T, m = cdnow["x"], cdnow["t_x"], cdnow["T"], cdnow["zbar"]
    gg = fit_gamma_gamma(x[x > 0], m[x > 0])
    rows = LIFETIMES_ROWS
    np.testing.assert_allclose(expected_spend(gg, x[rows], m[rows]), LIFETIMES_SPEND, rtol=1e-6)
    # lifetimes steps 4.345 weeks per month and discounts 1 % a month.
    horizon = 12 * 4.345 * 7
    yearly = 1.01 ** (365.25 / (4.345 * 7)) - 1
    for name, params in (("bgnbd", fit_bgnbd(x, t_x, T)), ("mbgnbd", fit_mbgnbd(x, t_x, T))):
        reference = LIFETIMES[name]
        args = (x[rows], t_x[rows], T[rows])
        np.testing.assert_allclose(p_alive(params, *args), reference["p_alive"], rtol=1e-6)
        expected = expected_purchases(params, 13, *args)
        np.testing.assert_allclose(expected, reference["expected"], rtol=1e-6)
        value = clv(params, gg, *args, m[rows], horizon, yearly)
        np.testing.assert_allclose(value, reference["clv"], rtol=1e-6)


# --------------------------------------------------------------------------- simulations


def test_bgnbd_parameter_recovery() -> None:
    rng = np.random.default_rng(20250)
    T = rng.uniform(20, 80, 20_000)
    x, t_x, _ = simulate_bgnbd(0.25, 4.0, 0.8, 2.5, T, rng)
    fitted = fit_bgnbd(x, t_x, T)
    truth = BgNbdParams(0.25, 4.0, 0.8, 2.5, 0.0, T.size)
    assert abs(fitted.r / 0.25 - 1) < 0.1 and abs(fitted.alpha / 4.0 - 1) < 0.1
    assert abs(fitted.a / 0.8 - 1) < 0.3 and abs(fitted.b / 2.5 - 1) < 0.3
    assert abs(fitted.a / (fitted.a + fitted.b) / (0.8 / 3.3) - 1) < 0.1
    # The truth lies inside the 99.9 % likelihood-ratio confidence region.
    assert 2 * (fitted.log_likelihood - log_likelihood(truth, x, t_x, T)) < CHI2_4_999


def test_mbgnbd_parameter_recovery() -> None:
    rng = np.random.default_rng(7)
    T = rng.uniform(20, 80, 20_000)
    x, t_x, _ = simulate_bgnbd(0.5, 6.0, 0.9, 1.6, T, rng, modified=True)
    fitted = fit_mbgnbd(x, t_x, T)
    truth = MbgNbdParams(0.5, 6.0, 0.9, 1.6, 0.0, T.size)
    assert abs(fitted.r / 0.5 - 1) < 0.1 and abs(fitted.alpha / 6.0 - 1) < 0.1
    assert abs(fitted.a / 0.9 - 1) < 0.3 and abs(fitted.b / 1.6 - 1) < 0.3
    assert 2 * (fitted.log_likelihood - log_likelihood(truth, x, t_x, T)) < CHI2_4_999


def test_pareto_nbd_parameter_recovery() -> None:
    rng = np.random.default_rng(11)
    T = np.round(rng.uniform(20, 80, 10_000))  # whole weeks: fewer distinct rows, faster
    x, t_x, _ = simulate_pareto_nbd(0.55, 10.6, 0.6, 11.7, T, rng)
    fitted = fit_pareto_nbd(x, t_x, T)
    truth = ParetoNbdParams(0.55, 10.6, 0.6, 11.7, 0.0, T.size)
    assert abs(fitted.r / 0.55 - 1) < 0.15 and abs(fitted.alpha / 10.6 - 1) < 0.15
    assert abs(fitted.s / 0.6 - 1) < 0.3 and abs(fitted.beta / 11.7 - 1) < 0.5
    assert 2 * (fitted.log_likelihood - log_likelihood(truth, x, t_x, T)) < CHI2_4_999


def test_gamma_gamma_parameter_recovery() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(1, 12, 10_000).astype(np.float64)
    m = simulate_gamma_gamma(6.25, 3.74, 15.44, x, rng)
    fitted = fit_gamma_gamma(x, m)
    truth = GammaGammaParams(6.25, 3.74, 15.44, 0.0, x.size)
    # p and v trade off (about 15 % standard error here); q and the mean spend are sharp.
    assert abs(fitted.p / 6.25 - 1) < 0.3 and abs(fitted.v / 15.44 - 1) < 0.3
    assert abs(fitted.q / 3.74 - 1) < 0.1
    assert abs(fitted.mean_spend / truth.mean_spend - 1) < 0.05
    assert 2 * (fitted.log_likelihood - spend_log_likelihood(truth, x, m)) < CHI2_3_999


def test_warm_start_from_a_sample_reaches_the_same_maximum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(9)
    T = rng.uniform(1, 104, 120_000)  # more distinct rows than _WARM_START_FROM
    x, t_x, _ = simulate_bgnbd(0.243, 4.414, 0.793, 2.426, T, rng)
    warm = fit_bgnbd(x, t_x, T)
    monkeypatch.setattr(predict, "_WARM_START_FROM", 10**9)
    cold = fit_bgnbd(x, t_x, T)
    for name in ("r", "alpha", "a", "b"):
        assert getattr(warm, name) == pytest.approx(getattr(cold, name), rel=1e-5)
    assert warm.log_likelihood == pytest.approx(cold.log_likelihood, abs=1e-6)


@pytest.mark.parametrize(
    "params",
    [
        BgNbdParams(0.25, 4.0, 0.8, 2.5, 0.0, 0),
        MbgNbdParams(0.25, 4.0, 0.8, 2.5, 0.0, 0),
        ParetoNbdParams(0.55, 10.6, 0.6, 11.7, 0.0, 0),
    ],
    ids=["bgnbd", "mbgnbd", "paretonbd"],
)
def test_conditional_expectations_match_simulated_holdout(params: Any) -> None:
    rng = np.random.default_rng(5)
    T = rng.uniform(20, 80, 40_000)
    if isinstance(params, ParetoNbdParams):
        x, t_x, later = simulate_pareto_nbd(
            params.r, params.alpha, params.s, params.beta, T, rng, holdout=39
        )
    else:
        x, t_x, later = simulate_bgnbd(
            params.r,
            params.alpha,
            params.a,
            params.b,
            T,
            rng,
            modified=isinstance(params, MbgNbdParams),
            holdout=39,
        )
    expected = expected_purchases(params, 39, x, t_x, T)
    for group in (x == 0, x == 1, x >= 2):
        assert abs(expected[group].sum() / later[group].sum() - 1) < 0.06
    assert abs(expected.sum() / later.sum() - 1) < 0.02


# --------------------------------------------------------------------------- predictions

BG = BgNbdParams(0.243, 4.414, 0.793, 2.426, 0.0, 0)
MBG = MbgNbdParams(0.525, 6.183, 0.891, 1.614, 0.0, 0)
GG = GammaGammaParams(6.25, 3.74, 15.44, 0.0, 0)


def test_p_alive_properties() -> None:
    T = np.full(5, 38.86)
    x = np.array([0.0, 1, 2, 2, 10])
    t_x = np.array([0.0, 20, 5, 30, 38])
    bg = p_alive(BG, x, t_x, T)
    mbg = p_alive(MBG, x, t_x, T)
    assert bg[0] == 1.0  # BG/NBD: no repeat purchase, alive for sure
    assert 0 < mbg[0] < 1  # MBG/NBD ranks one-time buyers
    assert ((bg >= 0) & (bg <= 1) & (mbg >= 0) & (mbg <= 1)).all()
    assert bg[2] < bg[3] and mbg[2] < mbg[3]  # a later last purchase: more likely alive
    older = p_alive(MBG, np.zeros(3), np.zeros(3), np.array([1.0, 10, 100]))
    assert older[0] > older[1] > older[2]
    # x = 2, t_x = 30.43, T = 38.86 by the formula
    direct = 1 / (1 + 0.793 / (2.426 + 1) * ((4.414 + 38.86) / (4.414 + 30.43)) ** 2.243)
    assert float(p_alive(BG, 2, 30.43, 38.86)[0]) == pytest.approx(direct, rel=1e-12)


def test_extreme_customers_stay_finite() -> None:
    x = np.array([0.0, 500, 2000, 1, 300])
    t_x = np.array([0.0, 999, 1999.5, 1e-6, 0.5])
    T = np.array([1e-9, 1000, 2000, 5000, 2000])
    for params in (BG, MBG, ParetoNbdParams(0.553, 10.578, 0.606, 11.669, 0.0, 0)):
        alive = p_alive(params, x, t_x, T)
        expected = expected_purchases(params, 52, x, t_x, T)
        assert np.isfinite(alive).all() and ((alive >= 0) & (alive <= 1)).all()
        assert np.isfinite(expected).all() and (expected >= 0).all()
    assert p_alive(BG, 300, 0.5, 2000)[0] < 1e-100


def test_expected_purchases_grows_with_time_and_is_zero_at_zero() -> None:
    t = np.array([0.0, 1, 13, 52, 520])
    for params in (BG, MBG):
        values = expected_purchases(params, t, 2, 30.43, 38.86)
        assert values[0] == 0
        assert (np.diff(values) > 0).all()


def test_expected_purchases_deduplicated_equals_direct() -> None:
    rng = np.random.default_rng(2)
    n = 20_000  # above the deduplication threshold, with few distinct (x, T)
    T = rng.integers(1, 60, n).astype(np.float64)
    x = np.minimum(rng.integers(0, 5, n), T - 1).astype(np.float64)
    t_x = np.where(x > 0, T * rng.random(n), 0.0)
    for params in (BG, MBG):
        fast = expected_purchases(params, 13.0, x, t_x, T)
        direct = expected_purchases(params, np.full(n, 13.0), x, t_x, T)
        np.testing.assert_allclose(fast, direct, rtol=1e-12)


def test_expected_spend() -> None:
    population = 6.25 * 15.44 / 2.74
    assert float(expected_spend(GG, 0, 0)[0]) == pytest.approx(population)
    value = float(expected_spend(GG, 3, 40.0)[0])
    assert value == pytest.approx(6.25 * (15.44 + 120) / (6.25 * 3 + 2.74))
    assert population < value < 40.0  # shrunk towards the population mean
    assert GG.mean_spend == pytest.approx(population)
    with pytest.raises(ValueError, match="q = 0.9"):
        expected_spend(GammaGammaParams(6.0, 0.9, 15.0, 0.0, 0), 1, 10)


def test_clv_monthly_steps() -> None:
    x, t_x, T, m = np.array([0.0, 2, 5]), np.array([0.0, 30.43, 10]), np.full(3, 38.86), None
    m = np.array([0.0, 22.35, 50])
    spend = expected_spend(GG, x, m)
    year = 365.25
    # Without discounting the steps telescope: spend x E[X(horizon)].
    flat = clv(MBG, GG, x, t_x, T, m, year, 0.0)
    np.testing.assert_allclose(flat, spend * expected_purchases(MBG, year / 7, x, t_x, T))
    # By hand: 12 monthly steps discounted from each step's end.
    ends = [year * k / 12 / 7 for k in range(13)]
    cumulative = [expected_purchases(MBG, t, x, t_x, T) for t in ends]
    by_hand = sum((cumulative[k] - cumulative[k - 1]) / 1.1 ** (k / 12) for k in range(1, 13))
    np.testing.assert_allclose(clv(MBG, GG, x, t_x, T, m, year, 0.10), spend * by_hand)
    assert (clv(MBG, GG, x, t_x, T, m, year, 0.10) < flat).all()
    # 90 days: 3 steps of 30 days.
    assert math.ceil(90 / predict.DAYS_PER_MONTH) == 3


def test_duration_days_and_output_columns() -> None:
    assert duration_days(Predict().period) == 90
    assert duration_days(Predict().horizon) == 365.25
    config = Predict.model_validate({"period": "2w"})
    assert output_columns(config) == ("p_alive", "expected_purchases_2w", "clv")
    assert output_columns(Predict()) == ("p_alive", "expected_purchases_90d", "clv")


@pytest.mark.parametrize(
    ("x", "t_x", "T", "message"),
    [
        ([1.5], [1.0], [2.0], "whole numbers"),
        ([1], [3.0], [2.0], "t_x <= T"),
        ([0], [1.0], [2.0], "must be 0"),
        ([], [], [], "no customers"),
        ([1, 2], [1.0], [2.0], "same length"),
    ],
)
def test_inconsistent_summaries_are_rejected(
    x: list[float], t_x: list[float], T: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        fit_bgnbd(x, t_x, T)


def test_gamma_gamma_takes_repeat_buyers_only() -> None:
    with pytest.raises(ValueError, match="repeat buyers only"):
        fit_gamma_gamma([0, 2], [0.0, 10.0])


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

    monkeypatch.setattr(predict, "fit_mbgnbd", failing)
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
