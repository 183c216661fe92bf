"""Charts drawn on the server as SVG: bars stacked by series, scaled to a round axis. Pure geometry, so
the page needs no charting script and works under a strict Content-Security-Policy (no inline styles:
each series is a CSS class)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 640
HEIGHT = 220
LEFT = 40  # room for the value axis
BOTTOM = 24  # room for the labels
TOP = 8


@dataclass(frozen=True, slots=True)
class Segment:
    series: str
    value: float
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class Column:
    label: str
    total: float
    segments: tuple[Segment, ...]
    label_x: float
    show_label: bool


@dataclass(frozen=True, slots=True)
class Tick:
    value: float
    y: float


@dataclass(frozen=True, slots=True)
class BarChart:
    width: int
    height: int
    columns: tuple[Column, ...]
    ticks: tuple[Tick, ...]
    series: tuple[str, ...]
    baseline: float
    left: int

    @property
    def is_empty(self) -> bool:
        return all(column.total == 0 for column in self.columns)


def nice_ceiling(value: float) -> float:
    """The axis top: the value rounded up to 1, 2 or 5 times a power of ten (at least 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def stacked_bars(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    width: int = WIDTH,
    height: int = HEIGHT,
    max_labels: int = 16,
) -> BarChart:
    """One column per label, its series stacked bottom up in the order given. Labels are thinned to at
    most `max_labels` so they do not overlap."""
    count = len(labels)
    totals = [sum(values[index] for _, values in series) for index in range(count)]
    top = nice_ceiling(max(totals, default=0.0))
    plot_height = height - TOP - BOTTOM
    slot = (width - LEFT) / max(count, 1)
    bar = max(slot * 0.7, 1.0)
    every = max(math.ceil(count / max_labels), 1)
    baseline = float(height - BOTTOM)
    columns = []
    for index, label in enumerate(labels):
        x = LEFT + index * slot + (slot - bar) / 2
        y = baseline
        segments = []
        for name, values in series:
            value = values[index]
            if value <= 0:
                continue
            size = value / top * plot_height
            y -= size
            segments.append(Segment(name, value, round(x, 2), round(y, 2), round(bar, 2), round(size, 2)))
        columns.append(
            Column(label, totals[index], tuple(segments), round(x + bar / 2, 2), index % every == 0)
        )
    ticks = tuple(Tick(top * part / 4, round(baseline - plot_height * part / 4, 2)) for part in range(5))
    return BarChart(width, height, tuple(columns), ticks, tuple(name for name, _ in series), baseline, LEFT)
