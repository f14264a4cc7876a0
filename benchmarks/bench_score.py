"""Scoring benchmark: wall time and peak memory of `engscore score` as a whole process.

    python benchmarks/bench_score.py [--events 20000000] [--repeat 3]

Uses the cached generated events of bench_ingest.py (benchmarks/data/), ingests them once with
`engscore ingest` (cached too: the file `score` reads in production), then runs `engscore score`
with the packaged default rules `--repeat` times and prints the median wall time and peak RSS.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from bench_ingest import dataset, run_child

from engscore.io.ingest import CONTACT_KEY_METADATA, CONTACT_KEY_VERSION

AS_OF = "2026-11-01T00:00:00Z"


def _current(path: Path) -> bool:
    """Whether ``path`` exists and was written by an ingest that numbers contacts."""
    if not path.exists():
        return False
    metadata = pq.read_schema(path).metadata or {}
    return metadata.get(CONTACT_KEY_METADATA) == CONTACT_KEY_VERSION


def ingested(events: int) -> Path:
    """The generated events after `engscore ingest` (cached beside the raw file)."""
    source = dataset(events)
    path = source.with_name("ingested.parquet")
    if not _current(path):
        print(f"ingesting {source} ...", flush=True)
        run_child([sys.executable, "-m", "engscore", "ingest", str(source), "-o", str(path), "-q"])
    return path


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    events = ingested(args.events)
    times, peaks = [], []
    with tempfile.TemporaryDirectory() as work:
        output = Path(work) / "scores.parquet"
        command = [sys.executable, "-m", "engscore", "score", str(events), "--as-of", AS_OF]
        command += ["-o", str(output), "-q"]
        for _ in range(args.repeat):
            elapsed, peak = run_child(command)
            times.append(elapsed)
            peaks.append(peak)
            print(f"  run: {elapsed:.1f} s, peak RSS {peak:.2f} GB", flush=True)
    print()
    print("| events | score wall time (median) | peak RSS (median) |")
    print("|---|---|---|")
    wall, peak = statistics.median(times), statistics.median(peaks)
    # The generator's own count: the sizes are targets, the data lands near them.
    rows = pq.ParquetFile(events).metadata.num_rows
    print(f"| {rows:,} | {wall:.1f} s | {peak:.2f} GB |")


if __name__ == "__main__":
    main()
