"""List health: deliverability counts and rates per campaign, mailbox provider, domain and month.

Two steps. ``health_facts`` reads the events once into a table of counts at the finest grain
asked for (campaign, recipient domain, month). Every column of it adds up: the distinct openers
and clickers too, because each contact-campaign pair is counted once, in the month of its first
human open (or click), and a pair's contact has one domain. So any coarser grouping, and any
number of them (the report shows three), is a sum over the same small table. ``health_table``
groups the facts by the ``--by`` keys and adds the rates and the flag.

The limits are the mailbox providers' own: Gmail's and Yahoo's bulk-sender requirements
(February 2024) keep the user-reported spam rate below 0.3% and Google recommends below 0.1%;
deliverability guides keep the bounce rate below 2%.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

import polars as pl

from engscore.engine.exprs import machine_flag
from engscore.errors import ConfigError
from engscore.schema import (
    BOUNCE_TYPE,
    CAMPAIGN,
    CONTACT,
    EVENT_TYPE,
    HEALTH_COUNTS,
    HEALTH_FLAG,
    HEALTH_KEYS,
    HEALTH_RATES,
    TIMESTAMP,
)

#: Gmail's and Yahoo's limit on the user-reported spam rate (bulk senders, February 2024).
COMPLAINT_LIMIT = Fraction(3, 1000)
#: Google's recommended ceiling for the spam rate.
COMPLAINT_WATCH = Fraction(1, 1000)
#: The bounce rate deliverability guides tell senders to stay under.
BOUNCE_WATCH = Fraction(2, 100)
#: Groups with fewer deliveries get their counts but no rates (a few events are no rate).
DEFAULT_MIN_DELIVERED = 100
OVER_LIMIT = "over_limit"
WATCH = "watch"

#: The ``--by`` groupings, in the order their key columns come.
GROUPINGS: tuple[str, ...] = tuple(HEALTH_KEYS)
#: What the facts can be keyed by (a provider is a set of domains).
CAMPAIGN_GRAIN, DOMAIN_GRAIN, MONTH_GRAIN = "campaign", "domain", "month"
FULL_GRAIN = frozenset({CAMPAIGN_GRAIN, DOMAIN_GRAIN, MONTH_GRAIN})

_DOMAIN = HEALTH_KEYS["domain"]
_MONTH = HEALTH_KEYS["month"]
_PROVIDER = HEALTH_KEYS["provider"]
#: Facts that are not output columns as such: ``sent`` is made from the sends (or not), and the
#: human opens are only the machine share's denominator.
_SENDS = "sends"
_HUMAN_OPENS = "human_opens"
_FACT_COUNTS: tuple[str, ...] = (
    _SENDS,
    *(name for name in HEALTH_COUNTS if name != "sent"),
    _HUMAN_OPENS,
)


def parse_groupings(values: Sequence[str]) -> tuple[str, ...]:
    """``--by`` values checked, repeats dropped, in the order given; ConfigError otherwise."""
    for value in values:
        if value not in GROUPINGS:
            raise ConfigError(f"--by {value!r}: must be one of {', '.join(GROUPINGS)}")
    return tuple(dict.fromkeys(values))


def grain_of(by: Sequence[str]) -> frozenset[str]:
    """The fact keys the groupings ``by`` need (``provider`` and ``domain`` both need domains)."""
    grain = set()
    if "campaign" in by:
        grain.add(CAMPAIGN_GRAIN)
    if "provider" in by or "domain" in by:
        grain.add(DOMAIN_GRAIN)
    if "month" in by:
        grain.add(MONTH_GRAIN)
    return frozenset(grain)


@dataclass(frozen=True)
class MailboxProviders:
    """Which recipient domains make up each mailbox provider (Gmail, Microsoft ...).

    A pattern is a domain (``gmail.com``) or a name followed by ``.*`` for any ending
    (``outlook.*``: outlook.com, outlook.fr, outlook.co.uk). A domain named exactly wins over
    a ``.*`` pattern; among those, the first listed. Other domains are their own provider.
    """

    providers: tuple[tuple[str, tuple[str, ...]], ...]

    def provider_of(self, domain: pl.Expr) -> pl.Expr:
        """The provider of each domain: its name, else the domain itself (null stays null)."""
        exact: dict[str, str] = {}
        starts: list[tuple[str, str]] = []
        for name, patterns in self.providers:
            for pattern in patterns:
                if pattern.endswith(".*"):
                    starts.append((pattern[:-1], name))
                else:
                    exact.setdefault(pattern, name)
        named = (
            domain.replace_strict(
                list(exact), list(exact.values()), default=None, return_dtype=pl.String
            )
            if exact
            else pl.lit(None, dtype=pl.String)
        )
        found: pl.Expr = pl.lit(None, dtype=pl.String)
        for prefix, name in reversed(starts):
            # Built from the last pattern up, so the first listed is tested first.
            found = pl.when(domain.str.starts_with(prefix)).then(pl.lit(name)).otherwise(found)
        return pl.coalesce(named, found, domain)


def recipient_domain(contact: pl.Expr) -> pl.Expr:
    """The part after the last ``@`` of an e-mail contact id; null for other ids.

    Ingest lower-cases e-mail addresses, so the domains come out lower-case.
    """
    parts = contact.str.split("@")
    domain = parts.list.last()
    return pl.when((parts.list.len() > 1) & (domain != "")).then(domain)


def _aggregate(frame: pl.LazyFrame, keys: list[str], aggregations: list[pl.Expr]) -> pl.LazyFrame:
    """``group_by(keys).agg(...)``, or one row over everything when there are no keys."""
    if keys:
        return frame.group_by(keys).agg(aggregations)
    return frame.select(aggregations)


@dataclass(frozen=True)
class ContactDomains:
    """The recipient domain of each contact number (events keyed by number, as ``engscore
    ingest``, the store and the in-memory read number them): ``codes[number]`` indexes
    ``names``, null for ids without a domain.

    A domain per contact instead of per event: 20M events come from under a million
    contacts, and splitting every event's id was most of the time of a grouping by domain.
    """

    codes: pl.Series
    names: pl.Series

    @classmethod
    def of(cls, numbers: pl.Series, ids: pl.Series) -> ContactDomains:
        """From each contact's number and text id (any order, each number once)."""
        domains = pl.select(recipient_domain(pl.lit(ids, dtype=pl.String))).to_series()
        names = domains.drop_nulls().unique().sort()
        code = domains.replace_strict(
            names, pl.int_range(names.len(), dtype=pl.UInt32, eager=True), default=None
        )
        positions = numbers.cast(pl.Int64)
        size = int(positions.max() or 0) + 1 if positions.len() else 0  # type: ignore[arg-type]
        codes = pl.repeat(None, size, dtype=pl.UInt32, eager=True)
        if positions.len():
            codes = codes.scatter(positions, code)
        return cls(codes, names)

    def code_of(self, number: pl.Expr) -> pl.Expr:
        """Each contact number's domain code."""
        return pl.lit(self.codes).gather(number)

    def name_of(self, code: pl.Expr) -> pl.Expr:
        """Each code's domain (null stays null)."""
        return pl.lit(self.names).gather(code)


