"""The supervisors' service-level page: today by hour and the last days by day, how fast a
person answered the calls that asked for one (GB/T 33358: within 15 s, 95% answered).

The figures are the domain's (`cases.service_level`), which also says who may see them; the
charts are plain data (`console.service_level_charts`) that the page's script draws with Apache
ECharts (`hotline.charts`); the tables hold the same figures for readers without JavaScript.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import make_response, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user

from cases import service_level
from cases.access import require
from cases.models import utcnow
from cases.service_level import Figures
from console.auth import runs_own_scripts
from console.blueprint import actor, bp
from console.service_level_charts import rates_chart, volumes_chart, waits_chart
from hotline.charts import percent
from hotline.wiring import current_wiring, db

DAYS_SHOWN = 14


@bp.context_processor
def service_level_link() -> dict[str, Any]:
    """Whether the navigation offers this page to the signed-in person."""
    shown = current_user.is_authenticated and service_level.may_see(actor())
    return {"sees_service_level": shown}


def _labels(figures: list[Figures], pattern: str) -> list[str]:
    return [item.start.strftime(pattern) if item.start else "" for item in figures]


def _period(labels: list[str], figures: list[Figures]) -> dict[str, Any]:
    """One table and its three charts."""
    return {
        "rows": list(zip(labels, figures, strict=True)),
        "total": service_level.total(figures),
        "rates": rates_chart(labels, figures),
        "waits": waits_chart(labels, figures),
        "volumes": volumes_chart(labels, figures),
    }


@bp.get("/service-level")
def service_level_page() -> ResponseReturnValue:
    """Calls offered, answered (within 15 s), waits, abandoned calls, callbacks and handling
    time: today by hour, and the last 14 days by day, on the hotline's clock."""
    require(service_level.may_see(actor()), service_level.NOT_A_SUPERVISOR)
    zone = ZoneInfo(current_wiring().router.calendar.timezone)
    now = utcnow()
    with db().begin():
        hours = service_level.today_by_hour(db(), now=now, zone=zone)
        days = service_level.last_days(db(), now=now, zone=zone, days=DAYS_SHOWN)
    page = render_template(
        "console/service_level.html",
        today=_period(_labels(hours, "%H:00"), hours),
        recent=_period(_labels(days, "%m-%d"), days),
        days_shown=DAYS_SHOWN,
        within_seconds=service_level.ANSWER_WITHIN_SECONDS,
        answer_rate_target=round(service_level.ANSWER_RATE_TARGET * 100),
        service_level_target=round(service_level.SERVICE_LEVEL_TARGET * 100),
        as_of=now,
        percent=percent,
    )
    return runs_own_scripts(make_response(page))
