"""Charts as plain data, for pages that draw them as SVG on the server (the macros in
`hotline/templates/charts.html`): a value axis from zero, named series, and an optional target
line. The public disclosure page and the console's service-level page both use them."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Axis:
    """A value axis from zero: its top and the values to mark on it."""

    maximum: float
    ticks: list[float]


PERCENT_AXIS = Axis(maximum=1.0, ticks=[0.0, 0.25, 0.5, 0.75, 1.0])


def count_axis(largest: float, *, steps: int = 4) -> Axis:
    """An axis for counts up to `largest`, in round whole steps (1, 2 or 5 times a power of 10)."""
    if largest <= 0:
        return Axis(maximum=1, ticks=[0, 1])
    raw = largest / steps
    magnitude = 10 ** math.floor(math.log10(raw))
    step = max(1, next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw))
    top = step * math.ceil(largest / step)
    return Axis(maximum=top, ticks=[step * index for index in range(round(top / step) + 1)])


@dataclass(frozen=True)
class Series:
    """One named row of values in a chart; None is drawn as a gap, not as zero."""

    name: str
    css_class: str
    values: list[float | None]


@dataclass(frozen=True)
class Target:
    """A value the chart's series should stay above (or below), drawn as a dashed line."""

    value: float
    name: str


@dataclass(frozen=True)
class Chart:
    """What a chart macro draws: category labels, one or more series, the value axis, and the
    target line if there is one."""

    labels: list[str]
    series: list[Series]
    axis: Axis
    percent: bool
    target: Target | None = None


def percent(value: float | None) -> str:
    """A rate as a percentage with one decimal, or a dash when there is nothing to measure."""
    return "—" if value is None else f"{value * 100:.1f}%"
