"""Chart geometry for the HTML report: numbers in, positioned shapes out.

The report draws its charts as inline SVG from these dataclasses (``templates/charts.html.j2``):
Python does the arithmetic (scales, nice ticks, colours), the template only places shapes and
text, so every label goes through jinja2's autoescaping. No JavaScript, no fonts or images to
fetch: the file opens the same from disk, a mail attachment or a print preview.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

#: Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
BLUE = "#0072B2"
ORANGE = "#E69F00"
GREEN = "#009E73"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
SKY = "#56B4E9"
GREY = "#9AA0A6"

WIDTH = 720
HEIGHT = 300
MARGIN_LEFT = 64
MARGIN_RIGHT = 16
MARGIN_TOP = 16
MARGIN_BOTTOM = 56


def human(value: float, decimals: int = 0) -> str:
    """``12345.6`` -> ``12,346``; ``decimals`` for small values."""
    return f"{value:,.{decimals}f}"


def percent(part: float, whole: float, decimals: int = 1) -> str:
    """``part / whole`` as ``12.3%`` (``-`` when ``whole`` is 0)."""
    return f"{100 * part / whole:.{decimals}f}%" if whole else "-"


def nice_step(span: float, target_ticks: int = 5) -> float:
    """A 1, 2 or 5 times a power of ten step giving about ``target_ticks`` ticks over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / target_ticks
    power = 10.0 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 5, 10):
        if raw <= multiple * power:
            return multiple * power
    return 10 * power


def nice_ticks(low: float, high: float, target_ticks: int = 5) -> list[float]:
    """Tick values covering ``[low, high]`` at a nice step (always includes 0 when in range)."""
    if high <= low:
        high = low + 1
    step = nice_step(high - low, target_ticks)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


@dataclass(frozen=True)
class Tick:
    """An axis tick: position in pixels and its label."""

    position: float
    label: str


@dataclass(frozen=True)
class Rect:
    """A bar or a cell, with the text shown on hover (``<title>``)."""

    x: float
    y: float
    width: float
    height: float
    fill: str
    tooltip: str
    label: str = ""
    sublabel: str = ""
    label_colour: str = "#1f2328"


@dataclass(frozen=True)
class Marker:
    """A vertical line across the plot (a grade threshold)."""

    x: float
    label: str


@dataclass(frozen=True)
class Level:
    """A horizontal line across the plot (a limit), labelled at its right end."""

    y: float
    label: str
    colour: str
    #: Where the label's baseline goes (above the line, clear of the labels below it).
    label_y: float = 0.0


@dataclass(frozen=True)
class Series:
    """One line of a line chart: SVG points and its legend entry."""

    name: str
    colour: str
    points: str
    dots: list[tuple[float, float, str]]
    dashed: bool = False
    #: The line in pieces, where values are missing between them (else one line: ``points``).
    pieces: tuple[str, ...] = ()


@dataclass(frozen=True)
class Chart:
    """A positioned chart: plot area, axes, shapes and legend."""

    title: str
    x_label: str
    y_label: str
    width: int = WIDTH
    height: int = HEIGHT
    left: float = MARGIN_LEFT
    top: float = MARGIN_TOP
    right: float = WIDTH - MARGIN_RIGHT
    bottom: float = HEIGHT - MARGIN_BOTTOM
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    rects: list[Rect] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    #: Category labels drawn left of horizontal bars (y position, text).
    row_labels: list[Tick] = field(default_factory=list)
    levels: list[Level] = field(default_factory=list)
    description: str = ""


def _y_scale(ticks: Sequence[float], top: float, bottom: float) -> tuple[float, float]:
    low, high = ticks[0], ticks[-1]
    per_unit = (bottom - top) / (high - low) if high > low else 0.0
    return low, per_unit


def bar_chart(
    categories: Sequence[str],
    values: Sequence[float],
    title: str,
    x_label: str,
    y_label: str,
    colour: str = BLUE,
    tooltip_unit: str = "contacts",
    every_nth_label: int = 1,
) -> Chart:
    """Vertical bars, one per category, on a linear y axis from 0."""
    chart = Chart(title=title, x_label=x_label, y_label=y_label)
    ticks = nice_ticks(0, max(values, default=0) or 1)
    low, per_unit = _y_scale(ticks, chart.top, chart.bottom)
    slot = (chart.right - chart.left) / max(len(values), 1)
    gap = min(4.0, slot * 0.15)
    for index, (name, value) in enumerate(zip(categories, values, strict=True)):
        height = (value - low) * per_unit
        chart.rects.append(
            Rect(
                x=chart.left + index * slot + gap / 2,
                y=chart.bottom - height,
                width=max(slot - gap, 1.0),
                height=height,
                fill=colour,
                tooltip=f"{name}: {human(value)} {tooltip_unit}",
            )
        )
        if index % every_nth_label == 0:
            chart.x_ticks.append(Tick(chart.left + (index + 0.5) * slot, name))
    chart.y_ticks.extend(Tick(chart.bottom - (t - low) * per_unit, human(t)) for t in ticks)
    return chart


