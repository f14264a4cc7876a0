"""Durations in rules and on the command line: ``90d``, ``2w``, ``6m``, ``1y``.

Months and years are calendar units: adding a month to 31 January gives the last day of
February, as Polars' ``dt.offset_by`` does, so Python-side and Polars-side arithmetic agree.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import polars as pl

Unit = Literal["d", "w", "m", "y"]
_PATTERN = re.compile(r"^\s*([0-9]+)\s*([dwmy])\s*$")
_UNIT_NAMES = {"d": "day", "w": "week", "m": "month", "y": "year"}
_POLARS_UNITS = {"d": "d", "w": "w", "m": "mo", "y": "y"}


@dataclass(frozen=True)
class Duration:
    """A whole number of days, weeks, calendar months or calendar years."""

    amount: int
    unit: Unit

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse ``Nd``, ``Nw``, ``Nm`` or ``Ny``; raise ValueError with a readable message."""
        match = _PATTERN.match(str(text))
        if match is None:
            raise ValueError(
                f"{text!r} is not a duration; use a whole number and d, w, m or y "
                "(e.g. 90d, 2w, 6m, 1y)"
            )
        amount = int(match.group(1))
        if amount <= 0:
            raise ValueError(f"{text!r}: a duration must be greater than zero")
        unit: Unit = match.group(2)  # type: ignore[assignment]
        return cls(amount, unit)

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    def describe(self) -> str:
        """``6 months`` for people."""
        name = _UNIT_NAMES[self.unit]
        return f"{self.amount} {name}{'s' if self.amount != 1 else ''}"

    @property
    def is_fixed(self) -> bool:
        """True for days and weeks, whose length does not depend on the calendar."""
        return self.unit in ("d", "w")

    @property
    def days(self) -> float:
        """Length in days; only for days and weeks (a half-life needs a fixed length)."""
        if not self.is_fixed:
            raise ValueError(f"{self} has no fixed length in days")
        return float(self.amount * (7 if self.unit == "w" else 1))

    @property
    def polars_offset(self) -> str:
        """The ``dt.offset_by`` string: ``6mo``, ``1y``, ``90d``."""
        return f"{self.amount}{_POLARS_UNITS[self.unit]}"

    def add_to(self, instant: datetime) -> datetime:
        """``instant + self`` with calendar months and years (month ends saturate)."""
        if self.is_fixed:
            return instant + timedelta(days=self.days)
        return _shift_months(instant, self.months)

    def subtract_from(self, instant: datetime) -> datetime:
        """``instant - self`` with calendar months and years (month ends saturate)."""
        if self.is_fixed:
            return instant - timedelta(days=self.days)
        return _shift_months(instant, -self.months)

    @property
    def months(self) -> int:
        """Length in calendar months (months and years only)."""
        return self.amount * (12 if self.unit == "y" else 1)

    def add_expr(self, instant: pl.Expr) -> pl.Expr:
        """The Polars expression ``instant + self``."""
        return instant.dt.offset_by(self.polars_offset)

    @property
    def shortest(self) -> timedelta:
        """The least time ``add_to`` ever adds: ``N`` months are at least ``28 N`` days."""
        if self.is_fixed:
            return timedelta(days=self.days)
        return timedelta(days=28 * self.months)

    def reached_expr(self, start: pl.Expr, end: pl.Expr) -> pl.Expr:
        """``start + self <= end`` (null where either is null), for columns of instants.

        Calendar arithmetic costs per row, and ``N`` months are always between ``28 N`` and
        ``31 N`` days: only gaps in that band are looked up in the calendar.
        """
        if self.is_fixed:
            return self.add_expr(start) <= end
        gap = end - start
        shortest = self.shortest
        longest = timedelta(days=31 * self.months)
        near = pl.when((gap >= shortest) & (gap < longest)).then(start)
        return (gap >= longest) | (self.add_expr(near) <= end).fill_null(False)


def _shift_months(instant: datetime, months: int) -> datetime:
    year, month0 = divmod(instant.month - 1 + months, 12)
    year += instant.year
    day = min(instant.day, calendar.monthrange(year, month0 + 1)[1])
    return instant.replace(year=year, month=month0 + 1, day=day)
