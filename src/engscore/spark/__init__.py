"""engscore on Apache Spark (the ``engscore[spark]`` extra): ``score`` a Spark DataFrame of
events with the same rules and the same engine as ``engscore score``.

From a notebook::

    from engscore.spark import score
    scores = score(spark.read.parquet("s3://bucket/events/"), "rules.yaml", as_of)
"""

from engscore.spark.scoring import SparkScoring, score, score_with_report, spark_session

__all__ = ["SparkScoring", "score", "score_with_report", "spark_session"]
