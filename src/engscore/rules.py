"""The rules file: point rules, resets, decay and grades (SPEC section 3), validated with pydantic.

Every field is checked when the file is loaded (unknown keys, types, durations, the SQL of
``where``); columns named in ``where`` and ``unique_by`` are checked against the events once
their schema is known (``check_columns``). Every message names ``file:line: field``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
from pydantic import (
    Field,
    FiniteFloat,
    PlainSerializer,
    PlainValidator,
    Strict,
    ValidationInfo,
    field_validator,
    model_validator,
)

from engscore.durations import Duration
from engscore.errors import ConfigError
from engscore.rfm_map import RfmSegment, check_segment_map
from engscore.schema import CANONICAL_EVENT_TYPES, CANONICAL_SCHEMA
from engscore.yamlconf import LocatedYaml, StrictModel, load_yaml, parse_yaml, validate_model

DEFAULT_ENGAGED_EVENTS = ("open", "click", "reply", "page_view", "form_submit", "purchase")
DEFAULT_GROUP = "engagement"
DEFAULT_PROFILE_GROUP = "fit"
_GROUP_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _parse_duration(value: Any) -> Duration:
    if isinstance(value, Duration):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration; write it like 90d, 2w, 6m or 1y")
    return Duration.parse(value)


#: A number written as a number: not ``yes`` (YAML's true), not ``.nan`` or ``.inf``.
Number = Annotated[FiniteFloat, Strict()]

DurationField = Annotated[Duration, PlainValidator(_parse_duration), PlainSerializer(str)]


def normalise_event_name(name: str) -> str:
    """Event names as ingest writes them: lower-case, spaces and dashes become ``_``."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def parse_condition(text: str) -> pl.Expr:
    """A SQL boolean expression (``url LIKE '%/pricing%'``) as a Polars expression; never eval."""
    try:
        expr = pl.sql_expr(text)
    except Exception as exc:  # Polars raises several types for bad SQL
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"not a valid SQL condition: {reason}") from exc
    if any(name.startswith("_POLARS_") for name in expr.meta.root_names()):
        raise ValueError("subqueries are not supported; compare the row's own columns")
    return expr


class Decay(StrictModel):
    """Exponential decay of points with age."""

    half_life: DurationField

    @field_validator("half_life")
    @classmethod
    def _fixed_length(cls, value: Duration) -> Duration:
        if not value.is_fixed:
            raise ValueError(f"a half-life takes days or weeks (e.g. 90d, 13w), not {value}")
        return value


class Reset(StrictModel):
    """When a contact's points start again from zero."""

    on_events: tuple[str, ...] = ()
    after_inactive: DurationField | None = None

    @field_validator("on_events", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        return _event_names(value)


def _event_names(value: Any) -> Any:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list | tuple):
        return tuple(normalise_event_name(v) if isinstance(v, str) else v for v in value)
    return value


def _check_group(value: str) -> str:
    if not _GROUP_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a group name; use lower-case letters, digits and _ "
            "(it becomes the column score_<group>)"
        )
    return value


