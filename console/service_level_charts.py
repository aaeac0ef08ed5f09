"""The service-level page's charts as plain data (`hotline.charts`): the two rates against their
targets, the waits against 15 seconds, and the volumes, over hours or days."""

from __future__ import annotations

from collections.abc import Callable

from flask_babel import gettext as _

from cases import service_level
from cases.service_level import Figures
from hotline.charts import PERCENT_AXIS, Chart, Series, Target, count_axis


def _series(
    name: str, css_class: str, figures: list[Figures], value: Callable[[Figures], float | None]
) -> Series:
    return Series(name=name, css_class=css_class, values=[value(item) for item in figures])


def rates_chart(labels: list[str], figures: list[Figures]) -> Chart:
    """The service level and the answer rate per hour or day, against the 95% line."""
    seconds = service_level.ANSWER_WITHIN_SECONDS
    return Chart(
        labels=labels,
        series=[
            _series(
                _("Answered within %(seconds)d s", seconds=seconds),
                "rate-in-time",
                figures,
                lambda item: item.service_level,
            ),
            _series(_("Answer rate"), "rate-answered", figures, lambda item: item.answer_rate),
        ],
        axis=PERCENT_AXIS,
        percent=True,
        target=Target(
            value=service_level.ANSWER_RATE_TARGET,
            name=_(
                "Target: %(percent)d%%",
                percent=round(service_level.ANSWER_RATE_TARGET * 100),
            ),
        ),
    )


def waits_chart(labels: list[str], figures: list[Figures]) -> Chart:
    """The average and the 95th-percentile wait per hour or day, against 15 seconds."""
    seconds = service_level.ANSWER_WITHIN_SECONDS
    series = [
        _series(_("Average wait"), "wait-average", figures, lambda item: item.average_wait),
        _series(
            _("95th-percentile wait"),
            "wait-95th",
            figures,
            lambda item: None if item.wait_95th is None else float(item.wait_95th),
        ),
    ]
    largest = max((value or 0 for line in series for value in line.values), default=0)
    return Chart(
        labels=labels,
        series=series,
        # The axis always reaches the 15 s line, so a good hour still shows its distance from it.
        axis=count_axis(max(largest, seconds)),
        percent=False,
        target=Target(value=seconds, name=_("Target: %(seconds)d s", seconds=seconds)),
    )


def volumes_chart(labels: list[str], figures: list[Figures]) -> Chart:
    """Calls offered, answered and abandoned per hour or day."""
    series = [
        _series(_("Offered"), "calls-offered", figures, lambda item: float(item.offered)),
        _series(_("Answered"), "calls-answered", figures, lambda item: float(item.answered)),
        _series(_("Abandoned"), "calls-abandoned", figures, lambda item: float(item.abandoned)),
    ]
    return Chart(
        labels=labels,
        series=series,
        axis=count_axis(max((item.offered for item in figures), default=0)),
        percent=False,
    )