def health_facts(
    events: pl.LazyFrame,
    as_of: datetime,
    since: datetime | None = None,
    grain: frozenset[str] = FULL_GRAIN,
    domains: ContactDomains | None = None,
) -> pl.LazyFrame:
    """The additive counts of the events with ``since <= timestamp <= as_of``, keyed by the
    ``grain`` (``campaign_id``, ``domain``, ``month``: the date of the first of a UTC
    calendar month).

    Counts are events, by type: sends, deliveries, bounces (hard and soft by ``bounce_type``;
    others count in ``bounced`` only), complaints, unsubscribes, human and machine opens.
    ``human_openers`` and ``clickers`` are distinct contact-campaign pairs with a human
    (not machine) open or click, each in the month of its first one. Events without a
    campaign are one campaign (null); ids that are not e-mail addresses have a null domain.
    ``contact_id`` may hold contact numbers instead of ids: then ``domains`` gives their
    domains (needed for the domain grain only). One query: ``collect`` it once.
    """
    schema = events.collect_schema()
    numbered = schema[CONTACT].is_integer()
    with_domain = DOMAIN_GRAIN in grain
    if with_domain and numbered and domains is None:
        raise ValueError("events keyed by contact number need their domains")
    stamp = pl.col(TIMESTAMP)
    window = stamp <= as_of
    if since is not None:
        window = window & (stamp >= since)
    kind = pl.col(EVENT_TYPE)
    machine = machine_flag(schema)
    bounce_type = pl.col(BOUNCE_TYPE) if BOUNCE_TYPE in schema else pl.lit(None, pl.String)
    current = events.filter(window)
    if CAMPAIGN not in schema:
        current = current.with_columns(pl.lit(None, dtype=pl.String).alias(CAMPAIGN))

    def domain_of(contact: pl.Expr) -> pl.Expr:
        # A code while counting (integers group fastest), the name once counted.
        return domains.code_of(contact) if numbered and domains else recipient_domain(contact)

    def keyed(frame: pl.LazyFrame, time: str) -> tuple[pl.LazyFrame, list[str]]:
        keys = [CAMPAIGN] if CAMPAIGN_GRAIN in grain else []
        if with_domain:
            frame = frame.with_columns(domain_of(pl.col(CONTACT)).alias(_DOMAIN))
            keys.append(_DOMAIN)
        if MONTH_GRAIN in grain:
            # Days since 1970 while counting (an integer division, where truncating 20M
            # instants to their month took 0.4 s more); days become months once counted.
            frame = frame.with_columns(pl.col(time).dt.epoch("d").alias(_MONTH))
            keys.append(_MONTH)
        return frame, keys

    bounce = kind == "bounce"
    opened = kind == "open"
    counted, keys = keyed(current, TIMESTAMP)
    counts = _aggregate(
        counted,
        keys,
        [
            (kind == "send").sum().alias(_SENDS),
            (kind == "delivered").sum().alias("delivered"),
            bounce.sum().alias("bounced"),
            (bounce & (bounce_type == "hard")).fill_null(False).sum().alias("hard_bounced"),
            (bounce & (bounce_type == "soft")).fill_null(False).sum().alias("soft_bounced"),
            (kind == "complaint").sum().alias("complaints"),
            (kind == "unsubscribe").sum().alias("unsubscribes"),
            (opened & ~machine).sum().alias(_HUMAN_OPENS),
            (opened & machine).sum().alias("machine_opens"),
        ],
    )
    # Only human opens and clicks (a fifth of a list's events) are grouped per contact, and
    # the pairs' domains found after grouping.
    engaged = current.filter((opened | (kind == "click")) & ~machine)
    pairs = engaged.group_by(CONTACT, CAMPAIGN).agg(
        pl.when(opened).then(stamp).min().alias("_first_open"),
        pl.when(kind == "click").then(stamp).min().alias("_first_click"),
    )
    parts = [counts]
    for first, name in (("_first_open", "human_openers"), ("_first_click", "clickers")):
        frame, pair_keys = keyed(pairs.filter(pl.col(first).is_not_null()), first)
        parts.append(_aggregate(frame, pair_keys, [pl.len().alias(name)]))
    combined = pl.concat(parts, how="diagonal_relaxed")
    if MONTH_GRAIN in grain:
        month = pl.from_epoch(pl.col(_MONTH), time_unit="d").dt.truncate("1mo")
        combined = combined.with_columns(month.alias(_MONTH))
    facts = _aggregate(
        combined, keys, [pl.col(name).cast(pl.Int64).sum().alias(name) for name in _FACT_COUNTS]
    )
    if with_domain and numbered and domains is not None:
        facts = facts.with_columns(domains.name_of(pl.col(_DOMAIN)).alias(_DOMAIN))
    return facts


