"""The preset interface: how one provider's export becomes canonical events.

A preset's ``mapper`` receives the raw file as a LazyFrame (nested JSON already flattened to
``parent.child`` column names) and its schema, and returns a LazyFrame with at least
``contact_id``, ``event_type`` and ``timestamp``, plus any of the optional canonical columns.
``event_type`` must already be canonical (or a lower-cased custom name); rows the preset
documents as skipped are filtered out by the mapper. ``timestamp`` may be a string, a number or
a datetime: normalisation converts it (see :mod:`engscore.timestamps`); a preset whose times are
in a fixed zone converts them itself. Every other column passes through unchanged as an extra.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from engscore.errors import DataError
from engscore.schema import CANONICAL_EVENT_TYPES


@dataclass(frozen=True)
class MapContext:
    """What a mapper may need besides the data."""

    source: Path
    timezone: str = "UTC"


Mapper = Callable[[pl.LazyFrame, pl.Schema, MapContext], pl.LazyFrame]


@dataclass(frozen=True)
class Preset:
    """A named mapping from one provider's export to the canonical schema."""

    name: str
    description: str
    #: Columns whose joint presence identifies this provider's export (for ``auto``).
    signature: tuple[str, ...]
    mapper: Mapper
    #: Documentation: the provider flags machine opens itself. Ingest applies the heuristic to
    #: any file whose mapped frame has no ``is_machine`` column, whatever this says.
    flags_machine_opens: bool = False
    #: Detection order: higher is tried first (more specific signatures win).
    priority: int = 0
    #: Documented event-name map, shown by ``engscore presets``.
    event_map: Mapping[str, str | None] = field(default_factory=dict)
    #: Zone of this export's naive timestamps when it is fixed (``--timezone`` overrides).
    timezone: str | None = None
    #: Other column sets that identify the same export in another shape.
    alternatives: tuple[tuple[str, ...], ...] = ()

    def matches(self, columns: Iterable[str]) -> bool:
        """True when every column of the signature (or of one alternative) is present."""
        present = set(columns)
        return any(
            all(c in present for c in candidate)
            for candidate in (self.signature, *self.alternatives)
        )


def require(schema: pl.Schema, columns: Iterable[str], ctx: MapContext, preset: str) -> None:
    """Raise a DataError naming the missing columns and listing those found."""
    missing = [c for c in columns if c not in schema]
    if missing:
        found = ", ".join(schema.names()) or "none"
        raise DataError(
            f"{ctx.source}: missing required column {', '.join(repr(m) for m in missing)} "
            f"for preset '{preset}' (columns found: {found})"
        )


def col_or_null(schema: pl.Schema, name: str, dtype: pl.DataType | None = None) -> pl.Expr:
    """``pl.col(name)`` when the column exists, else a typed null literal."""
    if name in schema:
        return pl.col(name) if dtype is None else pl.col(name).cast(dtype, strict=False)
    return pl.lit(None, dtype=dtype or pl.String())


def first_present(schema: pl.Schema, *names: str) -> pl.Expr:
    """The first of ``names`` that exists as a column, else a null literal."""
    for name in names:
        if name in schema:
            return pl.col(name)
    return pl.lit(None, dtype=pl.String())


def coalesce_present(schema: pl.Schema, *names: str, dtype: pl.DataType | None = None) -> pl.Expr:
    """Per row, the first non-null of those ``names`` that exist as columns (else null)."""
    present = [pl.col(n) if dtype is None else pl.col(n).cast(dtype) for n in names if n in schema]
    if not present:
        return pl.lit(None, dtype=dtype or pl.String())
    return present[0] if len(present) == 1 else pl.coalesce(present)


def classify_bounce(expr: pl.Expr, hard: Iterable[str], soft: Iterable[str]) -> pl.Expr:
    """``hard``/``soft`` from a provider's bounce classification (case-insensitive substrings)."""
    text = expr.cast(pl.String).str.to_lowercase()
    out = pl.lit(None, dtype=pl.String)
    for label, needles in (("soft", soft), ("hard", hard)):
        for needle in needles:
            out = (
                pl.when(text.str.contains(needle.lower(), literal=True))
                .then(pl.lit(label))
                .otherwise(out)
            )
    return out


def bounce_by_value(expr: pl.Expr, hard: Iterable[str], soft: Iterable[str]) -> pl.Expr:
    """``hard``/``soft`` from a provider's exact bounce values (case-insensitive), else null."""
    text = expr.cast(pl.String).str.strip_chars().str.to_lowercase()
    return (
        pl.when(text.is_in([v.lower() for v in hard]))
        .then(pl.lit("hard"))
        .when(text.is_in([v.lower() for v in soft]))
        .then(pl.lit("soft"))
    )


def present_only(**columns: pl.Expr | None) -> dict[str, pl.Expr]:
    """The named expressions that are not None, for ``with_columns(**...)``.

    A preset leaves ``is_machine`` out when the export lacks the provider's flag column: a
    column of ``False`` would tell ingest the provider checked, and switch off the heuristic.
    """
    return {name: expr for name, expr in columns.items() if expr is not None}


