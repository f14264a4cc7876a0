"""``engscore explain``: the point ledger of one contact.

The ledger is the same one the score is summed from (``engine.ledger.ledger``), filtered to the
contact before anything else so Parquet inputs are read with predicate pushdown. Every
matching event is listed, with the points it earned or why it earned none; cap and clamp
adjustments are lines of their own, so the lines add up to the score ``engscore score`` reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from engscore.engine.ledger import contact_ledger
from engscore.engine.scoring import score_contacts
from engscore.errors import DataError
from engscore.io.contacts import normalise_contact_id
from engscore.io.outputs import CSV_DATETIME
from engscore.io.readers import first_line
from engscore.schema import CONTACT
from engscore.score import PreparedScoring
from engscore.timestamps import format_instant


@dataclass(frozen=True)
class Explanation:
    """One contact's ledger and the score it adds up to."""

    contact_id: str
    as_of: datetime
    rules: str
    found: bool
    #: Ledger rows in time order (profile and cap rows last); see ``engine.ledger.LEDGER_SCHEMA``.
    lines: pl.DataFrame
    groups: dict[str, float]
    #: What clipping to [min_score, max_score] added (0.0 when the score was not clipped).
    clamp: float
    score: float
    grade: str | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (timestamps as ISO 8601 with Z)."""
        lines = self.lines.with_columns(pl.col("timestamp").dt.strftime(CSV_DATETIME)).drop(CONTACT)
        return {
            "contact_id": self.contact_id,
            "as_of": format_instant(self.as_of),
            "rules": self.rules,
            "found": self.found,
            "score": self.score,
            "grade": self.grade,
            "groups": self.groups,
            "clamp": self.clamp,
            "lines": lines.to_dicts(),
        }


def explain_contact(prepared: PreparedScoring, contact: str) -> Explanation:
    """The ledger of ``contact`` (normalised like ingest: e-mail addresses lower-cased)."""
    contact_id = normalise_contact_id(contact)
    rules = prepared.rules_file.rules
    as_of = prepared.request.as_of
    mine = prepared.events.filter(pl.col(CONTACT) == contact_id)
    theirs = (
        prepared.contacts.filter(pl.col(CONTACT) == contact_id)
        if prepared.contacts is not None
        else None
    )
    try:
        # One run for both: the contact's events are read once.
        lines, row = pl.collect_all(
            [
                contact_ledger(mine, rules, as_of, contact_id, theirs),
                score_contacts(mine, rules, as_of, theirs),
            ]
        )
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"cannot explain: {first_line(exc)}") from exc
    groups = dict.fromkeys(rules.groups, 0.0)
    if row.height:
        groups = {g: float(row[f"score_{g}"][0]) for g in rules.groups}
        score = float(row["score"][0])
        grade: str | None = str(row["grade"][0])
    else:
        score, grade = 0.0, None
    return Explanation(
        contact_id=contact_id,
        as_of=as_of,
        rules=prepared.rules_file.source,
        found=row.height > 0,
        lines=lines,
        groups=groups,
        clamp=score - sum(groups.values()) if row.height else 0.0,
        score=score,
        grade=grade,
    )
