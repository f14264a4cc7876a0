"""JSON and JSON-lines inputs: records whatever their shape, types settled over every record.

Providers' JSON is loose: SendGrid's ``category`` is a string in one event and an array in the
next, a field may be a number here and text there, an object in one record and a string in
another. Polars infers one type per column and fails on the record that disagrees, so engscore
reads JSON itself, in two passes:

1. every record is surveyed: for each field (nested fields and array items included) the kinds
   of value seen — boolean, number, text, array, object;
2. a field seen with more than one kind (integers and decimals together are one kind: numbers)
   is read as **text**: strings as they are, numbers and ``true``/``false`` as written, arrays
   and objects as their JSON text (``["category1", "category2"]``). Every other field keeps its
   type, so the frame's schema is the same whatever order the records come in.

Shapes read: a JSON array of records, one object wrapping one array of records (API responses
such as ``{"emails": [...], "total_items": 3}``), one record per line (JSON-lines), and JSON
values written one after another without separators (concatenated JSON). A record that is an
Amazon SNS notification (``"Type": "Notification"`` with the event as a JSON string in
``Message``, as SNS delivers SES events over HTTP, e-mail-JSON or SQS) is replaced by that
event; SNS's own ``SubscriptionConfirmation`` / ``UnsubscribeConfirmation`` messages are not
events and are left out.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import polars as pl

from engscore.errors import DataError

#: Records per frame while building the whole file's frame (bounds the Python objects alive).
_CHUNK = 50_000
_I64 = 1 << 63
#: SNS message types that carry no event.
_SNS_CONTROL = ("SubscriptionConfirmation", "UnsubscribeConfirmation")


def _kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -_I64 <= value < _I64 else "text"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "text"


def as_text(value: Any) -> str:
    """A JSON value as text: strings as they are, anything else as its JSON text."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


class _Field:
    """The kinds of value one field (or the items of one array) takes over every record."""

    __slots__ = ("fields", "items", "kinds")

    def __init__(self) -> None:
        self.kinds: set[str] = set()
        self.fields: dict[str, _Field] = {}
        self.items: _Field | None = None

    def add(self, value: Any) -> None:
        kind = _kind(value)
        if kind is None:
            return
        self.kinds.add(kind)
        if kind == "object":
            for key, child in value.items():
                node = self.fields.get(key)
                if node is None:
                    node = self.fields[key] = _Field()
                node.add(child)
        elif kind == "list":
            if self.items is None:
                self.items = _Field()
            for item in value:
                self.items.add(item)

    @property
    def textual(self) -> bool:
        """True when the field is read as text (its values disagree on their kind)."""
        kinds = self.kinds
        if "int" in kinds and "float" in kinds:
            kinds = (kinds - {"int", "float"}) | {"number"}
        return len(kinds) > 1 or "text" in kinds

    def mixed(self) -> bool:
        """True when this field or any field inside it is read as text."""
        if self.textual:
            return True
        return any(f.mixed() for f in self.fields.values()) or (
            self.items is not None and self.items.mixed()
        )

    def dtype(self) -> pl.DataType:
        if self.textual or not self.kinds:
            return pl.String()
        if self.kinds == {"int", "float"} or self.kinds == {"float"}:
            return pl.Float64()
        (kind,) = self.kinds
        if kind == "bool":
            return pl.Boolean()
        if kind == "int":
            return pl.Int64()
        if kind == "list":
            inner = self.items.dtype() if self.items is not None else pl.String()
            return pl.List(inner)
        if kind == "object":
            return pl.Struct({name: f.dtype() for name, f in self.fields.items()})
        return pl.String()

    def conform(self, value: Any) -> Any:
        """``value`` as this field's type: text where the kinds disagree."""
        if value is None:
            return None
        if self.textual:
            return as_text(value)
        if isinstance(value, dict):
            return {key: self.fields[key].conform(child) for key, child in value.items()}
        if isinstance(value, list) and self.items is not None:
            return [self.items.conform(item) for item in value]
        return value


