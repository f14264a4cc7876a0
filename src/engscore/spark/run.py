"""``engscore score --engine spark``: read the inputs with Spark, score them with
``engscore.spark.scoring`` and write a folder of Parquet part files (the I/O edge)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession

from engscore.errors import ConfigError, DataError
from engscore.io.ingest import left_out_note
from engscore.io.readers import first_line, resolve_inputs
from engscore.io.scores_file import record_last_scores, write_folder_provenance
from engscore.rules import load_rules
from engscore.schema import CONTACT
from engscore.score import ScoreRequest, ScoreSummary, table_summary
from engscore.spark.scoring import score_with_report, spark_session
from engscore.timestamps import format_instant


def _read(session: SparkSession, path: str, fmt: str) -> DataFrame:
    """One export as Spark reads it: CSV and TSV as text (engscore types the columns), JSON
    arrays and JSON lines, Parquet."""
    reader = session.read
    if fmt in ("csv", "tsv"):
        return (
            reader.option("header", True)
            .option("sep", "\t" if fmt == "tsv" else ",")
            .option("multiLine", True)
            .option("escape", '"')
            .csv(path)
        )
    if fmt == "json":
        return reader.option("multiLine", not path.endswith((".jsonl", ".ndjson"))).json(path)
    if fmt == "parquet":
        return reader.parquet(path)
    raise DataError(f"{path}: the Spark engine reads CSV, TSV, JSON and Parquet, not {fmt}")


def _inputs(specs: list[str]) -> list[tuple[str, str]]:
    """(path, format) per input: local files as ``engscore score`` finds them; URLs Spark
    reads (``s3://...``) by their extension."""
    found: list[tuple[str, str]] = []
    local = [s for s in specs if "://" not in s]
    for spec in specs:
        if "://" in spec:
            suffix = spec.rstrip("/").rsplit(".", 1)[-1].lower()
            kinds = {"jsonl": "json", "ndjson": "json", "txt": "csv"}
            found.append((spec, kinds.get(suffix, suffix)))
    for item in resolve_inputs(local) if local else []:
        if item.compressed and item.format not in ("csv", "tsv", "json"):
            raise DataError(f"{item.path}: the Spark engine cannot read compressed {item.format}")
        # Absolute: a running Spark session keeps the working directory it started in.
        found.append((str(item.path.resolve()), item.format))
    return found


def run_spark_score(
    request: ScoreRequest,
    output: Path,
    master: str | None = None,
    partitions: int | None = None,
    record_in: Path | None = None,
) -> ScoreSummary:
    """Score ``request`` on Spark and write ``output``, a folder of Parquet part files sorted
    by ``contact_id`` (replaced only once complete), with its provenance beside them."""
    if output.suffix.lower() != ".parquet":
        raise ConfigError(
            f"{output}: with --engine spark the scores are a folder of Parquet files; "
            "name it NAME.parquet"
        )
    rules_file = load_rules(request.rules_path)  # a bad rules file fails before Spark starts
    inputs = _inputs(request.events)
    session = spark_session(master)
    output = output.resolve()
    partial = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    try:
        frames = [(_read(session, path, fmt), Path(path)) for path, fmt in inputs]
        contacts = None
        if request.contacts_path is not None:
            contact_items = _inputs([str(request.contacts_path)])
            contacts = _read(session, *contact_items[0])
        scoring = score_with_report(
            frames,
            rules_file,
            request.as_of,
            contacts,
            options=request.ingest,
            partitions=partitions,
        )
        scoring.scores.orderBy(CONTACT).write.mode("overwrite").parquet(str(partial))
        scoring.release()
    except PySparkException as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise DataError(f"Spark could not score the events: {first_line(exc)}") from exc
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    made_from = {
        "as_of": format_instant(request.as_of),
        "rules": str(request.rules_path) if request.rules_path else rules_file.source,
        "inputs": [{"path": path} for path, _ in inputs],
        "engine": "spark",
    }
    write_folder_provenance(partial, made_from)
    if output.is_dir():
        shutil.rmtree(output)
    elif output.exists():
        output.unlink()
    partial.rename(output)
    if record_in is not None:
        record_last_scores(output, made_from, record_in)
    table = pl.read_parquet(output / "*.parquet")
    warnings = [*scoring.warnings]
    if scoring.rows_rejected:
        warnings.append(left_out_note(scoring.rows_rejected, scoring.reject_reasons))
    return table_summary(table, rules_file, request.as_of, [], warnings, output)
