"""engscore.yaml: the inputs reach every command through one conversion."""

from __future__ import annotations

from pathlib import Path

import pytest

from engscore.cli.options import ScoreOptions, ingest_options
from engscore.config import IngestOptions, init_project, load_project
from engscore.errors import ConfigError


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    init_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ENGSCORE_CONFIG", raising=False)
    monkeypatch.delenv("ENGSCORE_TIMEZONE", raising=False)
    return tmp_path / "engscore.yaml"


def _set(config: Path, old: str, new: str) -> None:
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new))


def test_the_template_lists_the_machine_open_window(project: Path) -> None:
    assert "machine_open_window: 2" in project.read_text()
    assert load_project(project).ingest_options() == IngestOptions()


def test_inputs_reach_the_ingest_options(project: Path) -> None:
    _set(project, "machine_open_window: 2 ", "machine_open_window: 0.5 ")
    _set(project, "on_error: fail", "on_error: skip")
    _set(project, "timezone: null", "timezone: Europe/Paris")
    options = load_project(project).ingest_options()
    assert options == IngestOptions(
        timezone="Europe/Paris", on_error="skip", machine_open_seconds=0.5
    )
    # The single commands start from the same options; what the command line gives wins.
    assert ingest_options() == options
    assert ingest_options(machine_open_window=0.0, on_error="fail") == IngestOptions(
        timezone="Europe/Paris", on_error="fail", machine_open_seconds=0.0
    )
    request = ScoreOptions(as_of="2026-11-01", encoding="latin-1").request(["incoming"])
    assert request.ingest == IngestOptions(
        timezone="Europe/Paris", on_error="skip", encoding="latin-1", machine_open_seconds=0.5
    )
    assert request.as_of.isoformat() == "2026-10-31T23:00:00+00:00"  # naive: Paris time


def test_a_mapping_path_is_relative_to_the_project(project: Path) -> None:
    _set(project, "  on_error: fail", "  mapping: maps/esp.yaml\n  on_error: fail")
    assert load_project(project).ingest_options().mapping == project.parent / "maps" / "esp.yaml"


def test_a_negative_machine_open_window_says_where(project: Path) -> None:
    _set(project, "machine_open_window: 2 ", "machine_open_window: -1 ")
    line = 1 + project.read_text().splitlines().index(
        next(x for x in project.read_text().splitlines() if "machine_open_window" in x)
    )
    with pytest.raises(ConfigError, match=rf"engscore.yaml:{line}: inputs.machine_open_window: "):
        load_project(project)


def test_the_health_section(project: Path) -> None:
    health = load_project(project).config.health
    assert (health.by, health.since, health.min_delivered, health.providers) == (
        ("month",),
        None,
        100,
        None,
    )
    _set(project, "by: [month] ", "by: [campaign, provider, campaign] ")
    _set(project, "providers: null ", "providers: mine.yaml ")
    loaded = load_project(project)
    assert loaded.config.health.by == ("campaign", "provider")  # repeats dropped
    from engscore.config import command_defaults

    assert command_defaults().providers == project.parent / "mine.yaml"
    _set(project, "since: null ", "since: soon ")
    with pytest.raises(ConfigError, match=r"engscore\.yaml:\d+: health\.since: 'soon' is not"):
        load_project(project)
    _set(project, "since: soon ", "since: 12m ")
    _set(project, "min_delivered: 100 ", "min_delivered: -1 ")
    with pytest.raises(ConfigError, match=r"health\.min_delivered: input should be greater"):
        load_project(project)