#: The event type a preset gives events its provider documents as account-level (no recipient
#: by design: SendGrid ``account_status_change``, Mailgun ``list_uploaded``). Ingest skips and
#: counts them instead of rejecting them for their missing contact. A custom name can never
#: take this value: ``map_events`` turns dashes into ``_``.
ACCOUNT_LEVEL = "account-level"


def account_level(event: pl.Expr, when: pl.Expr) -> pl.Expr:
    """``event``, or :data:`ACCOUNT_LEVEL` on the rows where ``when`` holds."""
    return pl.when(when.fill_null(False)).then(pl.lit(ACCOUNT_LEVEL)).otherwise(event)


def describe_event_map(mapping: Mapping[str, str | None]) -> str:
    """``name→type`` for each documented name, ``(skipped)`` / ``(account-level)`` for the
    others, and ``(kept)`` for names kept under their own name; one name per line."""
    lines = []
    for name, target in mapping.items():
        if target is None:
            lines.append(f"{name} (skipped)")
        elif target == ACCOUNT_LEVEL:
            lines.append(f"{name} (account-level, skipped)")
        elif target == name.lower():
            lines.append(f"{name}" if target in CANONICAL_EVENT_TYPES else f"{name} (kept)")
        else:
            lines.append(f"{name}→{target}")
    return "\n".join(lines)


def drop_skipped(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Drop rows whose event the preset skips: mapped to null while the raw name was present.

    Expects the mapper to have put the raw name in ``_raw_event`` (removed here).
    """
    skipped = pl.col("event_type").is_null() & pl.col("_raw_event").is_not_null()
    return frame.filter(~skipped).drop("_raw_event")


_SEPARATORS = r"[\s\-_.]+"


def event_key(name: str) -> str:
    """An event name as ``map_events`` matches it: lower-cased, without spaces, ``-``, ``_``
    or ``.``."""
    return re.sub(_SEPARATORS, "", name.strip().lower())


def map_events(raw: pl.Expr, mapping: Mapping[str, str | None]) -> pl.Expr:
    """Map raw event names (case-insensitive) to canonical ones.

    Names mapped to ``None`` become null (the mapper then drops those rows: "skipped"); names
    not in the map are kept under their own lower-cased, underscore-joined name. Names match
    whatever their case and separators: ``Rendering Failure``, ``RenderingFailure`` and
    ``rendering_failure`` are one name (providers spell one event several ways).
    """
    # Spellings of one name ("hard_bounce", "hardBounce") are one key.
    lookup = {event_key(k): v for k, v in mapping.items()}
    keys, values = list(lookup), list(lookup.values())

    def translate(names: pl.Series) -> pl.Series:
        lowered = names.cast(pl.String).str.strip_chars().str.to_lowercase()
        custom = lowered.str.replace_all(r"[\s\-]+", "_")
        bare = lowered.str.replace_all(_SEPARATORS, "")
        known = bare.replace_strict(keys, values, default=None, return_dtype=pl.String)
        return pl.select(pl.when(bare.is_in(keys)).then(known).otherwise(custom)).to_series()

    # An export has a handful of distinct event names: those are translated, then each row
    # looked up, batch by batch (`replace_strict` over the whole column is not streamed by
    # Polars: it held 1.8 GB for 20M rows).
    return by_distinct_values(raw, translate, pl.String())


def by_distinct_values(
    values: pl.Expr, clean: Callable[[pl.Series], pl.Series], dtype: pl.DataType
) -> pl.Expr:
    """``clean`` (a function of one Series, value by value) applied to ``values``, a column of
    few distinct values (flags, event names, bounce types): to each batch's distinct values
    only, then looked up row by row; the batch is passed on as it is when cleaning changes
    none of its values. Five string operations on 20M rows become a lookup."""

    def apply(batch: pl.Series) -> pl.Series:
        if batch.is_empty():  # replace_strict keeps an empty batch's type
            return pl.Series(batch.name, [], dtype=dtype)
        distinct = batch.unique()
        cleaned = clean(distinct)
        if batch.dtype == dtype and cleaned.equals(distinct, check_names=False, null_equal=True):
            return batch
        return batch.replace_strict(distinct, cleaned, return_dtype=dtype)

    return values.map_batches(apply, return_dtype=dtype, is_elementwise=True)


_TRUE = ("true", "1", "yes", "y", "t")


def parse_bool(expr: pl.Expr) -> pl.Expr:
    """Booleans from bool, numeric or text columns ("true", "1", "yes"); missing: False.

    Row by row in Polars, not per distinct value (``by_distinct_values``): its per-batch
    Python call and lookup took 2.5 s more of the 20M-row CSV's one pass.
    """
    text = expr.cast(pl.String).str.strip_chars().str.to_lowercase()
    return text.is_in(_TRUE).fill_null(False)