def histogram(
    edges: Sequence[float],
    counts: Sequence[int],
    thresholds: Sequence[tuple[str, float]],
    title: str,
    x_label: str,
    y_label: str,
) -> Chart:
    """Bars between ``edges`` on a numeric x axis, with vertical markers at ``thresholds``."""
    chart = Chart(title=title, x_label=x_label, y_label=y_label)
    ticks = nice_ticks(0, max(counts, default=0) or 1)
    low, per_unit = _y_scale(ticks, chart.top, chart.bottom)
    x_low, x_high = edges[0], edges[-1]
    span = (x_high - x_low) or 1.0

    def x_of(value: float) -> float:
        return chart.left + (value - x_low) / span * (chart.right - chart.left)

    for start, end, count in zip(edges[:-1], edges[1:], counts, strict=True):
        height = (count - low) * per_unit
        chart.rects.append(
            Rect(
                x=x_of(start) + 0.5,
                y=chart.bottom - height,
                width=max(x_of(end) - x_of(start) - 1, 1.0),
                height=height,
                fill=BLUE,
                tooltip=f"score {human(start, 1)} to {human(end, 1)}: {human(count)} contacts",
            )
        )
    for name, value in thresholds:
        if x_low <= value <= x_high:
            chart.markers.append(Marker(x_of(value), f"{name} ≥ {value:g}"))
    chart.x_ticks.extend(
        Tick(x_of(t), human(t)) for t in nice_ticks(x_low, x_high, 8) if x_low <= t <= x_high
    )
    chart.y_ticks.extend(Tick(chart.bottom - (t - low) * per_unit, human(t)) for t in ticks)
    return chart


def line_chart(
    categories: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float]]],
    title: str,
    x_label: str,
    y_label: str,
    percent_axis: bool = False,
    every_nth_label: int = 1,
) -> Chart:
    """Lines over categories (months): ``series`` are (name, colour, values)."""
    chart = Chart(title=title, x_label=x_label, y_label=y_label)
    top_value = max((max(values, default=0) for _, _, values in series), default=0)
    ticks = nice_ticks(0, top_value or (1 if not percent_axis else 0.1))
    if percent_axis:
        ticks = [t for t in ticks if t <= 1.0] or [0.0, 1.0]
        if ticks[-1] < top_value:
            ticks.append(1.0)
    low, per_unit = _y_scale(ticks, chart.top, chart.bottom)
    count = max(len(categories), 1)
    slot = (chart.right - chart.left) / count

    def x_of(index: int) -> float:
        return chart.left + (index + 0.5) * slot

    for name, colour, values in series:
        coords = [(x_of(i), chart.bottom - (v - low) * per_unit) for i, v in enumerate(values)]
        shown = [
            (
                x,
                y,
                f"{name}, {categories[i]}: "
                + (f"{values[i]:.1%}" if percent_axis else human(values[i])),
            )
            for i, (x, y) in enumerate(coords)
        ]
        chart.series.append(
            Series(
                name=name,
                colour=colour,
                points=" ".join(f"{x:.1f},{y:.1f}" for x, y in coords),
                dots=shown,
                dashed=colour == GREY,
            )
        )
    chart.x_ticks.extend(
        Tick(x_of(i), label) for i, label in enumerate(categories) if i % every_nth_label == 0
    )
    chart.y_ticks.extend(
        Tick(chart.bottom - (t - low) * per_unit, f"{t:.0%}" if percent_axis else human(t))
        for t in ticks
    )
    return chart


#: Pixels between the baselines of two level labels.
_LABEL_GAP = 14


def _percent_label(value: float, step: float) -> str:
    """A rate axis label with as many decimals as its step needs (0.05% steps: two)."""
    decimals = max(0, -math.floor(math.log10(step * 100) + 1e-9)) if step > 0 else 0
    return f"{value:.{decimals}%}"


