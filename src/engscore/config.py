"""The project config ``engscore.yaml``: what ``engscore run`` does every night.

Paths in the file are relative to the file's folder (the project). Precedence, highest first:
command-line options, ``ENGSCORE_*`` environment variables, the file, the defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from engscore import timestamps
from engscore.durations import Duration
from engscore.engine.health import DEFAULT_MIN_DELIVERED, parse_groupings
from engscore.errors import ConfigError
from engscore.rules import default_rules_text
from engscore.yamlconf import LocatedYaml, StrictModel, load_yaml, validate_model

CONFIG_NAME = "engscore.yaml"
#: Environment variables for the settings people set per server.
ENVIRONMENT = {
    "ENGSCORE_CONFIG": "the config file (default ./engscore.yaml)",
    "ENGSCORE_STORE": "store",
    "ENGSCORE_OUTPUT": "output",
    "ENGSCORE_TIMEZONE": "inputs.timezone",
    "ENGSCORE_RETENTION": "retention",
}


#: What to do with rows that fail validation: stop (``fail``) or set them aside (``skip``).
OnError = Literal["fail", "skip"]


@dataclass(frozen=True)
class IngestOptions:
    """How to read the inputs: the common ingest options of every command, from the command
    line or ``engscore.yaml``'s ``inputs`` (``Project.ingest_options``)."""

    preset: str = "auto"
    timezone: str | None = None
    mapping: Path | None = None
    on_error: OnError = "fail"
    encoding: str = "utf-8"
    machine_open_seconds: float = 2.0

    def overridden(
        self,
        preset: str | None = None,
        timezone: str | None = None,
        mapping: Path | None = None,
        on_error: OnError | None = None,
        encoding: str | None = None,
        machine_open_seconds: float | None = None,
    ) -> IngestOptions:
        """These options with the values given (not None) in their place: command-line
        options over the project's settings."""
        given: dict[str, Any] = {
            "preset": preset,
            "timezone": timezone,
            "mapping": mapping,
            "on_error": on_error,
            "encoding": encoding,
            "machine_open_seconds": machine_open_seconds,
        }
        return replace(self, **{name: value for name, value in given.items() if value is not None})


