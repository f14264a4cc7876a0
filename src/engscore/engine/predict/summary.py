"""The Polars side of the predictions: the buyers' purchase summary from the events, and the
fitted models' predictions per contact for the scoring (``predict_contacts``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from engscore.durations import Duration
from engscore.engine.exprs import MICROSECONDS_PER_DAY, stable_sum
from engscore.engine.predict.models import (
    DAYS_PER_MONTH,
    BgNbdParams,
    ConvergenceError,
    FloatArray,
    GammaGammaParams,
    MbgNbdParams,
    clv,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_mbgnbd,
    p_alive,
)
from engscore.engine.rfm import purchase_events
from engscore.errors import ConfigError
from engscore.rules import Predict, Rfm, Rules
from engscore.schema import CONTACT, TIMESTAMP

__all__ = [
    "PURCHASE_ROW_COLUMNS",
    "SPEND_ROW_COLUMNS",
    "SUMMARY_COLUMNS",
    "FittedModels",
    "PredictResult",
    "duration_days",
    "fit_models",
    "merge_rows",
    "output_columns",
    "predict_buyers",
    "predict_contacts",
    "purchase_rows",
    "purchase_summary",
    "spend_rows",
]

#: The columns of ``purchase_summary``, in order.
SUMMARY_COLUMNS = (CONTACT, "frequency", "recency", "T", "monetary_value")


def purchase_summary(
    events: pl.LazyFrame, rfm: Rfm, as_of: datetime, unit_days: float = 7.0
) -> pl.LazyFrame:
    """Per buyer at ``as_of``: ``frequency``, ``recency``, ``T`` and ``monetary_value``.

    Purchases are events of a type in ``rfm.purchase_events`` at or before ``as_of``; amounts
    come from ``rfm.amount_column`` (nulls count as 0). Columns ``SUMMARY_COLUMNS``, sorted by
    contact; times in units of ``unit_days`` days. See the module docstring for the
    definitions. Lazy: the caller collects.
    """
    if unit_days <= 0:
        raise ValueError(f"unit_days must be positive, not {unit_days}")
    schema = events.collect_schema()
    if rfm.amount_column not in schema:
        raise ConfigError(
            f"rfm: unknown column {rfm.amount_column!r} (events have: {', '.join(schema.names())})"
        )
    purchases = purchase_events(events, rfm, as_of)
    amount = pl.col(rfm.amount_column).cast(pl.Float64).fill_null(0.0)
    days = purchases.group_by(CONTACT, pl.col(TIMESTAMP).dt.truncate("1d").alias("_day")).agg(
        _amount=stable_sum(amount)
    )
    buyers = days.group_by(CONTACT).agg(
        _days=pl.len().cast(pl.Int64),
        _first=pl.col("_day").min(),
        _last=pl.col("_day").max(),
        _total=stable_sum(pl.col("_amount")),
        _first_amount=pl.col("_amount").sort_by("_day").first(),
    )
    unit = unit_days * MICROSECONDS_PER_DAY
    frequency = pl.col("_days") - 1
    return (
        buyers.select(
            pl.col(CONTACT),
            frequency=frequency,
            recency=(pl.col("_last") - pl.col("_first")).dt.total_microseconds() / unit,
            T=(pl.lit(as_of) - pl.col("_first")).dt.total_microseconds() / unit,
            monetary_value=pl.when(frequency > 0)
            .then((pl.col("_total") - pl.col("_first_amount")) / frequency)
            .otherwise(0.0),
        )
        .select(SUMMARY_COLUMNS)
        .sort(CONTACT)
    )


def duration_days(duration: Duration) -> float:
    """Days in a rules duration: months are 365.25 / 12 days, years 365.25 days."""
    if duration.is_fixed:
        return duration.days
    return duration.months * DAYS_PER_MONTH


def output_columns(config: Predict) -> tuple[str, str, str]:
    """``("p_alive", "expected_purchases_<period>", "clv")``, e.g. ``expected_purchases_90d``."""
    return ("p_alive", f"expected_purchases_{config.period}", "clv")


#: The global step's inputs: distinct purchase rows and spend rows, with counts ``n``.
PURCHASE_ROW_COLUMNS = ("frequency", "recency", "T")
SPEND_ROW_COLUMNS = ("frequency", "monetary_value")


def purchase_rows(summary: pl.LazyFrame) -> pl.LazyFrame:
    """The distinct ``(frequency, recency, T)`` rows of a share of the buyers with how many
    buyers have each (``n``): the purchase model's input, whose shares add up
    (``merge_rows``)."""
    return summary.group_by(*PURCHASE_ROW_COLUMNS).agg(n=pl.len().cast(pl.Int64))


def spend_rows(summary: pl.LazyFrame) -> pl.LazyFrame:
    """The distinct ``(frequency, monetary_value)`` rows of the repeat buyers who spent
    (``frequency > 0``, ``monetary_value > 0``) with their counts ``n``: the spend model's
    input."""
    spenders = summary.filter((pl.col("frequency") > 0) & (pl.col("monetary_value") > 0))
    return spenders.group_by(*SPEND_ROW_COLUMNS).agg(n=pl.len().cast(pl.Int64))


def merge_rows(rows: pl.LazyFrame, keys: tuple[str, ...]) -> pl.LazyFrame:
    """Counted rows of several shares (stacked) as one table, sorted: the same table, in the
    same order, however the buyers were shared out, so the fit is the same too."""
    return rows.group_by(*keys).agg(pl.col("n").sum()).sort(*keys)


@dataclass(frozen=True)
class FittedModels:
    """The global step's result: the fitted models (or why there are none), a few numbers
    that every share of the buyers is predicted from (``predict_buyers``)."""

    column_names: tuple[str, str, str]
    message: str | None
    purchase_params: BgNbdParams | MbgNbdParams | None = None
    spend_params: GammaGammaParams | None = None
    buyers: int = 0
    repeat_buyers: int = 0

    def describe(self) -> str:
        """The fitted parameters (or the message) in one or two lines, for the run's note."""
        parts = [p.describe() for p in (self.purchase_params, self.spend_params) if p is not None]
        if self.message:
            parts.append(self.message)
        return "; ".join(parts)


