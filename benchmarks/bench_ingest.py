"""Ingest benchmark: wall time and peak memory of `engscore ingest` as a whole process.

    python benchmarks/bench_ingest.py [--events 20000000] [--repeat 3]

Generates (once, cached under benchmarks/data/) a seeded events Parquet file with the example
generator, then runs `engscore ingest` on it in a child process `--repeat` times and prints the
median wall time and peak RSS next to the data's size on disk and in memory.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"


def dataset(events: int) -> Path:
    """The cached generated events file for this size."""
    folder = DATA / f"events-{events}"
    path = folder / "events.parquet"
    if not path.exists():
        print(f"generating {events:,} events into {folder} ...", flush=True)
        contacts = max(10, events // 23)
        subprocess.run(
            [sys.executable, str(ROOT / "examples" / "generate.py"), str(folder),
             "--events", str(events), "--contacts", str(contacts), "--seed", "1"],
            check=True,
        )  # fmt: skip
    return path


def in_memory_size(path: Path) -> float:
    """GB the events take in memory once loaded (measured in a separate process)."""
    code = f"import polars as pl; print(pl.read_parquet({str(path)!r}).estimated_size())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout) / 1e9


def run_child(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of one child process."""
    started = time.perf_counter()
    child = subprocess.Popen(args)
    # wait4 gives this child's own peak, not the maximum over every child so far.
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed with status {status}")
    return elapsed, usage.ru_maxrss / 1e6  # ru_maxrss is in KiB on Linux


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    source = dataset(args.events)
    disk = source.stat().st_size / 1e9
    memory = in_memory_size(source)
    times, peaks = [], []
    with tempfile.TemporaryDirectory() as work:
        output = Path(work) / "out.parquet"
        command = [sys.executable, "-m", "engscore", "ingest", str(source), "-o", str(output), "-q"]
        for _ in range(args.repeat):
            elapsed, peak = run_child(command)
            times.append(elapsed)
            peaks.append(peak)
    print()
    print("| events | on disk | in memory | ingest wall time (median) | peak RSS (median) |")
    print("|---|---|---|---|---|")
    # The generator's own count: the sizes are targets, the data lands near them.
    rows = pq.ParquetFile(source).metadata.num_rows
    print(
        f"| {rows:,} | {disk:.2f} GB | {memory:.2f} GB | "
        f"{statistics.median(times):.1f} s | {statistics.median(peaks):.2f} GB |"
    )


if __name__ == "__main__":
    main()
