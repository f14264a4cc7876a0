"""Rules files (SPEC section 3): the shipped files load cleanly; mistakes name file:line: field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import polars as pl
import pytest

from engscore.durations import Duration
from engscore.errors import EXIT_CONFIG, ConfigError
from engscore.rules import (
    RulesFile,
    check_columns,
    check_profile_columns,
    load_rules,
)
from engscore.schema import CANONICAL_SCHEMA

ROOT = Path(__file__).parent.parent
RULES_DIR = ROOT / "rules"
FIXTURES = Path(__file__).parent / "fixtures" / "rules"
SHIPPED = sorted(RULES_DIR.glob("*.yaml"))
EVENTS_SCHEMA = pl.Schema(CANONICAL_SCHEMA)
CONTACTS_SCHEMA = pl.read_csv(FIXTURES / "contacts.csv").schema
NAME = "rules.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / NAME
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str) -> RulesFile:
    return load_rules(write(tmp_path, text))


def error_of(tmp_path: Path, text: str, events: bool = False, contacts: bool = False) -> str:
    """The message of the ConfigError raised by loading (and optionally column-checking)."""
    with pytest.raises(ConfigError) as info:
        rules_file = load_text(tmp_path, text)
        if events:
            check_columns(rules_file, EVENTS_SCHEMA)
        if contacts:
            check_profile_columns(rules_file, CONTACTS_SCHEMA)
    assert info.value.exit_code == EXIT_CONFIG
    return info.value.message


def assert_line(tmp_path: Path, message: str, expected: str) -> None:
    """Some line of ``message`` starts with ``<tmp_path>/rules.yaml:`` + ``expected``."""
    prefix = f"{tmp_path / NAME}:{expected}"
    assert any(line.startswith(prefix) for line in message.splitlines()), (
        f"no line starts with {prefix!r} in:\n{message}"
    )


# --- The shipped rules files -------------------------------------------------------------------


def test_the_example_rules_files_are_shipped() -> None:
    names = {p.name for p in SHIPPED}
    assert {"default.yaml", "b2b-lead-scoring.yaml", "b2c-newsletter.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_rules_load_cleanly(path: Path) -> None:
    rules_file = load_rules(path)
    assert rules_file.warnings == []
    assert rules_file.rules.points, "a shipped rules file should award points"
    check_columns(rules_file, EVENTS_SCHEMA)
    check_profile_columns(rules_file, CONTACTS_SCHEMA)


def test_default_rules_are_packaged_byte_for_byte() -> None:
    packaged = ROOT / "src" / "engscore" / "data" / "default.yaml"
    assert (RULES_DIR / "default.yaml").read_bytes() == packaged.read_bytes()


def test_load_rules_without_a_path_gives_the_default_rules() -> None:
    default = load_rules(None)
    assert default.warnings == []
    assert "default.yaml" in default.source
    assert default.rules == load_rules(RULES_DIR / "default.yaml").rules
    assert default.where("points", 0, "points").endswith("default.yaml:33")


def test_b2b_lead_scoring_rules() -> None:
    rules = load_rules(RULES_DIR / "b2b-lead-scoring.yaml").rules
    assert rules.groups == ["engagement", "fit"]
    assert rules.half_life_days == 60.0
    assert rules.reset.after_inactive == Duration(3, "m")
    assert set(rules.reset.on_events) == {"unsubscribe", "complaint"}
    by_name = {r.name: r for r in rules.points}
    assert by_name["key_page_visit"].unique_by == ("url",)
    assert max(r.points for r in rules.points) == by_name["form_submitted"].points
    assert {r.group for r in rules.points} == {"engagement"}
    assert {r.group for r in rules.profile} == {"fit"}
    assert [g for g, _ in rules.grade_order()] == ["A", "B", "C"]


def test_b2b_fit_rules_match_the_contacts_columns() -> None:
    rules = load_rules(RULES_DIR / "b2b-lead-scoring.yaml").rules
    contacts = pl.read_csv(FIXTURES / "contacts.csv")
    matched = contacts.select(
        "job_title", *(r.condition.fill_null(False).alias(r.name) for r in rules.profile)
    )
    names = {
        row["job_title"]: {r.name for r in rules.profile if row[r.name]}
        for row in matched.iter_rows(named=True)
    }
    assert names == {
        "Marketing Manager": {"manager", "mid_size_company", "referral"},
        "Head of Growth": {"senior_title", "large_company"},
        "Sales Director": {"senior_title", "mid_size_company"},
        "Student": {"micro_company"},
        "VP Marketing": {"senior_title"},
    }


def test_b2c_newsletter_rules() -> None:
    rules = load_rules(RULES_DIR / "b2c-newsletter.yaml").rules
    assert rules.half_life_days == 30.0
    assert rules.reset.after_inactive == Duration(12, "m")
    by_name = {r.name: r for r in rules.points}
    assert by_name["opened"].unique_by == ("campaign_id",)
    assert by_name["opened"].points < by_name["clicked"].points < by_name["purchased"].points
    bonus = by_name["big_purchase_bonus"]
    assert bonus.event == ("purchase",) and bonus.where == "amount >= 100"
    assert bonus.condition is not None
    amounts = pl.DataFrame({"amount": [99.99, 100.0, None]})
    assert amounts.select(bonus.condition).to_series().to_list() == [False, True, None]


# --- Mistakes found when loading ---------------------------------------------------------------

BAD = [
    pytest.param(
        """\
        version: 1
        pointz: []
        """,
        "2: pointz: unknown key",
        id="unknown-top-level-key",
    ),
    pytest.param(
        """\
        version: 1
        points:
          - name: opened
            event: open
            points: 10
          - name: clicked
            event: click
            pointz: 20
        """,
        "8: points[1].pointz: unknown key",
        id="unknown-key-in-rule",
    ),
    pytest.param(
        """\
        points:
          - name: opened
            event: open
            points: ten
        """,
        "4: points[0].points: must be a number",
        id="points-not-a-number",
    ),
    pytest.param(
        """\
        points:
          - name: opened
            event: open
            points: 1
            once: sometimes
        """,
        "5: points[0].once: must be true or false",
        id="once-not-a-bool",
    ),
    pytest.param(
        """\
        reset:
          on_events: [unsubscribe]
          after_inactive: 6 months
        """,
        "3: reset.after_inactive: '6 months' is not a duration",
        id="duration-in-words",
    ),
    pytest.param(
        """\
        reset:
          after_inactive: 180
        """,
        "2: reset.after_inactive: 180 is not a duration",
        id="duration-without-unit",
    ),
    pytest.param(
        """\
        decay:
          half_life: 3m
        """,
        "2: decay.half_life: a half-life takes days or weeks",
        id="half-life-in-months",
    ),
    pytest.param(
        """\
        decay:
          half_life: 0d
        """,
        "2: decay.half_life: '0d': a duration must be greater than zero",
        id="half-life-zero",
    ),
    pytest.param(
        """\
        points:
          - name: pricing
            event: page_view
            where: "url LIKE"
            points: 50
        """,
        "4: points[0].where: not a valid SQL condition",
        id="bad-sql",
    ),
    pytest.param(
        """\
        points:
          - name: pricing
            event: page_view
            where: "url = 'x'; DROP TABLE events"
            points: 50
        """,
        "4: points[0].where: not a valid SQL condition",
        id="sql-statement-not-expression",
    ),
    pytest.param(
        """\
        points: []
        profile:
          - name: manager
            where: "job_title ILIKE"
            points: 15
        """,
        "4: profile[0].where: not a valid SQL condition",
        id="bad-sql-in-profile",
    ),
    pytest.param(
        """\
        points:
          - name: opened
            event: open
            points: 1
            once: true
            unique_by: [campaign_id]
        """,
        "2: points[0]: use either once or unique_by, not both",
        id="once-and-unique-by",
    ),
    pytest.param(
        """\
        points:
          - name: opened
            event: open
            points: 1
            group: Fit Score
        """,
        "5: points[0].group: 'Fit Score' is not a group name",
        id="bad-group-name",
    ),
    pytest.param(
        """\
        profile:
          - name: referral
            where: "source = 'referral'"
            points: 20
            group: 2fit
        """,
        "5: profile[0].group: '2fit' is not a group name",
        id="bad-profile-group-name",
    ),
    pytest.param(
        """\
        points:
          - name: opened
            event: []
            points: 1
        """,
        "3: points[0].event: name at least one event type",
        id="no-event-type",
    ),
    pytest.param(
        """\
        points:
          - name: opened
            points: 1
        """,
        "2: points[0].event: required key is missing",
        id="missing-event",
    ),
    pytest.param(
        """\
        points:
          - name: opened
            event: open
            points: 1
            cap: 0
        """,
        "5: points[0].cap: input should be greater than 0",
        id="cap-not-positive",
    ),
    pytest.param(
        """\
        grades:
          hot: 100
          warm: lots
        """,
        "3: grades.warm: must be a number",
        id="grade-not-a-number",
    ),
    pytest.param(
        """\
        grades: {hot: 50, warm: 50}
        """,
        "1: grades: two grades have the same threshold",
        id="grades-same-threshold",
    ),
    pytest.param(
        """\
        version: 2
        """,
        "1: version: input should be 1",
        id="unknown-version",
    ),
    pytest.param(
        """\
        version: 1
        max_score: 500
        max_score: 600
        """,
        "3: duplicate key 'max_score'",
        id="duplicate-yaml-key",
    ),
    pytest.param(
        """\
        points:
          - name: opened
            event: open
            points: 1
            points: 2
        """,
        "5: duplicate key 'points'",
        id="duplicate-yaml-key-in-rule",
    ),
    pytest.param(
        """\
        - name: opened
          event: open
        """,
        "1: a rules file is a mapping",
        id="list-document",
    ),
    pytest.param(
        """\
        just some text
        """,
        "1: a rules file is a mapping",
        id="scalar-document",
    ),
    pytest.param(
        """\
        points: !!python/object/apply:os.system ["true"]
        """,
        "1: invalid YAML: tag",
        id="unsafe-tag",
    ),
    pytest.param(
        """\
        points:
          - name: opened
           event: open
        """,
        "3: invalid YAML",
        id="invalid-yaml",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_rules_name_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    assert_line(tmp_path, error_of(tmp_path, text), expected)


def test_all_mistakes_are_listed_at_once() -> None:
    path = FIXTURES / "many_errors.yaml"
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert info.value.message.splitlines() == [
        f"{path}:5: decay.half_life: a half-life takes days or weeks (e.g. 90d, 13w), not 6m",
        f"{path}:12: points[1].points: required key is missing",
        f"{path}:14: points[1].pointz: unknown key (check the spelling)",
        f"{path}:17: points[2].points: must be a number",
        f"{path}:18: points[2].once: must be true or false",
    ]


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_rules(tmp_path / "nope.yaml")


def test_min_score_above_max_score_is_an_error(tmp_path: Path) -> None:
    message = error_of(tmp_path, "min_score: 10\nmax_score: 5\n")
    assert message.startswith(f"{tmp_path / NAME}:")
    assert "min_score 10 is above max_score 5" in message


def test_min_score_above_max_score_names_the_field(tmp_path: Path) -> None:
    message = error_of(tmp_path, "version: 1\nmin_score: 10\nmax_score: 5\n")
    assert message.startswith(
        (f"{tmp_path / NAME}:2: min_score: ", f"{tmp_path / NAME}:3: max_score: ")
    )


def test_duplicate_rule_names_are_an_error(tmp_path: Path) -> None:
    text = """\
        points:
          - name: opened
            event: open
            points: 1
        profile:
          - name: opened
            where: "source = 'referral'"
            points: 2
        """
    assert "rule name 'opened' is used twice" in error_of(tmp_path, text)


def test_duplicate_rule_names_name_the_second_rule(tmp_path: Path) -> None:
    text = """\
        version: 1
        points:
          - name: opened
            event: open
            points: 1
          - name: opened
            event: click
            points: 2
        """
    assert_line(tmp_path, error_of(tmp_path, text), "6: points[1].name: ")


def test_points_must_not_be_a_boolean(tmp_path: Path) -> None:
    text = """\
        points:
          - name: opened
            event: open
            points: yes
        """
    assert_line(tmp_path, error_of(tmp_path, text), "4: points[0].points: must be a number")


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_points_must_be_finite(tmp_path: Path, value: str) -> None:
    text = f"""\
        points:
          - name: opened
            event: open
            points: {value}
        """
    assert_line(tmp_path, error_of(tmp_path, text), "4: points[0].points: ")


# --- Unknown event types are warnings, not errors ----------------------------------------------


def test_unknown_event_type_is_a_warning(tmp_path: Path) -> None:
    rules_file = load_text(
        tmp_path,
        """\
        engaged_events: [open, click, webinar_attended]
        reset:
          on_events: [unsubscribe, opt-out]
        points:
          - name: opened
            event: open
            points: 1
          - name: webinar
            event: [click, Webinar Attended]
            points: 30
        """,
    )
    where = str(tmp_path / NAME)
    assert len(rules_file.warnings) == 3
    first, second, third = rules_file.warnings
    assert first.startswith(f"{where}:1: engaged_events[2]: 'webinar_attended' is not a canonical")
    assert second.startswith(f"{where}:3: reset.on_events[1]: 'opt_out' is not a canonical")
    assert third.startswith(f"{where}:9: points[1].event: 'webinar_attended' is not a canonical")
    assert rules_file.rules.points[1].event == ("click", "webinar_attended")


def test_event_names_are_normalised_like_ingest(tmp_path: Path) -> None:
    rules_file = load_text(
        tmp_path,
        """\
        points:
          - name: visit
            event: Page View
            points: 1
          - name: form
            event: [form-submit]
            points: 1
        """,
    )
    assert rules_file.warnings == []
    assert [r.event for r in rules_file.rules.points] == [("page_view",), ("form_submit",)]


# --- Columns, checked once the events' and contacts' schemas are known -------------------------

COLUMN_ERRORS = [
    pytest.param(
        """\
        points:
          - name: opened
            event: open
            points: 1
          - name: clicked
            event: click
            points: 1
            unique_by: [campaign, url]
        """,
        "8: points[1].unique_by: unknown column 'campaign' (events have: contact_id, ",
        id="unique-by-unknown-column",
    ),
    pytest.param(
        """\
        points:
          - name: pricing
            event: page_view
            points: 50
            where: "link LIKE '%/pricing%'"
        """,
        "5: points[0].where: unknown column 'link' (events have: contact_id, ",
        id="where-unknown-column",
    ),
    pytest.param(
        """\
        points:
          - name: purchased
            event: purchase
            where: "amount LIKE '%x%'"
            points: 50
        """,
        "4: points[0].where: expected String type, got: f64",
        id="like-on-a-number",
    ),
    pytest.param(
        """\
        points:
          - name: pricing
            event: page_view
            where: "url > 5"
            points: 50
        """,
        "4: points[0].where: cannot compare string with numeric type",
        id="string-compared-with-number",
    ),
    pytest.param(
        """\
        points:
          - name: purchased
            event: purchase
            where: "amount * 2"
            points: 50
        """,
        "4: points[0].where: must be a true/false condition, not a Float64 value",
        id="not-a-condition",
    ),
    pytest.param(
        """\
        points:
          - name: this_year
            event: open
            where: "timestamp >= '2026-01-01'"
            points: 10
        """,
        "4: points[0].where: cannot compare a time stamp with text; compare its date instead, "
        "e.g. timestamp::date >= '2026-01-01'",
        id="timestamp-compared-with-text",
    ),
]


@pytest.mark.parametrize(("text", "expected"), COLUMN_ERRORS)
def test_bad_columns_name_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    rules_file = load_text(tmp_path, text)  # loading alone does not know the columns
    with pytest.raises(ConfigError) as info:
        check_columns(rules_file, EVENTS_SCHEMA)
    assert info.value.exit_code == EXIT_CONFIG
    assert_line(tmp_path, info.value.message, expected)


def test_good_columns_pass(tmp_path: Path) -> None:
    rules_file = load_text(
        tmp_path,
        """\
        points:
          - name: big
            event: purchase
            where: "amount >= 100 AND url ILIKE '%SHOP%' AND timestamp::date >= '2026-01-01'"
            points: 50
            unique_by: [url]
        """,
    )
    check_columns(rules_file, EVENTS_SCHEMA)
    # A custom column that ingest kept is fine once it is in the schema.
    check_columns(rules_file, pl.Schema({**CANONICAL_SCHEMA, "plan": pl.String()}))


def test_subquery_in_where_has_a_readable_message(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """\
        points:
          - name: odd
            event: open
            where: "url IN (SELECT 1)"
            points: 1
        """,
        events=True,
    )
    assert_line(tmp_path, message, "4: points[0].where: ")
    assert "_POLARS_TMP" not in message


def test_profile_where_is_checked_against_the_contacts_columns(tmp_path: Path) -> None:
    text = """\
        profile:
          - name: manager
            where: "job_title ILIKE '%manager%'"
            points: 15
          - name: manager_typo
            where: "jobtitle ILIKE '%manager%'"
            points: 15
        """
    rules_file = load_text(tmp_path, text)
    check_columns(rules_file, EVENTS_SCHEMA)  # profile rules are not about events
    with pytest.raises(ConfigError) as info:
        check_profile_columns(rules_file, CONTACTS_SCHEMA)
    assert_line(tmp_path, info.value.message, "6: profile[1].where: unknown column 'jobtitle' (")
    assert "job_title" in info.value.message


def test_profile_where_must_type_check(tmp_path: Path) -> None:
    # company_size holds bands such as "51-200": comparing it with a number is an error.
    text = """\
        profile:
          - name: big_company
            where: "company_size > 200"
            points: 20
        """
    message = error_of(tmp_path, text, contacts=True)
    assert_line(tmp_path, message, "3: profile[0].where: cannot compare string with numeric type")


def test_profile_unknown_column_message_grammar(tmp_path: Path) -> None:
    text = """\
        profile:
          - name: manager
            where: "title = 'x'"
            points: 15
        """
    assert "file have:" not in error_of(tmp_path, text, contacts=True)


# --- RFM maps, status thresholds and segments ----------------------------------------------------


def test_rfm_map_with_a_gap_names_the_map(tmp_path: Path) -> None:
    text = """\
        rfm:
          bins: 3
          segments:
            - {name: Top, r: "2-3", f: "1-3"}
            - {name: Rest, r: 1, f: "1-2"}
        """
    message = error_of(tmp_path, text)
    assert_line(tmp_path, message, "3: rfm.segments: ")
    assert "(r=1, f=3" in message


def test_rfm_map_with_an_overlap_names_the_box(tmp_path: Path) -> None:
    text = """\
        rfm:
          bins: 3
          segments:
            - {name: Top, r: "2-3", f: "1-3"}
            - {name: Rest, r: "1-2", f: "1-3"}
        """
    message = error_of(tmp_path, text)
    assert "covered by both 'Top'" in message and "'Rest'" in message


def test_a_complete_rfm_map_loads(tmp_path: Path) -> None:
    text = """\
        rfm:
          bins: 3
          segments:
            - {name: Top, r: "2-3", f: "1-3"}
            - {name: Rest, r: 1, f: "1-3", m: "1-3"}
        """
    assert load_text(tmp_path, text).rules.rfm.segments is not None


def test_segment_definitions_are_validated(tmp_path: Path) -> None:
    text = """\
        segments:
          - name: "bad name!"
            where: "score > 1"
        """
    assert_line(tmp_path, error_of(tmp_path, text), "2: segments[0].name: 'bad name!'")
    text = """\
        segments:
          - name: vip
            where: "score >"
        """
    assert_line(tmp_path, error_of(tmp_path, text), "3: segments[0].where: not a valid SQL")
