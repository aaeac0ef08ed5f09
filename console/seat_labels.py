"""What the seat pages show, in the staff member's language: the statuses of a seat, the
wrap-up codes, why a caller wanted a person, why a callback is owed, how an attempt ended, and
the kinds of emergency."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from cases import callbacks
from cases.models import SeatStatus, WrapUpCode

# The statuses of a seat, as the operator and their supervisors read them.
SEAT_STATUS_LABELS = {
    SeatStatus.SIGNED_OUT: _l("Signed out"),
    SeatStatus.AVAILABLE: _l("Available"),
    SeatStatus.BUSY: _l("Busy"),
    SeatStatus.ON_BREAK: _l("On a break"),
    SeatStatus.OFFERED: _l("Ringing"),
    SeatStatus.ON_CALL: _l("On a call"),
    SeatStatus.WRAP_UP: _l("Wrapping up"),
    SeatStatus.AWAY: _l("Away"),
}
# The buttons that set a status: what each one says.
STATUS_BUTTONS = {
    SeatStatus.AVAILABLE: _l("Set me available"),
    SeatStatus.BUSY: _l("Busy"),
    SeatStatus.ON_BREAK: _l("On a break"),
    SeatStatus.SIGNED_OUT: _l("Sign out of the seat"),
}
WRAP_UP_LABELS = {
    WrapUpCode.ANSWERED: _l("Answered"),
    WrapUpCode.CASE_OPENED: _l("Case opened"),
    WrapUpCode.TRANSFERRED: _l("Call transferred"),
    WrapUpCode.CALLBACK_NEEDED: _l("Callback needed"),
    WrapUpCode.NUISANCE: _l("Nuisance call"),
    WrapUpCode.SILENT: _l("Silent call"),
    WrapUpCode.ABANDONED: _l("Hung up while waiting"),
    WrapUpCode.CALLBACK_REQUESTED: _l("Asked to be called back"),
    WrapUpCode.NO_OPERATOR: _l("No operator was free"),
}
# Why the caller wanted a person (cases.seats.WHY_A_PERSON), as the operator reads it.
REASON_LABELS = {
    "asked": _l("Pressed 0 to talk to a person"),
    "report_then_person": _l("Asked for a person during the recording (the report is kept)"),
    "menu_misses": _l("Pressed keys that meant nothing, three times"),
    "not_emergency": _l("Said the emergency the line heard was not one"),
    "status_lookup": _l("Asked for a person while hearing a case's status"),
}
# Why a callback is owed (cases.callbacks.CALLBACK_REASONS).
CALLBACK_REASON_LABELS = {
    "hung_up_in_queue": _l("Hung up while waiting for a person"),
    "asked": _l("Asked to be called back"),
    "no_seat": _l("No seat was open"),
    "queue_error": _l("The queue failed"),
    "operator": _l("An operator asked for a callback"),
    "case": _l("The desk asked for a call back about a case"),
}
# Where a callback task stands (cases.models.CallbackTask.status).
CALLBACK_STATUS_LABELS = {
    "open": _l("waiting to be called back"),
    "done": _l("called back"),
    "failed": _l("not reached after the last try; texted"),
    "withdrawn": _l("withdrawn: the caller left a report instead"),
}
# How a callback attempt ended (the citizen's DialCallStatus, or the operator's phone).
ATTEMPT_OUTCOME_LABELS = {
    None: _l("under way"),
    callbacks.REACHED: _l("reached"),
    callbacks.OPERATOR_UNREACHED: _l("the operator's phone did not answer"),
    "no-answer": _l("no answer"),
    "busy": _l("busy"),
    "failed": _l("failed"),
    "canceled": _l("cancelled"),
}
# What kind of emergency the line heard (routing.emergency's kinds).
EMERGENCY_LABELS = {
    "fire": _l("fire, gas or rescue (119)"),
    "medical": _l("medical (120)"),
    "police": _l("police (110)"),
}
LOCALE_LABELS = {"zh-CN": "中文", "en-US": "English", "ko-KR": "한국어"}
