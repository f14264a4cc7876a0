"""The buy-till-you-die models: validated on CDNOW against the literature and on simulations."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import pytest
from cdnow_data import CDNOW, cdnow_arrays, close

import engscore.engine.predict.models as models
from engscore.engine.predict.models import (
    DAYS_PER_MONTH,
    BgNbdParams,
    GammaGammaParams,
    MbgNbdParams,
    ParetoNbdParams,
    clv,
    expected_purchases,
    expected_spend,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_mbgnbd,
    fit_pareto_nbd,
    log_likelihood,
    p_alive,
    spend_log_likelihood,
)
from engscore.engine.predict.simulate import (
    simulate_bgnbd,
    simulate_gamma_gamma,
    simulate_pareto_nbd,
)

#: chi-squared(4) 99.9 % quantile: a likelihood-ratio bound for four parameters.
CHI2_4_999 = 18.467
CHI2_3_999 = 16.266


# --------------------------------------------------------------------------- CDNOW


@pytest.fixture(scope="module")
def cdnow() -> dict[str, np.ndarray[Any, np.dtype[np.float64]]]:
    """The published CDNOW calibration summary."""
    return cdnow_arrays()


def test_cdnow_fixtures_agree() -> None:
    summary = pl.read_csv(CDNOW / "cdnow_customers_summary.csv")
    full = pl.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")
    assert summary.height == full.height == 2357
    assert summary["frequency"].to_list() == full["x"].to_list()
    assert summary["recency"].to_list() == full["t_x"].to_list()
    assert summary["T"].to_list() == full["T"].to_list()
    assert int((full["x"] > 0).sum()) == 946


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
    monkeypatch.setattr(models, "_WARM_START_FROM", 10**9)
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
    assert math.ceil(90 / DAYS_PER_MONTH) == 3


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
