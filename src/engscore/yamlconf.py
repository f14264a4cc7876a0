"""YAML loading that keeps line numbers, and pydantic validation errors mapped onto them.

A bad config file must say where: ``rules.yaml:14: points[2].points: must be a number``. PyYAML's
safe loader gives every node a start mark; we record the line of each key path while building
plain Python data, then translate pydantic's error locations into those paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from engscore.errors import ConfigError

PathKey = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)


class StrictModel(BaseModel):
    """A config section: unknown keys are errors (typos never pass silently), values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LocatedYaml:
    """Plain YAML data plus the 1-based line of every key path in it."""

    def __init__(self, data: Any, lines: dict[PathKey, int], source: str) -> None:
        self.data = data
        self.lines = lines
        self.source = source

    def line_of(self, path: Sequence[str | int]) -> int:
        """The line of the deepest known prefix of ``path`` (1 when nothing matches)."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), 1)

    def where(self, path: Sequence[str | int]) -> str:
        """``file:line`` for a key path, for error messages."""
        return f"{self.source}:{self.line_of(path)}"


def _scalar(node: yaml.Node) -> Any:
    # A loader on an empty stream constructs single scalar nodes with the safe tag set.
    return yaml.SafeLoader("").construct_object(node, deep=True)


_PLAIN_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def _build(node: yaml.Node, path: PathKey, lines: dict[PathKey, int], source: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.CollectionNode) and node.tag not in _PLAIN_COLLECTION_TAGS:
        raise ConfigError(
            f"{source}:{node.start_mark.line + 1}: invalid YAML: tag {node.tag!r} is not allowed"
        )
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if isinstance(key, list | dict):
                raise ConfigError(
                    f"{source}:{key_node.start_mark.line + 1}: a mapping key must be a scalar"
                )
            if key in out:
                raise ConfigError(f"{source}:{key_node.start_mark.line + 1}: duplicate key {key!r}")
            child = (*path, str(key))
            lines[child] = key_node.start_mark.line + 1
            out[key] = _build(value_node, child, lines, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, (*path, index), lines, source) for index, item in enumerate(node.value)
        ]
    return _scalar(node)


def parse_yaml(text: str, source: str) -> LocatedYaml:
    """Parse YAML text with the safe loader, keeping line numbers; errors name ``source:line``."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{source}:{line}: invalid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from exc
    if node is None:
        return LocatedYaml({}, {(): 1}, source)
    lines: dict[PathKey, int] = {}
    try:
        data = _build(node, (), lines, source)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{source}:{line}: invalid YAML: {exc.problem or exc}") from exc
    return LocatedYaml(data, lines, source)


def load_yaml(path: Path) -> LocatedYaml:
    """Read and parse a YAML file; a missing or unreadable file is a configuration error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse_yaml(text, str(path))


def format_loc(loc: Sequence[str | int]) -> str:
    """``("points", 2, "points")`` -> ``points[2].points``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _clean_loc(loc: Sequence[str | int]) -> tuple[str | int, ...]:
    # pydantic inserts union-member tags (e.g. "list[str]", "function-after[...]") into
    # locations; they are not keys of the document.
    return tuple(p for p in loc if isinstance(p, int) or ("[" not in p and "(" not in p))


def _friendly(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling)"
    if kind == "missing":
        return "required key is missing"
    if kind in {"float_parsing", "float_type", "int_parsing", "int_type", "int_from_float"}:
        return "must be a number" if kind.startswith("float") else "must be a whole number"
    if kind in {"bool_parsing", "bool_type"}:
        return "must be true or false"
    msg: str = error["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return msg[0].lower() + msg[1:] if msg else kind


def validate_model(model: type[ModelT], doc: LocatedYaml) -> ModelT:
    """Validate ``doc`` against a pydantic model; the first error becomes ``file:line: field: msg``.

    All errors are listed, one per line, so a user fixes a file in one pass.
    """
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        messages = []
        for error in exc.errors():
            loc = _clean_loc(error["loc"])
            messages.append(f"{doc.where(loc)}: {format_loc(loc)}: {_friendly(error)}")
        # Keep first occurrence order, drop duplicates from union branches.
        unique = list(dict.fromkeys(messages))
        raise ConfigError("\n".join(unique)) from exc
