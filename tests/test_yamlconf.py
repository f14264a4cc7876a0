"""YAML with line numbers and pydantic errors mapped to file:line."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict

from engscore.errors import ConfigError
from engscore.yamlconf import format_loc, parse_yaml, validate_model


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    points: float


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    points: list[Item]


TEXT = """version: 1
points:
  - name: a
    points: 10
  - name: b
    points: ten
"""


def test_lines_are_kept() -> None:
    doc = parse_yaml(TEXT, "rules.yaml")
    assert doc.line_of(("points", 1, "points")) == 6
    assert doc.line_of(("points", 1)) == 5
    assert doc.where(("points", 1, "nope")) == "rules.yaml:5"


def test_error_names_file_line_and_field() -> None:
    with pytest.raises(ConfigError) as caught:
        validate_model(Doc, parse_yaml(TEXT, "rules.yaml"))
    assert str(caught.value) == "rules.yaml:6: points[1].points: must be a number"


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"rules.yaml:3: points\[0\].nam: unknown key"):
        validate_model(Doc, parse_yaml("version: 1\npoints:\n  - nam: a\n", "rules.yaml"))


def test_invalid_yaml_and_duplicates() -> None:
    with pytest.raises(ConfigError, match=r"x.yaml:2: invalid YAML"):
        parse_yaml("a: 1\nb: c: d\n", "x.yaml")
    with pytest.raises(ConfigError, match=r"x.yaml:2: duplicate key 'a'"):
        parse_yaml("a: 1\na: 2\n", "x.yaml")


def test_unsafe_tags_are_refused() -> None:
    with pytest.raises(ConfigError, match="invalid YAML"):
        parse_yaml("a: !!python/object/apply:os.system ['true']\n", "x.yaml")


def test_format_loc() -> None:
    assert format_loc(("points", 2, "points")) == "points[2].points"
    assert format_loc(()) == "(top level)"
