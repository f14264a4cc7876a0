"""The scores file: written by ``engscore score`` (and ``engscore run``), found and read by
``segment`` and ``report``.

A Parquet scores file carries what it was made from in its footer (``engscore.<key>``
metadata: as-of instant, rules and their hash, inputs and their hashes); ``engscore score``
also records its last output in ``.engscore/last-score.json`` of the working directory, so
``engscore segment`` without ``--scores`` finds it. CSV scores files carry no metadata.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from engscore.errors import ConfigError, DataError
from engscore.io.outputs import write_frame, write_json
from engscore.io.readers import first_line
from engscore.timestamps import format_instant, parse_instant

#: Parquet metadata of a scores file: what produced it (read back by later commands).
SCORES_METADATA_KEY = b"engscore.scores"
#: Where ``engscore score`` records its last output, relative to the working directory, so
#: ``engscore segment`` without ``--scores`` finds it.
LAST_SCORE_RECORD = Path(".engscore") / "last-score.json"
#: The provenance of a scores folder (Spark's part files), beside them; Spark and the
#: ``*.parquet`` glob skip names that start with ``_``.
FOLDER_PROVENANCE = "_engscore.json"


def is_scores_folder(path: Path) -> bool:
    """True for a folder of Parquet part files (``engscore score --engine spark``)."""
    return path.is_dir() and any(path.glob("*.parquet"))


def write_folder_provenance(folder: Path, made_from: dict[str, Any]) -> None:
    """Record ``made_from`` beside a scores folder's part files."""
    write_json(made_from, folder / FOLDER_PROVENANCE)


def record_last_scores(output: Path, made_from: dict[str, Any], workdir: Path) -> None:
    """Record ``output`` as ``workdir``'s last scores, for ``engscore segment``."""
    write_json({"scores": str(output.resolve()), **made_from}, workdir / LAST_SCORE_RECORD)


def scores_metadata(made_from: dict[str, Any]) -> dict[str, str]:
    """Provenance stored in a Parquet scores file (``engscore.<key>``, JSON for non-strings)."""
    metadata = {SCORES_METADATA_KEY.decode(): "1"}
    for key, value in made_from.items():
        metadata[f"engscore.{key}"] = value if isinstance(value, str) else json.dumps(value)
    return metadata


def write_scores(
    scores: pl.DataFrame, output: Path, made_from: dict[str, Any], record_in: Path | None = None
) -> None:
    """Write ``scores`` to ``output`` (.parquet or .csv) atomically, ``made_from`` in its
    metadata; with ``record_in`` (a working directory), record it in its last-score record."""
    write_frame(scores, output, metadata=scores_metadata(made_from))
    if record_in is not None:
        record_last_scores(output, made_from, record_in)


def _recorded_scores(workdir: Path) -> tuple[Path, dict[str, Any]]:
    record_path = workdir / LAST_SCORE_RECORD
    if record_path.is_file():
        try:
            record = json.loads(record_path.read_text("utf-8"))
            return Path(record.pop("scores")), record
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{record_path}: not a record written by engscore score") from exc
    fallback = workdir / "scores.parquet"
    if fallback.is_file():
        return fallback, {}
    raise ConfigError(
        "no scores to segment: run `engscore score EVENTS...` here first, or pass --scores FILE"
    )


def _parquet_provenance(path: Path) -> dict[str, Any]:
    if path.is_dir():
        record = path / FOLDER_PROVENANCE
        try:
            kept = json.loads(record.read_text("utf-8")) if record.is_file() else {}
        except ValueError as exc:
            raise DataError(f"{record}: not a record written by engscore score") from exc
        return kept if isinstance(kept, dict) else {}
    try:
        metadata = pq.read_metadata(path).metadata or {}
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: cannot read scores: {first_line(exc)}") from exc
    found: dict[str, Any] = {}
    for raw_key, raw_value in metadata.items():
        key = raw_key.decode("utf-8", "replace")
        if not key.startswith("engscore.") or key == "engscore.scores":
            continue
        value = raw_value.decode("utf-8", "replace")
        try:
            found[key.removeprefix("engscore.")] = (
                value if key in ("engscore.as_of", "engscore.rules") else json.loads(value)
            )
        except ValueError:
            found[key.removeprefix("engscore.")] = value
    return found


def _scan_scores(path: Path) -> pl.LazyFrame:
    if is_scores_folder(path):
        # Part files in name order: Spark writes a sorted table's ranges in order.
        return pl.scan_parquet(path / "*.parquet")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.suffix.lower() == ".csv":
        return pl.scan_csv(path, try_parse_dates=True, infer_schema_length=None)
    return pl.scan_parquet(path)


def read_scores(path: Path, columns: list[str] | None = None) -> pl.DataFrame:
    """Read a scores file written by ``engscore score`` (.parquet or .csv); only ``columns``
    when given."""
    scan = _scan_scores(path)
    try:
        return (scan if columns is None else scan.select(columns)).collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{path}: cannot read scores: {first_line(exc)}") from exc


def scores_schema(path: Path) -> pl.Schema:
    """The columns of a scores file: a Parquet file's from its footer (a CSV file's types
    are inferred from all its rows, as ``read_scores`` does)."""
    try:
        return _scan_scores(path).collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{path}: cannot read scores: {first_line(exc)}") from exc


def locate_scores(
    workdir: Path, scores: Path | None, as_of: datetime | None
) -> tuple[Path, dict[str, Any], datetime]:
    """The scores file to use, what it was made from, and its as-of instant.

    ``scores`` None: the last ``engscore score`` of ``workdir``. The as-of instant comes from
    the scores (Parquet metadata or the record); ``as_of`` only stands in when neither has one.
    """
    made_from: dict[str, Any]
    if scores is not None:
        scores_path, made_from = scores, {}
    else:
        scores_path, made_from = _recorded_scores(workdir)
    if not (scores_path.is_file() or is_scores_folder(scores_path)):
        raise DataError(f"{scores_path}: file not found")
    if scores_path.suffix.lower() == ".parquet" or is_scores_folder(scores_path):
        made_from = {**made_from, **_parquet_provenance(scores_path)}
    if "as_of" in made_from:
        instant = parse_instant(str(made_from["as_of"]), "UTC", "scores as_of")
    elif as_of is not None:
        instant = as_of
        made_from["as_of"] = format_instant(as_of)
    else:
        raise ConfigError(
            f"{scores_path}: the scores do not say when they were computed; pass --as-of"
        )
    return scores_path, made_from, instant


def recorded_rules(made_from: dict[str, Any], given: Path | None) -> Path | None:
    """``-r`` if given, else the rules file the scores were made with (when it still exists)."""
    if given is not None:
        return given
    recorded = made_from.get("rules")
    if isinstance(recorded, str) and Path(recorded).is_file():
        return Path(recorded)
    return None
