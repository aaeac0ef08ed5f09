"""The real app less one thing: `/ivr/voice` answers without writing its `calls` row.

Only for `bench/webhooks.py --breakdown`: run beside the real app, it shows what the call's
write costs under load, apart from everything else the webhook does (Flask, the
form, the signature check, the TwiML). Never serve it.
"""

from __future__ import annotations

from typing import Any

from cases import services
from hotline.wsgi import app


def _write_nothing(*_args: Any, **_kwargs: Any) -> None:
    """Stands in for `services.ensure_call_recorded` and `services.queue_call_record`."""


# The lane and the view look them up on the module per call.
services.ensure_call_recorded = _write_nothing
services.queue_call_record = _write_nothing

__all__ = ["app"]
