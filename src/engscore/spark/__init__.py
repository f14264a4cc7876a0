"""engscore on Apache Spark (the ``engscore[spark]`` extra): ``score`` a Spark DataFrame of
events with the same rules and the same engine as ``engscore score``.

From a notebook::

    from engscore.spark import score
    scores = score(spark.read.parquet("s3://bucket/events/"), "rules.yaml", as_of)

pyspark is imported on first use of these names, so that ``engscore.spark.launch`` (the
command line's check for the extra) works without it.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["SparkScoring", "score", "score_with_report", "spark_session"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("engscore.spark.scoring"), name)
    raise AttributeError(f"module 'engscore.spark' has no attribute {name!r}")