def unwrap_sns(record: dict[str, Any]) -> dict[str, Any] | None:
    """The event inside an SNS notification; None for SNS control messages; else ``record``."""
    kind = record.get("Type")
    if kind in _SNS_CONTROL and "TopicArn" in record:
        return None
    message = record.get("Message")
    if kind == "Notification" and isinstance(message, str):
        try:
            inner = json.loads(message)
        except json.JSONDecodeError:
            return record
        if isinstance(inner, dict):
            return inner
    return record


def _values(text: str, path: Path, first_line: int = 1) -> Iterator[Any]:
    """Every JSON value in ``text``, values written one after another (with or without
    whitespace between them)."""
    decoder = json.JSONDecoder()
    position, end = 0, len(text)
    while True:
        while position < end and text[position] in " \t\r\n\ufeff":
            position += 1
        if position >= end:
            return
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            line = first_line + exc.lineno - 1
            raise DataError(f"{path}:{line}: invalid JSON: {exc.msg} (column {exc.colno})") from exc
        yield value


def _open_text(path: Path, compressed: bool) -> Any:
    if compressed:
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return path.open(encoding="utf-8-sig")


def _document_records(path: Path, compressed: bool) -> list[dict[str, Any]]:
    """The records of a ``.json`` file (one document, or documents one after another)."""
    try:
        with _open_text(path, compressed) as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: invalid JSON: not UTF-8 text ({exc.reason})") from exc
    values = list(_values(text, path))
    if len(values) == 1 and isinstance(values[0], dict):
        document = values[0]
        unwrapped = unwrap_sns(document)
        if unwrapped is not document:
            values = [] if unwrapped is None else [unwrapped]
        else:
            # API exports wrap their records: {"emails": [...], "total_items": 3}.
            lists = [v for v in document.values() if isinstance(v, list)]
            values = [lists[0]] if len(lists) == 1 else [document]
    return list(_records(values, path))


def _records(values: Iterable[Any], path: Path) -> Iterator[dict[str, Any]]:
    for value in values:
        for record in value if isinstance(value, list) else (value,):
            if not isinstance(record, dict):
                raise DataError(f"{path}: expected a JSON array of objects")
            unwrapped = unwrap_sns(record)
            if unwrapped is not None:
                yield unwrapped


def _line_records(path: Path, compressed: bool) -> Iterator[dict[str, Any]]:
    """The records of a JSON-lines file, one line at a time."""
    try:
        with _open_text(path, compressed) as handle:
            for number, line in enumerate(handle, start=1):
                text = line.strip()
                if text:
                    yield from _records(_values(text, path, number), path)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: invalid JSON: not UTF-8 text ({exc.reason})") from exc


def read_json_records(path: Path, compressed: bool, lines: bool) -> pl.DataFrame:
    """A JSON (``lines=False``) or JSON-lines file as a frame, one row per record.

    Raises DataError for invalid JSON, values that are not objects, or no record at all.
    """
    records: Iterable[dict[str, Any]]
    if lines:

        def again() -> Iterator[dict[str, Any]]:
            return _line_records(path, compressed)

        records = again()  # surveyed, then read again: the file is never held as objects
    else:
        document = _document_records(path, compressed)
        records = document

        def again() -> Iterator[dict[str, Any]]:
            return iter(document)

    root = _Field()
    count = 0
    for record in records:
        root.add(record)
        count += 1
    if count == 0:
        raise DataError(f"{path}: file holds no records")
    schema = pl.Schema({name: field.dtype() for name, field in root.fields.items()})
    mixed = root.mixed()
    frames = []
    iterator = again()
    while chunk := list(islice(iterator, _CHUNK)):
        rows = [root.conform(r) for r in chunk] if mixed else chunk
        frames.append(pl.DataFrame(rows, schema=schema))
    return pl.concat(frames) if len(frames) > 1 else frames[0]
