"""`engscore run`, the project config and the event store: cron-grade behaviour."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from engscore.cli import app
from engscore.config import init_project, load_project
from engscore.errors import ConfigError, LockedError
from engscore.io import outputs
from engscore.io.events import load_events
from engscore.io.ingest import CONTACT_KEY
from engscore.io.store import EventStore, append, compact, info
from engscore.run import project_lock
from engscore.schema import CANONICAL_SCHEMA
from helpers import utc

runner = CliRunner()
AS_OF = "2026-11-01T03:00:00Z"


def split_exports(example_data: Path, folder: Path) -> tuple[Path, Path]:
    """Two CSV exports of the example events that overlap by two weeks."""
    events = pl.read_parquet(example_data / "events.parquet")
    first = folder / "export-1.csv"
    second = folder / "export-2.csv"
    events.filter(pl.col("timestamp") < utc(2026, 10, 1)).write_csv(first)
    events.filter(pl.col("timestamp") >= utc(2026, 9, 15)).write_csv(second)
    return first, second


@pytest.fixture
def project(example_data: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    init_project(folder)
    split_exports(example_data, folder / "incoming")
    return folder


def run_cli(folder: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["run", "--config", str(folder / "engscore.yaml"), *args])
    return result.exit_code, result.output


def test_store_adds_nothing_twice_and_only_new_rows(example_data: Path, tmp_path: Path) -> None:
    first, second = split_exports(example_data, tmp_path)
    store = EventStore(tmp_path / "store")
    one = append(store, [str(first)])
    assert one.rows_added == one.rows_read > 0
    again = append(store, [str(first)])
    assert again.new_files == [] and again.rows_added == 0
    renamed = tmp_path / "same-content.csv"
    renamed.write_bytes(first.read_bytes())
    assert append(store, [str(renamed)]).new_files == []  # known by content, not by name
    two = append(store, [str(second)])
    assert 0 < two.rows_added < two.rows_read  # the two overlapping weeks are not re-added
    total = pl.read_parquet(example_data / "events.parquet").height
    assert info(store).rows == total
    late = tmp_path / "late.csv"
    late.write_text(
        "contact_id,event_type,timestamp,event_id\nann@x.com,open,2026-09-20T10:00:00Z,late-1\n"
    )
    assert append(store, [str(late)]).rows_added == 1  # a second file in September
    parts_before = info(store).part_files
    assert compact(store) == 1
    assert info(store).rows == total + 1 and info(store).part_files == parts_before - 1


def test_run_twice_gives_byte_identical_outputs(example_data: Path, tmp_path: Path) -> None:
    outputs = []
    for name in ("a", "b"):
        folder = tmp_path / name
        init_project(folder)
        split_exports(example_data, folder / "incoming")
        code, out = run_cli(folder, "--as-of", AS_OF)
        assert code == 0, out
        latest = folder / "runs" / "latest"
        outputs.append(
            {
                str(p.relative_to(latest)): p.read_bytes()
                for p in sorted(latest.rglob("*"))
                if p.is_file()
            }
        )
    assert outputs[0].keys() == outputs[1].keys()
    assert {
        "scores.parquet",
        "report.html",
        "manifest.json",
        "segments/sunset.csv",
        "health.csv",
    } <= set(outputs[0])
    for key in outputs[0]:
        assert outputs[0][key] == outputs[1][key], key
    # The report names its sources where they end up, not the run's work folder (whose name
    # holds the process id).
    assert b".tmp-" not in outputs[0]["report.html"]
    assert b"runs/2026-11-01T0300Z/scores.parquet" in outputs[0]["report.html"]


def test_the_run_writes_health_and_names_the_months_over_the_limit(project: Path) -> None:
    code, out = run_cli(project, "--as-of", AS_OF)
    assert code == 0, out
    latest = project / "runs" / "latest"
    health = pl.read_csv(latest / "health.csv")
    alone = runner.invoke(
        app,
        ["health", str(project / "store"), "--as-of", AS_OF, "--by", "month", "-o",
         str(project / "alone.csv")],
    )  # fmt: skip
    assert alone.exit_code == 0, alone.output
    assert (project / "alone.csv").read_bytes() == (latest / "health.csv").read_bytes()
    over = health.filter(pl.col("flag") == "over_limit")["month"].to_list()
    assert over  # the example list is small: one complaint in a month can cross 0.3%
    manifest = json.loads((latest / "manifest.json").read_text())
    assert manifest["health_over_limit"] == over
    line = next(row for row in out.splitlines() if row.startswith("run "))
    named = ", ".join(over[:5]) + (f" and {len(over) - 5} more" if len(over) > 5 else "")
    assert f"; health over_limit: {named}; " in line
    assert "List health" in (latest / "report.html").read_text()
    # Grouped as engscore.yaml says; a bad grouping fails before the store changes.
    config = project / "engscore.yaml"
    config.write_text(config.read_text().replace("by: [month]", "by: [provider]"))
    code, out = run_cli(project, "--as-of", "2026-11-02T03:00:00Z")
    assert code == 0, out
    assert (latest / "health.csv").read_text().startswith("provider,sent,")
    assert "health over_limit" not in out.splitlines()[-1]  # no domain is over the limit
    config.write_text(config.read_text().replace("providers: null", "providers: nope.yaml"))
    code, out = run_cli(project, "--as-of", "2026-11-03T03:00:00Z")
    assert code == 2 and out.strip().endswith("nope.yaml: file not found")


def test_the_run_records_the_store_without_hashing_its_files(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[Path] = []
    real = outputs.sha256_file

    def recording(path: Path) -> str:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr("engscore.score.sha256_file", recording)
    code, out = run_cli(project, "--as-of", AS_OF)
    assert code == 0, out
    assert hashed == [project / "rules.yaml"]
    metadata = pq.read_metadata(project / "runs" / "latest" / "scores.parquet").metadata
    assert json.loads(metadata[b"engscore.inputs"]) == [{"path": "store", "store": True}]


def _outputs(folder: Path) -> dict[str, bytes]:
    latest = folder / "runs" / "latest"
    return {
        str(p.relative_to(latest)): p.read_bytes()
        for p in sorted(latest.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def test_the_carried_state_gives_the_same_files_as_reading_every_event(
    example_data: Path, tmp_path: Path
) -> None:
    """Night after night, the run that keeps the older months' carried state writes the same
    files as one that reads the whole store: when it makes the state, keeps it, rolls it
    forward to a new month, and makes it again after an export adds events that old."""
    carrying, reading = tmp_path / "carrying", tmp_path / "reading"
    for folder in (carrying, reading):
        init_project(folder)
        split_exports(example_data, folder / "incoming")
    config = reading / "engscore.yaml"
    config.write_text(config.read_text().replace("carry: true", "carry: false"))
    late = pl.DataFrame(
        {
            "contact_id": ["late@example.com", "late@example.com"],
            "event_type": ["open", "click"],
            "timestamp": ["2025-02-03T10:00:00Z", "2025-02-03T10:01:00Z"],
        }
    )
    nights = [
        ("2026-11-01T03:00:00Z", None, "made"),
        ("2026-11-02T03:00:00Z", None, "kept"),
        ("2026-12-02T03:00:00Z", None, "rolled forward"),
        ("2026-12-03T03:00:00Z", late, "made"),
    ]
    for as_of, export, how in nights:
        for folder in (carrying, reading):
            if export is not None:
                export.write_csv(folder / "incoming" / "late.csv")
            code, out = run_cli(folder, "--as-of", as_of)
            assert code == 0, out
        manifest = json.loads((carrying / "runs" / "latest" / "manifest.json").read_text())
        assert manifest["carried"] == how, as_of
        assert (
            json.loads((reading / "runs" / "latest" / "manifest.json").read_text())["carried"]
            is None
        )
        assert _outputs(carrying) == _outputs(reading), as_of
    state = json.loads((carrying / "store" / "carried" / "state.json").read_text())
    assert state["boundary"] == "2026-06-01T00:00:00Z"
    # Scoring the store on its own reads the events, never the carried files.
    scores = runner.invoke(
        app,
        [
            "score",
            str(carrying / "store"),
            "--as-of",
            "2026-12-03T03:00:00Z",
            "-o",
            str(tmp_path / "s.parquet"),
        ],
    )
    assert scores.exit_code == 0, scores.output
    assert pl.read_parquet(tmp_path / "s.parquet").equals(
        pl.read_parquet(reading / "runs" / "latest" / "scores.parquet")
    )


def test_a_damaged_carried_state_is_made_afresh(project: Path) -> None:
    def scores_and_segments() -> dict[str, bytes]:
        # The report differs from the first run's: it shows the segments' movement.
        return {k: v for k, v in _outputs(project).items() if k != "report.html"}

    code, out = run_cli(project, "--as-of", AS_OF)
    assert code == 0, out
    first = scores_and_segments()
    (project / "store" / "carried" / "facts.parquet").write_bytes(b"not parquet")
    code, out = run_cli(project, "--as-of", AS_OF)
    assert code == 0, out
    manifest = json.loads((project / "runs" / "latest" / "manifest.json").read_text())
    assert manifest["carried"] == "made"
    assert scores_and_segments() == first
    # Without `carry`, the run reads every event and leaves the carried files alone.
    config = project / "engscore.yaml"
    config.write_text(config.read_text().replace("carry: true", "carry: false"))
    code, out = run_cli(project, "--as-of", AS_OF)
    assert code == 0, out
    assert (
        json.loads((project / "runs" / "latest" / "manifest.json").read_text())["carried"] is None
    )
    assert scores_and_segments() == first


def test_a_contacts_file_turns_the_carried_state_off(project: Path, example_data: Path) -> None:
    # Profile rules score contacts from their attributes: every event is read.
    shutil.copy(example_data / "contacts.csv", project / "contacts.csv")
    config = project / "engscore.yaml"
    config.write_text(config.read_text().replace("contacts: null", "contacts: contacts.csv"))
    code, out = run_cli(project, "--as-of", AS_OF)
    assert code == 0, out
    manifest = json.loads((project / "runs" / "latest" / "manifest.json").read_text())
    assert manifest["carried"] is None
    assert not (project / "store" / "carried").exists()


def test_summary_line_and_exit_codes(project: Path) -> None:
    code, out = run_cli(project, "--as-of", AS_OF, "--log-format", "json")
    assert code == 0, out
    assert '"rows_added"' in out and '"segments"' in out
    code, out = run_cli(project, "--as-of", AS_OF)
    assert code == 0
    assert "0 new file(s), +0 events" in out
    assert len([p for p in (project / "runs").iterdir() if p.is_dir() and not p.is_symlink()]) == 2


def test_retention_keeps_the_last_runs(project: Path) -> None:
    config = project / "engscore.yaml"
    config.write_text(config.read_text().replace("retention: 7", "retention: 2"))
    for day in (1, 2, 3):
        code, out = run_cli(project, "--as-of", f"2026-11-0{day}T03:00:00Z")
        assert code == 0, out
    runs = sorted(p.name for p in (project / "runs").iterdir() if not p.is_symlink())
    assert runs == ["2026-11-02T0300Z", "2026-11-03T0300Z"]
    assert (project / "runs" / "latest").resolve().name == "2026-11-03T0300Z"


def test_corrupt_export_fails_and_changes_nothing(project: Path) -> None:
    assert run_cli(project, "--as-of", AS_OF)[0] == 0
    before_latest = (project / "runs" / "latest").resolve()
    before_store = sorted(p.name for p in (project / "store").rglob("*"))
    bad = project / "incoming" / "export-3.csv"
    bad.write_text("contact_id,event_type,timestamp\nx@y.com,open,not a time\n")
    code, out = run_cli(project, "--as-of", "2026-11-02T03:00:00Z")
    assert code == 1
    assert "export-3.csv:2: unparseable timestamp" in out
    assert (project / "runs" / "latest").resolve() == before_latest
    assert sorted(p.name for p in (project / "store").rglob("*")) == before_store


KILL_AT = """
import os, signal, sys
from pathlib import Path
import engscore.run as run
import engscore.io.store as store
from engscore.config import load_project
target = sys.argv[2]
names = {"ingest": (run, "append"), "catalogue": (store, "write_json"),
         "score": (run, "run_score"), "segment": (run, "run_segment"),
         "report": (run, "run_report"), "publish": (run, "write_json")}