class Inputs(StrictModel):
    """Where the exports land and how to read them."""

    paths: tuple[str, ...] = ("incoming",)
    preset: str = "auto"
    timezone: str | None = None
    mapping: str | None = None
    on_error: OnError = "fail"
    encoding: str = "utf-8"
    #: Opens this many seconds after their delivery count as machine opens (exports without
    #: a machine flag); 0 turns the heuristic off.
    machine_open_window: float = Field(default=2.0, ge=0)

    @field_validator("paths", mode="before")
    @classmethod
    def _listed(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                timestamps.check_timezone(value)
            except ConfigError as exc:
                raise ValueError(exc.message) from None
        return value


class ReportOptions(StrictModel):
    """What the nightly report shows."""

    title: str = "Engagement report"
    by: tuple[str, ...] = ()


class HealthOptions(StrictModel):
    """The nightly ``health.csv`` (as ``engscore health``) and the report's list health."""

    #: The ``--by`` groupings of ``health.csv`` (the report shows month, provider, campaign).
    by: tuple[str, ...] = ("month",)
    #: Only events this long before the as-of instant (``--since``; None: every event).
    since: str | None = None
    min_delivered: int = Field(default=DEFAULT_MIN_DELIVERED, ge=0)
    #: A mailbox providers file of your own (None: the packaged map).
    providers: str | None = None

    @field_validator("by", mode="before")
    @classmethod
    def _groupings(cls, value: object) -> object:
        values = [value] if isinstance(value, str) else value
        if isinstance(values, list | tuple):
            try:
                return parse_groupings([str(v) for v in values])
            except ConfigError as exc:
                raise ValueError(exc.message.removeprefix("--by ")) from None
        return values

    @field_validator("since")
    @classmethod
    def _since(cls, value: str | None) -> str | None:
        if value is not None:
            Duration.parse(value)
        return value


class ProjectConfig(StrictModel):
    """``engscore.yaml``."""

    version: Literal[1] = 1
    inputs: Inputs = Inputs()
    rules: str | None = "rules.yaml"
    segments: str | None = "segments.yaml"
    contacts: str | None = None
    #: ``segment --inactive`` for the nightly run (None: not written).
    inactive: str | None = "6m"
    store: str = "store"
    output: str = "runs"
    retention: int = Field(default=7, ge=1)
    #: Score the store's older months from their carried state (``engscore.io.carried``).
    carry: bool = True
    report: ReportOptions = ReportOptions()
    health: HealthOptions = HealthOptions()

    @field_validator("inactive")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            Duration.parse(value)
        return value


@dataclass(frozen=True)
class Project:
    """A loaded project: its folder and validated config (env overrides applied)."""

    root: Path
    config: ProjectConfig
    source: str

    def path(self, value: str) -> Path:
        """A config path, relative to the project folder."""
        candidate = Path(value)
        return candidate if candidate.is_absolute() else self.root / candidate

    def ingest_options(self) -> IngestOptions:
        """``inputs`` as the ingest options: the one mapping, used by ``engscore run`` and
        (under the command-line options) by the single commands."""
        inputs = self.config.inputs
        return IngestOptions(
            preset=inputs.preset,
            timezone=inputs.timezone,
            mapping=self.path(inputs.mapping) if inputs.mapping else None,
            on_error=inputs.on_error,
            encoding=inputs.encoding,
            machine_open_seconds=inputs.machine_open_window,
        )


def config_path(explicit: Path | None = None, cwd: Path | None = None) -> Path | None:
    """``--config``, else ``$ENGSCORE_CONFIG``, else ``./engscore.yaml`` when it exists."""
    if explicit is not None:
        return explicit
    env = os.environ.get("ENGSCORE_CONFIG")
    if env:
        return Path(env)
    candidate = (cwd or Path.cwd()) / CONFIG_NAME
    return candidate if candidate.is_file() else None


def _with_environment(doc: LocatedYaml) -> dict[str, object]:
    data = dict(doc.data) if isinstance(doc.data, dict) else {}
    if os.environ.get("ENGSCORE_STORE"):
        data["store"] = os.environ["ENGSCORE_STORE"]
    if os.environ.get("ENGSCORE_OUTPUT"):
        data["output"] = os.environ["ENGSCORE_OUTPUT"]
    if os.environ.get("ENGSCORE_RETENTION"):
        data["retention"] = os.environ["ENGSCORE_RETENTION"]
    if os.environ.get("ENGSCORE_TIMEZONE"):
        inputs = dict(data.get("inputs") or {})
        inputs["timezone"] = os.environ["ENGSCORE_TIMEZONE"]
        data["inputs"] = inputs
    return data


def load_project(path: Path) -> Project:
    """Read and validate a project config (errors name file:line and the field)."""
    doc = load_yaml(path)
    if doc.data is not None and not isinstance(doc.data, dict):
        raise ConfigError(f"{doc.where(())}: a project config is a mapping (inputs, rules, ...)")
    config = validate_model(
        ProjectConfig, LocatedYaml(_with_environment(doc), doc.lines, doc.source)
    )
    return Project(root=path.resolve().parent, config=config, source=str(path))


CONFIG_TEMPLATE = """\
# engscore project: `engscore run` reads this every night (see README, "Running from cron").
# Paths are relative to this file. Environment variables override: ENGSCORE_STORE,
# ENGSCORE_OUTPUT, ENGSCORE_TIMEZONE, ENGSCORE_RETENTION.
version: 1
inputs:
  paths: [incoming]          # files, globs or folders where the exports land
  preset: auto               # or sendgrid, mailgun, ses, postmark, brevo, klaviyo, mailchimp, sfmc
  timezone: null             # zone of naive timestamps, e.g. Europe/Paris
  on_error: fail             # or skip: bad rows go to a rejects file
  machine_open_window: 2     # opens within 2 s of delivery count as machine opens (0: off)
rules: rules.yaml            # point rules, status, RFM, segments
segments: segments.yaml      # segment definitions (the built-in playbook + your own)
contacts: null               # contacts file for profile rules and report breakdowns
inactive: 6m                 # also write the inactive_6m segment
store: store                 # the event store: every export ever loaded, de-duplicated
output: runs                 # one folder per run; runs/latest points at the last good one
retention: 7                 # run folders to keep
carry: true                  # keep what older months leave for scoring (same scores, faster)
report:
  title: Engagement report
  by: []                     # contacts-file columns to break down by, e.g. [country]
health:                      # health.csv in each run folder, and the report's list health
  by: [month]                # campaign, provider, domain and/or month
  since: null                # only the last N days/months, e.g. 12m (null: every event)
  min_delivered: 100         # fewer deliveries: counts but no rates
  providers: null            # mailbox providers file of your own (default: the packaged map)
"""


SEGMENTS_TEMPLATE = """\
# Segments written by `engscore run` / `engscore segment` (see README, "engscore segment").
# The built-in playbook: suppress, sunset, reactivation, loyalty, warm_leads,
# newsletter_engaged, inactive_buyers, inactive_clickers, inactive_non_clickers.
version: 1
builtin_segments: true
segments: []
# Your own, for example:
#  - name: vip_at_risk
#    where: "rfm_segment = 'Champions' AND status = 'at_risk'"
#    description: best customers going quiet
#    order_by: [-monetary]
"""


def init_project(folder: Path) -> list[Path]:
    """``engscore init``: write engscore.yaml, rules.yaml, segments.yaml and incoming/.

    Never overwrites: an existing file is an error, so a second ``init`` cannot lose edits.
    """
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        folder / CONFIG_NAME: CONFIG_TEMPLATE,
        folder / "rules.yaml": default_rules_text(),
        folder / "segments.yaml": SEGMENTS_TEMPLATE,
    }
    for target in files:
        if target.exists():
            raise ConfigError(f"{target}: already exists; not overwriting it")
    for target, text in files.items():
        target.write_text(text, "utf-8")
    incoming = folder / "incoming"
    incoming.mkdir(exist_ok=True)
    return [*files, incoming]


@dataclass(frozen=True)
class CommandDefaults:
    """What ``engscore.yaml`` gives the single commands when their options are not given."""

    rules: Path | None = None
    contacts: Path | None = None
    segments: Path | None = None
    ingest: IngestOptions = IngestOptions()
    title: str | None = None
    by: tuple[str, ...] = ()
    providers: Path | None = None
    min_delivered: int | None = None


def command_defaults(cwd: Path | None = None) -> CommandDefaults:
    """The project's settings for ``score``, ``explain``, ``segment``, ``report`` ... when an
    ``engscore.yaml`` is found (``$ENGSCORE_CONFIG`` or the working directory); else none."""
    path = config_path(None, cwd)
    if path is None:
        return CommandDefaults()
    project = load_project(path)
    config = project.config
    return CommandDefaults(
        rules=project.path(config.rules) if config.rules else None,
        contacts=project.path(config.contacts) if config.contacts else None,
        segments=project.path(config.segments) if config.segments else None,
        ingest=project.ingest_options(),
        title=config.report.title,
        by=config.report.by,
        providers=project.path(config.health.providers) if config.health.providers else None,
        min_delivered=config.health.min_delivered,
    )