def rate_chart(
    categories: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    levels: Sequence[tuple[float, str, str]],
    title: str,
    x_label: str,
    y_label: str,
    every_nth_label: int = 1,
) -> Chart:
    """Rates over categories (months), with horizontal limit lines.

    ``series`` are (name, colour, values), a value None where there is no rate (the line
    breaks there); ``levels`` are (value, label, colour). The axis always reaches the highest
    level, so a rate far below its limit is seen as such.
    """
    chart = Chart(title=title, x_label=x_label, y_label=y_label)
    known = [v for _, _, values in series for v in values if v is not None]
    top_value = max([*known, *(value * 1.15 for value, _, _ in levels)], default=0.0)
    ticks = nice_ticks(0, top_value or 0.01)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else ticks[0]
    low, per_unit = _y_scale(ticks, chart.top, chart.bottom)
    slot = (chart.right - chart.left) / max(len(categories), 1)

    def x_of(index: int) -> float:
        return chart.left + (index + 0.5) * slot

    def y_of(value: float) -> float:
        return chart.bottom - (value - low) * per_unit

    for name, colour, values in series:
        pieces: list[list[tuple[float, float]]] = [[]]
        dots = []
        for index, value in enumerate(values):
            if value is None:
                if pieces[-1]:
                    pieces.append([])
                continue
            point = (x_of(index), y_of(value))
            pieces[-1].append(point)
            dots.append((*point, f"{name}, {categories[index]}: {value:.2%}"))
        drawn = [" ".join(f"{x:.1f},{y:.1f}" for x, y in piece) for piece in pieces if piece]
        chart.series.append(
            Series(
                name=name,
                colour=colour,
                points=" ".join(drawn),
                dots=dots,
                pieces=tuple(drawn),
            )
        )
    # Labels go just above their lines, from the lowest line up; lines closer than a text
    # line (a rate far above its limits squeezes them together) push the next label up.
    below = chart.bottom + _LABEL_GAP
    for value, label, colour in sorted(levels):
        label_y = min(y_of(value) - 5, below - _LABEL_GAP)
        chart.levels.append(Level(y_of(value), label, colour, label_y))
        below = label_y
    chart.x_ticks.extend(
        Tick(x_of(i), label) for i, label in enumerate(categories) if i % every_nth_label == 0
    )
    chart.y_ticks.extend(Tick(y_of(t), _percent_label(t, step)) for t in ticks)
    return chart


def horizontal_bars(
    labels: Sequence[str],
    values: Sequence[float],
    title: str,
    x_label: str,
    colour: str = BLUE,
    value_labels: Sequence[str] | None = None,
) -> Chart:
    """One horizontal bar per label, longest first as given, value written at the bar's end."""
    row = 24
    height = int(MARGIN_TOP + row * max(len(values), 1) + 48)
    chart = Chart(
        title=title,
        x_label=x_label,
        y_label="",
        height=height,
        left=200,
        right=WIDTH - 80,
        bottom=height - 40,
    )
    ticks = nice_ticks(0, max(values, default=0) or 1)
    high = ticks[-1]
    per_unit = (chart.right - chart.left) / high if high else 0.0
    texts = value_labels or [human(v) for v in values]
    for index, (label, value, text) in enumerate(zip(labels, values, texts, strict=True)):
        y = chart.top + index * row
        chart.rects.append(
            Rect(
                x=chart.left,
                y=y + 3,
                width=max(value * per_unit, 0.5 if value else 0.0),
                height=row - 6,
                fill=colour,
                tooltip=f"{label}: {text}",
                label=text,
            )
        )
        chart.row_labels.append(Tick(y + row / 2, label))
    chart.x_ticks.extend(Tick(chart.left + t * per_unit, human(t)) for t in ticks)
    return chart


def heat_colour(share: float) -> tuple[str, str]:
    """Cell fill from white to blue by ``share`` (0..1), and a readable text colour."""
    share = min(max(share, 0.0), 1.0)
    white, blue = (255, 255, 255), (0, 114, 178)
    rgb = tuple(round(w + (b - w) * share) for w, b in zip(white, blue, strict=True))
    return "#{:02x}{:02x}{:02x}".format(*rgb), ("#ffffff" if share > 0.55 else "#1f2328")


def heat_map(
    rows: Sequence[int],
    columns: Sequence[int],
    cells: dict[tuple[int, int], tuple[int, float | None]],
    title: str,
    x_label: str,
    y_label: str,
) -> Chart:
    """R x F grid: each cell's count (colour) and mean monetary value (second line)."""
    size = 96
    chart = Chart(
        title=title,
        x_label=x_label,
        y_label=y_label,
        width=int(MARGIN_LEFT + size * len(columns) + 24),
        height=int(MARGIN_TOP + size * len(rows) + 56),
        right=MARGIN_LEFT + size * len(columns),
        bottom=MARGIN_TOP + size * len(rows),
    )
    largest = max((count for count, _ in cells.values()), default=0) or 1
    for row_index, r in enumerate(rows):
        for column_index, f in enumerate(columns):
            count, mean = cells.get((r, f), (0, None))
            fill, ink = heat_colour(count / largest)
            money = f"avg {human(mean)}" if mean is not None else ""
            chart.rects.append(
                Rect(
                    x=chart.left + column_index * size,
                    y=chart.top + row_index * size,
                    width=size - 2,
                    height=size - 2,
                    fill=fill,
                    tooltip=f"R={r}, F={f}: {human(count)} buyers"
                    + (f", mean monetary {human(mean, 2)}" if mean is not None else ""),
                    label=human(count),
                    sublabel=money,
                    label_colour=ink,
                )
            )
        chart.row_labels.append(Tick(chart.top + (row_index + 0.5) * size, f"R={r}"))
    chart.x_ticks.extend(
        Tick(chart.left + (i + 0.5) * size, f"F={f}") for i, f in enumerate(columns)
    )
    return chart
