"""The service-level page's charts as plain data (`hotline.charts`): the two rates against their
targets, the waits against 15 seconds, and the volumes, over hours or days."""

from __future__ import annotations

from collections.abc import Callable

from flask_babel import gettext as _

from cases import service_level
from cases.service_level import Figures
from hotline.charts import Chart, Colour, Series, Target


def _series(
    name: str, colour: str, figures: list[Figures], value: Callable[[Figures], float | None]
) -> Series:
    return Series(name=name, colour=colour, values=[value(item) for item in figures])


def rates_chart(labels: list[str], figures: list[Figures]) -> Chart:
    """The service level and the answer rate per hour or day, against the 95% line."""
    seconds = service_level.ANSWER_WITHIN_SECONDS
    return Chart(
        kind="lines",
        labels=labels,
        series=[
            _series(
                _("Answered within %(seconds)d s", seconds=seconds),
                Colour.BLUE,
                figures,
                lambda item: item.service_level,
            ),
            _series(_("Answer rate"), Colour.GREEN, figures, lambda item: item.answer_rate),
        ],
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
    """The average and the 95th-percentile wait per hour or day, against 15 seconds (the drawn
    axis always reaches that line, so a good hour still shows its distance from it)."""
    seconds = service_level.ANSWER_WITHIN_SECONDS
    series = [
        _series(_("Average wait"), Colour.ORANGE, figures, lambda item: item.average_wait),
        _series(
            _("95th-percentile wait"),
            Colour.PURPLE,
            figures,
            lambda item: None if item.wait_95th is None else float(item.wait_95th),
        ),
    ]
    return Chart(
        kind="lines",
        labels=labels,
        series=series,
        percent=False,
        target=Target(value=seconds, name=_("Target: %(seconds)d s", seconds=seconds)),
    )


def volumes_chart(labels: list[str], figures: list[Figures]) -> Chart:
    """Calls offered, answered and abandoned per hour or day."""
    series = [
        _series(_("Offered"), Colour.BLUE, figures, lambda item: float(item.offered)),
        _series(_("Answered"), Colour.GREEN, figures, lambda item: float(item.answered)),
        _series(_("Abandoned"), Colour.VERMILION, figures, lambda item: float(item.abandoned)),
    ]
    return Chart(
        kind="lines",
        labels=labels,
        series=series,
        percent=False,
    )
