"""``engscore.spark.score``: the engine on Apache Spark, with the same Polars functions.

Why this way: every contact's points, facts and status depend only on its own events, so Spark
can hash-partition the events by contact and run engscore's own Polars scoring on each
partition; only RFM's ranks and the models' fits need every buyer, and they need only small
tables (value counts, distinct purchase rows). So there is no second implementation of the
rules: Spark moves rows, Polars computes.

The stages (``score_with_report``)
    A. Row by row (``mapInArrow``): the preset's mapping and ``canonicalise``, exactly as
       ``engscore ingest`` reads a file; rejected rows are counted (an accumulator) and
       dropped, account-level events skipped.
    B. Per contact bucket (``groupBy(bucket).applyInArrow``, the bucket a hash of the
       canonical ``contact_id``; with contacts, ``cogroup``): machine opens flagged,
       duplicates dropped and events sorted (``prepare_events``), then the points, facts and
       status of each contact (``contact_query``), its RFM measures (``buyer_measures``) and
       purchase summary (``purchase_summary``). One row per contact, cached.
    Global (driver): the measures' value counts and the distinct purchase and spend rows,
       counted by Spark and collected (one row per distinct value, never per contact); RFM's
       cuts (``rfm_cuts``) and the models' fit (``fit_models``), the same functions and the
       same inputs, in the same order, as on one machine.
    C. Row by row again: the RFM scores and segment (``score_buyers``) and the predictions
       (``predict_buyers``) from the cuts and the fitted parameters, which travel with the
       task (a few numbers).

Equality with ``engscore score`` (the tests check every column): the same rows reach the same
functions; integer and score columns are widened where Spark has no unsigned type.
"""

from __future__ import annotations

import os
import sys
import warnings as python_warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
from pyspark import StorageLevel
from pyspark.accumulators import AccumulatorParam
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

from engscore.config import IngestOptions
from engscore.engine.normalise import (
    INTERNAL_COLUMNS,
    LINE_BITS,
    SKIPPED_ACCOUNT_LEVEL,
    canonicalise,
    duplicate_key,
)
from engscore.engine.predict.summary import (
    PURCHASE_ROW_COLUMNS,
    SPEND_ROW_COLUMNS,
    SUMMARY_COLUMNS,
    FittedModels,
    fit_models,
    merge_rows,
    output_columns,
    predict_buyers,
    purchase_summary,
)
from engscore.engine.rfm import (
    MEASURE_COLUMNS,
    RfmCuts,
    buyer_measures,
    merge_value_counts,
    rfm_cuts,
    score_buyers,
)
from engscore.errors import ConfigError, DataError
from engscore.io.contacts import keyed_by_contact
from engscore.io.ingest import CONTACT_KEY, choose_preset, prepare_events
from engscore.io.readers import InputFile, flatten_structs
from engscore.presets import get_preset
from engscore.presets.base import MapContext, Preset
from engscore.rules import Rules, RulesFile, check_columns, load_rules, rules_from_doc
from engscore.schema import CANONICAL_SCHEMA, CONTACT
from engscore.score import contact_query
from engscore.yamlconf import parse_yaml

#: Settings engscore sets on the session: the results must not depend on the user's.
SESSION_SETTINGS = {
    # Timestamps are instants; Spark shows and converts them in the session's zone.
    "spark.sql.session.timeZone": "UTC",
    # Parquet timestamps as UTC instants in microseconds, as engscore writes them (not INT96).
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Provider columns differ by case alone (SendGrid's `email`, Klaviyo's `Email`).
    "spark.sql.caseSensitive": "true",
}

# PySpark checks pandas before every Arrow function; pandas 3 works for what engscore uses.
python_warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)

_BUCKET = "_bucket"
#: The purchase summary's columns in the per-contact table (``frequency`` is also RFM's).
_SUMMARY_PREFIX = "_p_"
_LINE = "_line"
_DUPLICATE = "_duplicate_key"


