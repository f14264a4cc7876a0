"""``engscore run``: the nightly pipeline of a project, atomic as a whole.

ingest new exports into the store -> score -> segment -> health -> report, each into a new run
folder ``<output>/.tmp-<pid>``; only when every step succeeded is the folder renamed to
``<output>/<as-of>`` and the ``<output>/latest`` symlink moved to it (an atomic rename). A run
that fails or is killed leaves ``latest`` on the previous complete run; the next run removes
what a dead one left behind. One run per project at a time: an exclusive ``flock`` on
``.engscore/run.lock`` (the kernel releases it when a process dies, so a killed run's lock is
taken over safely).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engscore import __version__
from engscore.config import Project
from engscore.durations import Duration
from engscore.engine.health import FULL_GRAIN
from engscore.errors import DataError, LockedError
from engscore.health import facts_of, flagged_groups
from engscore.io.events import load_events
from engscore.io.outputs import pid_alive, sha256_file, shown_path, write_frame, write_json
from engscore.io.store import EventStore, append
from engscore.providers import load_providers
from engscore.report import ReportRequest, run_report
from engscore.rules import load_rules
from engscore.score import ScoreRequest, run_score
from engscore.segments import SegmentRequest, load_segments_file, run_segment
from engscore.timestamps import format_instant
from engscore.ui import human_int

LOCK_FILE = Path(".engscore") / "run.lock"
LATEST = "latest"
_TMP_PREFIX = ".tmp-"


@contextmanager
def project_lock(path: Path, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the project's run lock; LockedError at once, or after ``wait_seconds``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise LockedError(
                        f"{path}: another engscore run is in progress ({holder}); "
                        "try again later or pass --wait SECONDS"
                    ) from None
                time.sleep(min(0.5, max(deadline - time.monotonic(), 0.01)))
        handle.seek(0)
        handle.truncate()
        started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {started}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the flock


def default_as_of() -> datetime:
    """Now, truncated to the minute (written to the manifest so the run can be repeated)."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


