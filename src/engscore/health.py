"""``engscore health``: list health, deliverability counts and rates per campaign, mailbox
provider, domain or month, against the mailbox providers' limits.

The I/O edge around ``engine.health``: read the events the way scoring does (any export,
preset or mapping, an ``engscore ingest`` output, an event store), collect the facts in one
streaming pass, group them and write the table atomically. The same facts give the report
its three views and ``engscore run`` its ``health.csv``, from that one pass.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from engscore.config import IngestOptions
from engscore.durations import Duration
from engscore.engine.health import (
    DEFAULT_MIN_DELIVERED,
    DOMAIN_GRAIN,
    FULL_GRAIN,
    OVER_LIMIT,
    ContactDomains,
    MailboxProviders,
    grain_of,
    health_facts,
    health_table,
    parse_groupings,
    sends_present,
)
from engscore.errors import ConfigError, DataError
from engscore.io.events import load_events_sorted
from engscore.io.ingest import CONTACT_KEY, LoadedEvents, left_out_note
from engscore.io.outputs import output_format, scratch_folder, write_frame
from engscore.io.readers import first_line
from engscore.io.store import read_contact_numbers
from engscore.providers import load_providers
from engscore.schema import CONTACT, HEALTH_FLAG, HEALTH_KEYS
from engscore.timestamps import format_instant, parse_instant

#: How a group without a key value is named in messages and the report.
NO_VALUE = {"campaign": "(no campaign)", "provider": "(no domain)", "domain": "(no domain)"}


def since_instant(text: str | None, as_of: datetime, timezone: str = "UTC") -> datetime | None:
    """``--since``: a duration back from ``as_of`` (``90d``, ``6m``, ``1y``; calendar months),
    or a date or instant (``2026-01-01``, naive values in ``timezone``); before ``as_of``."""
    if text is None:
        return None
    try:
        since = Duration.parse(text).subtract_from(as_of)
    except ValueError:
        try:
            since = parse_instant(text, timezone, "--since")
        except ConfigError:
            raise ConfigError(
                f"--since: {text!r} is neither a duration (90d, 6m, 1y) nor a date (2026-01-01)"
            ) from None
    if since >= as_of:
        raise ConfigError(
            f"--since: {format_instant(since)} is not before the as-of instant "
            f"{format_instant(as_of)}"
        )
    return since


@dataclass(frozen=True)
class HealthRequest:
    """What ``engscore health`` reads and how it groups."""

    events: list[str]
    as_of: datetime
    by: tuple[str, ...] = ()
    since: datetime | None = None
    min_delivered: int = DEFAULT_MIN_DELIVERED
    #: A mailbox providers file (None: the packaged map).
    providers: Path | None = None
    ingest: IngestOptions = field(default_factory=IngestOptions)


@dataclass(frozen=True)
class HealthFacts:
    """The events' facts (``engine.health.health_facts``, collected) and how to rate them."""

    frame: pl.DataFrame
    as_of: datetime
    since: datetime | None
    providers: MailboxProviders
    min_delivered: int

    @property
    def sends_counted(self) -> bool:
        """Whether ``sent`` counts send events (else deliveries + bounces: none in the data)."""
        return sends_present(self.frame)

    def table(self, by: tuple[str, ...]) -> pl.DataFrame:
        """The health table grouped by ``by`` (the facts must have its grain)."""
        return health_table(self.frame.lazy(), by, self.providers, self.min_delivered).collect()

    def views(self) -> HealthViews:
        """The report's three views (the facts must have every grain)."""
        return HealthViews(
            by_month=self.table(("month",)),
            by_provider=self.table(("provider",)),
            by_campaign=self.table(("campaign",)),
            min_delivered=self.min_delivered,
            sends_counted=self.sends_counted,
        )


@dataclass(frozen=True)
class HealthViews:
    """What the report shows: the health by month, by mailbox provider and by campaign."""

    by_month: pl.DataFrame
    by_provider: pl.DataFrame
    by_campaign: pl.DataFrame
    min_delivered: int
    sends_counted: bool


def _numbered(
    loaded: LoadedEvents, grain: frozenset[str]
) -> tuple[pl.LazyFrame, ContactDomains | None]:
    """The events keyed by contact number when they have numbers (ingest's, the store's, the
    in-memory read's), with each number's domain when the grain needs domains; else the
    events as they are.

    Pairs of contact and campaign are grouped on integers instead of e-mail strings (half
    the time), and domains are found once per contact instead of once per event.
    """
    keyed = loaded.keyed
    if keyed is None:
        return loaded.events, None
    events = keyed.drop(CONTACT).rename({CONTACT_KEY: CONTACT})
    if DOMAIN_GRAIN not in grain:
        return events, None
    if loaded.contact_names is not None:
        names = loaded.contact_names
        numbers, ids = names.get_column(CONTACT), names.drop(CONTACT).to_series()
    elif loaded.contact_numbers is not None:
        names = read_contact_numbers(loaded.contact_numbers)
        numbers, ids = names.get_column(CONTACT_KEY), names.get_column(CONTACT)
    else:
        # One ``engscore ingest`` output, sorted by contact: an id's first row is where its
        # number changes (``unique`` makes it one per number whatever the batches).
        number = pl.col(CONTACT_KEY)
        names = (
            keyed.select(CONTACT_KEY, CONTACT)
            .filter(number.ne_missing(number.shift(1)))
            .unique(CONTACT_KEY)
            .collect(engine="streaming")
        )
        numbers, ids = names.get_column(CONTACT_KEY), names.get_column(CONTACT)
    return events, ContactDomains.of(numbers, ids.cast(pl.String))