def spark_session(master: str | None = None, app_name: str = "engscore") -> SparkSession:
    """A SparkSession with engscore's settings (``SESSION_SETTINGS``): the active one, or a
    new one on ``master`` (``local[2]``, ``spark://host:7077``, ...).

    Python workers run this interpreter unless ``PYSPARK_PYTHON`` says otherwise: engscore
    must be importable there (installed on every executor of a cluster).
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    for key, value in SESSION_SETTINGS.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    # Spark's own warnings (native libraries, hostnames) are not the user's business.
    session.sparkContext.setLogLevel("ERROR")
    _set_session(session)
    return session


def _set_session(session: SparkSession) -> None:
    for key, value in SESSION_SETTINGS.items():
        session.conf.set(key, value)


# --------------------------------------------------------------------------- Arrow <-> Polars


def _spark_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """Types Spark takes from Arrow: text for categoricals, signed integers for unsigned."""
    widen = {pl.UInt8: pl.Int16, pl.UInt16: pl.Int32, pl.UInt32: pl.Int64}
    # 64-bit hashes keep their bits (counts this large do not occur).
    frame = frame.with_columns(
        pl.col(name).reinterpret(signed=True)
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.UInt64)
    )
    casts: dict[str, pl.DataType] = {}
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Categorical | pl.Enum):
            casts[name] = pl.String()
        elif dtype.base_type() in widen:
            casts[name] = widen[dtype.base_type()]()  # type: ignore[index]
        elif isinstance(dtype, pl.Null):
            casts[name] = pl.String()
    return frame.with_columns(pl.col(name).cast(dtype) for name, dtype in casts.items())


def _arrow(frame: pl.DataFrame, schema: pa.Schema | None = None) -> pa.Table:
    table = _spark_safe(frame).to_arrow(compat_level=pl.CompatLevel.oldest())
    return table if schema is None else table.select(schema.names).cast(schema)


def _polars(table: pa.Table | pa.RecordBatch) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _empty(schema: pa.Schema) -> pl.DataFrame:
    return _polars(schema.empty_table())


def _spark_schema(schema: pa.Schema) -> Any:
    return from_arrow_schema(schema, prefer_timestamp_ntz=False)


def _shape(frame: pl.DataFrame) -> pa.Schema:
    """The Arrow schema Spark expects back for rows like ``frame``'s (its string and
    timestamp types, not Polars')."""
    spark = _spark_schema(_arrow(frame).schema)
    return to_arrow_schema(spark, timezone="UTC")


def _arrow_schema(frame: DataFrame) -> pa.Schema:
    """The Arrow schema Spark sends a DataFrame's rows in."""
    return frame.limit(0).toArrow().schema


# --------------------------------------------------------------------------- reports


class _CountsParam(AccumulatorParam[dict[str, int]]):
    """Counts by name, added up over tasks."""

    def zero(self, value: dict[str, int]) -> dict[str, int]:
        return {}

    def addInPlace(self, value1: dict[str, int], value2: dict[str, int]) -> dict[str, int]:
        for key, count in value2.items():
            value1[key] = value1.get(key, 0) + count
        return value1


_ROWS = "rows read"


@dataclass
class SparkScoring:
    """What ``score_with_report`` gives: the scores (a lazy Spark DataFrame, one row per
    contact, not sorted) and what was read, rejected and fitted on the way."""

    scores: DataFrame
    rows_read: int
    rows_rejected: int
    rows_skipped: int
    reject_reasons: dict[str, int]
    rfm: RfmCuts
    predictions: FittedModels
    warnings: list[str] = field(default_factory=list)
    #: The cached per-contact table: ``release`` frees it once the scores are written.
    cached: DataFrame | None = None

    def release(self) -> None:
        """Free the cached per-contact table."""
        if self.cached is not None:
            self.cached.unpersist()


# --------------------------------------------------------------------------- stage A


