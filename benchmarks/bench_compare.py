"""engscore vs hand-written DuckDB SQL vs pandas: the same default rules on the same events.

    python benchmarks/bench_compare.py [--from ingested|raw] [--events 20000000] [--repeat 3]

`--from ingested` (default): each contender runs as its own process on the ingested events
file (cached by bench_score.py) with the packaged default rules and the same as-of instant;
the script checks that all three give the same scores (within 1e-6) and facts, then prints
median wall time and peak RSS and the ratios engscore/DuckDB and engscore/pandas.

`--from raw`: where users start. The raw exports of `raw_exports.py` (contacts in random
order, 1M-row row groups, millisecond timestamps, duplicates; a CSV twin; a SendGrid CSV)
and four comparisons with DuckDB, each in alternating rounds: `engscore score export.parquet`
against the same query reading and normalising the raw file, and `engscore ingest` of
`export.parquet`, `export.csv` and `sendgrid.csv` against a DuckDB `COPY (SELECT DISTINCT
... ORDER BY ...) TO parquet` (`ingest_duckdb.py`). DuckDB and pandas are benchmark-only
dependencies: `pip install -e '.[bench]'`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
from bench_ingest import run_child
from bench_score import AS_OF, ingested
from raw_exports import raw_exports

HERE = Path(__file__).resolve().parent
CHECKED = ["n_open", "n_click", "n_purchase", "recency_days", "frequency"]

CHILD = """
import sys
from datetime import datetime
sys.path.insert(0, {here!r})
from {module} import score
import polars as pl
result = score({events!r}, datetime.fromisoformat({as_of!r}){extra})
frame = result if isinstance(result, pl.DataFrame) else pl.from_pandas(result)
frame.write_parquet({output!r})
"""


def contender(module: str, events: Path, output: Path, raw: bool = False) -> list[str]:
    """The command running one contender and writing its scores to ``output`` (``raw``: the
    events are a raw export, which the contender normalises itself)."""
    code = CHILD.format(
        extra=", raw=True" if raw else "",
        here=str(HERE),
        module=module,
        events=str(events),
        as_of=AS_OF.replace("Z", "+00:00"),
        output=str(output),
    )
    return [sys.executable, "-c", code]


def agree(engscore: Path, other: Path, name: str) -> str:
    """A short verdict on whether ``other`` gives engscore's scores and facts."""
    ours = pl.read_parquet(engscore).select("contact_id", "score", *CHECKED, "monetary")
    theirs = pl.read_parquet(other).select(
        pl.col("contact_id"),
        pl.col("score").cast(pl.Float64).alias("score_other"),
        *(pl.col(c).cast(pl.Int64).alias(f"{c}_other") for c in CHECKED),
    )
    joined = ours.join(theirs, on="contact_id", how="full", coalesce=True)
    missing = joined.filter(pl.col("score").is_null() | pl.col("score_other").is_null()).height
    worst = joined.select((pl.col("score") - pl.col("score_other")).abs().max()).item()
    facts = sum(
        joined.filter(
            pl.col(c).fill_null(0).cast(pl.Int64) != pl.col(f"{c}_other").fill_null(0)
        ).height
        for c in CHECKED
    )
    ok = missing == 0 and (worst or 0.0) < 1e-6 and facts == 0
    return (
        f"{name}: {'same scores' if ok else 'DIFFERENT'} "
        f"({joined.height:,} contacts, max |score diff| {worst or 0.0:.2e}, "
        f"{missing} contacts missing, {facts} fact mismatches)"
    )


def _rounds(commands: dict[str, list[str]], repeat: int) -> dict[str, tuple[float, float]]:
    """Median wall time and peak RSS of each command over ``repeat`` alternating rounds."""
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            runs[name].append(run_child(command))
            wall, peak = runs[name][-1]
            print(f"  {name}: {wall:.2f} s, {peak:.2f} GB", flush=True)
    return {
        name: (statistics.median(r[0] for r in done), statistics.median(r[1] for r in done))
        for name, done in runs.items()
    }


INGEST_CHILD = """
import sys
sys.path.insert(0, {here!r})
from ingest_duckdb import ingest
ingest({kind!r}, {source!r}, {output!r})
"""


