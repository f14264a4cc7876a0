"""Segments: the playbook, suppression, CSV safety, atomic folders, movement, the CLI flow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from engscore.cli import app
from engscore.durations import Duration
from engscore.errors import ConfigError
from engscore.rules import Rules, SegmentDefinition
from engscore.segments import (
    SegmentRequest,
    _moves,
    builtin_segments,
    defuse_formulas,
    inactive_segment,
    plan_segments,
    run_segment,
    select_segment,
    write_segments,
)
from helpers import utc

AS_OF = utc(2026, 11, 1)
runner = CliRunner()


def scores_frame() -> pl.DataFrame:
    """A tiny scores table with the columns the playbook uses."""
    return pl.DataFrame(
        {
            "contact_id": ["a@x.com", "b@x.com", "c@x.com", "d@x.com", "=cmd@x.com"],
            "score": [120.0, 40.0, 0.0, 5.0, 60.0],
            "grade": ["hot", "warm", "cold", "cold", "warm"],
            "first_seen_at": [utc(2024, 1, 1)] * 5,
            "last_event_at": [utc(2026, 10, 30)] * 5,
            "last_engaged_at": [utc(2026, 10, 1), utc(2026, 6, 1), None, utc(2025, 1, 1), None],
            "days_since_engaged": [31, 153, None, 669, None],
            "status": ["active", "at_risk", "never_engaged", "lapsed", "never_engaged"],
            "seasonal": [False, False, False, False, False],
            "unengaged": [False, False, True, False, False],
            "n_click": [3, 1, 0, 0, 0],
            "unsubscribed": [False, True, False, False, False],
            "complained": [False, False, False, False, False],
            "hard_bounced": [False, False, False, False, False],
            "frequency": [4, None, None, 1, None],
            "monetary": [400.0, None, None, 20.0, None],
            "rfm_segment": ["Champions", None, None, "Lost", None],
            "p_alive": [0.9, None, None, 0.4, None],
            "clv": [120.0, None, None, 8.0, None],
        }
    )


def segment(name: str, where: str, mailing: bool = True) -> list:  # type: ignore[type-arg]
    definition = SegmentDefinition(name=name, where=where, mailing=mailing)
    return plan_segments(Rules(), (definition,), None, ("segments",), False, None, AS_OF)


def test_suppression_wins_over_every_where() -> None:
    scores = scores_frame()
    (everyone,) = segment("everyone", "TRUE OR unsubscribed")
    ids = select_segment(scores, everyone, "email")["email"].to_list()
    assert "b@x.com" not in ids and len(ids) == 4
    (audit,) = segment("audit", "unsubscribed", mailing=False)
    assert select_segment(scores, audit, "email")["email"].to_list() == ["b@x.com"]


def test_builtin_playbook_on_a_small_table() -> None:
    scores = scores_frame()
    planned = plan_segments(Rules(), (), None, ("segments",), True, None, AS_OF)
    rows = {s.name: select_segment(scores, s, "email")["email"].to_list() for s in planned}
    assert rows["suppress"] == ["b@x.com"]
    assert rows["sunset"] == ["d@x.com"]
    assert rows["reactivation"] == []  # b is at risk but unsubscribed
    assert rows["loyalty"] == ["a@x.com"]
    assert rows["warm_leads"] == ["=cmd@x.com"]  # b is warm but suppressed; a is a buyer
    assert rows["newsletter_engaged"] == ["a@x.com"]
    assert rows["inactive_buyers"] == ["d@x.com"]
    assert [s.name for s in planned] == [d.name for d in builtin_segments(Rules())]


def test_user_segment_replaces_a_builtin_and_duplicates_fail() -> None:
    mine = SegmentDefinition(name="sunset", where="status = 'lapsed'")
    planned = plan_segments(Rules(), (mine,), None, ("segments",), True, None, AS_OF)
    assert [s.where for s in planned if s.name == "sunset"] == ["status = 'lapsed'"]
    with pytest.raises(ConfigError, match="defined twice"):
        plan_segments(Rules(), (mine, mine), None, ("segments",), True, None, AS_OF)


def test_inactive_window_is_calendar_months() -> None:
    extra = inactive_segment(Duration.parse("6m"), utc(2026, 8, 31))
    assert "since 2026-02-28" in extra.description
    frame = pl.DataFrame(
        {
            "last_engaged_at": [utc(2026, 2, 28), utc(2026, 2, 28, 0, 0, 1), None],
            "first_seen_at": [utc(2020, 1, 1), utc(2020, 1, 1), utc(2026, 8, 1)],
        }
    )
    assert frame.select(extra.condition.alias("in"))["in"].to_list() == [True, False, False]


def test_formulas_are_defused_in_text_cells() -> None:
    frame = pl.DataFrame({"email": ["=1+1", "+x", "-y", "@z", "\tq", "ok"], "n": [-1] * 6})
    out = defuse_formulas(frame)
    assert out["email"].to_list() == ["'=1+1", "'+x", "'-y", "'@z", "'\tq", "ok"]
    assert out["n"].to_list() == [-1] * 6  # numbers stay numbers


def write_scores(folder: Path) -> Path:
    path = folder / "scores.parquet"
    scores_frame().write_parquet(path, metadata={"engscore.as_of": "2026-11-01T00:00:00Z"})
    return path


def test_files_manifest_and_csv_injection(tmp_path: Path) -> None:
    scores = write_scores(tmp_path)
    report = run_segment(
        SegmentRequest(workdir=tmp_path, output=tmp_path / "segments", scores=scores)
    )
    folder = tmp_path / "segments"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["as_of"] == "2026-11-01T00:00:00Z"
    assert manifest["segments"]["suppress"]["rows"] == 1
    assert manifest["scores"]["sha256"] and manifest["engscore_version"]
    warm = (folder / "warm_leads.csv").read_text().splitlines()
    assert warm[0].startswith("email,score,grade")
    assert warm[1].startswith("'=cmd@x.com,")
    assert {r.name for r in report.segments} == set(manifest["segments"])


def test_movement_since_the_previous_run(tmp_path: Path) -> None:
    scores = write_scores(tmp_path)
    request = SegmentRequest(workdir=tmp_path, output=tmp_path / "segments", scores=scores)
    first = run_segment(request)
    assert first.compared_with is None
    changed = scores_frame().with_columns(status=pl.lit("lapsed"))
    changed.write_parquet(scores, metadata={"engscore.as_of": "2026-11-01T00:00:00Z"})
    second = {r.name: r for r in run_segment(request).segments}
    # a, c, =cmd became lapsed (d already was; b is suppressed).
    assert (second["sunset"].entered, second["sunset"].left) == (3, 0)
    assert (second["newsletter_engaged"].entered, second["newsletter_engaged"].left) == (0, 1)


def test_bad_segment_column_names_the_line(tmp_path: Path) -> None:
    scores = write_scores(tmp_path)
    defs = tmp_path / "segments.yaml"
    defs.write_text('segments:\n  - name: vip\n    where: "scroe > 100"\n')
    request = SegmentRequest(
        workdir=tmp_path, output=tmp_path / "out", scores=scores, segments_file=defs
    )
    with pytest.raises(ConfigError, match=r"segments.yaml:2: segment 'vip': unknown scores column"):
        run_segment(request)
    assert not (tmp_path / "out").exists()


KILLER = """
import os, signal, sys
from pathlib import Path
import polars as pl
from engscore.segments import SegmentRequest, run_segment
written = []
original = pl.DataFrame.write_csv
def write_then_die(self, *args, **kwargs):
    written.append(1)
    if len(written) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, *args, **kwargs)
