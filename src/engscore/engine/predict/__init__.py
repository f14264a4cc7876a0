"""Buy-till-you-die predictions: P(alive), expected purchases and CLV per buyer.

Why: RFM says who bought; a buy-till-you-die model says who is probably still a customer
("alive") and how much they are likely to buy, which ranks inactive buyers by the value of
winning them back. Everything here is fitted by maximum likelihood on the buyers' purchase
summary, with log-space likelihoods and analytic gradients, and validated against the published
CDNOW numbers (``tests/engine/test_models.py``).

The summary (``purchase_summary``)
    One row per buyer at ``as_of``, "one purchase per period" as in the literature with the
    period a UTC calendar day: several purchases on one day count once. With ``n`` distinct
    purchase days, the first at ``d_1`` and the last at ``d_n`` (midnight UTC):

    - ``frequency`` (``x``): repeat purchase days, ``n - 1``;
    - ``recency`` (``t_x``): ``d_n - d_1``, in time units (0 for one-time buyers);
    - ``T``: ``as_of - d_1``, in time units;
    - ``monetary_value``: the mean amount of the repeat purchase days (amounts of one day
      summed; the first day left out, as the Gamma-Gamma model and ``lifetimes`` do), 0 when
      ``x = 0``.

The time unit
    Times are in units of ``unit_days`` days: weeks (7) by default, as in the literature. The
    rate parameters (``alpha``, ``beta``) are in these units, so parameters fitted in weeks are
    not comparable with parameters fitted in days. Durations from the rules are converted with
    a month of 365.25 / 12 days and a year of 365.25 days.

The models
    BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way")
        While alive, a customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``
        (shape ``r``, rate ``alpha``); after each *repeat* purchase they drop out with
        probability ``p ~ Beta(a, b)``. A buyer with no repeat purchase is alive for sure
        (``p_alive = 1``), which is why one-time buyers cannot be ranked by it.
    MBG/NBD (Batislam, Denizel & Filiztekin 2007; ``lifetimes``' ``ModifiedBetaGeoFitter``)
        The same, but a customer may also drop out right after the *first* purchase, so
        one-time buyers get ``p_alive < 1``, decreasing with their age ``T``.
    Pareto/NBD (Schmittlein, Morrison & Colombo 1987; Fader, Hardie & Lee 2005 note)
        Poisson purchases with ``lambda ~ Gamma(r, alpha)`` and an exponential lifetime with
        rate ``mu ~ Gamma(s, beta)``. Optional: its likelihood needs the Gauss hypergeometric
        function per customer, so it is slower; the rules do not offer it.
    Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"; Colombo & Jiang 1999)
        The amount of a transaction is ``Gamma(p, nu)`` with ``nu ~ Gamma(q, v)`` per customer,
        independent of the purchase process. Fitted on repeat buyers (``x > 0``) with a
        positive ``monetary_value``; the expected spend of a customer with ``x`` repeat
        purchases of mean ``m`` is ``p (v + m x) / (p x + q - 1)``, which for ``x = 0`` is the
        population mean ``p v / (q - 1)``.

CLV
    ``clv`` is the expected spend times the *discounted* expected number of purchases over the
    horizon, in monthly steps as ``lifetimes.utils.customer_lifetime_value`` does: the horizon
    is cut into ``n = ceil(horizon / month)`` equal steps (12 for 12 months), the purchases
    expected in step ``k``, ``E[X(t_k)] - E[X(t_{k-1})]``, are discounted from the step's end
    with the yearly rate, ``(1 + rate) ** -(t_k / year)``, and summed. Amounts are in the
    currency of ``amount_column``; no margin is applied.

Fitting and numerics
    The likelihoods are written in logs (``gammaln``, ``betaln``, log-sum-exp in the form
    ``log(e^-u + c)`` with ``u >= 0``) and maximised over the logarithms of the parameters by
    BFGS with analytic gradients (Pareto/NBD: central differences), from a few starting
    points until one converges (largest gradient of the mean log-likelihood below 1e-4; else
    ``ConvergenceError``). Identical ``(x, t_x, T)`` rows are first aggregated with weights
    (day-level data has many), and terms that depend on ``x`` alone are summed per distinct
    ``x``. Sums avoid BLAS, whose threads stall on a loaded two-core machine.

    The conditional expectations use the Euler transform of the hypergeometric function,
    ``(1 - z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)``, whose series behaves for any ``x``
    (the untransformed ``2F1(r+x, b+x; a+b+x-1; z)`` grows like ``(1-z)^-x`` and overflows
    for large ``x``), evaluated once per distinct ``(x, T)`` pair: with day-level summaries
    there are far fewer pairs than customers. CLV over 12 monthly steps needs 12 such
    evaluations, the costliest part of the predictions.

Modules
    ``models``: the model maths on numpy arrays (fits, likelihoods, conditional expectations,
    CLV), no LazyFrames and no rules; ``simulate``: draws from the models (tests and
    benchmarks); ``summary``: the Polars glue, the purchase summary of the events and
    ``predict_contacts`` for the scoring.
"""
