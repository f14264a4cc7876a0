"""The Spark engine (``engscore.spark``): the same scores as the Polars engine, column by
column, for the packaged rules, several partition counts, raw provider exports and edge
cases. One ``local[2]`` session for the module; Java 17 and the ``spark`` extra are needed
(CI installs both: there the tests fail rather than skip without them)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from engscore.cli import app
from engscore.config import IngestOptions
from engscore.score import ScoreRequest, run_score
from helpers import utc

AS_OF = utc(2026, 11, 1)
ROOT = Path(__file__).parent.parent
RULES = ROOT / "rules"
EXPORTS = ROOT / "examples" / "exports"


def _spark_missing() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install -e '.[spark]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java 17 (apt install openjdk-17-jre-headless)"
    return None


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    missing = _spark_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the Spark tests must run in CI: {missing}")
        pytest.skip(missing)
    from engscore.spark import spark_session

    session = spark_session("local[2]")
    session.conf.set("spark.sql.shuffle.partitions", "2")
    yield session


@pytest.fixture(scope="module")
def buyers_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated events with enough buyers for the models to fit (events.parquet,
    contacts.csv, raw_export.csv)."""
    from helpers import load_generator

    folder = tmp_path_factory.mktemp("spark-example")
    args = ["--events", "40000", "--contacts", "3000", "--seed", "11"]
    load_generator().main([str(folder), *args])
    return folder


def polars_scores(
    tmp_path: Path,
    events: Path,
    rules: Path | None,
    contacts: Path | None = None,
    options: IngestOptions | None = None,
) -> pl.DataFrame:
    output = tmp_path / "polars-scores.parquet"
    request = ScoreRequest(
        events=[str(events)],
        as_of=AS_OF,
        rules_path=rules,
        contacts_path=contacts,
        ingest=options or IngestOptions(),
    )
    run_score(request, output)
    return pl.read_parquet(output)


def assert_same_scores(spark_scores: pl.DataFrame, expected: pl.DataFrame) -> None:
    """Every column equal, value for value (Spark widens unsigned counts: cast back)."""
    got = spark_scores.sort("contact_id")
    assert got.columns == expected.columns
    assert got.height == expected.height
    for name in expected.columns:
        column = got[name].cast(expected[name].dtype)
        assert column.equals(expected[name]), f"{name} differs"


def spark_scored(spark: Any, events: Path, rules: Path | None, **kw: Any) -> Any:
    from engscore.spark import score

    return pl.from_arrow(score(spark.read.parquet(str(events)), rules, AS_OF, **kw).toArrow())


@pytest.mark.spark
@pytest.mark.parametrize(
    ("rules", "partitions"),
    [("default.yaml", 1), ("default.yaml", 5), ("b2c-newsletter.yaml", 3)],
)
def test_packaged_rules_equal_the_polars_engine(
    spark: Any, buyers_data: Path, tmp_path: Path, rules: str, partitions: int
) -> None:
    events = buyers_data / "events.parquet"
    expected = polars_scores(tmp_path, events, RULES / rules)
    assert expected["p_alive"].is_not_null().any()  # the models were fitted
    got = spark_scored(spark, events, RULES / rules, partitions=partitions)
    assert isinstance(got, pl.DataFrame)
    assert_same_scores(got, expected)


@pytest.mark.spark
def test_profile_rules_with_a_contacts_file(spark: Any, buyers_data: Path, tmp_path: Path) -> None:
    events, contacts = buyers_data / "events.parquet", buyers_data / "contacts.csv"
    rules = RULES / "b2b-lead-scoring.yaml"
    expected = polars_scores(tmp_path, events, rules, contacts)
    frame = spark.read.option("header", True).option("inferSchema", True).csv(str(contacts))
    got = spark_scored(spark, events, rules, contacts=frame, partitions=3)
    assert isinstance(got, pl.DataFrame)
    assert_same_scores(got, expected)