@dataclass(frozen=True)
class PredictResult(FittedModels):
    """Predictions per buyer, or why there are none: the fitted models and their ``frame``.

    ``frame`` has ``contact_id`` and ``column_names`` (one row per buyer, sorted by contact),
    or is None when nothing was fitted; ``message`` then says why in plain words. When the
    purchase model fitted but the spend model did not, ``frame`` is there with a null ``clv``
    and ``message`` says why.
    """

    frame: pl.DataFrame | None = None

    @classmethod
    def of(
        cls, fitted: FittedModels, frame: pl.DataFrame | None = None, note: str | None = None
    ) -> PredictResult:
        """``fitted`` with the predictions made from it, and a ``note`` on them added to
        its message."""
        message = "; ".join(m for m in (fitted.message, note) if m) or None
        return cls(
            fitted.column_names,
            message,
            fitted.purchase_params,
            fitted.spend_params,
            fitted.buyers,
            fitted.repeat_buyers,
            frame=frame,
        )


def _column(rows: pl.DataFrame, name: str) -> FloatArray:
    return rows[name].to_numpy().astype(np.float64)


def fit_models(
    purchases: pl.DataFrame, spends: pl.DataFrame, rules: Rules, as_of: datetime
) -> FittedModels:
    """Fit the configured purchase model and Gamma-Gamma on every buyer's counted rows
    (``merge_rows`` of ``purchase_rows`` and ``spend_rows``): the predictions' global step.

    Not fitted (``message`` says why) when predictions are off, with fewer than
    ``predict.min_buyers`` buyers or ``predict.min_repeat_buyers`` repeat buyers, or when the
    fit does not converge; the spend model alone may be missing (``message`` says why).
    """
    config = rules.predict
    names = output_columns(config)
    if not config.enabled:
        return FittedModels(names, "predictions are off (predict.enabled: false)")
    x, t_x, T = (_column(purchases, name) for name in PURCHASE_ROW_COLUMNS)
    w = _column(purchases, "n")
    buyers, repeat = int(w.sum()), int(w[x > 0].sum())

    def skipped(message: str) -> FittedModels:
        return FittedModels(names, message, buyers=buyers, repeat_buyers=repeat)

    if buyers < config.min_buyers:
        return skipped(
            f"predictions not computed: {buyers} buyer(s) at {as_of:%Y-%m-%d}, the model "
            f"needs at least {config.min_buyers} (predict.min_buyers)"
        )
    if repeat < config.min_repeat_buyers:
        return skipped(
            f"predictions not computed: {repeat} repeat buyer(s) (bought on two or more days) "
            f"at {as_of:%Y-%m-%d}, the model needs at least {config.min_repeat_buyers} "
            "(predict.min_repeat_buyers)"
        )
    label = "MBG/NBD" if config.model == "mbgnbd" else "BG/NBD"
    try:
        purchase: BgNbdParams | MbgNbdParams = (
            fit_mbgnbd(x, t_x, T, w) if config.model == "mbgnbd" else fit_bgnbd(x, t_x, T, w)
        )
    except ConvergenceError as exc:
        return skipped(f"predictions not computed: the {label} purchase model did not fit ({exc})")
    spend_params: GammaGammaParams | None = None
    message: str | None = None
    spenders = int(spends["n"].sum())
    if spenders < config.min_repeat_buyers:
        message = (
            f"clv not computed: {spenders} repeat buyer(s) with a positive "
            f"{rules.rfm.amount_column}, the spend model needs at least "
            f"{config.min_repeat_buyers} (predict.min_repeat_buyers)"
        )
    else:
        try:
            spend_params = fit_gamma_gamma(
                _column(spends, "frequency"),
                _column(spends, "monetary_value"),
                _column(spends, "n"),
            )
        except ConvergenceError as exc:
            message = f"clv not computed: the Gamma-Gamma spend model did not fit ({exc})"
        else:
            if spend_params.q <= 1:
                message = (
                    f"clv not computed: the Gamma-Gamma spend model has q = "
                    f"{spend_params.q:.3g} <= 1 (spend too dispersed for a finite mean)"
                )
    return FittedModels(names, message, purchase, spend_params, buyers, repeat)