@dataclass(frozen=True)
class _Reading:
    """How one input's rows become canonical events (stage A)."""

    index: int
    label: Path
    schema: pl.Schema
    preset: Preset
    zone: str
    heuristic: bool

    def canonical(self, raw: pl.LazyFrame) -> pl.LazyFrame:
        ctx = MapContext(source=self.label, timezone=self.zone)
        mapped = self.preset.mapper(raw, self.schema, ctx)
        return canonicalise(mapped, self.index, self.zone, heuristic_machine_opens=self.heuristic)


def _plan_reading(
    raw: DataFrame, index: int, label: Path, options: IngestOptions, read: set[str]
) -> tuple[_Reading, pa.Schema]:
    """The preset and the canonical columns of one input, from its columns alone."""
    empty = flatten_structs(_empty(_arrow_schema(raw)).lazy(), label)
    schema = empty.collect_schema()
    item = InputFile(label, label.suffix.lstrip(".").lower() or "spark", False)
    if CONTACT_KEY in schema and options.mapping is None and options.preset.lower() == "auto":
        # An `engscore ingest` output: canonical columns (its numbering is not used).
        preset = get_preset("generic")
    else:
        preset, _ = choose_preset(item, schema, options)
    zone = options.timezone or preset.timezone or "UTC"
    ctx = MapContext(source=label, timezone=zone)
    with_line = empty.with_columns(pl.lit(0, dtype=pl.Int64).alias(_LINE))
    provider_flags = "is_machine" in preset.mapper(with_line, schema, ctx).collect_schema()
    reading = _Reading(index, label, schema, preset, zone, not provider_flags)
    return reading, _shape(_kept(reading.canonical(with_line), read).collect())


def _kept(canonical: pl.LazyFrame, read: set[str]) -> pl.LazyFrame:
    """Canonical rows as stage A hands them on: the canonical columns, those the rules read
    (``read``) and the user agent (the machine-open heuristic), input order, the heuristic's
    flag, and a 64-bit key of each whole row (``_DUPLICATE``), so that rows without an event
    id are told apart as if every column had been kept. Less to shuffle."""
    names = canonical.collect_schema().names()
    content = [n for n in names if n not in INTERNAL_COLUMNS]
    kept = [
        n
        for n in content
        if (n in CANONICAL_SCHEMA or n in read or n == "user_agent") and n != CONTACT_KEY
    ]
    return canonical.select(*kept, duplicate_key(content).alias(_DUPLICATE), "_ord", "_heuristic")


