"""The disclosure page's charts as plain data (`hotline.charts`), drawn in the browser by Apache
ECharts from our own origin; the page's tables hold the same figures."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from hotline.charts import Chart, ChartKind, Colour, Series, percent
from public_site import stats

# percent is the page's and its tests' as much as the charts'.
__all__ = [
    "contacts_chart",
    "direct_answer_chart",
    "percent",
    "rates_chart",
    "volume_chart",
]


RATE_SERIES = (
    ("response_rate", _l("Response rate"), Colour.BLUE),
    ("resolution_rate", _l("Resolution rate"), Colour.GREEN),
    ("on_time_rate", _l("On-time rate"), Colour.ORANGE),
    ("satisfaction_rate", _l("Satisfaction"), Colour.PURPLE),
    # 并单: every reporter's own rating, beside the satisfaction per problem.
    ("contact_satisfaction_rate", _l("Satisfaction per contact"), Colour.BLACK),
)


def volume_chart(
    labels: list[str], counts: list[stats.Counts], *, kind: ChartKind = "columns"
) -> Chart:
    """Bars of the volume per label: columns over weeks, rows over departments."""
    values: list[float | None] = [float(item.volume) for item in counts]
    return Chart(
        kind=kind,
        labels=labels,
        series=[Series(name=str(_("Volume")), colour=Colour.BLUE, values=values)],
        percent=False,
    )


def rates_chart(
    labels: list[str], counts: list[stats.Counts], *, kind: ChartKind = "lines"
) -> Chart:
    """The rates per label: lines over weeks, grouped rows over departments."""
    return Chart(
        kind=kind,
        labels=labels,
        series=[
            Series(name=str(name), colour=colour, values=[getattr(item, key) for item in counts])
            for key, name, colour in RATE_SERIES
        ],
        percent=True,
    )


def contacts_chart(labels: list[str], counts: list[stats.Counts]) -> Chart:
    """Contacts (every report) and problems (cases not merged into another) per label, as two
    lines: the gap between them is the repeat reports merged (并单)."""
    return Chart(
        kind="lines",
        labels=labels,
        series=[
            Series(
                name=str(_("Contacts")),
                colour=Colour.VERMILION,
                values=[float(item.contacts) for item in counts],
            ),
            Series(
                name=str(_("Problems")),
                colour=Colour.BLUE,
                values=[float(item.volume) for item in counts],
            ),
        ],
        percent=False,
    )


def direct_answer_chart(labels: list[str], figures: stats.DirectAnswers) -> Chart:
    """The direct-answer rate per week, as a line like the other rates."""
    return Chart(
        kind="lines",
        labels=labels,
        series=[
            Series(
                name=str(_("Direct-answer rate")),
                colour=Colour.SKY,
                values=[figures.rate(monday) for monday in figures.weeks],
            )
        ],
        percent=True,
    )