def predict_buyers(
    summary: pl.DataFrame, fitted: FittedModels, rules: Rules, unit_days: float = 7.0
) -> tuple[pl.DataFrame, str | None]:
    """Predictions for a share of the buyers (``purchase_summary`` rows) from the fitted
    models: ``contact_id`` and ``column_names``, in the summary's order, and a note when some
    values were left empty (not finite). Each buyer's values depend on its own row and the
    parameters only."""
    names = fitted.column_names
    purchase = fitted.purchase_params
    assert purchase is not None, "predict_buyers needs a fitted purchase model"
    config = rules.predict
    x, t_x, T, m = (
        _column(summary, name) for name in ("frequency", "recency", "T", "monetary_value")
    )
    period = duration_days(config.period) / unit_days
    alive = p_alive(purchase, x, t_x, T)
    expected = expected_purchases(purchase, period, x, t_x, T)
    value: FloatArray | None = None
    if fitted.spend_params is not None and fitted.spend_params.q > 1:
        value = clv(
            purchase,
            fitted.spend_params,
            x,
            t_x,
            T,
            m,
            duration_days(config.horizon),
            config.discount_rate,
            unit_days,
        )
    frame = pl.DataFrame(
        {
            CONTACT: summary[CONTACT],
            names[0]: alive,
            names[1]: expected,
            names[2]: pl.Series(names[2], value, dtype=pl.Float64)
            if value is not None
            else pl.Series(names[2], [None] * summary.height, dtype=pl.Float64),
        }
    )
    # Extreme fits (a list with almost no dropout drives a and b to 1e5 and beyond) can push
    # the hypergeometric terms out of floating-point range: never publish inf or NaN.
    finite = frame.select(
        [pl.col(n).is_finite().fill_null(True).all().alias(n) for n in names]
    ).row(0)
    if all(finite):
        return frame, None
    frame = frame.with_columns(
        pl.when(pl.col(n).is_finite()).then(pl.col(n)).otherwise(None).alias(n) for n in names
    )
    broken = ", ".join(n for n, ok in zip(names, finite, strict=True) if not ok)
    note = (
        f"{broken} left empty where not finite: the fitted model is extreme "
        f"({purchase.describe()}), typical of data with almost no dropout"
    )
    return frame, note


def predict_contacts(
    events: pl.LazyFrame, rules: Rules, as_of: datetime, unit_days: float = 7.0
) -> PredictResult:
    """Fit the configured purchase model and Gamma-Gamma, and predict for every buyer.

    Columns: ``contact_id``, ``p_alive``, ``expected_purchases_<period>`` (purchases expected
    in the ``predict.period`` after ``as_of``) and ``clv`` (discounted expected spend over
    ``predict.horizon``). Not fitted (``frame`` None, ``message`` says why) when predictions
    are off, with fewer than ``predict.min_buyers`` buyers or ``predict.min_repeat_buyers``
    repeat buyers, or when the fit does not converge.

    The stages Spark runs apart (``purchase_rows``/``spend_rows``, ``fit_models``,
    ``predict_buyers``), run here in turn on every buyer.
    """
    names = output_columns(rules.predict)
    if not rules.predict.enabled:
        return PredictResult(names, "predictions are off (predict.enabled: false)")
    summary = purchase_summary(events, rules.rfm, as_of, unit_days).collect()
    counted = pl.collect_all(
        [
            merge_rows(purchase_rows(summary.lazy()), PURCHASE_ROW_COLUMNS),
            merge_rows(spend_rows(summary.lazy()), SPEND_ROW_COLUMNS),
        ]
    )
    fitted = fit_models(counted[0], counted[1], rules, as_of)
    if fitted.purchase_params is None:
        return PredictResult.of(fitted)
    frame, note = predict_buyers(summary, fitted, rules, unit_days)
    return PredictResult.of(fitted, frame, note)