def _stage_a(
    reading: _Reading, names: list[str], read: set[str], out_schema: pa.Schema, counts: Any
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def canonical_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            frame = _polars(batch)
            frame.columns = names
            raw = flatten_structs(frame.lazy(), reading.label)
            rows = reading.canonical(raw).collect()
            reasons = rows.group_by("_reject").len().drop_nulls("_reject")
            seen = {_ROWS: rows.height}
            seen.update(dict(zip(reasons["_reject"], reasons["len"], strict=True)))
            counts.add(seen)
            valid = _kept(rows.lazy().filter(pl.col("_reject").is_null()), read).collect()
            yield from _arrow(valid, out_schema).to_batches()

    return canonical_batches


def _canonical_events(
    inputs: list[tuple[DataFrame, Path]], options: IngestOptions, read: set[str], counts: Any
) -> tuple[DataFrame, bool]:
    """Stage A over every input, their rows stacked; and whether any needs the machine-open
    heuristic."""
    parts: list[DataFrame] = []
    heuristic = False
    for index, (raw, label) in enumerate(inputs):
        reading, out_schema = _plan_reading(raw, index, label, options, read)
        heuristic = heuristic or reading.heuristic
        # Input order for "the first duplicate wins": the file, then the row's position.
        # Columns go by position (`_c0`, ...): Spark's mapInArrow misreads names with dots.
        names = [*raw.columns, _LINE]
        numbered = raw.select(
            *(F.col(f"`{name}`").alias(f"_c{k}") for k, name in enumerate(raw.columns)),
            (F.monotonically_increasing_id() + F.lit(index << LINE_BITS)).alias(
                f"_c{len(raw.columns)}"
            ),
        )
        parts.append(
            numbered.mapInArrow(
                _stage_a(reading, names, read, out_schema, counts), _spark_schema(out_schema)
            )
        )
    stacked = parts[0]
    for part in parts[1:]:
        stacked = stacked.unionByName(part, allowMissingColumns=True)
    return stacked, heuristic


# --------------------------------------------------------------------------- stage B


def _per_contact(
    events: pl.DataFrame,
    contacts: pl.DataFrame | None,
    rules: Rules,
    as_of: datetime,
    machine_seconds: float,
) -> pl.DataFrame:
    """Stage B on one bucket's events (and contacts): one row per contact."""
    prepared = prepare_events(events.lazy().drop(_BUCKET, strict=False), machine_seconds)
    profile = None
    if contacts is not None:
        profile = (
            contacts.lazy()
            .drop(_BUCKET, strict=False)
            .unique(subset=CONTACT, keep="first", maintain_order=True)
        )
    scores = contact_query(prepared, rules, as_of, profile, presorted=True)
    measures = buyer_measures(prepared, rules.rfm, as_of)
    summary = purchase_summary(prepared, rules.rfm, as_of).select(
        CONTACT, *(pl.col(c).alias(_SUMMARY_PREFIX + c) for c in SUMMARY_COLUMNS[1:])
    )
    table = scores.join(measures, on=CONTACT, how="left").join(summary, on=CONTACT, how="left")
    return table.collect()


def _bucket(partitions: int) -> Any:
    return F.pmod(F.xxhash64(F.col(CONTACT)), F.lit(partitions)).cast("int")


# --------------------------------------------------------------------------- stage C


def _finish(
    table: pl.DataFrame, rules: Rules, cuts: RfmCuts, fitted: FittedModels
) -> tuple[pl.DataFrame, str | None]:
    """Stage C on a share of the per-contact table: RFM scores and predictions added, the
    helper columns dropped (the columns of ``engscore score``)."""
    buyers = table.filter(pl.col("recency_days").is_not_null())
    rfm = score_buyers(buyers.lazy().select(MEASURE_COLUMNS), cuts, rules.rfm).collect()
    names = list(output_columns(rules.predict))
    note = None
    if fitted.purchase_params is not None:
        summary = buyers.select(
            CONTACT, *(pl.col(_SUMMARY_PREFIX + c).alias(c) for c in SUMMARY_COLUMNS[1:])
        )
        predicted, note = predict_buyers(summary, fitted, rules)
    else:
        predicted = buyers.select(CONTACT).with_columns(
            pl.lit(None, dtype=pl.Float64).alias(n) for n in names
        )
    helper = [*MEASURE_COLUMNS[1:], *(_SUMMARY_PREFIX + c for c in SUMMARY_COLUMNS[1:])]
    scores = table.drop(helper)
    out = scores.join(rfm, on=CONTACT, how="left", maintain_order="left").join(
        predicted.select(CONTACT, *names), on=CONTACT, how="left", maintain_order="left"
    )
    return out, note


# --------------------------------------------------------------------------- global step


def _collected(frame: DataFrame) -> pl.DataFrame:
    return _polars(frame.toArrow())


def _value_counts(buyers: DataFrame, column: str) -> pl.DataFrame:
    counted = buyers.groupBy(F.col(column).alias("value")).agg(F.count(F.lit(1)).alias("n"))
    return merge_value_counts(_collected(counted).lazy()).collect()


def _counted_rows(buyers: DataFrame, keys: tuple[str, ...]) -> pl.DataFrame:
    columns = [F.col(_SUMMARY_PREFIX + k).alias(k) for k in keys]
    counted = buyers.groupBy(*columns).agg(F.count(F.lit(1)).alias("n"))
    return merge_rows(_collected(counted).lazy(), keys).collect()


# --------------------------------------------------------------------------- entry points


def rules_of(rules: str | Path | RulesFile | None) -> RulesFile:
    """A rules file from a path, YAML text, a loaded ``RulesFile``, or None (the default
    rules)."""
    if isinstance(rules, RulesFile):
        return rules
    if rules is None:
        return load_rules(None)
    if isinstance(rules, Path) or ("\n" not in rules and Path(rules).suffix in (".yaml", ".yml")):
        return load_rules(Path(rules))
    return rules_from_doc(parse_yaml(rules, "(rules text)"))


def score_with_report(
    events: DataFrame | list[tuple[DataFrame, Path]],
    rules: str | Path | RulesFile | None,
    as_of: datetime,
    contacts: DataFrame | None = None,
    *,
    options: IngestOptions | None = None,
    partitions: int | None = None,
) -> SparkScoring:
    """Score events on Spark: one row per contact with the columns of ``engscore score``.

    ``events``: a DataFrame of one export (any preset's columns, or canonical ones), or
    ``(DataFrame, label)`` pairs, one per input (labels name them in messages). ``rules``: a
    rules file's path, YAML text, or None for the default rules. ``contacts``: a DataFrame
    with a contact key column (``contact_id`` or ``email``) for the profile rules.
    ``partitions``: contact buckets (default: the session's shuffle partitions); each holds
    about 1/``partitions`` of the events in memory at once.

    Runs the jobs of stages A and B and the global step now (the fit needs the data); the
    returned ``scores`` is lazy (stage C). Raises ``DataError`` for rejected rows when
    ``options.on_error`` is ``fail``, before anything is written.
    """
    if as_of.tzinfo is None:
        raise ConfigError("as_of must be an aware datetime (e.g. datetime(..., tzinfo=UTC))")
    options = options or IngestOptions()
    rules_file = rules_of(rules)
    rule_set = rules_file.rules
    inputs = events if isinstance(events, list) else [(events, Path("events"))]
    session = inputs[0][0].sparkSession
    _set_session(session)
    buckets = partitions or int(session.conf.get("spark.sql.shuffle.partitions") or 200)
    counts = session.sparkContext.accumulator({}, _CountsParam())
    canonical, heuristic = _canonical_events(inputs, options, rule_set.columns_read, counts)
    machine_seconds = options.machine_open_seconds if heuristic else 0.0
    events_schema = _arrow_schema(canonical)
    empty_events = _empty(events_schema)
    check_columns(rules_file, empty_events.schema)
    warnings = list(rules_file.warnings)

    contacts_schema: pa.Schema | None = None
    keyed_contacts: DataFrame | None = None
    if contacts is not None and rule_set.profile:
        keyed_contacts, contacts_schema = _keyed_contacts(contacts)
    elif contacts is not None:
        warnings.append("the rules have no profile rules; the contacts file adds no points")
    elif rule_set.profile:
        warnings.append(
            f"{rules_file.source}: {len(rule_set.profile)} profile rule(s) skipped: "
            "pass contacts to score contact attributes"
        )
    empty_contacts = _empty(contacts_schema) if contacts_schema is not None else None
    # The per-contact table's columns, from no rows (and the rules' columns checked here,
    # on the driver, before any task runs).
    table_schema = _shape(
        _per_contact(empty_events, empty_contacts, rule_set, as_of, machine_seconds)
    )

    bucketed = canonical.withColumn(_BUCKET, _bucket(buckets))
    if keyed_contacts is None:

        def one_bucket(table: pa.Table) -> pa.Table:
            scored = _per_contact(_polars(table), None, rule_set, as_of, machine_seconds)
            return _arrow(scored, table_schema)

        per_contact = bucketed.groupBy(_BUCKET).applyInArrow(
            one_bucket, _spark_schema(table_schema)
        )
    else:
        contacts_bucketed = keyed_contacts.withColumn(_BUCKET, _bucket(buckets))

        def one_bucket_with_contacts(left: pa.Table, right: pa.Table) -> pa.Table:
            scored = _per_contact(_polars(left), _polars(right), rule_set, as_of, machine_seconds)
            return _arrow(scored, table_schema)

        per_contact = (
            bucketed.groupBy(_BUCKET)
            .cogroup(contacts_bucketed.groupBy(_BUCKET))
            .applyInArrow(one_bucket_with_contacts, _spark_schema(table_schema))
        )
    per_contact = per_contact.persist(StorageLevel.MEMORY_AND_DISK)

    buyers = per_contact.where(F.col("recency_days").isNotNull())
    measure_counts = {name: _value_counts(buyers, name) for name in MEASURE_COLUMNS[1:]}
    # Every task of stages A and B has run: the counts are complete.
    seen: dict[str, int] = dict(counts.value)
    rows_read = seen.pop(_ROWS, 0)
    skipped = seen.pop(SKIPPED_ACCOUNT_LEVEL, 0)
    rejected = sum(seen.values())
    if rejected and options.on_error == "fail":
        per_contact.unpersist()
        reasons = ", ".join(f"{reason}: {n:,}" for reason, n in sorted(seen.items()))
        raise DataError(
            f"{inputs[0][1]}: {rejected:,} row(s) rejected ({reasons}); "
            "pass --on-error skip to score the valid rows"
        )
    cuts = rfm_cuts(measure_counts, rule_set.rfm.bins)
    fitted = fit_models(
        _counted_rows(buyers, PURCHASE_ROW_COLUMNS),
        _counted_rows(
            buyers.where(
                (F.col(_SUMMARY_PREFIX + "frequency") > 0)
                & (F.col(_SUMMARY_PREFIX + "monetary_value") > 0)
            ),
            SPEND_ROW_COLUMNS,
        ),
        rule_set,
        as_of,
    )
    if fitted.message and rule_set.predict.enabled:
        warnings.append(fitted.message)
    final_schema = _shape(_finish(_empty(table_schema), rule_set, cuts, fitted)[0])

    def finish_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            finished, _ = _finish(_polars(batch), rule_set, cuts, fitted)
            yield from _arrow(finished, final_schema).to_batches()

    scores = per_contact.mapInArrow(finish_batches, _spark_schema(final_schema))
    return SparkScoring(
        scores=scores,
        rows_read=rows_read,
        rows_rejected=rejected,
        rows_skipped=skipped,
        reject_reasons=seen,
        rfm=cuts,
        predictions=fitted,
        warnings=warnings,
        cached=per_contact,
    )


def _keyed_contacts(contacts: DataFrame) -> tuple[DataFrame, pa.Schema]:
    """Contacts with ``contact_id`` as ingest writes ids (row by row, in Polars)."""
    label = Path("contacts")
    in_schema = _arrow_schema(contacts)
    empty = _empty(in_schema)
    out_schema = _shape(keyed_by_contact(empty.lazy(), empty.schema, label).collect())

    def keyed(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            frame = _polars(batch)
            rows = keyed_by_contact(frame.lazy(), frame.schema, label).collect()
            yield from _arrow(rows, out_schema).to_batches()

    return contacts.mapInArrow(keyed, _spark_schema(out_schema)), out_schema


def score(
    events: DataFrame,
    rules: str | Path | RulesFile | None,
    as_of: datetime,
    contacts: DataFrame | None = None,
    *,
    options: IngestOptions | None = None,
    partitions: int | None = None,
) -> DataFrame:
    """Score events on Spark (``score_with_report`` without the report): a DataFrame with
    one row per contact and the columns of ``engscore score`` (SPEC section 5), not sorted.

    ``events`` may be a raw provider export (any preset) or canonical events; ``rules`` a
    path, YAML text or None (the default rules); ``as_of`` an aware datetime.
    """
    return score_with_report(
        events, rules, as_of, contacts, options=options, partitions=partitions
    ).scores