def facts_of(
    loaded: LoadedEvents,
    as_of: datetime,
    since: datetime | None,
    grain: frozenset[str],
    providers: MailboxProviders,
    min_delivered: int,
) -> HealthFacts:
    """Collect the facts of loaded events: one query, streaming."""
    try:
        events, domains = _numbered(loaded, grain)
        frame = health_facts(events, as_of, since, grain, domains).collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"cannot compute the list health: {first_line(exc)}") from exc
    return HealthFacts(frame, as_of, since, providers, min_delivered)


@contextmanager
def _scratch(output: Path | None) -> Iterator[Path]:
    """Where exports too large for memory are sorted first: beside the output (where the user
    has room for it), else the system's temporary folder."""
    if output is not None:
        with scratch_folder(output) as folder:
            yield folder
    else:
        with tempfile.TemporaryDirectory(prefix="engscore-") as folder:
            yield Path(folder)


@dataclass(frozen=True)
class HealthResult:
    """What ``engscore health`` made."""

    table: pl.DataFrame
    by: tuple[str, ...]
    as_of: datetime
    since: datetime | None
    min_delivered: int
    sends_counted: bool
    output: Path | None
    warnings: tuple[str, ...]

    def flagged(self, flag: str = OVER_LIMIT) -> list[str]:
        """The names of the groups with ``flag`` (``over_limit`` or ``watch``), in order."""
        return flagged_groups(self.table, self.by, flag)


def group_name(row: dict[str, Any], by: tuple[str, ...]) -> str:
    """A group as people read it: its key values joined by `` / `` (``all`` without keys)."""
    if not by:
        return "all"
    return " / ".join(
        str(row[HEALTH_KEYS[key]]) if row[HEALTH_KEYS[key]] is not None else NO_VALUE[key]
        for key in by
    )


def flagged_groups(table: pl.DataFrame, by: tuple[str, ...], flag: str = OVER_LIMIT) -> list[str]:
    """The names of the rows of a health table that have ``flag``."""
    return [
        group_name(row, by)
        for row in table.filter(pl.col(HEALTH_FLAG) == flag).iter_rows(named=True)
    ]


def run_health(request: HealthRequest, output: Path | None = None) -> HealthResult:
    """``engscore health``: the health table of the events, written to ``output`` (.csv or
    .parquet) atomically when given.

    Usage errors (a bad ``--by``, output name or providers file) come before any data is read.
    """
    by = parse_groupings(request.by)
    if output is not None:
        output_format(output)
    if request.min_delivered < 0:
        raise ConfigError("--min-delivered must be 0 or more")
    providers = load_providers(request.providers)
    grain = grain_of(by)
    with _scratch(output) as scratch:
        # Only the canonical columns are read (``columns``: no other).
        loaded = load_events_sorted(request.events, scratch, request.ingest, set())
        facts = facts_of(
            loaded, request.as_of, request.since, grain, providers, request.min_delivered
        )
    table = facts.table(by)
    warnings = list(loaded.warnings)
    if loaded.rows_rejected:
        warnings.append(left_out_note(loaded.rows_rejected, loaded.reject_reasons))
    if not int(table.get_column("delivered").sum() or 0) + int(table["sent"].sum() or 0):
        window = f"from {format_instant(request.since)} " if request.since else ""
        warnings.append(
            f"no send or delivery {window}up to {format_instant(request.as_of)}: no rates"
        )
    if output is not None:
        write_frame(table, output)
    return HealthResult(
        table=table,
        by=by,
        as_of=request.as_of,
        since=request.since,
        min_delivered=request.min_delivered,
        sends_counted=facts.sends_counted,
        output=output,
        warnings=tuple(warnings),
    )


def report_health(
    loaded: LoadedEvents,
    as_of: datetime,
    providers: Path | None = None,
    min_delivered: int = DEFAULT_MIN_DELIVERED,
) -> HealthViews:
    """The report's list health (every event up to ``as_of``), from one pass."""
    return facts_of(
        loaded, as_of, None, FULL_GRAIN, load_providers(providers), min_delivered
    ).views()
