"""The re-send beat job: deliveries whose job a broker outage or a dead worker lost are sent
again, and those still in flight are left to their own job."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import cast

import pytest

from cases.models import Delivery, DeliveryStatus, utcnow
from delivery import services, tasks
from hotline.db import Database
from hotline.wiring import Wiring
from tests.conftest import wait_until
from tests.support.factories import make_case, quiet_session
from tests.support.receivers import ReceivedPush, WebhookReceiver, make_department

SECRET = "resend-secret-0123456789"


@pytest.mark.usefixtures("celery_worker")
def test_the_resend_job_sends_deliveries_a_broker_outage_left_behind(
    database: Database, wiring: Wiring
) -> None:
    now = utcnow()
    with WebhookReceiver(secret=SECRET) as receiver:
        with quiet_session(database) as session:
            code = make_department(session, webhook_url=receiver.url, webhook_secret=SECRET)
            lost, retry_lost, in_flight = (
                make_case(session, department_code=code, caller_number=None) for _ in range(3)
            )
            # Queued ten minutes ago; its job never reached the broker.
            lost.deliveries[0].created_at = now - timedelta(minutes=10)
            # Tried once, five minutes ago; its retry was lost with a dead worker.
            retry_lost.deliveries[0].created_at = now - timedelta(minutes=6)
            retry_lost.deliveries[0].attempts = 1
            retry_lost.deliveries[0].last_attempt_at = now - timedelta(minutes=5)
            # Tried a moment ago: its own job is still on it.
            in_flight.deliveries[0].created_at = now - timedelta(minutes=10)
            in_flight.deliveries[0].attempts = 1
            in_flight.deliveries[0].last_attempt_at = now - timedelta(seconds=5)
            ids = {
                name: case.deliveries[0].id
                for name, case in (("lost", lost), ("retry", retry_lost), ("busy", in_flight))
            }
            numbers = {name: case.number for name, case in (("lost", lost), ("retry", retry_lost))}

        with database.session() as session:
            stalled = services.stalled_deliveries(
                session, now=utcnow(), config=wiring.senders.config
            )
        assert ids["lost"] in stalled and ids["retry"] in stalled
        assert ids["busy"] not in stalled

        assert tasks.resend_pending_deliveries.apply().get() >= 2

        for number in numbers.values():
            # cast: mypy cannot infer a lambda whose parameter has a default (it binds `number`)
            wait_until(
                cast(Callable[[], list[ReceivedPush]], lambda n=number: receiver.accepted_for(n)),
                timeout=60,
                what="the re-send",
            )

    def settled(row_id: int) -> Delivery | None:
        with database.session() as session:
            row = session.get_one(Delivery, row_id)
            return row if row.status == DeliveryStatus.DELIVERED else None

    lost_row = wait_until(lambda: settled(ids["lost"]), timeout=30, what="the lost row recorded")
    retried_row = wait_until(lambda: settled(ids["retry"]), timeout=30, what="the retry recorded")
    assert lost_row.attempts == 1 and retried_row.attempts == 2
