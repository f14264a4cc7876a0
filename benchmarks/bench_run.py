"""Nightly-run benchmark: `engscore run` adding one day of events to a store of N events.

    python benchmarks/bench_run.py [--events 100000000] [--repeat 1]

Builds (once, cached under benchmarks/data/) a project whose store holds the generated events
except the last three days, written straight into the store layout (monthly Parquet files and a
catalogue), and the run of the night before (whose segments the timed run compares with, as
every night but the first does). Then times `engscore run` as a process while the last three
days land as a new export: the generated lists mail every third day, so the export holds one
campaign day (a busy night) and two quiet ones.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
from bench_ingest import dataset, run_child

from engscore.io.store import CONTACTS, STORE_ROW_GROUP

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-11-01T03:00:00Z"
#: The night's export: the generated events of the last three days.
NEW_EXPORT = "new-export.parquet"


def project(events: int) -> tuple[Path, Path]:
    """A project with the store filled up to the last three days, and their export."""
    source = dataset(events)
    folder = source.parent / "project"
    export = folder / NEW_EXPORT
    if (folder / "store" / "catalogue.json").is_file() and export.is_file():
        _number(folder / "store")
        _night_before(folder)
        return folder, export
    shutil.rmtree(folder, ignore_errors=True)
    run_child([sys.executable, "-m", "engscore", "init", str(folder), "-q"])
    frame = pl.scan_parquet(source)
    end = frame.select(pl.col("timestamp").max()).collect().item()
    cut = end - timedelta(days=3)
    frame.filter(pl.col("timestamp") >= cut).sink_parquet(export)
    events_folder = folder / "store" / "events"
    events_folder.mkdir(parents=True)
    print(f"writing the store for {events:,} events ...", flush=True)
    # Month files sorted by contact, as `engscore ingest --store` and `store compact` write them.
    kept = frame.filter(pl.col("timestamp") < cut)
    months = kept.select(pl.col("timestamp").dt.strftime("%Y-%m").unique()).collect()
    for month in sorted(months.to_series().to_list()):
        target = events_folder / month
        target.mkdir()
        kept.filter(pl.col("timestamp").dt.strftime("%Y-%m") == month).sort(
            "contact_id", "timestamp"
        ).sink_parquet(target / "part-bench.parquet", row_group_size=STORE_ROW_GROUP)
    catalogue = {"version": 1, "files": [{"path": str(source), "size": 0, "sha256": "bench"}]}
    (folder / "store" / "catalogue.json").write_text(json.dumps(catalogue))
    _number(folder / "store")
    _night_before(folder)
    return folder, export


def _night_before(folder: Path) -> None:
    """The previous night's run in ``folder/runs`` (no new export): the timed run compares its
    segments with this one's, which is part of every real night's work."""
    if (folder / "runs" / "latest" / "manifest.json").is_file():
        return
    print(f"running the night before in {folder} ...", flush=True)
    before = (datetime.fromisoformat(AS_OF) - timedelta(days=1)).isoformat()
    command = [sys.executable, "-m", "engscore", "run", "--config", str(folder / "engscore.yaml")]
    run_child([*command, "--as-of", before, "-q"])


def _number(store: Path) -> None:
    """Number the store's contacts, as `engscore store compact` does for a store made before
    numbering (the month files above are written without the numbers)."""
    if not (store / CONTACTS).is_file():
        print(f"numbering the contacts of {store} ...", flush=True)
        elapsed, peak = run_child(
            [sys.executable, "-m", "engscore", "store", "compact", str(store)]
        )
        print(f"  store compact: {elapsed:.1f} s, {peak:.2f} GB", flush=True)


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    folder, export = project(args.events)
    times, peaks = [], []
    for _ in range(args.repeat):
        work = folder.with_name("project-run")
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(folder, work, symlinks=True)
        shutil.copy(export, work / "incoming" / NEW_EXPORT)
        command = [sys.executable, "-m", "engscore", "run", "--config", str(work / "engscore.yaml")]
        elapsed, peak = run_child([*command, "--as-of", AS_OF, "-q"])
        times.append(elapsed)
        peaks.append(peak)
        print(f"  run: {elapsed:.1f} s, peak RSS {peak:.2f} GB", flush=True)
        shutil.rmtree(work, ignore_errors=True)
    rows = pl.scan_parquet(export).select(pl.len()).collect().item()
    # The generator's own count: the sizes are targets, the data lands near them.
    stored = pl.scan_parquet(dataset(args.events)).select(pl.len()).collect().item() - rows
    wall, peak = statistics.median(times), statistics.median(peaks)
    print()
    print("| store events | new events | run wall time | peak RSS |")
    print("|---|---|---|---|")
    print(f"| {stored:,} | {rows:,} | {wall:.1f} s | {peak:.2f} GB |")


if __name__ == "__main__":
    main()
