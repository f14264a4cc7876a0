"""List health benchmark: `engscore health` against just reading the file, as whole processes.

    python benchmarks/bench_health.py [--events 20000000 | --file PATH] [--repeat 1]
        [--by "" --by campaign --by month --by provider --by "campaign month provider"]

Reads the cached `engscore ingest` output of bench_score.py (or ``--file``), then times, each
as a child process: reading the whole file into memory (``polars.read_parquet``, Python's
start and imports included), and `engscore health` for each grouping (words of one ``--by``
are combined). Prints the wall times and peak RSS, and each health run's time over reading.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from bench_ingest import run_child
from bench_score import AS_OF, ingested

DEFAULT_GROUPINGS = ["", "campaign", "month", "provider", "campaign month provider"]


def timed(command: list[str], repeat: int) -> tuple[float, float]:
    """Median wall seconds and peak RSS (GB) of ``repeat`` runs of ``command``."""
    runs = [run_child(command) for _ in range(repeat)]
    return statistics.median(t for t, _ in runs), statistics.median(p for _, p in runs)


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--file", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--by", action="append", default=None)
    args = parser.parse_args()
    events = args.file or ingested(args.events)
    rows = pq.ParquetFile(events).metadata.num_rows
    read = [sys.executable, "-c", f"import polars; polars.read_parquet({str(events)!r})"]
    base, base_peak = timed(read, args.repeat)
    print(f"| {rows:,} events | wall time | peak RSS | over reading |")
    print("|---|---|---|---|")
    print(f"| reading the file (`polars.read_parquet`) | {base:.2f} s | {base_peak:.2f} GB | |")
    with tempfile.TemporaryDirectory() as work:
        output = Path(work) / "health.csv"
        for grouping in args.by or DEFAULT_GROUPINGS:
            by = [part for word in grouping.split() for part in ("--by", word)]
            command = [sys.executable, "-m", "engscore", "health", str(events), "--as-of", AS_OF]
            command += [*by, "-o", str(output), "-q"]
            wall, peak = timed(command, args.repeat)
            name = " ".join(by) or "(no --by)"
            print(f"| `health {name}` | {wall:.2f} s | {peak:.2f} GB | {wall - base:+.2f} s |")


if __name__ == "__main__":
    main()
