"""Custom mapping files: a YAML description of any other export, turned into a Preset.

```yaml
version: 1
columns:                    # canonical column: column in the export
  contact_id: Email Address
  event_type: Activity
  timestamp: Date
events:                     # export's event name: canonical type (null = skip the row)
  Opened: open
  Hard Bounce: bounce
bounce_types: {Hard Bounce: hard, Soft Bounce: soft}
timestamp_format: "%d/%m/%Y %H:%M"   # optional; default: automatic
timezone: Europe/Paris               # zone of naive timestamps (--timezone overrides)
constants: {campaign_id: spring-sale}
keep_unmapped_events: true           # false: skip events not listed under `events`
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from engscore import timestamps
from engscore.errors import ConfigError
from engscore.presets.base import MapContext, Preset, map_events, require
from engscore.schema import CANONICAL_SCHEMA
from engscore.yamlconf import load_yaml, validate_model


class MappingFile(BaseModel):
    """The schema of a mapping file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    columns: dict[str, str]
    events: dict[str, str | None] = Field(default_factory=dict)
    bounce_types: dict[str, Literal["hard", "soft"]] = Field(default_factory=dict)
    timestamp_format: str | None = None
    timezone: str | None = None
    constants: dict[str, str | int | float | bool] = Field(default_factory=dict)
    keep_unmapped_events: bool = True

    @field_validator("columns")
    @classmethod
    def _canonical_targets(cls, columns: dict[str, str]) -> dict[str, str]:
        unknown = [c for c in columns if c not in CANONICAL_SCHEMA]
        if unknown:
            raise ValueError(
                f"unknown canonical column {unknown[0]!r}; "
                f"choose from {', '.join(CANONICAL_SCHEMA)}"
            )
        return columns

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str | None) -> str | None:
        if zone is None:
            return None
        try:
            return timestamps.check_timezone(zone)
        except ConfigError as exc:  # pydantic adds file:line to ValueErrors only
            raise ValueError(exc.message) from None


def load_mapping(path: Path) -> Preset:
    """Load a mapping file into a Preset named ``mapping:<file>``."""
    spec = validate_model(MappingFile, load_yaml(path))

    def mapper(frame: pl.LazyFrame, schema: pl.Schema, ctx: MapContext) -> pl.LazyFrame:
        sources = spec.columns
        require(schema, sources.values(), ctx, f"mapping {path.name}")
        renamed = frame.with_columns(
            *(pl.col(source).alias(canonical) for canonical, source in sources.items()),
            *(pl.lit(value).alias(name) for name, value in spec.constants.items()),
        )
        columns = renamed.collect_schema()
        raw_event = pl.col("event_type").cast(pl.String).str.strip_chars()
        exprs: list[pl.Expr] = []
        skipped = pl.lit(False)
        if spec.events:
            event = map_events(raw_event, spec.events)
            if not spec.keep_unmapped_events:
                known = [name.lower() for name in spec.events]
                event = pl.when(raw_event.str.to_lowercase().is_in(known)).then(event)
            # A null mapping skips the row; a missing event name is a reject, reported later.
            skipped = event.is_null() & raw_event.is_not_null()
            exprs.append(event.alias("event_type"))
        if spec.bounce_types:
            lowered = {k.lower(): v for k, v in spec.bounce_types.items()}
            exprs.append(
                pl.coalesce(
                    raw_event.str.to_lowercase().replace_strict(
                        list(lowered), list(lowered.values()), default=None, return_dtype=pl.String
                    ),
                    pl.col("bounce_type") if "bounce_type" in columns else pl.lit(None),
                ).alias("bounce_type")
            )
        if spec.timestamp_format is not None:
            text = pl.col("timestamp").cast(pl.String)
            exprs.append(
                timestamps.parse_string(text, ctx.timezone, spec.timestamp_format).alias(
                    "timestamp"
                )
            )
        return (
            renamed.with_columns(*exprs, _skipped=skipped)
            .filter(~pl.col("_skipped"))
            .drop("_skipped")
        )

    return Preset(
        name=f"mapping:{path.name}",
        description=f"custom mapping file {path}",
        signature=tuple(spec.columns.values()),
        mapper=mapper,
        flags_machine_opens="is_machine" in spec.columns,
        event_map=spec.events,
        timezone=spec.timezone,
    )