module, name = names[target]
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
setattr(module, name, die)
from engscore.timestamps import parse_instant
run.run_project(load_project(Path(sys.argv[1]) / "engscore.yaml"), parse_instant(sys.argv[3]))
"""


@pytest.mark.parametrize("step", ["ingest", "catalogue", "score", "segment", "report", "publish"])
def test_a_kill_in_any_step_keeps_latest_and_the_next_run_works(project: Path, step: str) -> None:
    first = project / "incoming" / "export-2.csv"
    parked = project / "export-2.csv"
    first.rename(parked)  # the first run sees only export-1
    assert run_cli(project, "--as-of", AS_OF)[0] == 0
    latest = (project / "runs" / "latest").resolve()
    parked.rename(first)
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AT, str(project), step, "2026-11-02T03:00:00Z"], check=False
    )
    assert killed.returncode == -9
    assert (project / "runs" / "latest").resolve() == latest
    code, out = run_cli(project, "--as-of", "2026-11-02T03:00:00Z")
    assert code == 0, out
    assert (project / "runs" / "latest").resolve().name == "2026-11-02T0300Z"
    assert not [p for p in (project / "runs").iterdir() if p.name.startswith(".tmp-")]
    # Whatever the kill left in the store, the events are there once.
    total = info(EventStore(project / "store")).rows
    assert (
        total
        == pl.concat(
            [
                pl.read_csv(project / "incoming" / n, infer_schema=False)
                for n in ("export-1.csv", "export-2.csv")
            ]
        )
        .unique(subset=["contact_id", "event_id"])
        .height
    )


HOLD_LOCK = """
import sys, time
from pathlib import Path
from engscore.run import project_lock
with project_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(30)
"""


def test_two_concurrent_runs_exactly_one_proceeds(project: Path) -> None:
    lock = project / ".engscore" / "run.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        code, out = run_cli(project, "--as-of", AS_OF)
        assert code == 75
        assert "another engscore run is in progress" in out and f"pid {holder.pid}" in out
        started = time.monotonic()
        with pytest.raises(LockedError):
            with project_lock(lock, wait_seconds=1.0):
                pass
        assert time.monotonic() - started >= 1.0
    finally:
        holder.kill()
        holder.wait()
    # The killed holder's lock is released by the kernel: the next run takes it over.
    assert run_cli(project, "--as-of", AS_OF)[0] == 0


def test_config_errors_name_the_line_and_env_overrides(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = project / "engscore.yaml"
    config.write_text(config.read_text().replace("retention: 7", "retention: seven"))
    with pytest.raises(ConfigError, match=r"engscore.yaml:\d+: retention: must be a whole number"):
        load_project(config)
    config.write_text(config.read_text().replace("retention: seven", "retentoin: 7"))
    with pytest.raises(ConfigError, match="retentoin: unknown key"):
        load_project(config)
    config.write_text(config.read_text().replace("retentoin: 7", "retention: 7"))
    config.write_text(config.read_text().replace("carry: true", "carry: sometimes"))
    with pytest.raises(ConfigError, match=r"engscore.yaml:\d+: carry: "):
        load_project(config)
    code, out = run_cli(project, "--as-of", AS_OF)
    assert code == 2 and "engscore.yaml:" in out and "carry" in out and "Traceback" not in out
    assert not (project / "runs").exists()
    config.write_text(config.read_text().replace("carry: sometimes", "carry: true"))
    monkeypatch.setenv("ENGSCORE_RETENTION", "3")
    monkeypatch.setenv("ENGSCORE_STORE", "/srv/engscore/store")
    loaded = load_project(config).config
    assert loaded.retention == 3 and loaded.store == "/srv/engscore/store"


def test_init_never_overwrites(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p" / "rules.yaml").is_file() and (tmp_path / "p" / "incoming").is_dir()
    result = runner.invoke(app, ["init", str(tmp_path / "p")])
    assert result.exit_code == 2 and "already exists; not overwriting it" in result.output


def test_run_without_a_project_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ENGSCORE_CONFIG", raising=False)
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    assert "no engscore.yaml here: run `engscore init` first" in result.output


def test_score_reads_a_store(project: Path, tmp_path: Path) -> None:
    store = EventStore(project / "store")
    append(store, [str(project / "incoming")])
    out = tmp_path / "s.parquet"
    result = runner.invoke(app, ["score", str(store.root), "--as-of", AS_OF, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(out).height > 0
    _ = os


def test_ingest_into_a_store_through_the_cli(example_data: Path, tmp_path: Path) -> None:
    first, _ = split_exports(example_data, tmp_path)
    store = tmp_path / "store"
    result = runner.invoke(app, ["ingest", str(first), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "1 new file(s), 0 already loaded" in result.output
    result = runner.invoke(app, ["ingest", str(first), "--store", str(store)])
    assert "0 new file(s), 1 already loaded; +0 events" in result.output
    result = runner.invoke(app, ["store", "info", str(store)])
    assert result.exit_code == 0 and "files loaded" in result.output
    assert "contact numbers" in result.output and "yes" in result.output


def test_single_commands_read_the_project_config(
    project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # `engscore score` run in the project folder uses its rules file; -r still wins.
    (project / "rules.yaml").write_text("points:\n  - {name: o, event: open, points: 1}\n")
    monkeypatch.chdir(project)
    monkeypatch.delenv("ENGSCORE_CONFIG", raising=False)
    out = tmp_path / "s.parquet"
    result = runner.invoke(
        app, ["score", "incoming/export-1.csv", "--as-of", AS_OF, "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "default rules" not in result.output
    assert pl.read_parquet(out)["score"].max() == pl.read_parquet(out)["n_open"].max()


def test_bad_rules_fail_the_run_before_the_store_changes(project: Path) -> None:
    (project / "rules.yaml").write_text("points: [{name: a, event: open, points: ten}]\n")
    code, out = run_cli(project, "--as-of", AS_OF)
    assert code == 2 and "rules.yaml:1: points[0].points: must be a number" in out
    assert not (project / "store").exists()


def test_store_commands_on_a_folder_that_is_not_a_store(tmp_path: Path) -> None:
    result = runner.invoke(app, ["store", "info", str(tmp_path)])
    assert result.exit_code == 1 and "not an event store" in result.output


def _store_scores(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> list[pl.DataFrame]:
    """The store's scores, whole and in contact ranges."""
    from engscore import score as score_module
    from engscore.score import ScoreRequest, compute_scores, prepare_scoring

    request = ScoreRequest(events=[str(store.root)], as_of=utc(2026, 11, 1))
    whole = compute_scores(prepare_scoring(request)).table
    with monkeypatch.context() as patch:
        patch.setattr(score_module, "SCORE_BUCKET_ROWS", 4_000)
        bucketed = compute_scores(prepare_scoring(request)).table
    return [whole, bucketed]