pl.DataFrame.write_csv = write_then_die
folder = Path(sys.argv[1])
scores = folder / "scores.parquet"
run_segment(SegmentRequest(workdir=folder, output=folder / "segments", scores=scores))
"""


def test_a_kill_while_writing_leaves_the_old_folder_intact(tmp_path: Path) -> None:
    scores = write_scores(tmp_path)
    run_segment(SegmentRequest(workdir=tmp_path, output=tmp_path / "segments", scores=scores))
    before = {p.name: p.read_bytes() for p in (tmp_path / "segments").iterdir()}
    killed = subprocess.run([sys.executable, "-c", KILLER, str(tmp_path)], check=False)
    assert killed.returncode == -9
    after = {p.name: p.read_bytes() for p in (tmp_path / "segments").iterdir()}
    assert after == before
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".segments.")]
    assert len(leftovers) == 1  # the dead run's incomplete folder ...
    run_segment(SegmentRequest(workdir=tmp_path, output=tmp_path / "segments", scores=scores))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".segments.")]  # ... cleaned


def test_score_then_segment_from_a_bare_directory(example_data: Path, tmp_path: Path) -> None:
    # The SPEC's flow, as separate processes in an empty folder.
    env = {**os.environ, "NO_COLOR": "1"}
    events = str(example_data / "events.parquet")
    score = [sys.executable, "-m", "engscore", "score", events, "--as-of", "2026-11-01"]
    subprocess.run(score, cwd=tmp_path, check=True, env=env, capture_output=True)
    segment = [sys.executable, "-m", "engscore", "segment", "--inactive", "6m"]
    done = subprocess.run(segment, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "inactive_6m" in done.stderr
    manifest = json.loads((tmp_path / "segments" / "manifest.json").read_text())
    assert manifest["as_of"] == "2026-11-01T00:00:00Z"
    assert manifest["segments"]["inactive_6m"]["rows"] > 0
    header = (tmp_path / "segments" / "inactive_6m.csv").read_text().splitlines()[0]
    assert header.startswith("email,")


def test_segment_without_scores_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["segment"])
    assert result.exit_code == 2
    assert "no scores to segment: run `engscore score EVENTS...` here first" in result.output
    result = runner.invoke(app, ["segment", "--scores", "x.parquet", "--inactive", "6 months"])
    assert result.exit_code == 2
    assert "--inactive: '6 months' is not a duration" in result.output
    result = runner.invoke(app, ["segment", "--scores", "x.parquet"])
    assert result.exit_code == 1
    assert "x.parquet: file not found" in result.output
    # Not a Parquet file: one line naming it, not an "unexpected" error; nothing written.
    (tmp_path / "broken.parquet").write_text("not parquet\n")
    for command in ("segment", "report"):
        result = runner.invoke(app, [command, "--scores", "broken.parquet", "-o", "out"])
        assert result.exit_code == 1, result.output
        assert "broken.parquet: cannot read scores: " in result.output
        assert "unexpected" not in result.output
        assert not (tmp_path / "out").exists()


_ids = st.lists(st.sampled_from([f"c{i}@x.com" for i in range(8)]), max_size=12)


@given(now=_ids, before=_ids)
def test_entered_and_left_count_rows_like_membership_tests(
    now: list[str], before: list[str]
) -> None:
    entered = sum(1 for i in now if i not in before)
    left = sum(1 for i in before if i not in now)
    assert _moves(pl.Series(now, dtype=pl.String), pl.Series(before, dtype=pl.String)) == (
        entered,
        left,
    )
    assert _moves(pl.Series(now, dtype=pl.String), None) == (None, None)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from([None, 0.0, 5.0, 40.0]),
            st.sampled_from([None, 1, 30, 400]),
            st.sampled_from([None, 10.0, 20.0]),
        ),
        min_size=1,
        max_size=20,
    ),
    order=st.sampled_from(
        [("-score",), ("days_since_engaged", "-monetary", "-score"), ("-monetary",), ()]
    ),
)
def test_ranking_ties_go_by_contact_on_sorted_and_unsorted_scores(
    rows: list[tuple[float | None, int | None, float | None]], order: tuple[str, ...]
) -> None:
    ids = [f"{'=' if i % 3 == 0 else ''}c{i:02d}@x.com" for i in range(len(rows))]
    scores = pl.DataFrame(
        {
            "contact_id": ids,
            "score": [r[0] for r in rows],
            "days_since_engaged": [r[1] for r in rows],
            "monetary": [r[2] for r in rows],
        },
        schema_overrides={"score": pl.Float64, "days_since_engaged": pl.Int64},
    )
    definition = SegmentDefinition(name="all", where="TRUE", mailing=False, order_by=order)
    (planned,) = plan_segments(Rules(), (definition,), None, ("segments",), False, None, AS_OF)
    by = [c.removeprefix("-") for c in order] + ["contact_id"]
    descending = [c.startswith("-") for c in order] + [False]
    expected = scores.sort(by, descending=descending, nulls_last=True)["contact_id"].to_list()
    # Sorted by contact (a scores file: the stable sort) and shuffled (the full sort).
    for frame in (scores.sort("contact_id"), scores.reverse()):
        assert select_segment(frame, planned, "contact_id")["contact_id"].to_list() == expected


def test_a_constant_condition_selects_every_row_of_a_large_table() -> None:
    # Polars' eager filter failed on `TRUE` over 100k rows (ShapeError, a traceback).
    scores = pl.concat([scores_frame()] * 30_000)
    for where, mailing, rows in (
        ("TRUE", False, 150_000),
        ("FALSE", False, 0),
        ("1 = 1", True, 120_000),
    ):
        (planned,) = segment("everyone", where, mailing=mailing)
        assert select_segment(scores, planned, "email").height == rows


def test_segment_files_do_not_depend_on_how_the_scores_are_chunked(tmp_path: Path) -> None:
    # Above about 250k rows Polars' writer starts a row group per chunk unless told a size.
    whole = (
        pl.concat([scores_frame()] * 60_000)
        .with_columns(contact_id=pl.format("{}{}", pl.int_range(pl.len()), pl.col("contact_id")))
        .rechunk()
    )
    chunked = pl.concat([whole.slice(0, 100), whole.slice(100)], rechunk=False)
    everyone = SegmentDefinition(name="everyone", where="TRUE", mailing=False)
    planned = plan_segments(Rules(), (everyone,), None, ("segments",), False, None, AS_OF)
    for name, frame in (("whole", whole), ("chunked", chunked)):
        write_segments(frame, planned, tmp_path / name, {"as_of": "x"}, None)
    for path in sorted((tmp_path / "whole").iterdir()):
        assert path.read_bytes() == (tmp_path / "chunked" / path.name).read_bytes(), path.name