class PointRule(StrictModel):
    """Points for events of a type (or types) that match an optional condition."""

    name: str = Field(min_length=1)
    event: tuple[str, ...]
    where: str | None = None
    points: Number
    once: bool = False
    unique_by: tuple[str, ...] | None = None
    cap: Number | None = Field(default=None, gt=0)
    group: str = DEFAULT_GROUP

    @field_validator("event", mode="before")
    @classmethod
    def _events(cls, value: Any) -> Any:
        names = _event_names(value)
        if isinstance(names, tuple) and not names:
            raise ValueError("name at least one event type")
        return names

    @field_validator("where")
    @classmethod
    def _sql(cls, value: str | None) -> str | None:
        if value is not None:
            parse_condition(value)
        return value

    @field_validator("unique_by", mode="before")
    @classmethod
    def _columns(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("group")
    @classmethod
    def _group(cls, value: str) -> str:
        return _check_group(value)

    @model_validator(mode="after")
    def _once_or_unique(self) -> PointRule:
        if self.once and self.unique_by:
            raise ValueError("use either once or unique_by, not both")
        return self

    @property
    def condition(self) -> pl.Expr | None:
        """``where`` as a Polars expression."""
        return parse_condition(self.where) if self.where is not None else None

    @property
    def columns_read(self) -> set[str]:
        """The event columns the rule reads besides the type: ``unique_by`` and ``where``'s."""
        read = set(self.unique_by or ())
        if self.condition is not None:
            read |= set(self.condition.meta.root_names())
        return read


class ProfileRule(StrictModel):
    """Points from a contact's attributes in the contacts file (no decay, no resets)."""

    name: str = Field(min_length=1)
    where: str
    points: Number
    group: str = DEFAULT_PROFILE_GROUP

    @field_validator("where")
    @classmethod
    def _sql(cls, value: str) -> str:
        parse_condition(value)
        return value

    @field_validator("group")
    @classmethod
    def _group(cls, value: str) -> str:
        return _check_group(value)

    @property
    def condition(self) -> pl.Expr:
        """``where`` as a Polars expression."""
        return parse_condition(self.where)


class Rfm(StrictModel):
    """RFM on purchase events (recency, frequency, monetary value)."""

    purchase_events: tuple[str, ...] = ("purchase",)
    amount_column: str = "amount"
    #: Count distinct values of this column as orders (e.g. an order id); None counts events.
    order_id_column: str | None = None
    monetary: Literal["sum", "mean"] = "sum"
    bins: Literal[3, 4, 5] = 5
    #: The named segment map; None uses the built-in map (``engscore.engine.rfm``).
    segments: tuple[RfmSegment, ...] | None = None

    @field_validator("purchase_events", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        return _event_names(value)


class Status(StrictModel):
    """Inactivity thresholds (time since the last engagement) and the related flags."""

    at_risk_after: DurationField = Duration(3, "m")
    inactive_after: DurationField = Duration(6, "m")
    lapsed_after: DurationField = Duration(12, "m")
    #: Seasonal: engaged or bought within this window around the same day one year earlier.
    seasonal_window: DurationField = Duration(30, "d")
    #: Unengaged (Klaviyo style): at least this many deliveries in the window, no open or click.
    unengaged_deliveries: int = Field(default=5, ge=1)
    unengaged_window: DurationField = Duration(180, "d")

    @model_validator(mode="after")
    def _increasing(self) -> Status:
        reference = datetime(2001, 1, 31, tzinfo=UTC)
        steps = [self.at_risk_after, self.inactive_after, self.lapsed_after]
        ends = [step.add_to(reference) for step in steps]
        if not ends[0] < ends[1] < ends[2]:
            raise ValueError(
                "thresholds must increase: at_risk_after < inactive_after < lapsed_after "
                f"(got {', '.join(str(step) for step in steps)})"
            )
        return self


class Predict(StrictModel):
    """Buy-till-you-die predictions per buyer: P(alive), expected purchases and CLV."""

    enabled: bool = True
    #: MBG/NBD gives one-time buyers P(alive) < 1 (BG/NBD does not), so it can rank them.
    model: Literal["mbgnbd", "bgnbd"] = "mbgnbd"
    #: ``expected_purchases_<period>``: purchases expected over the next period.
    period: DurationField = Duration(90, "d")
    #: CLV horizon and yearly discount rate.
    horizon: DurationField = Duration(12, "m")
    discount_rate: Annotated[float, Field(ge=0, le=1)] = 0.10
    #: Too few buyers to fit: the columns stay null and the run says why.
    min_buyers: int = Field(default=100, ge=10)
    min_repeat_buyers: int = Field(default=20, ge=5)


_SEGMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SegmentDefinition(StrictModel):
    """A segment: contacts of the scores file for which ``where`` holds."""

    name: str
    where: str
    description: str = ""
    #: Columns to export after the contact column; None: the default export columns.
    columns: tuple[str, ...] | None = None
    #: A mailing segment never holds suppressed (unsubscribed, complained, hard-bounced) contacts.
    mailing: bool = True
    #: Rank rows: column names, ``-column`` for descending. Default: by contact.
    order_by: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _file_name(cls, value: str) -> str:
        if not _SEGMENT_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a segment name; use letters, digits, _, - and . "
                "(it becomes a file name)"
            )
        return value

    @field_validator("where")
    @classmethod
    def _sql(cls, value: str) -> str:
        parse_condition(value)
        return value

    @field_validator("columns", "order_by", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @property
    def condition(self) -> pl.Expr:
        """``where`` as a Polars expression."""
        return parse_condition(self.where)


class SegmentsFile(StrictModel):
    """A segments file of its own (``engscore segment --segments FILE``)."""

    version: Literal[1] = 1
    builtin_segments: bool = True
    segments: tuple[SegmentDefinition, ...] = ()


class Rules(StrictModel):
    """A whole rules file."""

    version: Literal[1] = 1
    engaged_events: tuple[str, ...] = DEFAULT_ENGAGED_EVENTS
    exclude_machine_opens: bool = True
    decay: Decay | None = None
    reset: Reset = Reset()
    min_score: Number | None = None
    max_score: Number | None = None
    points: tuple[PointRule, ...] = ()
    profile: tuple[ProfileRule, ...] = ()
    grades: dict[str, Number] = Field(
        default_factory=lambda: {"hot": 150.0, "warm": 50.0, "cold": 0.0}
    )
    rfm: Rfm = Rfm()
    status: Status = Status()
    predict: Predict = Predict()
    #: The built-in segment playbook (suppress, sunset, reactivation, ...); false turns it off.
    builtin_segments: bool = True
    segments: tuple[SegmentDefinition, ...] = ()

    @field_validator("engaged_events", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        return _event_names(value)

    @field_validator("grades")
    @classmethod
    def _grades(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("name at least one grade, e.g. {hot: 150, warm: 50, cold: 0}")
        thresholds = list(value.values())
        if len(set(thresholds)) != len(thresholds):
            raise ValueError("two grades have the same threshold")
        return value

    @field_validator("max_score")
    @classmethod
    def _above_min(cls, value: float | None, info: ValidationInfo) -> float | None:
        low = info.data.get("min_score")
        if value is not None and low is not None and low > value:
            raise ValueError(f"min_score {low:g} is above max_score {value:g}")
        return value

    @property
    def groups(self) -> list[str]:
        """Score groups in order of first use (``score_<group>`` columns)."""
        seen = [r.group for r in self.points] + [r.group for r in self.profile]
        return list(dict.fromkeys(seen)) or [DEFAULT_GROUP]

    @property
    def columns_read(self) -> set[str]:
        """The event columns the rules read besides the canonical ones' fixed uses: the
        point rules' ``unique_by`` and ``where`` columns and RFM's amount and order id."""
        read = {self.rfm.amount_column}
        if self.rfm.order_id_column is not None:
            read.add(self.rfm.order_id_column)
        for rule in self.points:
            read |= rule.columns_read
        return read

    @property
    def half_life_days(self) -> float | None:
        """The decay half-life in days, or None without decay."""
        return self.decay.half_life.days if self.decay is not None else None

    def grade_order(self) -> list[tuple[str, float]]:
        """Grades from the highest threshold down."""
        return sorted(self.grades.items(), key=lambda item: -item[1])


@dataclass(frozen=True)
class RulesFile:
    """Validated rules with where they came from (for messages that name file:line)."""

    rules: Rules
    doc: LocatedYaml
    warnings: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        """The file name shown in messages."""
        return self.doc.source

    def where(self, *path: str | int) -> str:
        """``file:line`` of a key path such as ``("points", 2, "where")``."""
        return self.doc.where(path)


DEFAULT_RULES_NAME = "default.yaml"


def default_rules_text() -> str:
    """The packaged default rules (identical to ``rules/default.yaml`` in the repository)."""
    return resources.files("engscore.data").joinpath(DEFAULT_RULES_NAME).read_text("utf-8")


def load_rules(path: Path | None = None) -> RulesFile:
    """Load and validate a rules file; None loads the packaged default rules."""
    doc = (
        parse_yaml(default_rules_text(), f"(default rules) {DEFAULT_RULES_NAME}")
        if path is None
        else load_yaml(path)
    )
    return rules_from_doc(doc)


def rules_from_doc(doc: LocatedYaml) -> RulesFile:
    """Validate parsed YAML as a rules file; collect warnings (unknown event types)."""
    if not isinstance(doc.data, dict):
        raise ConfigError(
            f"{doc.where(())}: a rules file is a mapping of keys (version, points...)"
        )
    rules = validate_model(Rules, doc)
    seen: set[str] = set()
    named_rules = [("points", i, r.name) for i, r in enumerate(rules.points)]
    named_rules += [("profile", i, r.name) for i, r in enumerate(rules.profile)]
    for key, index, name in named_rules:
        if name in seen:
            raise ConfigError(
                f"{doc.where((key, index, 'name'))}: {key}[{index}].name: rule name {name!r} "
                "is used twice; names must be unique"
            )
        seen.add(name)
    if rules.rfm.segments is not None:
        problems = check_segment_map(rules.rfm.segments, rules.rfm.bins)
        if problems:
            index, problem = problems[0]
            if index < 0:  # the map as a whole (cells nobody covers)
                raise ConfigError(f"{doc.where(('rfm', 'segments'))}: rfm.segments: {problem}")
            raise ConfigError(
                f"{doc.where(('rfm', 'segments', index))}: rfm.segments[{index}]: {problem}"
            )
    warnings = []
    canonical = set(CANONICAL_EVENT_TYPES)
    named: list[tuple[tuple[str | int, ...], str]] = []
    named += [(("engaged_events", i), e) for i, e in enumerate(rules.engaged_events)]
    named += [(("reset", "on_events", i), e) for i, e in enumerate(rules.reset.on_events)]
    for index, rule in enumerate(rules.points):
        names = rule.event
        named += [(("points", index, "event"), e) for e in names]
    for path, name in named:
        if name not in canonical:
            warnings.append(
                f"{doc.where(path)}: {_dotted(path)}: {name!r} is not a canonical event type; "
                "it matches only events ingested under that custom name"
            )
    return RulesFile(rules, doc, warnings)


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def check_columns(rules_file: RulesFile, events_schema: pl.Schema) -> None:
    """Check ``where`` and ``unique_by`` of the point rules against the events' columns.

    Unknown columns and conditions that do not type-check (``amount LIKE 'x'``) are
    configuration errors naming the rule's line.
    """
    empty = pl.DataFrame(schema=events_schema)
    available = ", ".join(events_schema.names())
    rfm = rules_file.rules.rfm
    for key in ("amount_column", "order_id_column"):
        column = getattr(rfm, key)
        if column is not None and column not in events_schema:
            raise ConfigError(
                f"{rules_file.where('rfm', key)}: rfm.{key}: unknown column {column!r} "
                f"(events have: {available})"
            )
    for index, rule in enumerate(rules_file.rules.points):
        for column in rule.unique_by or ():
            if column not in events_schema:
                raise ConfigError(
                    f"{rules_file.where('points', index, 'unique_by')}: points[{index}].unique_by: "
                    f"unknown column {column!r} (events have: {available})"
                )
        if rule.condition is not None:
            _check_condition(
                rule.condition,
                empty,
                rules_file.where("points", index, "where"),
                f"points[{index}].where",
                "events have",
            )


def check_profile_columns(rules_file: RulesFile, contacts_schema: pl.Schema) -> None:
    """Check the profile rules' conditions against the contacts file's columns."""
    empty = pl.DataFrame(schema=contacts_schema)
    for index, rule in enumerate(rules_file.rules.profile):
        _check_condition(
            rule.condition,
            empty,
            rules_file.where("profile", index, "where"),
            f"profile[{index}].where",
            "the contacts file has",
        )


def _check_condition(
    condition: pl.Expr, empty: pl.DataFrame, where: str, field_name: str, what: str
) -> None:
    missing = [c for c in condition.meta.root_names() if c not in empty.columns]
    if missing:
        raise ConfigError(
            f"{where}: {field_name}: unknown column {missing[0]!r} "
            f"({what}: {', '.join(empty.columns)})"
        )
    try:
        result = empty.select(condition.alias("_condition"))
    except Exception as exc:  # type errors surface as several Polars exception types
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "to a string value" in reason:
            # Time stamps are time-zone aware: a bare '2026-01-01' has no zone to compare in.
            reason = (
                "cannot compare a time stamp with text; compare its date instead, e.g. "
                "timestamp::date >= '2026-01-01'"
            )
        raise ConfigError(f"{where}: {field_name}: {reason}") from exc
    if result.schema["_condition"] not in (pl.Boolean, pl.Null):
        raise ConfigError(
            f"{where}: {field_name}: must be a true/false condition, "
            f"not a {result.schema['_condition']} value"
        )


def canonical_column_warnings(rules_file: RulesFile) -> list[str]:
    """Columns named in point rules that are not canonical event columns.

    Without events to check against they may still be fine (other input columns are kept),
    so ``engscore rules validate`` warns instead of failing.
    """
    notes = []
    for index, rule in enumerate(rules_file.rules.points):
        named: list[tuple[str, str]] = [("unique_by", c) for c in rule.unique_by or ()]
        if rule.condition is not None:
            named += [("where", c) for c in rule.condition.meta.root_names()]
        for key, column in named:
            if column not in CANONICAL_SCHEMA:
                notes.append(
                    f"{rules_file.where('points', index, key)}: points[{index}].{key}: "
                    f"{column!r} is not a canonical column; your events must have it"
                )
    return notes
