"""A case as plain data, for each audience: what a department is pushed and reads through its
API (the caller's number masked), and the whole record for the command line.

Every string goes out through `cases.free_text.readable`: a row stored before the free-text
rule (or by a path that skipped it) still makes valid JSON, with U+FFFD where a lone surrogate
or a control character was, rather than an answer that cannot be encoded."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cases.free_text import readable, readable_data
from cases.models import WRITTEN_INTAKES, Case, CaseEvent
from cases.privacy import mask_number

# Bookkeeping in an event's data that is no part of the case's story.
HIDDEN_EVENT_DATA = frozenset({"request_digest"})


def iso(value: datetime | None) -> str | None:
    """A timestamp as ISO 8601, or None."""
    return value.isoformat() if value is not None else None


def _reporters(case: Case) -> dict[str, Any]:
    """How the report came in, and 并单: the case it joined, and how many reported it."""
    return {
        "intake": str(case.intake),
        "merged_into": case.merged_into.number if case.merged_into is not None else None,
        "reporters": case.reporters,
    }


def case_snapshot(case: Case) -> dict[str, Any]:
    """What a department receives about a case: no unmasked personal data. `transcript` is
    the reporter's words: a call's transcript, or what they wrote."""
    words = case.report_text if case.intake in WRITTEN_INTAKES else None
    if words is None and case.transcript is not None:
        words = case.transcript.text
    snapshot = {
        "number": case.number,
        "status": str(case.status),
        "department": case.department_code,
        "responsible_department": case.responsible_department_code,
        "category": case.category_code,
        "urgency": case.urgency,
        "major": case.major,
        "place": case.place_code,
        "deadline_at": iso(case.deadline_at),
        "opened_at": iso(case.opened_at),
        "locale": case.locale,
        "caller_number": mask_number(case.caller_number),
        "transcript": words,
        # 诉求内容, as the desk wrote it (None until it does; `transcript` is the caller's own).
        "work_order": case.work_order,
        # 协办: departments asked to assist the holder (an assisting department lists the case).
        "assisting_departments": [assist.department_code for assist in case.assists],
        "address": case.address,
        **_reporters(case),
    }
    result: dict[str, Any] = readable_data(snapshot)
    return result


def case_summary(case: Case) -> dict[str, Any]:
    """A case as lists show it: the snapshot, plus where the case and its clock stand."""
    return {
        **case_snapshot(case),
        "light": str(case.light),
        "sent_back_by": case.sent_back_by_code,
        "assigned_at": iso(case.assigned_at),
        "accepted_at": iso(case.accepted_at),
        "resolved_at": iso(case.resolved_at),
        "closed_at": iso(case.closed_at),
        "escalated_at": iso(case.escalated_at),
    }


def event_record(event: CaseEvent) -> dict[str, Any]:
    """One timeline entry."""
    record = {
        "id": event.id,
        "kind": event.kind,
        "actor": event.actor,
        "at": iso(event.created_at),
        "data": {key: value for key, value in event.data.items() if key not in HIDDEN_EVENT_DATA},
    }
    result: dict[str, Any] = readable_data(record)
    return result


def case_detail(case: Case) -> dict[str, Any]:
    """A case with its outcome so far and its whole timeline."""
    return {
        **case_summary(case),
        "resolution": readable(case.resolution) if case.resolution is not None else None,
        "rating": case.rating,
        "reopen_count": case.reopen_count,
        "timeline": [event_record(event) for event in case.events],
    }


def case_record(case: Case) -> dict[str, Any]:
    """Everything kept about a case, the caller's number included: for the command line, which
    only the hotline's operators reach."""
    call = case.call
    record = {
        "number": case.number,
        "status": case.status,
        "locale": case.locale,
        "department": case.department_code,
        "category": case.category_code,
        "urgency": case.urgency,
        "deadline_at": iso(case.deadline_at),
        "place": case.place_code,
        "confidence": case.confidence,
        "routing": case.routing,
        # The knowledge-base article suggested for it (cases.knowledge_links), or None.
        "article": case.article_id,
        "needs_review": case.needs_review,
        "review_reason": case.review_reason,
        "caller_number": case.caller_number,
        **_reporters(case),
        "co_reporters": [report.number for report in case.co_reporters],
        "report_text": case.report_text,
        "address": case.address,
        "point": None if case.lat is None else {"lat": case.lat, "long": case.long},
        "sms": {"status": case.sms_status, "message_sid": case.sms_message_sid},
        "opened_at": iso(case.opened_at),
        "call": None
        if call is None
        else {
            "call_sid": call.call_sid,
            "from": call.from_number,
            "to": call.to_number,
            "caller_id_withheld": call.caller_id_withheld,
            "callback_number": call.callback_number,
            "locale": call.locale,
            "status": call.status,
            "started_at": iso(call.started_at),
            "details": call.details,
        },
        "transcript": None
        if case.transcript is None
        else {
            "source": case.transcript.source,
            "complete": case.transcript.complete,
            "text": case.transcript.text,
            "model": case.transcript.model,
            "duration_seconds": case.transcript.duration_seconds,
        },
        "recordings": [
            {
                "recording_sid": recording.recording_sid,
                "status": recording.status,
                "source_url": recording.source_url,
                "reported_duration": recording.reported_duration,
                "storage_path": recording.storage_path,
                "size_bytes": recording.size_bytes,
                "sha256": recording.sha256,
                "sample_rate": recording.sample_rate,
                "channels": recording.channels,
                "duration_seconds": recording.duration_seconds,
                "fetch_attempts": recording.fetch_attempts,
                "last_error": recording.last_error,
                "stored_at": iso(recording.stored_at),
            }
            for recording in case.recordings
        ],
        "events": [
            {
                "at": iso(event.created_at),
                "kind": event.kind,
                "actor": event.actor,
                "data": event.data,
            }
            for event in case.events
        ],
    }
    result: dict[str, Any] = readable_data(record)
    return result
