"""The RFM segment map: named boxes of (R, F, M) scores, the built-in maps and their check.

Configuration, not computation: the rules file's ``rfm.segments`` are validated against it
when the rules load, and ``engscore.engine.rfm`` names each buyer's cell from it.

The segment map
    A segment is a named box of (R, F, M) scores, ranges inclusive, M optional (any M). The
    first box that holds a buyer's (r, f, m) names it; a name may have several boxes. The
    built-in maps cover each of the N**3 cells exactly once (``check_segment_map`` proves it)
    and use all eleven names. For N = 5 they are boxes on (R, F) alone (R rows, F columns)::

                F=1             F=2                 F=3                 F=4 .. F=5
        R=5  New Customers   Potential Loyalist  Loyal               Champions
        R=4  Promising       Potential Loyalist  Loyal               Champions
        R=3  About To Sleep  Need Attention      Loyal               Loyal
        R=2  Hibernating     Hibernating         At Risk             At Risk
        R=1  Lost            Lost                At Risk             Can't Lose Them

    N = 4, also on (R, F) alone::

                F=1             F=2                 F=3        F=4
        R=4  New Customers   Potential Loyalist  Champions  Champions
        R=3  Promising       Potential Loyalist  Loyal      Loyal
        R=2  About To Sleep  Need Attention      At Risk    Can't Lose Them
        R=1  Lost            Hibernating         At Risk    Can't Lose Them

    N = 3 has only 9 (R, F) cells for 11 names, so two cells are split by M::

                F=1                                         F=2                 F=3
        R=3  New Customers                               Potential Loyalist  Champions
        R=2  About To Sleep (M=1), Promising (M=2-3)     Need Attention      Loyal
        R=1  Lost (M=1), Hibernating (M=2-3)             At Risk             Can't Lose Them
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import product
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from engscore.errors import ConfigError
from engscore.yamlconf import StrictModel


def _score_range(value: Any) -> Any:
    """``4``, ``"4-5"`` or ``[4, 5]`` -> ``(4, 5)``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*-\s*[0-9]+\s*", value):
        low, high = (int(part) for part in value.split("-"))
        return (low, high)
    if isinstance(value, list | tuple) and len(value) == 2:
        return tuple(value)
    raise ValueError(f'{value!r} is not a score range; write 4, "3-5" or [3, 5]')


ScoreRange = Annotated[tuple[int, int], BeforeValidator(_score_range)]


class RfmSegment(StrictModel):
    """One named segment of the RFM map: the (R, F, M) boxes it covers (ranges inclusive)."""

    name: str = Field(min_length=1)
    r: ScoreRange
    f: ScoreRange
    m: ScoreRange | None = None  # None: every M score

    @model_validator(mode="after")
    def _ordered(self) -> RfmSegment:
        for key in ("r", "f", "m"):
            span = getattr(self, key)
            if span is not None and (span[0] > span[1] or span[0] < 1):
                raise ValueError(f"{key}: {span[0]}-{span[1]} is not a range of scores from 1 up")
        return self


SEGMENT_NAMES = (
    "Champions",
    "Loyal",
    "Potential Loyalist",
    "New Customers",
    "Promising",
    "Need Attention",
    "About To Sleep",
    "At Risk",
    "Can't Lose Them",
    "Hibernating",
    "Lost",
)

#: The segment index ``check_segment_map`` gives problems of the map as a whole (gaps).
WHOLE_MAP = -1
#: How many uncovered cells a gap message lists.
_SHOWN_CELLS = 5

Span = tuple[int, int]


def _box(name: str, r: Span, f: Span, m: Span | None = None) -> RfmSegment:
    # The rules file gives ranges as lists; validate the same way it does.
    data: dict[str, Any] = {"name": name, "r": list(r), "f": list(f)}
    if m is not None:
        data["m"] = list(m)
    return RfmSegment.model_validate(data)


_MAP_5 = (
    _box("Champions", (4, 5), (4, 5)),
    _box("Loyal", (4, 5), (3, 3)),
    _box("Loyal", (3, 3), (3, 5)),
    _box("Potential Loyalist", (4, 5), (2, 2)),
    _box("New Customers", (5, 5), (1, 1)),
    _box("Promising", (4, 4), (1, 1)),
    _box("Need Attention", (3, 3), (2, 2)),
    _box("About To Sleep", (3, 3), (1, 1)),
    _box("At Risk", (2, 2), (3, 5)),
    _box("At Risk", (1, 1), (3, 3)),
    _box("Can't Lose Them", (1, 1), (4, 5)),
    _box("Hibernating", (2, 2), (1, 2)),
    _box("Lost", (1, 1), (1, 2)),
)