@dataclass
class RunSummary:
    """What a run did, for the one-line summary and tests."""

    folder: Path
    as_of: datetime
    new_files: list[str] = field(default_factory=list)
    skipped_files: int = 0
    rows_added: int = 0
    contacts: int = 0
    segments: list[tuple[str, int]] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    #: How the score step got the store's carried state (``carried.KEPT`` ...), or None.
    carried: str | None = None
    #: The groups of ``health.csv`` over the 0.3% complaint limit.
    over_limit: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The one-line summary for cron mail and logs."""
        sizes = ", ".join(f"{name} {human_int(rows)}" for name, rows in self.segments)
        health = ""
        if self.over_limit:
            shown = ", ".join(self.over_limit[:_NAMED_GROUPS])
            more = len(self.over_limit) - _NAMED_GROUPS
            health = f"; health over_limit: {shown}" + (f" and {more} more" if more > 0 else "")
        return (
            f"run {format_instant(self.as_of)} ok: {len(self.new_files)} new file(s), "
            f"+{human_int(self.rows_added)} events, {human_int(self.contacts)} contacts; "
            f"segments: {sizes}{health}; {self.seconds:.1f} s -> {self.folder}"
        )


#: The over-limit groups the summary line names (``health.csv`` has them all).
_NAMED_GROUPS = 5


def _clean_dead_runs(runs: Path) -> None:
    for leftover in runs.glob(f"{_TMP_PREFIX}*"):
        pid = leftover.name.removeprefix(_TMP_PREFIX)
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def _input_files(project: Project) -> tuple[list[str], list[str]]:
    """Existing input specs and warnings for the ones with nothing in them (a quiet night)."""
    specs, notes = [], []
    for spec in project.config.inputs.paths:
        path = project.path(spec)
        if path.is_dir() and not any(p.is_file() for p in path.rglob("*")):
            notes.append(f"{path}: no export files yet")
        elif not path.exists() and not any(ch in spec for ch in "*?["):
            notes.append(f"{path}: not found; no new exports read")
        elif any(ch in spec for ch in "*?[") and not list(path.parent.glob(path.name)):
            notes.append(f"{path}: no file matches")
        else:
            specs.append(str(path))
    return specs, notes


def _run_name(runs: Path, as_of: datetime) -> Path:
    base = as_of.strftime("%Y-%m-%dT%H%MZ")
    candidate, number = runs / base, 1
    while candidate.exists():
        number += 1
        candidate = runs / f"{base}-{number}"
    return candidate


def _point_latest(runs: Path, folder: Path) -> None:
    link = runs / LATEST
    temporary = runs / f".{LATEST}.tmp-{os.getpid()}"
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    os.symlink(folder.name, temporary)
    os.replace(temporary, link)


def _apply_retention(runs: Path, keep: int) -> None:
    current = (runs / LATEST).resolve() if (runs / LATEST).is_symlink() else None
    folders = sorted(
        p for p in runs.iterdir() if p.is_dir() and not p.is_symlink() and p.name[0] != "."
    )
    for old in folders[:-keep] if len(folders) > keep else []:
        if current is None or old.resolve() != current:
            shutil.rmtree(old, ignore_errors=True)


Step = Callable[[str], None]


def run_project(
    project: Project,
    as_of: datetime | None = None,
    wait_seconds: float = 0.0,
    on_step: Step | None = None,
) -> RunSummary:
    """``engscore run``: the whole pipeline under the project lock (see the module docstring)."""
    step = on_step or (lambda name: None)
    with project_lock(project.root / LOCK_FILE, wait_seconds):
        return _run_locked(project, as_of or default_as_of(), step)


def _run_locked(project: Project, as_of: datetime, step: Step) -> RunSummary:
    started = time.perf_counter()
    config = project.config
    root = project.root
    runs = project.path(config.output)
    runs.mkdir(parents=True, exist_ok=True)
    _clean_dead_runs(runs)
    summary = RunSummary(folder=runs, as_of=as_of)
    work = runs / f"{_TMP_PREFIX}{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    try:
        options = project.ingest_options()
        store = EventStore(project.path(config.store))
        rules = project.path(config.rules) if config.rules else None
        segments_file = project.path(config.segments) if config.segments else None
        health = config.health
        providers_file = project.path(health.providers) if health.providers else None
        # A mistake in the rules, segments or providers must fail the run before the store
        # changes.
        load_rules(rules)
        if segments_file is not None:
            load_segments_file(segments_file)
        providers = load_providers(providers_file)
        step("ingest")
        specs, notes = _input_files(project)
        summary.warnings += notes
        added = None
        if specs:
            added = append(store, specs, options)
            summary.new_files = [shown_path(p, root) for p in added.new_files]
            summary.skipped_files = len(added.skipped_files)
            summary.rows_added = added.rows_added
        if not store.part_files():
            raise DataError(f"{store.root}: the store holds no events yet; nothing to score")

        step("score")
        contacts = project.path(config.contacts) if config.contacts else None
        request = ScoreRequest(
            events=[str(store.root)], as_of=as_of, rules_path=rules, contacts_path=contacts
        )
        scores_path = work / "scores.parquet"
        # The store's older months are read through their carried state (``engscore.io.carried``).
        scored = run_score(
            request, scores_path, root=root, carry_in=store if config.carry else None
        )
        summary.warnings += scored.warnings
        summary.carried = scored.carried
        summary.contacts = scored.contacts

        step("segment")
        latest = runs / LATEST
        previous_segments = latest / "segments"
        previous = previous_segments if (previous_segments / "manifest.json").is_file() else None
        segmented = run_segment(
            SegmentRequest(
                workdir=root,
                output=work / "segments",
                scores=scores_path,
                rules=rules,
                segments_file=segments_file,
                inactive=config.inactive,
                compare=previous,
            )
        )
        summary.segments = [(s.name, s.rows) for s in segmented.segments]

        step("health")
        # One pass over the store gives health.csv and the report's list health.
        since = Duration.parse(health.since).subtract_from(as_of) if health.since else None
        facts = facts_of(
            load_events([str(store.root)]),
            as_of,
            since,
            FULL_GRAIN,
            providers,
            health.min_delivered,
        )
        health_table = facts.table(health.by)
        write_frame(health_table, work / "health.csv")
        summary.over_limit = flagged_groups(health_table, health.by)

        step("report")
        # Named now (the lock is held): the report names its sources where they will be.
        final = _run_name(runs, as_of)
        run_report(
            ReportRequest(
                workdir=root,
                output=work / "report.html",
                scores=scores_path,
                events=[str(store.root)],
                segments=work / "segments",
                rules=rules,
                contacts=contacts,
                by=list(config.report.by),
                title=config.report.title,
                generated_at=as_of,
                published=(work, final),
                health=facts.views(),
                min_delivered=health.min_delivered,
            )
        )

        step("publish")
        manifest: dict[str, Any] = {
            "as_of": format_instant(as_of),
            "engscore_version": __version__,
            "config": {
                "path": shown_path(Path(project.source), root),
                "sha256": sha256_file(Path(project.source)),
            },
            "new_files": summary.new_files,
            "rows_added": summary.rows_added,
            "duplicates_skipped": added.duplicates if added is not None else 0,
            "contacts": summary.contacts,
            "carried": summary.carried,
            "segments": dict(summary.segments),
            "health_over_limit": summary.over_limit,
            "warnings": summary.warnings,
        }
        write_json(manifest, work / "manifest.json")
        os.replace(work, final)
        _point_latest(runs, final)
        summary.folder = final
        _apply_retention(runs, config.retention)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    summary.seconds = time.perf_counter() - started
    return summary