def _assert_scored_like_a_plain_file(
    store: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scored on its numbers, the store gives what its events give as a plain file."""
    from engscore.score import ScoreRequest, compute_scores, prepare_scoring

    plain = tmp_path / "events.parquet"
    store.scan().collect().write_parquet(plain)
    expected = compute_scores(
        prepare_scoring(ScoreRequest(events=[str(plain)], as_of=utc(2026, 11, 1)))
    ).table
    for scores in _store_scores(store, monkeypatch):
        assert scores.equals(expected)


@pytest.fixture
def first_loaded(example_data: Path, tmp_path: Path) -> tuple[EventStore, Path]:
    """A store holding the first export, and the second export (not loaded yet)."""
    first, second = split_exports(example_data, tmp_path)
    store = EventStore(tmp_path / "store")
    append(store, [str(first)])
    return store, second


def test_store_numbers_contacts_for_good(
    first_loaded: tuple[EventStore, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, second = first_loaded
    numbers = pl.read_parquet(store.root / "contacts.parquet")
    assert numbers[CONTACT_KEY].to_list() == list(range(numbers.height))  # dense, from 0
    append(store, [str(second)])
    newcomer = tmp_path / "newcomer.csv"
    newcomer.write_text(
        "contact_id,event_type,timestamp,event_id,campaign_id\n"
        "aaron@new.example,open,2026-10-20T10:00:00Z,n-1,c-9\n"
        "aaron@new.example,click,2026-10-20T10:01:00Z,n-2,c-9\n"
    )
    append(store, [str(newcomer)])
    after = pl.read_parquet(store.root / "contacts.parquet")
    assert after.head(numbers.height).equals(numbers)  # a contact keeps its number
    # A new contact is numbered on, out of id order: the scores must still come out sorted.
    assert after.row(-1) == ("aaron@new.example", after.height - 1)
    events = store._scan().collect()
    assert events[CONTACT_KEY].null_count() == 0
    assert events.select(pl.col(CONTACT_KEY).n_unique().over("contact_id").max()).item() == 1
    assert CONTACT_KEY not in store.scan().collect_schema()
    _assert_scored_like_a_plain_file(store, tmp_path, monkeypatch)


def test_compact_numbers_a_store_made_before_numbering(
    first_loaded: tuple[EventStore, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, second = first_loaded
    numbered = _store_scores(store, monkeypatch)
    # What an older engscore left: no contacts file, no numbers in the event files.
    (store.root / "contacts.parquet").unlink()
    for part in store.part_files():
        pl.read_parquet(part).drop(CONTACT_KEY).write_parquet(part)
    assert not store.numbered and store.keyed_scan() is None
    for scores, before in zip(_store_scores(store, monkeypatch), numbered, strict=True):
        assert scores.equals(before)  # on the text ids: same scores
    append(store, [str(second)])  # appends keep such a store un-numbered
    assert not store.numbered and not info(store).numbered
    months = len({p.parent for p in store.part_files()})
    assert compact(store) == months  # every month rewritten with the numbers
    assert store.numbered
    numbers = pl.read_parquet(store.root / "contacts.parquet")
    assert numbers["contact_id"].is_sorted() and numbers[CONTACT_KEY].to_list() == list(
        range(numbers.height)
    )
    assert store._scan().collect()[CONTACT_KEY].null_count() == 0
    _assert_scored_like_a_plain_file(store, tmp_path, monkeypatch)
    assert compact(store) == 0  # numbered, one file per month: nothing to do


def test_a_file_without_numbers_makes_the_store_unnumbered_until_compact(
    first_loaded: tuple[EventStore, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, second = first_loaded
    # An older engscore appends a month file without the numbers.
    older = store.events_folder / "2026-10" / "part-older.parquet"
    older.parent.mkdir(parents=True, exist_ok=True)
    october = load_events([str(second)]).events.filter(pl.col("timestamp") >= utc(2026, 10, 1))
    october.select(list(CANONICAL_SCHEMA)).collect().write_parquet(older)
    assert not store.numbered and store.keyed_scan() is None
    _assert_scored_like_a_plain_file(store, tmp_path, monkeypatch)  # on the text ids
    compact(store)
    assert store.numbered
    _assert_scored_like_a_plain_file(store, tmp_path, monkeypatch)


def test_an_unreadable_contacts_file_is_a_clear_error(
    first_loaded: tuple[EventStore, Path], tmp_path: Path
) -> None:
    store, second = first_loaded
    (store.root / "contacts.parquet").write_text("not parquet\n")
    output = tmp_path / "scores.parquet"
    for args in (
        ["score", str(store.root), "--as-of", AS_OF, "-o", str(output)],
        ["ingest", str(second), "--store", str(store.root)],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, result.output
        assert "contacts.parquet: cannot read the contact numbers" in result.output
        assert "delete it and run `engscore store compact`" in result.output
        assert "unexpected" not in result.output
    assert not output.exists()
    # The way out the message gives works.
    (store.root / "contacts.parquet").unlink()
    compact(store)
    assert store.numbered
    result = runner.invoke(app, ["score", str(store.root), "--as-of", AS_OF, "-o", str(output)])
    assert result.exit_code == 0, result.output