_MAP_4 = (
    _box("Champions", (4, 4), (3, 4)),
    _box("Loyal", (3, 3), (3, 4)),
    _box("Potential Loyalist", (3, 4), (2, 2)),
    _box("New Customers", (4, 4), (1, 1)),
    _box("Promising", (3, 3), (1, 1)),
    _box("Need Attention", (2, 2), (2, 2)),
    _box("About To Sleep", (2, 2), (1, 1)),
    _box("At Risk", (1, 2), (3, 3)),
    _box("Can't Lose Them", (1, 2), (4, 4)),
    _box("Hibernating", (1, 1), (2, 2)),
    _box("Lost", (1, 1), (1, 1)),
)

_MAP_3 = (
    _box("Champions", (3, 3), (3, 3)),
    _box("Loyal", (2, 2), (3, 3)),
    _box("Potential Loyalist", (3, 3), (2, 2)),
    _box("New Customers", (3, 3), (1, 1)),
    _box("Promising", (2, 2), (1, 1), (2, 3)),
    _box("Need Attention", (2, 2), (2, 2)),
    _box("About To Sleep", (2, 2), (1, 1), (1, 1)),
    _box("At Risk", (1, 1), (2, 2)),
    _box("Can't Lose Them", (1, 1), (3, 3)),
    _box("Hibernating", (1, 1), (1, 1), (2, 3)),
    _box("Lost", (1, 1), (1, 1), (1, 1)),
)

_DEFAULT_MAPS = {3: _MAP_3, 4: _MAP_4, 5: _MAP_5}


def default_segments(bins: int) -> tuple[RfmSegment, ...]:
    """The built-in segment map for ``bins`` = 3, 4 or 5 (see the module docstring)."""
    try:
        return _DEFAULT_MAPS[bins]
    except KeyError:
        raise ConfigError(
            f"rfm.bins: no built-in segment map for {bins} bins (use 3, 4 or 5)"
        ) from None


def _spans(segment: RfmSegment, bins: int) -> tuple[Span, Span, Span]:
    m = segment.m if segment.m is not None else (1, bins)
    return segment.r, segment.f, m


def _cells(segment: RfmSegment, bins: int) -> list[tuple[int, int, int]]:
    """The cells of the box inside ``1..bins`` on every axis."""
    rs, fs, ms = (range(max(lo, 1), min(hi, bins) + 1) for lo, hi in _spans(segment, bins))
    return list(product(rs, fs, ms))


def all_cells(bins: int) -> list[tuple[int, int, int]]:
    """Every (r, f, m) cell for ``bins`` scores, in order."""
    scores = range(1, bins + 1)
    return list(product(scores, scores, scores))


def _cell_text(cell: tuple[int, int, int]) -> str:
    return f"(r={cell[0]}, f={cell[1]}, m={cell[2]})"


def check_segment_map(segments: Sequence[RfmSegment], bins: int) -> list[tuple[int, str]]:
    """Problems of a segment map for ``bins`` scores, as ``(segment index, message)``.

    Reported: a range beyond ``1..bins``; two boxes with *different* names sharing cells (one
    message per pair, on the later box; boxes of the same name may overlap harmlessly); cells
    no box covers (one message with index ``WHOLE_MAP``, listing the first few). An empty list
    means every one of the ``bins**3`` cells gets exactly one name.
    """
    problems: list[tuple[int, str]] = []
    for index, segment in enumerate(segments):
        for axis, (lo, hi) in zip("rfm", _spans(segment, bins), strict=True):
            if lo < 1 or hi > bins:
                problems.append((index, f"{segment.name!r}: {axis}: {lo}-{hi} is outside 1-{bins}"))
    owners: dict[tuple[int, int, int], int] = {}
    shared: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for index, segment in enumerate(segments):
        for cell in _cells(segment, bins):
            first = owners.setdefault(cell, index)
            if first != index and segments[first].name != segment.name:
                shared.setdefault((first, index), []).append(cell)
    for (first, index), cells in sorted(shared.items(), key=lambda item: (item[0][1], item[0][0])):
        problems.append(
            (
                index,
                f"cell {_cell_text(cells[0])} is covered by both {segments[first].name!r} "
                f"(segment {first}) and {segments[index].name!r}"
                + (f" ({len(cells)} shared cells)" if len(cells) > 1 else ""),
            )
        )
    missing = [cell for cell in all_cells(bins) if cell not in owners]
    if missing:
        shown = ", ".join(_cell_text(cell) for cell in missing[:_SHOWN_CELLS])
        more = ", ..." if len(missing) > _SHOWN_CELLS else ""
        problems.append(
            (WHOLE_MAP, f"{len(missing)} cell(s) are not covered by any segment: {shown}{more}")
        )
    return problems
