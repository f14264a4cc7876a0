"""The score stage around the engine: rules + events + contacts -> scores file and summary."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from engscore.config import IngestOptions
from engscore.engine.ledger import ledger
from engscore.errors import ConfigError, DataError
from engscore.rules import load_rules
from engscore.schema import CANONICAL_EVENT_TYPES
from engscore.score import (
    ScoreRequest,
    compute_scores,
    prepare_scoring,
    run_score,
    validate_rules_file,
)
from helpers import utc

AS_OF = utc(2026, 11, 1)
ROOT = Path(__file__).parents[1]
B2B = ROOT / "rules" / "b2b-lead-scoring.yaml"


def request(example_data: Path, **kwargs: object) -> ScoreRequest:
    return ScoreRequest(events=[str(example_data / "events.parquet")], as_of=AS_OF, **kwargs)  # type: ignore[arg-type]


def test_scores_file_has_the_spec_columns(example_data: Path, tmp_path: Path) -> None:
    output = tmp_path / "scores.parquet"
    summary = run_score(request(example_data), output)
    scores = pl.read_parquet(output)
    expected = [
        "contact_id",
        "score",
        "score_engagement",
        "grade",
        "first_seen_at",
        "last_event_at",
        "last_engaged_at",
        "days_since_engaged",
        "status",
        "seasonal",
        "unengaged",
        *(f"n_{t}" for t in CANONICAL_EVENT_TYPES),
        "n_machine_open",
        "unsubscribed",
        "complained",
        "hard_bounced",
        "recency_days",
        "frequency",
        "monetary",
        "r",
        "f",
        "m",
        "rfm_segment",
        "p_alive",
        "expected_purchases_90d",
        "clv",
    ]
    assert scores.columns == expected
    assert scores["contact_id"].is_sorted() and scores["contact_id"].n_unique() == scores.height
    assert summary.contacts == scores.height
    assert sum(n for _, n in summary.grades) == scores.height
    assert [g for g, _ in summary.grades] == ["hot", "warm", "cold"]
    assert set(summary.percentiles) == {"p10", "p25", "p50", "p75", "p90", "p99"}
    metadata = pq.read_metadata(output).metadata
    assert metadata[b"engscore.as_of"] == b"2026-11-01T00:00:00Z"


def test_sensible_grades_on_example_data(example_data: Path, tmp_path: Path) -> None:
    summary = run_score(request(example_data), tmp_path / "s.parquet")
    grades = dict(summary.grades)
    # A real list: a few hot contacts, more warm ones, most cold.
    assert 0 < grades["hot"] < grades["warm"] < grades["cold"]


def test_same_inputs_give_identical_files(example_data: Path, tmp_path: Path) -> None:
    for name in ("a.parquet", "b.parquet", "a.csv", "b.csv"):
        run_score(request(example_data), tmp_path / name)
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_ledger_adds_up_to_every_score(example_data: Path, tmp_path: Path) -> None:
    # The same ledger `explain` shows, summed per contact, plus the clamp, is the score.
    output = tmp_path / "scores.parquet"
    run_score(request(example_data), output)
    prepared = prepare_scoring(request(example_data))
    rules = prepared.rules_file.rules
    sums = (
        ledger(prepared.events, rules, AS_OF)
        .group_by("contact_id")
        .agg(ledger_total=pl.col("points").sum())
        .collect()
    )
    scores = pl.read_parquet(output).join(sums, on="contact_id", how="left")
    unclamped = scores["ledger_total"].fill_null(0.0)
    clamped = unclamped.clip(rules.min_score, rules.max_score)
    assert (clamped - scores["score"]).abs().max() < 1e-9  # type: ignore[operator]


def test_profile_rules_score_the_contacts_file(example_data: Path, tmp_path: Path) -> None:
    run_score(
        request(example_data, rules_path=B2B, contacts_path=example_data / "contacts.csv"),
        tmp_path / "s.parquet",
    )
    scores = pl.read_parquet(tmp_path / "s.parquet")
    assert {"score_engagement", "score_fit"} <= set(scores.columns)
    assert scores["score_fit"].max() > 0  # type: ignore[operator]
    rules = load_rules(B2B).rules
    total = (scores["score_engagement"] + scores["score_fit"]).clip(
        rules.min_score, rules.max_score
    )
    assert (total - scores["score"]).abs().max() < 1e-9  # type: ignore[operator]


def test_profile_rules_without_contacts_warn(example_data: Path) -> None:
    prepared = prepare_scoring(request(example_data, rules_path=B2B))
    assert any("pass --contacts FILE" in w for w in prepared.warnings)


def test_unknown_column_in_where_names_the_rule_line(example_data: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "points:\n  - name: pricing\n    event: page_view\n    where: \"urll LIKE '%x%'\"\n"
        "    points: 5\n"
    )
    with pytest.raises(
        ConfigError, match=r"rules.yaml:4: points\[0\].where: unknown column 'urll'"
    ):
        prepare_scoring(request(example_data, rules_path=rules))


def test_bad_rules_fail_before_reading_events(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("pointz: []\n")
    missing = ScoreRequest(events=[str(tmp_path / "nope.csv")], as_of=AS_OF, rules_path=rules)
    with pytest.raises(ConfigError, match="rules.yaml:1: pointz: unknown key"):
        prepare_scoring(missing)


def test_contacts_file_without_a_key_column(example_data: Path, tmp_path: Path) -> None:
    contacts = tmp_path / "people.csv"
    contacts.write_text("name,country\nann,FR\n")
    with pytest.raises(DataError, match="people.csv: no contact key column"):
        prepare_scoring(request(example_data, rules_path=B2B, contacts_path=contacts))


def test_validate_warns_on_non_canonical_columns(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "points:\n  - name: vip\n    event: purchase\n    where: \"tier = 'gold'\"\n    points: 5\n"
    )
    report = validate_rules_file(rules, [])
    assert report.warnings == [
        f"{rules}:4: points[0].where: 'tier' is not a canonical column; your events must have it"
    ]


def test_too_few_buyers_leave_predictions_null_and_say_why(example_data: Path) -> None:
    scored = compute_scores(prepare_scoring(request(example_data)))
    scores = scored.table
    assert scores["p_alive"].null_count() == scores.height
    assert any(w.startswith("predictions not computed: ") for w in scored.warnings)


def test_predictions_fill_in_with_enough_buyers(example_data: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("predict:\n  min_buyers: 10\n  min_repeat_buyers: 5\n")
    prepared = prepare_scoring(request(example_data, rules_path=rules))
    scores = compute_scores(prepared).table
    buyers = scores.filter(pl.col("r").is_not_null())
    assert buyers["p_alive"].null_count() == 0
    assert buyers["p_alive"].is_between(0, 1).all()
    assert (
        scores.filter(pl.col("r").is_null())["p_alive"].null_count()
        == scores.height - buyers.height
    )


@pytest.mark.parametrize("ingested", [False, True])
def test_scoring_in_contact_buckets_gives_the_same_file(
    example_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ingested: bool
) -> None:
    # Large inputs are scored bucket by bucket (contact ranges of a sorted ingested file, else
    # hash buckets); the result must not depend on it.
    from engscore import score as score_module
    from engscore.io.events import ingest_to_file

    events = example_data / "events.parquet"
    if ingested:
        from engscore.io import outputs

        monkeypatch.setattr(outputs, "PARQUET_ROW_GROUP", 2_000)  # several row groups
        events = tmp_path / "ingested.parquet"
        ingest_to_file([str(example_data / "events.parquet")], events)
        assert score_module._sorted_file_bounds(
            prepare_scoring(ScoreRequest(events=[str(events)], as_of=AS_OF)), 4, "contact_id"
        )
    contacts = example_data / "contacts.csv"
    one = ScoreRequest(events=[str(events)], as_of=AS_OF, rules_path=B2B, contacts_path=contacts)
    whole = compute_scores(prepare_scoring(one)).table
    monkeypatch.setattr(score_module, "SCORE_BUCKET_ROWS", 3_000)
    bucketed = compute_scores(prepare_scoring(one)).table
    assert bucketed.equals(whole)


@pytest.mark.parametrize("bucket_rows", [None, 3_000])
def test_contact_numbers_of_an_ingested_file_give_the_same_scores(
    example_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bucket_rows: int | None
) -> None:
    # An ingested Parquet file is scored on its integer contact numbers; the scores file must
    # be the one the text ids give (same rows, same order).
    from engscore import score as score_module
    from engscore.io import outputs
    from engscore.io.events import ingest_to_file

    monkeypatch.setattr(outputs, "PARQUET_ROW_GROUP", 2_000)
    events = tmp_path / "ingested.parquet"
    ingest_to_file([str(example_data / "events.parquet")], events)
    by_id = compute_scores(prepare_scoring(request(example_data))).table
    if bucket_rows is not None:
        monkeypatch.setattr(score_module, "SCORE_BUCKET_ROWS", bucket_rows)
    prepared = prepare_scoring(ScoreRequest(events=[str(events)], as_of=AS_OF))
    assert score_module._numbered(prepared) is not None
    assert compute_scores(prepared).table.equals(by_id)


def test_rules_without_point_rules_score_an_ingested_file(
    example_data: Path, tmp_path: Path
) -> None:
    # RFM and status only: the empty points table must take the contact numbers' type (it
    # was a String column, and the join with the facts failed).
    from engscore.io.events import ingest_to_file

    events = tmp_path / "ingested.parquet"
    ingest_to_file([str(example_data / "events.parquet")], events)
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\npoints: []\n")
    scores = compute_scores(
        prepare_scoring(ScoreRequest(events=[str(events)], as_of=AS_OF, rules_path=rules))
    ).table
    assert scores.height > 0 and (scores["score"] == 0).all()
    assert scores["contact_id"].dtype == pl.String and scores["contact_id"].is_sorted()


def test_rules_reading_contact_id_score_on_the_text_ids(example_data: Path, tmp_path: Path) -> None:
    from engscore import score as score_module
    from engscore.io.events import ingest_to_file

    events = tmp_path / "ingested.parquet"
    ingest_to_file([str(example_data / "events.parquet")], events)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\npoints:\n  - name: staff_opens\n    event: open\n"
        "    where: \"contact_id LIKE '%@example.com'\"\n    points: 5\n"
    )
    prepared = prepare_scoring(ScoreRequest(events=[str(events)], as_of=AS_OF, rules_path=rules))
    assert score_module._numbered(prepared) is None
    by_id = compute_scores(
        prepare_scoring(ScoreRequest(events=[str(example_data / "events.parquet")], as_of=AS_OF,
                                     rules_path=rules))
    ).table  # fmt: skip
    assert compute_scores(prepared).table.equals(by_id)


def test_ingest_outputs_glued_together_are_not_trusted_to_be_sorted(
    example_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another tool concatenating two ingest outputs keeps their Parquet marks; the contact
    # numbers then clash and the rows are out of order, which the row groups show.
    import pyarrow as pa

    from engscore.io import outputs
    from engscore.io.events import ingest_to_file

    monkeypatch.setattr(outputs, "PARQUET_ROW_GROUP", 2_000)
    events = pl.read_parquet(example_data / "events.parquet")
    halves = []
    for name, half in (
        ("early", events.filter(pl.col("timestamp") < utc(2025, 6, 1))),
        ("late", events.filter(pl.col("timestamp") >= utc(2025, 6, 1))),
    ):
        raw = tmp_path / f"{name}-raw.parquet"
        half.write_parquet(raw)
        ingest_to_file([str(raw)], tmp_path / f"{name}.parquet")
        halves.append(pq.read_table(tmp_path / f"{name}.parquet"))
    glued = tmp_path / "glued.parquet"
    pq.write_table(pa.concat_tables(halves), glued, row_group_size=2_000)
    prepared = prepare_scoring(ScoreRequest(events=[str(glued)], as_of=AS_OF))
    assert prepared.files[0].preset == "engscore events"  # still read as canonical
    assert not prepared.presorted and prepared.keyed is None
    expected = compute_scores(prepare_scoring(request(example_data))).table
    assert compute_scores(prepared).table.equals(expected)


def test_an_export_in_random_order_is_scored_through_a_sorted_copy(
    example_data: Path, tmp_path: Path
) -> None:
    # run_score sorts an export by contact in a scratch folder beside the output first (the
    # input is read once); the scores equal scoring the export as it is, and nothing is left.
    events = pl.read_parquet(example_data / "events.parquet")
    shuffled = tmp_path / "in" / "shuffled.parquet"
    shuffled.parent.mkdir()
    pl.concat([events, events.head(500)]).sample(fraction=1.0, shuffle=True, seed=7).write_parquet(
        shuffled, row_group_size=20_000
    )
    as_is = ScoreRequest(events=[str(shuffled)], as_of=AS_OF)
    direct = compute_scores(prepare_scoring(as_is)).table
    output = tmp_path / "out" / "scores.parquet"
    summary = run_score(as_is, output)
    assert pl.read_parquet(output).equals(direct)
    assert sorted(p.name for p in output.parent.iterdir()) == ["scores.parquet"]
    assert [f.path for f in summary.files] == [shuffled]
    provenance = json.loads(pq.read_metadata(output).metadata[b"engscore.inputs"])
    assert [i["path"] for i in provenance] == [str(shuffled)]


def test_rejected_rows_stop_the_sorted_copy_and_leave_nothing(tmp_path: Path) -> None:
    output = tmp_path / "new" / "scores.parquet"
    bad = ROOT / "tests" / "fixtures" / "ingest" / "bad_rows.csv"
    with pytest.raises(DataError, match="bad_rows.csv:"):
        run_score(ScoreRequest(events=[str(bad)], as_of=AS_OF), output)
    assert not output.parent.exists()
    skipped = ScoreRequest(events=[str(bad)], as_of=AS_OF, ingest=IngestOptions(on_error="skip"))
    summary = run_score(skipped, output)
    assert summary.files[0].rows_rejected > 0
    # Left out, not silently: the summary says how many and why.
    assert any(
        note.startswith(f"{summary.files[0].rows_rejected} rejected row(s) left out (missing")
        for note in summary.warnings
    )
    assert sorted(p.name for p in output.parent.iterdir()) == ["scores.parquet"]


def test_what_describes_a_scoring_holds_no_event(example_data: Path, tmp_path: Path) -> None:
    # `engscore score` makes and writes the scores table after the passes with this copy,
    # so that the events read into memory are freed first.
    prepared = prepare_scoring(request(example_data), tmp_path)
    described = prepared.without_events()
    assert described.events.collect().is_empty()
    assert described.events.collect_schema() == prepared.events.collect_schema()
    assert described.keyed is None
    assert (described.rules_file, described.files) == (prepared.rules_file, prepared.files)
