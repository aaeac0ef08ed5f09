"""The disclosure page's charts as plain data (`hotline.charts`), which the templates draw as SVG
on the server (no script, nothing fetched from elsewhere)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from hotline.charts import PERCENT_AXIS, Chart, Series, count_axis, percent
from public_site import stats

# count_axis and percent are the page's and its tests' as much as the charts'.
__all__ = [
    "RATE_SERIES",
    "contacts_chart",
    "count_axis",
    "direct_answer_chart",
    "percent",
    "rates_chart",
    "volume_chart",
]


RATE_SERIES = (
    ("response_rate", _l("Response rate"), "rate-response"),
    ("resolution_rate", _l("Resolution rate"), "rate-resolution"),
    ("on_time_rate", _l("On-time rate"), "rate-on-time"),
    ("satisfaction_rate", _l("Satisfaction"), "rate-satisfaction"),
    # 并单: every reporter's own rating, beside the satisfaction per problem.
    ("contact_satisfaction_rate", _l("Satisfaction per contact"), "rate-satisfaction-contact"),
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


def contacts_chart(labels: list[str], counts: list[stats.Counts]) -> Chart:
    """Contacts (every report) and problems (cases not merged into another) per label, as two
    lines: the gap between them is the repeat reports merged (并单)."""
    return Chart(
        labels=labels,
        series=[
            Series(
                name=str(_("Contacts")),
                css_class="contacts",
                values=[float(item.contacts) for item in counts],
            ),
            Series(
                name=str(_("Problems")),
                css_class="volume",
                values=[float(item.volume) for item in counts],
            ),
        ],
        axis=count_axis(max((item.contacts for item in counts), default=0)),
        percent=False,
    )


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