def from_raw(events: int, repeat: int) -> None:
    """The four comparisons on raw exports (``--from raw``)."""
    folder = raw_exports(events)
    export = folder / "export.parquet"
    rows = pq.ParquetFile(export).metadata.num_rows
    table: list[tuple[str, tuple[float, float], tuple[float, float]]] = []
    engscore = [sys.executable, "-m", "engscore"]
    with tempfile.TemporaryDirectory() as work:
        out = Path(work)
        for source in (export, folder / "export.csv"):
            print(f"score {source.name} ({rows:,} rows)", flush=True)
            results = _rounds(
                {
                    "engscore": [*engscore, "score", str(source), "--as-of", AS_OF,
                                 "-o", str(out / "engscore.parquet"), "-q"],
                    "duckdb": contender("compare_duckdb", source, out / "duckdb.parquet",
                                        raw=True),
                },
                repeat,
            )  # fmt: skip
            print(agree(out / "engscore.parquet", out / "duckdb.parquet", "duckdb"))
            table.append((f"score {source.name}", results["engscore"], results["duckdb"]))
        for name, kind, preset in (
            ("export.parquet", "parquet", "generic"),
            ("export.csv", "csv", "generic"),
            ("sendgrid.csv", "sendgrid", "sendgrid"),
        ):
            source = folder / name
            print(f"ingest {name}", flush=True)
            duck = INGEST_CHILD.format(
                here=str(HERE), kind=kind, source=str(source), output=str(out / "duck.parquet")
            )
            results = _rounds(
                {
                    "engscore": [*engscore, "ingest", str(source), "--preset", preset,
                                 "-o", str(out / "ingested.parquet"), "-q"],
                    "duckdb": [sys.executable, "-c", duck],
                },
                repeat,
            )  # fmt: skip
            ours = pq.ParquetFile(out / "ingested.parquet").metadata.num_rows
            theirs = pq.ParquetFile(out / "duck.parquet").metadata.num_rows
            same = "same rows" if ours == theirs else "DIFFERENT row counts"
            print(f"  {same}: engscore {ours:,}, DuckDB {theirs:,}")
            table.append((f"ingest {name}", results["engscore"], results["duckdb"]))
    print()
    print(f"raw exports of {rows:,} events, medians of {repeat} alternating rounds")
    print()
    print("| | engscore | DuckDB | engscore time / DuckDB time |")
    print("|---|---|---|---|")
    for label, (wall, peak), (duck_wall, duck_peak) in table:
        print(
            f"| {label} | {wall:.2f} s, {peak:.2f} GB | {duck_wall:.2f} s, {duck_peak:.2f} GB "
            f"| {wall / duck_wall:.2f}x |"
        )


def main() -> None:
    """Run the contenders and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="start", choices=("ingested", "raw"), default="ingested")
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.start == "raw":
        from_raw(args.events, args.repeat)
        return
    events = ingested(args.events)
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as work:
        names = ("engscore", "duckdb", "pandas")
        outputs = {name: Path(work) / f"{name}.parquet" for name in names}
        commands = {
            "engscore": [
                sys.executable, "-m", "engscore", "score", str(events), "--as-of", AS_OF,
                "-o", str(outputs["engscore"]), "-q",
            ],
            "duckdb": contender("compare_duckdb", events, outputs["duckdb"]),
            "pandas": contender("compare_pandas", events, outputs["pandas"]),
        }  # fmt: skip
        # Rounds of one run each, so that drift in the machine's state (other load, caches)
        # hits engscore and DuckDB alike; pandas, ten times slower, runs once at the end.
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
        for round_ in range(args.repeat):
            for name in names:
                if name == "pandas" and round_ < args.repeat - 1:
                    continue
                runs[name].append(run_child(commands[name]))
                wall, peak = runs[name][-1]
                print(f"  {name}: {wall:.2f} s, {peak:.2f} GB", flush=True)
        for name in names:
            results[name] = (
                statistics.median(r[0] for r in runs[name]),
                statistics.median(r[1] for r in runs[name]),
            )
        print()
        for name in ("duckdb", "pandas"):
            print(agree(outputs["engscore"], outputs[name], name))
    rows = pq.ParquetFile(events).metadata.num_rows
    print()
    print(f"{rows:,} events, {args.repeat} rounds (pandas: one run)")
    print()
    print("| | wall time (median) | peak RSS | engscore time / this time |")
    print("|---|---|---|---|")
    ours = results["engscore"][0]
    for name, (wall, peak) in results.items():
        ratio = "" if name == "engscore" else f"{ours / wall:.2f}x"
        print(f"| {name} | {wall:.2f} s | {peak:.2f} GB | {ratio} |")


if __name__ == "__main__":
    main()
