"""The nightly run's carried state: what a store's older months leave for scoring.

``engscore run`` rescores every contact each night, but the months of the store before the
boundary (``engine.carry.carry_boundary``: the start of the month in which the ``unengaged``
window opens, about seven months back) only change when an export brings events that old,
or when ``engscore store compact`` rewrites them. What they leave for scoring
(``engine.carry.carry``: per-contact facts that add up, and the events that can still earn points
or place a streak) is kept in the store::

    store/carried/
      state.json       what it was made from: boundary, rules and engscore version, the
                       part files of every month before the boundary
      facts.parquet    per-contact facts of the events before the boundary
      events.parquet   the events before the boundary that can still matter to points

and the night scores from it plus the events from the boundary on: the same scores file, bit
for bit (the property tests in ``tests/engine/test_carry.py`` check the engine,
``tests/test_run.py`` the files). The state is used when everything it was made from is
unchanged; when the boundary has moved on (a new month) it is rolled forward over the months
in between; otherwise (first run, other rules, an old month changed) it is made afresh from
the store, which costs that night a pass over the older months. Files are written to a
temporary folder and swapped in whole; a state that cannot be read is made afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from engscore import __version__
from engscore.engine.carry import Carried, carry, carry_boundary, roll
from engscore.engine.counting import points_columns
from engscore.engine.facts import fact_aggregates
from engscore.io.outputs import ChunkWriter, recover_interrupted, swap_folder, write_json
from engscore.io.store import EventStore
from engscore.rules import Rules
from engscore.schema import CONTACT, TIMESTAMP
from engscore.timestamps import format_instant, parse_instant

FOLDER = "carried"
STATE = "state.json"
FACTS = "facts.parquet"
EVENTS = "events.parquet"
#: How a run got its carried state (the run's manifest records it).
KEPT, ROLLED, MADE = "kept", "rolled forward", "made"


def _key(rules: Rules) -> str:
    """What the carried files depend on besides the events: the rules and this version."""
    text = json.dumps([__version__, rules.model_dump(mode="json")], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _months_before(parts: list[Path], boundary: datetime) -> dict[str, list[list[Any]]]:
    """The part files (name, size) of each month folder before ``boundary``'s month."""
    first_kept = f"{boundary:%Y-%m}"
    months: dict[str, list[list[Any]]] = {}
    for part in parts:
        if part.parent.name < first_kept:
            months.setdefault(part.parent.name, []).append([part.name, part.stat().st_size])
    return months


