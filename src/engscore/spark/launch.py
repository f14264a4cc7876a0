"""``engscore score --engine spark`` without importing pyspark until it is there: the check
of the extra and of Java, then ``engscore.spark.run``."""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
from pathlib import Path

from engscore.errors import ConfigError
from engscore.score import ScoreRequest, ScoreSummary

#: What ``--engine spark`` needs besides engscore.
SPARK_INSTALL = (
    "the Spark engine needs the engscore[spark] extra and Java 17: "
    "pip install 'engscore[spark]' and a JRE (Debian: apt install openjdk-17-jre-headless)"
)


def score_on_spark(
    request: ScoreRequest,
    output: Path,
    master: str | None,
    partitions: int | None,
    record_in: Path | None = None,
) -> ScoreSummary:
    """``engscore score --engine spark``: ``engscore.spark.run.run_spark_score``, or a
    ConfigError saying what to install when pyspark or Java is missing."""
    if importlib.util.find_spec("pyspark") is None:
        raise ConfigError(f"{SPARK_INSTALL} (pyspark is not installed)")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise ConfigError(f"{SPARK_INSTALL} (no java found)")
    run = importlib.import_module("engscore.spark.run")
    summary: ScoreSummary = run.run_spark_score(request, output, master, partitions, record_in)
    return summary
