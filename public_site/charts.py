"""Chart geometry for the disclosure page: axes, series and charts as plain data, which the
templates draw as SVG on the server (no script, nothing fetched from elsewhere)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from public_site import stats


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
class Chart:
    """What a chart macro draws: category labels, one or more series, and the value axis."""

    labels: list[str]
    series: list[Series]
    axis: Axis
    percent: bool


RATE_SERIES = (
    ("response_rate", _l("Response rate"), "rate-response"),
    ("resolution_rate", _l("Resolution rate"), "rate-resolution"),
    ("on_time_rate", _l("On-time rate"), "rate-on-time"),
    ("satisfaction_rate", _l("Satisfaction"), "rate-satisfaction"),
)


def volume_chart(labels: list[str], counts: list[stats.Counts]) -> Chart:
    """Bars of the volume per label (week or department)."""
    values: list[float | None] = [float(item.volume) for item in counts]
    return Chart(
        labels=labels,
        series=[Series(name=str(_("Volume")), css_class="volume", values=values)],
        axis=count_axis(max((item.volume for item in counts), default=0)),
        percent=False,
    )


def rates_chart(labels: list[str], counts: list[stats.Counts]) -> Chart:
    """The four rates per label (week or department)."""
    return Chart(
        labels=labels,
        series=[
            Series(name=str(name), css_class=css, values=[getattr(item, key) for item in counts])
            for key, name, css in RATE_SERIES
        ],
        axis=PERCENT_AXIS,
        percent=True,
    )


def percent(value: float | None) -> str:
    """A rate as a percentage with one decimal, or a dash when there is nothing to measure."""
    return "—" if value is None else f"{value * 100:.1f}%"


def direct_answer_chart(labels: list[str], figures: stats.DirectAnswers) -> Chart:
    """The direct-answer rate per week, as a line like the other rates."""
    return Chart(
        labels=labels,
        series=[
            Series(
                name=str(_("Direct-answer rate")),
                css_class="rate-direct",
                values=[figures.rate(monday) for monday in figures.weeks],
            )
        ],
        axis=PERCENT_AXIS,
        percent=True,
    )
