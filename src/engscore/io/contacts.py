"""Contacts files (``--contacts``): one row of attributes per contact, for profile rules.

The key column is ``contact_id``, else an e-mail column (``email``, ``Email Address``,
``email_address`` ...); keys are normalised like ingest does (trimmed, e-mail addresses
lower-cased). CSV columns get their types inferred so ``company_size >= 50`` works; when a
contact appears twice, the first row wins.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from engscore.errors import DataError
from engscore.io.readers import (
    collect_schema,
    first_line,
    read_xlsx,
    resolve_inputs,
    scan_file,
)
from engscore.schema import CONTACT

_KEY_NAMES = ("contact_id", "email", "email_address", "emailaddress", "e_mail", "$email")


def normalise_contact_id(value: str) -> str:
    """A contact id as ingest writes it: trimmed; e-mail addresses lower-cased."""
    text = value.strip()
    return text.lower() if "@" in text else text


def _key_column(columns: list[str]) -> str | None:
    by_name = {c.strip().lower().replace(" ", "_"): c for c in columns}
    for name in _KEY_NAMES:
        if name in by_name:
            return by_name[name]
    return None


def load_contacts(path: Path) -> pl.LazyFrame:
    """Scan a contacts file (CSV, TSV, Parquet, JSON, JSON-lines, .xlsx) keyed by
    ``contact_id``."""
    items = resolve_inputs([str(path)])
    if len(items) != 1:
        raise DataError(f"{path}: --contacts takes one file, not {len(items)}")
    item = items[0]
    if item.format in ("csv", "tsv") and not item.compressed:
        scan_file(item)  # content and UTF-8 checks with clear messages
        frame = pl.scan_csv(
            item.path,
            separator="\t" if item.format == "tsv" else ",",
            infer_schema_length=10_000,
            try_parse_dates=True,
        )
    elif item.format == "xlsx":
        scan_file(item)  # content checks with clear messages
        # Typed like CSV contacts: profile rules compare numbers and dates.
        frame = read_xlsx(item, as_text=False).lazy()
    else:
        frame = scan_file(item)
    keyed = keyed_by_contact(frame, collect_schema(frame, item.path), item.path)
    return keyed.unique(subset=CONTACT, keep="first", maintain_order=True)


def keyed_by_contact(frame: pl.LazyFrame, schema: pl.Schema, source: Path) -> pl.LazyFrame:
    """Contact rows (``schema``: their columns) with ``contact_id`` made from their key column
    as ingest writes ids (trimmed; e-mail addresses lower-cased); rows without one dropped.

    Row by row: any share of the rows can be keyed on its own (the Spark engine's partitions).
    """
    key = _key_column(schema.names())
    if key is None:
        raise DataError(
            f"{source}: no contact key column; name one 'contact_id' or 'email' "
            f"(columns found: {', '.join(schema.names()[:15])})"
        )
    text = pl.col(key).cast(pl.String).str.strip_chars()
    contact = pl.when(text.str.contains("@", literal=True)).then(text.str.to_lowercase())
    frame = frame.with_columns(contact.otherwise(text).alias(CONTACT))
    return frame.filter(pl.col(CONTACT).is_not_null() & (pl.col(CONTACT) != ""))


def contacts_schema(contacts: pl.LazyFrame, path: Path) -> pl.Schema:
    """The schema of a contacts frame; unreadable files are a DataError naming the file."""
    try:
        return contacts.collect_schema()
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{path}: cannot read: {first_line(exc)}") from exc