def _read_state(folder: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((folder / STATE).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("version") != 1:
        return None
    if not all((folder / name).is_file() for name in (FACTS, EVENTS)):
        return None
    return state


def _expected(events: pl.LazyFrame, rules: Rules, as_of: datetime) -> dict[str, pl.Schema]:
    """The schemas of the carried files for ``events`` (the view the scoring reads)."""
    schema = events.collect_schema()
    facts = fact_aggregates(pl.LazyFrame(schema=schema), rules, as_of, True, windows=False)
    events_schema = pl.Schema({n: schema[n] for n in points_columns(schema, rules)})
    return {FACTS: facts.collect_schema(), EVENTS: events_schema}


def _readable(folder: Path, expected: dict[str, pl.Schema]) -> bool:
    """Whether the carried files have readable footers and the schemas scoring expects (a
    damaged or older file is made afresh rather than failing the run)."""
    for name, schema in expected.items():
        try:
            found = pl.read_parquet_schema(folder / name)
        except (OSError, pl.exceptions.PolarsError):
            return False
        if dict(found) != dict(schema):
            return False
    return True


def _usable_boundary(
    state: dict[str, Any] | None,
    folder: Path,
    key: str,
    events: pl.LazyFrame,
    rules: Rules,
    as_of: datetime,
) -> datetime | None:
    """The boundary of the carried files in ``folder`` (``state``: their ``state.json``) when
    they can be used: made for these rules and version (``key``), readable, with the schemas
    the scoring expects."""
    if state is None or state.get("key") != key:
        return None
    if not _readable(folder, _expected(events, rules, as_of)):
        return None
    try:
        return parse_instant(str(state.get("boundary")))
    except ValueError:
        return None


def _scanned(folder: Path, boundary: datetime) -> Carried:
    return Carried(boundary, pl.scan_parquet(folder / FACTS), pl.scan_parquet(folder / EVENTS))


class CarriedState:
    """A store's carried state for one scoring run at ``as_of``, contact range by range.

    ``how`` says whether the files were kept, are rolled forward or made afresh (then
    ``part`` computes and writes each range's share, and ``finish`` puts the new files in
    place once every range is done; ``close`` drops unfinished files).
    """

    def __init__(
        self, store: EventStore, events: pl.LazyFrame, rules: Rules, as_of: datetime
    ) -> None:
        self.rules = rules
        self.boundary = carry_boundary(rules, as_of)
        self.folder = store.root / FOLDER
        recover_interrupted(self.folder)
        parts = store.part_files()
        self.months = _months_before(parts, self.boundary)
        self._recent_parts = [p for p in parts if p.parent.name >= f"{self.boundary:%Y-%m}"]
        self.key = _key(rules)
        state = _read_state(self.folder)
        self.previous = _usable_boundary(state, self.folder, self.key, events, rules, as_of)
        recorded = state.get("months") if state is not None else None
        if self.previous == self.boundary and recorded == self.months:
            self.how = KEPT
        elif (
            self.previous is not None
            and self.previous < self.boundary
            and recorded == _months_before(parts, self.previous)
        ):
            self.how = ROLLED
        else:
            self.how = MADE
        self._temporary = self.folder.with_name(f".{self.folder.name}.tmp-{os.getpid()}")
        self._writers: tuple[ChunkWriter, ChunkWriter] | None = None

    @property
    def useful(self) -> bool:
        """False when no month lies before the boundary (nothing to carry)."""
        return bool(self.months)

    def rows_read(self) -> int:
        """Rows a scoring with kept files reads: the store's from the boundary on, and the
        carried files'."""
        files = [self.folder / FACTS, self.folder / EVENTS, *self._recent_parts]
        return sum(pq.ParquetFile(path).metadata.num_rows for path in files)

    def part(self, events: pl.LazyFrame, selection: pl.Expr) -> Carried:
        """The carried share of the contacts ``selection`` keeps (``events``: theirs)."""
        if self.how == KEPT:
            return _scanned(self.folder, self.boundary).filter(selection)
        if self.how == ROLLED:
            assert self.previous is not None
            old = _scanned(self.folder, self.previous).filter(selection)
            fresh = roll(old, events, self.rules, self.boundary)
        else:
            fresh = carry(events, self.rules, self.boundary)
        facts, kept = pl.collect_all(
            [fresh.facts.sort(CONTACT), fresh.events.sort(CONTACT, TIMESTAMP)],
            engine="streaming",
        )
        if self._writers is None:
            if self._temporary.exists():
                shutil.rmtree(self._temporary)
            self._temporary.mkdir(parents=True)
            self._writers = (
                ChunkWriter(self._temporary / FACTS, "parquet"),
                ChunkWriter(self._temporary / EVENTS, "parquet"),
            )
        self._writers[0].write(facts)
        self._writers[1].write(kept)
        return Carried(self.boundary, facts.lazy(), kept.lazy())

    def finish(self) -> None:
        """Put the files made by ``part`` in place (nothing to do when they were kept)."""
        if self._writers is None:
            return
        self._close_writers()
        state = {
            "version": 1,
            "key": self.key,
            "boundary": format_instant(self.boundary),
            "months": self.months,
        }
        write_json(state, self._temporary / STATE)
        swap_folder(self._temporary, self.folder)

    def close(self) -> None:
        """Drop files ``finish`` did not put in place."""
        self._close_writers()
        if self._temporary.exists():
            shutil.rmtree(self._temporary, ignore_errors=True)

    def _close_writers(self) -> None:
        for writer in self._writers or ():
            writer.close()
        self._writers = None