def sends_present(facts: pl.DataFrame) -> bool:
    """Whether the facts count any send event (if not, ``sent`` is deliveries + bounces)."""
    return bool(facts.get_column(_SENDS).sum())


def _at_least(count: pl.Expr, base: pl.Expr, share: Fraction) -> pl.Expr:
    """``count / base >= share`` in whole numbers (exact at the boundary; false for base 0)."""
    return (base > 0) & (count * share.denominator >= base * share.numerator)


def health_table(
    facts: pl.LazyFrame,
    by: Sequence[str] = (),
    providers: MailboxProviders | None = None,
    min_delivered: int = DEFAULT_MIN_DELIVERED,
) -> pl.LazyFrame:
    """One row per group of ``by`` (``GROUPINGS``; several give their combinations, none one
    row for everything): the counts, the rates and the flag, sorted by the keys.

    ``sent`` is the sends, or deliveries + bounces when the facts hold no send at all (exports
    without send events). Rates are null below ``min_delivered`` deliveries and where their
    base is 0: ``bounce_rate`` and ``hard_bounce_rate`` over sent; complaint, unsubscribe,
    open and click rates over delivered; ``machine_open_share`` over all open events;
    ``click_to_open_rate`` clickers over human openers. ``flag``: ``over_limit`` for a
    complaint rate of 0.3% or more, ``watch`` for 0.1% or more or a bounce rate of 2% or more,
    else null (also where there are no rates).
    """
    frame = facts
    if "provider" in by:
        if providers is None:
            raise ValueError("grouping by provider needs the mailbox providers")
        frame = frame.with_columns(providers.provider_of(pl.col(_DOMAIN)).alias(_PROVIDER))
    if "month" in by:
        frame = frame.with_columns(pl.col(_MONTH).dt.strftime("%Y-%m"))
    keys = [HEALTH_KEYS[name] for name in GROUPINGS if name in by]
    summed = _aggregate(frame, keys, [pl.col(name).sum() for name in _FACT_COUNTS])
    delivered, bounced = pl.col("delivered"), pl.col("bounced")
    # Decided over every group at once: an export has send events or it has none.
    sent = pl.when(pl.col(_SENDS).sum() > 0).then(pl.col(_SENDS)).otherwise(delivered + bounced)
    summed = summed.with_columns(sent.alias("sent"))
    rated = delivered >= min_delivered

    def rate(count: str, base: pl.Expr) -> pl.Expr:
        return pl.when(rated & (base > 0)).then(pl.col(count) / base)

    sent_col = pl.col("sent")
    openers = pl.col("human_openers")
    opens = pl.col("machine_opens") + pl.col(_HUMAN_OPENS)
    complaints = pl.col("complaints")
    flag = (
        pl.when(~rated | (delivered == 0))
        .then(pl.lit(None, dtype=pl.String))
        .when(_at_least(complaints, delivered, COMPLAINT_LIMIT))
        .then(pl.lit(OVER_LIMIT))
        .when(
            _at_least(complaints, delivered, COMPLAINT_WATCH)
            | _at_least(bounced, sent_col, BOUNCE_WATCH)
        )
        .then(pl.lit(WATCH))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    rates = [
        rate("bounced", sent_col).alias("bounce_rate"),
        rate("hard_bounced", sent_col).alias("hard_bounce_rate"),
        rate("complaints", delivered).alias("complaint_rate"),
        rate("unsubscribes", delivered).alias("unsubscribe_rate"),
        rate("human_openers", delivered).alias("open_rate"),
        pl.when(rated & (opens > 0))
        .then(pl.col("machine_opens") / opens)
        .alias("machine_open_share"),
        rate("clickers", delivered).alias("click_rate"),
        rate("clickers", openers).alias("click_to_open_rate"),
    ]
    assert [r.meta.output_name() for r in rates] == list(HEALTH_RATES)
    table = summed.with_columns(*rates, flag.alias(HEALTH_FLAG))
    if keys:
        table = table.sort(keys, nulls_last=True)
    return table.select(*keys, *HEALTH_COUNTS, *HEALTH_RATES, HEALTH_FLAG)
