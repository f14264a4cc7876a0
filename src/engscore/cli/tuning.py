"""Process settings for the ``engscore`` command, made before numpy and Polars load.

Both libraries read them once, when loaded: ``engscore.cli`` calls ``tune_process`` before
any command module imports them. A library user's process is left alone.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

#: Polars' allocator (jemalloc) reads this; Polars puts its own defaults in front of it.
JEMALLOC_CONF = "_RJEM_MALLOC_CONF"


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def tune_process(environ: MutableMapping[str, str] = os.environ) -> None:
    """Settings measured on the benchmarks (2 cores); a value the user set wins.

    - OpenBLAS single-threaded: engscore does no linear algebra worth a thread, and
      OpenBLAS's idle threads take CPU from Polars' (0.2 CPU-seconds a score run).
    - One jemalloc arena per core instead of four: freed memory is reused more, for a
      quarter fewer page faults and 15% less peak memory scoring 20M events (ingest: 5%).
      Added to an inherited setting too: a parent process that imported Polars passes
      Polars' own defaults on, which say nothing about arenas.

    (Keeping freed memory 5 s instead of Polars' 0.5 s saved another 3% of the 20M score's
    time, but cost ingest 0.2 GB of peak memory and the 100M score 0.35 GB: not taken.)
    """
    environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    inherited = environ.get(JEMALLOC_CONF, "")
    if "narenas:" not in inherited:
        arenas = f"narenas:{_cores()}"
        environ[JEMALLOC_CONF] = f"{inherited},{arenas}" if inherited else arenas
