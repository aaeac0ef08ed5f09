"""Charts as plain data, which the pages hand to Apache ECharts (`hotline/assets/charts.mjs`,
bundled from npm by `make install`; the macro is `hotline/templates/charts.html`): a kind of
chart, category labels, named series with their colours, and an optional target line.

The public disclosure page and the console's service-level page both use them. Each page keeps
a table of the same figures beside its charts, for readers without JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


class Colour:
    """The Okabe–Ito palette: told apart by readers with any common colour blindness."""

    BLUE = "#0072b2"
    GREEN = "#009e73"
    ORANGE = "#e69f00"
    VERMILION = "#d55e00"
    PURPLE = "#cc79a7"
    SKY = "#56b4e9"
    BLACK = "#000000"


@dataclass(frozen=True)
class Series:
    """One named row of values in a chart; None is drawn as a gap, not as zero."""

    name: str
    colour: str
    values: list[float | None]


@dataclass(frozen=True)
class Target:
    """A value the chart's series should stay above (or below), drawn as a dashed line."""

    value: float
    name: str


# columns: vertical bars over periods; lines: one line per series over periods; rows:
# horizontal bars, grouped, one row per category (department).
ChartKind = Literal["columns", "lines", "rows"]


@dataclass(frozen=True)
class Chart:
    """What a chart shows: its kind, category labels, one or more series, whether the values
    are rates (drawn from 0% to 100%) or counts, and the target line if there is one."""

    kind: ChartKind
    labels: list[str]
    series: list[Series]
    percent: bool
    target: Target | None = None

    def spec(self, *, x_label: str, y_label: str = "") -> dict[str, object]:
        """The chart as the JSON the page's script reads (`charts.mjs`), with its axes' names."""
        return {
            "kind": self.kind,
            "labels": [str(label) for label in self.labels],
            "series": [
                {"name": str(line.name), "color": line.colour, "values": line.values}
                for line in self.series
            ],
            "percent": self.percent,
            "target": None
            if self.target is None
            else {"value": self.target.value, "name": str(self.target.name)},
            "x_label": str(x_label),
            "y_label": str(y_label),
        }


def percent(value: float | None) -> str:
    """A rate as a percentage with one decimal, or a dash when there is nothing to measure."""
    return "—" if value is None else f"{value * 100:.1f}%"