def _edge_events() -> pl.DataFrame:
    """Events after as_of, ties in time, a machine-only contact, no purchases at all."""
    base = AS_OF - timedelta(days=30)
    rows = [
        ("tie@x.com", "open", base, False),
        ("tie@x.com", "click", base, False),
        ("tie@x.com", "open", base, False),  # an exact duplicate
        ("later@x.com", "click", AS_OF + timedelta(days=1), False),
        ("later@x.com", "open", base, False),
        ("machine@x.com", "open", base, True),
        ("machine@x.com", "delivered", base - timedelta(seconds=1), False),
        ("future@x.com", "click", AS_OF + timedelta(hours=1), False),
        ("Mixed@X.com ", "unsubscribe", base + timedelta(days=1), False),
    ]
    return pl.DataFrame(
        rows,
        schema={
            "contact_id": pl.String,
            "event_type": pl.String,
            "timestamp": pl.Datetime("us", "UTC"),
            "is_machine": pl.Boolean,
        },
        orient="row",
    )


@pytest.mark.spark
def test_edge_cases_equal_the_polars_engine(spark: Any, tmp_path: Path) -> None:
    path = tmp_path / "edge.parquet"
    _edge_events().write_parquet(path)
    expected = polars_scores(tmp_path, path, None)
    assert "future@x.com" not in expected["contact_id"].to_list()
    assert expected["r"].is_null().all()  # no buyers
    got = spark_scored(spark, path, None, partitions=2)
    assert isinstance(got, pl.DataFrame)
    assert_same_scores(got, expected)


@pytest.mark.spark
def test_raw_provider_export_from_the_cli(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`engscore score EXPORT --engine spark` on a SendGrid CSV; segment reads the folder."""
    export = EXPORTS / "sendgrid_events.csv"
    expected = polars_scores(tmp_path, export, None, options=IngestOptions(on_error="skip"))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    args = ["score", str(export), "--engine", "spark", "--spark-master", "local[2]"]
    args += ["--partitions", "2", "--as-of", "2026-11-01", "--on-error", "skip"]
    result = runner.invoke(app, [*args, "-o", "spark.parquet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "spark.parquet" / "_engscore.json").is_file()
    assert_same_scores(pl.read_parquet(tmp_path / "spark.parquet" / "*.parquet"), expected)
    segmented = runner.invoke(app, ["segment", "-o", "segments"])
    assert segmented.exit_code == 0, segmented.output
    assert (tmp_path / "segments" / "manifest.json").is_file()


@pytest.mark.spark
def test_rejected_rows_fail_before_writing(
    spark: Any, buyers_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["score", str(buyers_data / "raw_export.csv"), "--engine", "spark"]
    args += ["--spark-master", "local[2]", "--partitions", "2", "--as-of", "2026-11-01"]
    result = CliRunner().invoke(app, [*args, "-o", "out.parquet"])
    assert result.exit_code == 1
    assert "row(s) rejected" in result.output and "--on-error skip" in result.output
    assert not (tmp_path / "out.parquet").exists()
    assert not list(tmp_path.glob(".out.parquet*"))


def test_without_the_extra_spark_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a)
    )
    events = tmp_path / "edge.parquet"
    _edge_events().write_parquet(events)
    result = CliRunner().invoke(
        app, ["score", str(events), "--engine", "spark", "-o", str(tmp_path / "s.parquet")]
    )
    assert result.exit_code == 2
    assert "pip install 'engscore[spark]'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_spark_output_must_be_a_parquet_folder(tmp_path: Path) -> None:
    if _spark_missing():
        pytest.skip("needs pyspark and java")
    events = tmp_path / "edge.parquet"
    _edge_events().write_parquet(events)
    result = CliRunner().invoke(
        app, ["score", str(events), "--engine", "spark", "-o", str(tmp_path / "s.csv")]
    )
    assert result.exit_code == 2
    assert "folder of Parquet files" in result.output
