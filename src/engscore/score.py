"""``engscore score``: events + rules (+ contacts) -> one scores row per contact.

The I/O edge around the engine in ``points``: load and check the rules against the events'
columns, load the contacts file, collect the lazy scoring query once, write it atomically and
summarise it for the terminal.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from engscore import __version__
from engscore.config import IngestOptions
from engscore.engine.carry import Carried
from engscore.engine.predict.summary import PredictResult, predict_contacts
from engscore.engine.rfm import purchase_events, rfm_scores
from engscore.engine.scoring import score_contacts
from engscore.engine.status import STATUSES
from engscore.engine.thresholds import ThresholdSuggestion, suggest_thresholds
from engscore.errors import DataError
from engscore.io.carried import KEPT, CarriedState
from engscore.io.contacts import contacts_schema, load_contacts
from engscore.io.events import load_events, load_events_sorted
from engscore.io.ingest import (
    CONTACT_KEY,
    FileReport,
    left_out_note,
    row_group_ranges,
)
from engscore.io.outputs import output_format, scratch_folder, sha256_file, shown_path
from engscore.io.readers import first_line
from engscore.io.scores_file import write_scores
from engscore.io.store import EventStore, is_store, read_contact_numbers
from engscore.rules import (
    Rules,
    RulesFile,
    canonical_column_warnings,
    check_columns,
    check_profile_columns,
    default_rules_text,
    load_rules,
)
from engscore.schema import CONTACT, EVENT_TYPE
from engscore.timestamps import format_instant

PERCENTILES = (0.10, 0.25, 0.50, 0.75, 0.90, 0.99)


@dataclass(frozen=True)
class ScoreRequest:
    """What to score: inputs, how to read them, rules, ``as_of`` and an optional contacts file."""

    events: list[str]
    as_of: datetime
    rules_path: Path | None = None
    contacts_path: Path | None = None
    ingest: IngestOptions = field(default_factory=IngestOptions)


@dataclass(frozen=True)
class PreparedScoring:
    """Everything the engine needs, checked: rules, lazy events and contacts."""

    request: ScoreRequest
    rules_file: RulesFile
    events: pl.LazyFrame
    contacts: pl.LazyFrame | None
    files: list[FileReport]
    rows_rejected: int
    warnings: tuple[str, ...]
    #: ``events`` with contact numbers (ingest's or a store's), when it has them (``_numbered``).
    keyed: pl.LazyFrame | None = None
    #: The file of ``contact_id`` -> number, when kept apart from the events (a store's).
    contact_numbers: Path | None = None
    #: The table of number -> ``contact_id``, when made in memory (``io.collected``).
    contact_names: pl.DataFrame | None = None
    #: The events are sorted by contact, then time (one ``engscore ingest`` output).
    presorted: bool = False

    def without_events(self) -> PreparedScoring:
        """This preparation with no event (the same columns): for what only describes the
        scoring (provenance, summary), so that it does not hold events read into memory."""
        return replace(self, events=pl.LazyFrame(schema=self.events.collect_schema()), keyed=None)


@dataclass(frozen=True)
class ScoredContacts:
    """What ``compute_scores`` gives: the scores table and how it was made."""

    table: pl.DataFrame
    #: The fitted models (or why there are none).
    predictions: PredictResult
    #: How the carried state was got (``io.carried.KEPT`` ...), or None when every event was
    #: read.
    carried: str | None
    #: The preparation's warnings, and the predictions' when they could not be made.
    warnings: tuple[str, ...]


def prepare_scoring(request: ScoreRequest, scratch: Path | None = None) -> PreparedScoring:
    """Load and check rules, events and contacts; nothing is computed yet.

    Rules are loaded first so a bad rules file fails before any data is read. ``scratch``: a
    folder for the exports sorted by contact (``load_events_sorted``), for a scoring of every
    contact; without it the exports are read as they are (one contact's ``explain`` reads
    only its rows).
    """
    rules_file = load_rules(request.rules_path)
    warnings = list(rules_file.warnings)

    def check(schema: pl.Schema) -> None:
        check_columns(rules_file, schema)

    if scratch is not None:
        columns = rules_file.rules.columns_read
        # Rules that never read the event type as text compare it with names only.
        loaded = load_events_sorted(
            request.events, scratch, request.ingest, columns, check, EVENT_TYPE not in columns
        )
    else:
        loaded = load_events(request.events, request.ingest)
        check(loaded.events.collect_schema())
    warnings += loaded.warnings
    if loaded.rows_rejected:
        warnings.append(left_out_note(loaded.rows_rejected, loaded.reject_reasons))
    events = loaded.events
    contacts = None
    if request.contacts_path is not None:
        contacts = load_contacts(request.contacts_path)
        check_profile_columns(rules_file, contacts_schema(contacts, request.contacts_path))
        if not rules_file.rules.profile:
            warnings.append(
                f"{request.contacts_path}: the rules have no profile rules; "
                "the contacts file adds no points"
            )
    elif rules_file.rules.profile:
        warnings.append(
            f"{rules_file.source}: {len(rules_file.rules.profile)} profile rule(s) skipped: "
            "pass --contacts FILE to score contact attributes"
        )
    return PreparedScoring(
        request=request,
        rules_file=rules_file,
        events=events,
        contacts=contacts,
        files=loaded.files,
        rows_rejected=loaded.rows_rejected,
        warnings=tuple(warnings),
        keyed=loaded.keyed,
        contact_numbers=loaded.contact_numbers,
        contact_names=loaded.contact_names,
        presorted=loaded.presorted,
    )


def contact_query(
    events: pl.LazyFrame,
    rules: Rules,
    as_of: datetime,
    contacts: pl.LazyFrame | None = None,
    presorted: bool = False,
    carried: Carried | None = None,
) -> pl.LazyFrame:
    """Everything per contact that needs only that contact's events: points, facts, status.

    Columns follow SPEC section 5: the points columns, with ``status``, ``seasonal`` and
    ``unengaged`` after ``days_since_engaged``. Not sorted. ``presorted``: the events are
    sorted by contact, then time. ``carried``: what the older events leave (``carried``).
    """
    return score_contacts(
        events,
        rules,
        as_of,
        contacts,
        with_status=True,
        ordered=False,
        presorted=presorted,
        carried=carried,
    )


def _with_rfm(per_contact: pl.LazyFrame, rfm: pl.LazyFrame) -> pl.LazyFrame:
    rfm_columns = [c for c in rfm.collect_schema().names() if c != CONTACT]
    order = [*per_contact.collect_schema().names(), *rfm_columns]
    return per_contact.join(rfm, on=CONTACT, how="left").select(order).sort(CONTACT)


def _beside(scores: pl.DataFrame, extra: pl.DataFrame) -> pl.DataFrame:
    """``scores`` with the other columns of ``extra`` (one row per contact, or none) added on
    the right, by ``contact_id``; null where ``extra`` has no row.

    Joined on the id column alone and added beside: the scores table is not copied (a join of
    the whole table would briefly hold it twice, 1.2 GB for 4M contacts).
    """
    matched = scores.select(CONTACT).join(extra, on=CONTACT, how="left", maintain_order="left")
    return scores.hstack(matched.drop(CONTACT).get_columns())


#: Events per pass when scoring in contact buckets (bounds memory; see ``compute_scores``).
SCORE_BUCKET_ROWS = 5_000_000
#: The same for events held in memory (exports read by ``io.collected``): passes half as
#: large hold less beside the table (each pass filters the whole table). With the Parquet
#: read in pieces they no longer set the 20M export's peak (5M passes: 1.42-1.47 GB against
#: 1.44-1.50 GB, within noise), but the 20M CSV's: 1.50 GB against 1.63 GB with 5M.
IN_MEMORY_BUCKET_ROWS = SCORE_BUCKET_ROWS // 2


def _sorted_file_bounds(prepared: PreparedScoring, buckets: int, column: str) -> list[Any] | None:
    """Values of ``column`` (``contact_id`` or ingest's contact numbers) that cut a
    contact-sorted events file into ``buckets`` row-group ranges."""
    if not prepared.presorted:
        return None
    try:
        ranges = row_group_ranges(pq.ParquetFile(prepared.files[0].path).metadata, column)
    except (OSError, pa.ArrowException):
        return None
    if ranges is None or len(ranges) < 2:
        return None
    mins = [low for low, _ in ranges]
    step = len(mins) / buckets
    cuts = sorted({mins[round(step * k)] for k in range(1, buckets) if round(step * k) < len(mins)})
    return cuts or None


#: Contacts sampled (by id hash, all their events) to place the bucket bounds.
_SAMPLE_ONE_IN = 64


def _sampled_bounds(events: pl.LazyFrame, buckets: int) -> list[Any] | None:
    """Contacts (ids or numbers) that cut the events into ``buckets`` ranges of about equal
    rows."""
    sampled = (
        events.select(CONTACT)
        .filter(pl.col(CONTACT).hash(seed=1) % _SAMPLE_ONE_IN == 0)
        .collect(engine="streaming")
        .to_series()
        .sort()
    )
    if sampled.len() < buckets:
        return None
    cuts = {sampled[sampled.len() * k // buckets] for k in range(1, buckets)}
    return sorted(c for c in cuts if c is not None) or None


def _contact_selections(
    prepared: PreparedScoring, events: pl.LazyFrame, file_column: str, buckets: int
) -> tuple[list[pl.Expr], bool]:
    """Filters that split the events into ``buckets`` shares by contact, and whether they are
    contiguous contact ranges (else hash buckets)."""
    if buckets == 1:
        return [pl.lit(True)], True
    bounds = _sorted_file_bounds(prepared, buckets, file_column) or _sampled_bounds(events, buckets)
    if bounds is None:
        bucket = pl.col(CONTACT).hash(seed=0) % buckets
        return [bucket == index for index in range(buckets)], False
    # Contiguous contact ranges: on contact-sorted files (an `engscore ingest` output, the
    # store's month files) each pass reads only its own row groups (Parquet statistics).
    contact = pl.col(CONTACT)
    edges: list[Any] = [None, *bounds, None]
    return [
        (contact >= low if low is not None else pl.lit(True))
        & (contact < high if high is not None else pl.lit(True))
        for low, high in zip(edges[:-1], edges[1:], strict=True)
    ], True


def _bucketed(
    prepared: PreparedScoring,
    events: pl.LazyFrame,
    file_column: str,
    rules: Rules,
    as_of: datetime,
    buckets: int,
    purchases: Future[pl.DataFrame],
    with_ids: bool,
    carried: CarriedState | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Score contact by contact bucket: each pass holds about 1/``buckets`` of the events
    (``file_column``: the Parquet column holding the events' ``contact_id``; ``purchases``:
    the collected ``purchase_events``, for RFM). ``with_ids``: also return the ``_event_ids``
    of the (numbered) events, read in the same passes; ``carried``: a store's carried state,
    so that each pass reads only the events from its boundary on.

    Points, facts and status only need a contact's own events, so contacts are split by a hash
    of their id and each share is scored on its own; RFM (quantiles over all buyers) runs once
    on the purchases, which are few. The result does not depend on the split.
    """
    selections, ranges = _contact_selections(prepared, events, file_column, buckets)
    parts, id_parts = [], []
    for selection in selections:
        mine = events.filter(selection)
        theirs = prepared.contacts.filter(selection) if prepared.contacts is not None else None
        share = carried.part(mine, selection) if carried is not None else None
        query = contact_query(mine, rules, as_of, theirs, prepared.presorted, share)
        part, *ids = _collect_with_ids(query, mine if with_ids else None)
        # Ranges in order, each sorted: together sorted, without sorting the whole table.
        parts.append(part.sort(CONTACT) if ranges else part)
        id_parts += ids
    rfm = rfm_scores(purchases.result().lazy(), rules.rfm, as_of).collect()
    ids_found = pl.concat(id_parts) if id_parts else None
    if not ranges:
        return _with_rfm(pl.concat(parts).lazy(), rfm.lazy()).collect(), ids_found
    scores = pl.concat(parts, rechunk=False)
    del parts
    return _beside(scores, rfm), ids_found


def _collect_with_ids(query: pl.LazyFrame, numbered: pl.LazyFrame | None) -> list[pl.DataFrame]:
    """``[query]`` collected, and the ``_event_ids`` of ``numbered`` events when given: in
    one run, which reads the events once for both (a pass of its own cost 0.2 CPU-seconds
    at 20M events)."""
    if numbered is None:
        return [query.collect(engine="streaming")]
    return pl.collect_all([query, _event_ids(numbered)], engine="streaming")


#: The text contact ids while ``contact_id`` holds contact numbers (ingest's or a store's).
_CONTACT_TEXT = "_contact_text"


def _numbered(prepared: PreparedScoring) -> pl.LazyFrame | None:
    """The events with ``contact_id`` replaced by their contact numbers, when usable.

    Grouping and joining on integers instead of e-mail strings saves a fifth of the scoring
    time on a contact-sorted file and two fifths on a store's month files. Not used when a
    rule reads ``contact_id`` itself or a contacts file (keyed by text id) is given.
    """
    if prepared.keyed is None or prepared.contacts is not None:
        return None
    if any(CONTACT in rule.columns_read for rule in prepared.rules_file.rules.points):
        return None
    # Ranges of numbers read little of each file: an ingest output and a store's month files
    # are sorted by number (an ingest output numbers in id order, so also by id).
    return prepared.keyed.rename({CONTACT: _CONTACT_TEXT, CONTACT_KEY: CONTACT})


def _store_ids(numbers: Path) -> pl.DataFrame:
    """Contact number -> text id, from a store's ``contacts.parquet``."""
    return read_contact_numbers(numbers).select(
        pl.col(CONTACT_KEY).alias(CONTACT), pl.col(CONTACT).alias(_CONTACT_TEXT)
    )


def _event_ids(numbered: pl.LazyFrame) -> pl.LazyFrame:
    """Contact number -> text id, from numbered events.

    The first row of each contact is where the number changes: one row per contact in sorted
    events; ``unique`` makes it one in any order (and keeps the streaming engine from holding
    every event's id meanwhile: a fifth less peak memory).
    """
    number = pl.col(CONTACT)
    firsts = numbered.select(CONTACT, _CONTACT_TEXT).filter(number.ne_missing(number.shift(1)))
    return firsts.unique(CONTACT)


def _with_contact_ids(columns: list[pl.Series], ids: pl.DataFrame) -> pl.DataFrame:
    """The scores (``columns``, keyed by contact number) with the text ids (``_store_ids`` or
    ``_event_ids``: each number once) back, sorted by id. Empties ``columns``: pass the only
    reference to them.
    """
    numbers = columns[0]
    assert numbers.name == CONTACT
    ids = ids.sort(CONTACT)
    keys = ids.get_column(CONTACT)
    if keys.len() and keys[0] == 0 and keys[-1] == keys.len() - 1:
        # Each number once, sorted, from 0 to n - 1 (ingest and the store number densely):
        # the id of number k is row k, a gather instead of a join.
        text = ids.get_column(_CONTACT_TEXT).gather(numbers)
    else:
        text = (
            numbers.to_frame()
            .join(ids, on=CONTACT, how="left", maintain_order="left")
            .get_column(_CONTACT_TEXT)
        )
    text = text.alias(CONTACT)
    columns[0] = text
    if text.is_sorted():
        return pl.DataFrame(columns)
    # Contacts numbered since the store began are out of id order. Sorted column by column,
    # each old column freed as its sorted copy is made: sorting the whole table at once would
    # briefly hold it twice (+1.2 GB for 4M contacts).
    order = text.arg_sort()
    sorted_columns = []
    while columns:
        sorted_columns.append(columns.pop(0).gather(order))
    return pl.DataFrame(sorted_columns)


def _carried_state(
    prepared: PreparedScoring, numbered: pl.LazyFrame | None, store: EventStore | None
) -> CarriedState | None:
    """The carried state to score with, when the scoring may use one: a numbered store's
    events scored by number (``numbered``), no contacts file (profile rules need every
    event)."""
    if store is None or numbered is None or prepared.contacts is not None:
        return None
    state = CarriedState(store, numbered, prepared.rules_file.rules, prepared.request.as_of)
    return state if state.useful else None


def _collected(query: pl.LazyFrame) -> pl.DataFrame:
    return query.collect(engine="streaming")


def compute_scores(prepared: PreparedScoring, carry_in: EventStore | None = None) -> ScoredContacts:
    """Run the scoring query (one collect, streaming engine), then add the predictions.

    The buy-till-you-die models are fitted on the buyers' purchase summaries (a small table);
    when they cannot be (predictions off, too few buyers), the columns stay null and the
    reason joins the warnings. ``carry_in``: the store whose carried state the scoring may
    use and keep (``engscore run``).
    """
    return score_passes(prepared, carry_in).finish()


@dataclass(frozen=True)
class ScoredPasses:
    """What the passes over the events give (``score_passes``): the scores still keyed as
    the passes keyed them, beside the predictions; ``finish`` makes the scores table. The
    events are no longer read: dropping them first frees their memory for the finish."""

    scores: pl.DataFrame
    #: Contact number -> text id, when the passes keyed contacts by number.
    ids: pl.DataFrame | None
    predicted: PredictResult
    carried: str | None
    warnings: tuple[str, ...]

    def finish(self) -> ScoredContacts:
        """The scores table: predictions beside the scores, the text ids back, by id."""
        scores = self.scores
        names = list(self.predicted.column_names)
        try:
            if self.predicted.frame is None:
                scores = scores.with_columns(pl.lit(None, dtype=pl.Float64).alias(n) for n in names)
            else:
                scores = _beside(scores, self.predicted.frame.select(CONTACT, *names))
            if self.ids is not None:
                columns = scores.get_columns()
                del scores  # the columns are the only reference: sorting can free them one by one
                scores = _with_contact_ids(columns, self.ids)
        except pl.exceptions.PolarsError as exc:
            raise DataError(f"cannot score: {first_line(exc)}") from exc
        return ScoredContacts(scores, self.predicted, self.carried, self.warnings)


def score_passes(prepared: PreparedScoring, carry_in: EventStore | None = None) -> ScoredPasses:
    """The passes of ``compute_scores`` over the events, and the models' fit beside them."""
    rules = prepared.rules_file.rules
    as_of = prepared.request.as_of
    rows = sum(f.rows_read for f in prepared.files)
    numbered = _numbered(prepared)
    events = prepared.events if numbered is None else numbered
    carried = _carried_state(prepared, numbered, carry_in)
    how_carried = None
    if carried is not None and carried.how == KEPT:
        # The passes read the recent months and the carried files only.
        rows = carried.rows_read()
    # Only the in-memory read names contacts in a table of its own.
    per_pass = SCORE_BUCKET_ROWS if prepared.contact_names is None else IN_MEMORY_BUCKET_ROWS
    buckets = max(1, -(-rows // per_pass))
    try:
        # The models' fit is Python and numpy (plus a 0.3 s scipy import) while the scoring
        # query runs in Polars' threads without the GIL: running both at once overlaps them.
        with ThreadPoolExecutor(max_workers=1) as pool:
            # Purchases are few: read once, for the models now and RFM after the buckets.
            buying = pool.submit(_collected, purchase_events(events, rules.rfm, as_of))
            predicting = pool.submit(lambda: predict_contacts(buying.result().lazy(), rules, as_of))
            # Text ids for contact numbers: a store keeps them in a file; otherwise they are
            # read from the events in the scoring passes.
            numbers = prepared.contact_numbers
            naming = pool.submit(_store_ids, numbers) if numbered is not None and numbers else None
            id_table = prepared.contact_names if numbered is not None else None
            from_events = numbered is not None and naming is None and id_table is None
            file_column = CONTACT if numbered is None else CONTACT_KEY
            scores, ids = _bucketed(
                prepared, events, file_column, rules, as_of, buckets, buying, from_events, carried
            )
            if carried is not None:
                carried.finish()
                how_carried = carried.how
            predicted = predicting.result()
            if naming is not None:
                ids = naming.result()
            elif id_table is not None:
                ids = id_table
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"cannot score: {first_line(exc)}") from exc
    finally:
        if carried is not None:
            carried.close()
    warnings = prepared.warnings
    if predicted.message and rules.predict.enabled:
        warnings = (*warnings, predicted.message)
    return ScoredPasses(scores, ids, predicted, how_carried, warnings)


@dataclass(frozen=True)
class ScoreSummary:
    """The figures ``engscore score`` reports."""

    output: Path
    as_of: datetime
    rules: str
    files: list[FileReport]
    contacts: int
    grades: list[tuple[str, int]]
    statuses: list[tuple[str, int]]
    buyers: int
    mean: float | None
    percentiles: dict[str, float]
    groups: list[str]
    warnings: list[str]
    #: How the carried state was got (``engscore run``), or None when every event was read.
    carried: str | None = None


def summarise(scored: ScoredContacts, prepared: PreparedScoring, output: Path) -> ScoreSummary:
    """Contacts, grade counts (highest grade first) and score percentiles."""
    return table_summary(
        scored.table,
        prepared.rules_file,
        prepared.request.as_of,
        prepared.files,
        list(scored.warnings),
        output,
        scored.carried,
    )


def table_summary(
    scores: pl.DataFrame,
    rules_file: RulesFile,
    as_of: datetime,
    files: list[FileReport],
    warnings: list[str],
    output: Path,
    carried: str | None = None,
) -> ScoreSummary:
    """The ``ScoreSummary`` of a scores table, however it was made (the Spark engine's too)."""
    rules = rules_file.rules
    counts = dict(scores.group_by("grade").len().iter_rows())
    grades = [(name, int(counts.get(name, 0))) for name, _ in rules.grade_order()]
    by_status = dict(scores.group_by("status").len().iter_rows())
    statuses = [(name, int(by_status.get(name, 0))) for name in STATUSES]
    score = scores["score"]
    percentiles = (
        {f"p{round(q * 100)}": float(score.quantile(q, "nearest") or 0.0) for q in PERCENTILES}
        if score.len()
        else {}
    )
    mean = score.mean()
    return ScoreSummary(
        output=output,
        as_of=as_of,
        rules=rules_file.source,
        files=files,
        contacts=scores.height,
        grades=grades,
        statuses=statuses,
        buyers=int(scores["r"].is_not_null().sum()),
        mean=float(mean) if isinstance(mean, int | float) else None,
        percentiles=percentiles,
        groups=rules.groups,
        warnings=warnings,
        carried=carried,
    )


def provenance(prepared: PreparedScoring, root: Path | None = None) -> dict[str, Any]:
    """What a scores file was made from: as-of, rules (with hash), inputs (with hashes; an
    event store as such, without them).

    Paths inside ``root`` (a project folder) are written relative to it.
    """
    request = prepared.request
    if request.rules_path is not None:
        rules_hash = sha256_file(request.rules_path)
    else:
        rules_hash = hashlib.sha256(default_rules_text().encode("utf-8")).hexdigest()
    inputs = [
        (
            {"path": shown_path(f.path, root), "store": True}
            if is_store(f.path)
            else {
                "path": shown_path(f.path, root),
                "size": f.path.stat().st_size,
                "sha256": sha256_file(f.path),
            }
        )
        for f in prepared.files
        if f.path.is_file() or is_store(f.path)
    ]
    return {
        "as_of": format_instant(request.as_of),
        "rules": (
            shown_path(request.rules_path, root)
            if request.rules_path is not None
            else prepared.rules_file.source
        ),
        "rules_sha256": rules_hash,
        "inputs": inputs,
        "contacts_file": (
            shown_path(request.contacts_path, root) if request.contacts_path else None
        ),
        "engscore_version": __version__,
    }


def run_score(
    request: ScoreRequest,
    output: Path,
    record_in: Path | None = None,
    root: Path | None = None,
    carry_in: EventStore | None = None,
) -> ScoreSummary:
    """``engscore score``: score the events and write ``output`` (.parquet or .csv) atomically.

    With ``record_in`` (a working directory), also record the output and its provenance in
    ``record_in/.engscore/last-score.json`` for ``engscore segment``. ``root``: a project
    folder, paths in the provenance relative to it; ``carry_in``: see ``compute_scores``.
    """
    output_format(output)  # a bad output name fails before any work
    with scratch_folder(output) as scratch:
        prepared = prepare_scoring(request, scratch)
        # What follows the passes does not read the events: this one drops them, and the
        # memory of the events read into memory goes back before the scores table is made.
        described = prepared.without_events()
        # Hashing the inputs for the provenance reads them once more: it overlaps the scoring.
        with ThreadPoolExecutor(max_workers=1) as pool:
            hashing = pool.submit(provenance, described, root)
            passes = score_passes(prepared, carry_in)
            del prepared
            scored = passes.finish()
            del passes
            made_from = hashing.result()
            # The summary needs only the table: it is made while the file is written.
            summarising = pool.submit(summarise, scored, described, output)
            write_scores(scored.table, output, made_from, record_in)
        return summarising.result()


@contextmanager
def prepared_for_every_contact(request: ScoreRequest) -> Iterator[PreparedScoring]:
    """``prepare_scoring`` for a scoring of every contact without an output file (``rules
    suggest-thresholds``): exports are read once into memory, or sorted into a temporary
    folder (the system's) when too large, removed on the way out."""
    with tempfile.TemporaryDirectory(prefix="engscore-") as scratch:
        yield prepare_scoring(request, Path(scratch))


def score_distribution(prepared: PreparedScoring) -> ThresholdSuggestion:
    """``engscore rules suggest-thresholds``: score, then suggest warm/hot thresholds."""
    return suggest_thresholds(compute_scores(prepared).table["score"])


@dataclass(frozen=True)
class RulesReport:
    """What ``engscore rules validate`` found."""

    rules_file: RulesFile
    warnings: list[str]


def validate_rules_file(
    path: Path, events: list[str], options: IngestOptions | None = None
) -> RulesReport:
    """Load a rules file; check its columns against ``events`` when given.

    Without events, columns that are not canonical are warnings (other input columns are
    kept by ingest, so they may exist); with events, they are errors.
    """
    rules_file = load_rules(path)
    warnings = list(rules_file.warnings)
    if events:
        loaded = load_events(events, options)
        check_columns(rules_file, loaded.events.collect_schema())
    else:
        warnings += canonical_column_warnings(rules_file)
    return RulesReport(rules_file, warnings)
