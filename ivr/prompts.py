"""Prompt texts per locale, from config/prompts/<locale>.toml, and the IVR settings."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from routing.emergency import load_emergency_numbers

# Deadlines are read to callers in the city's own time.
CITY_TIMEZONE = ZoneInfo("Asia/Shanghai")

REQUIRED_KEYS = (
    "language",
    "voice",
    "digits",
    "deadline_format",
    "greeting",
    "greeting_keys",
    "menu_invalid",
    "callback_number_request",
    "report_prompt",
    "report_silent_retry",
    "report_nothing_heard",
    "case_opened",
    "case_number_again",
    "sms_will_follow",
    "no_sms",
    "status_prompt",
    "status_unknown_retry",
    "status_unknown_goodbye",
    "status_case",
    "status_department",
    "status_deadline",
    "operator_connecting",
    "operator_unavailable",
    "operator_unavailable_report_kept",
    "queue_position",
    "queue_callback_option",
    "queue_callback_confirmed",
    "queue_no_number",
    "queue_connecting",
    "queue_waited_too_long",
    "person_unavailable_offer",
    "person_after_hours",
    "seat_caller_waiting",
    "seat_no_caller",
    "callback_operator_intro",
    "callback_not_reached",
    "sms_callback_given_up",
    "error_apology",
    "recording_not_saved",
    "goodbye",
    "sms_case_opened",
    "emergency_transfer",
    "report_check_wait",
    "answer_intro",
    "answer_question",
    "answered_goodbye",
    "answered_sms_goodbye",
    "danger_question",
    "sms_answer",
    # Texts to the caller after the call: outbox messages (sms_<message>) and rating replies.
    "sms_accepted",
    "sms_resolved",
    "sms_rating_thanks",
    "sms_reopened",
    "sms_rating_help",
    "sms_no_case_to_rate",
    "sms_rating_failed",
    # Replies to texts (ivr.sms): reports, their parts, answers, keywords.
    "sms_report_received",
    "sms_report_added",
    "sms_report_answered",
    "sms_report_emergency",
    "sms_help",
    "sms_opted_out",
    "sms_opted_in",
    "sms_too_many",
    "sms_report_failed",
    "statuses",
)
# A locale other than the first is offered at the Mandarin greeting in its own words.
OFFERED_LOCALE_KEYS = ("language_option",)

# Every status a case can be in must be readable to a caller on the status path.
REQUIRED_STATUSES = ("open", "triage", "assigned", "accepted", "sent_back", "resolved", "closed")


@dataclass(frozen=True)
class Prompts:
    """One locale's texts, and the Twilio language and voice that speak them."""

    locale: str
    texts: dict[str, Any]

    @property
    def language(self) -> str:
        """The `language` attribute of <Say> (Twilio's code, e.g. cmn-CN)."""
        return str(self.texts["language"])

    @property
    def voice(self) -> str:
        """The `voice` attribute of <Say>."""
        return str(self.texts["voice"])

    def text(self, key: str, **values: str) -> str:
        """The prompt `key`, with `{placeholders}` filled in."""
        return str(self.texts[key]).format(**values)

    def digits(self, number: str) -> str:
        """A number read digit by digit, in this locale's words."""
        words = self.texts["digits"]
        separator = "，" if self.locale == "zh-CN" else ", "
        return separator.join(words[int(char)] for char in number if char.isdigit())

    def status(self, status: str) -> str:
        """A case status, as a caller should hear it."""
        statuses: dict[str, str] = self.texts["statuses"]
        return statuses.get(status, statuses["open"])

    def deadline(self, when: datetime) -> str:
        """A deadline in the city's time and this locale's format."""
        return when.astimezone(CITY_TIMEZONE).strftime(self.texts["deadline_format"])


@dataclass(frozen=True)
class IVROptions:
    """Settings of the call flow itself, from config/ivr.toml."""

    queue_name: str
    operator_hours: tuple[str, str]
    queue_announce_every: int
    queue_wait_limit: int
    seat_ring_timeout: int
    wrap_up_seconds: int
    assumed_handling_seconds: int
    menu_timeout: int
    menu_max_misses: int
    greeting_timeout: int
    record_max_length: int
    record_silence_timeout: int
    emergency_check_wait: float
    report_check_rounds: int
    knowledge_wait: float
    speech_check_wait: float
    speech_threshold_dbfs: float
    speech_min_seconds: float
    emergency_numbers: dict[str, str]
    # Texts (ivr.sms): the join window for a report's parts, the hourly cap on reports from a
    # number, whether Twilio answers its English keywords itself, and the keyword lists.
    sms_join_seconds: float = 60.0
    sms_reports_per_hour: int = 10
    sms_twilio_answers_keywords: bool = True
    sms_keywords: dict[str, frozenset[str]] = field(default_factory=dict)


def load_prompts(directory: Path, locales: tuple[str, ...]) -> dict[str, Prompts]:
    """Load and check the prompt file of each enabled locale."""
    prompts = {}
    for locale in locales:
        path = directory / f"{locale}.toml"
        texts = tomllib.loads(path.read_text(encoding="utf-8"))
        required = REQUIRED_KEYS + (OFFERED_LOCALE_KEYS if locale != locales[0] else ())
        missing = [key for key in required if key not in texts]
        if missing:
            raise ValueError(f"{path}: missing prompts {', '.join(missing)}")
        missing_statuses = [
            status for status in REQUIRED_STATUSES if status not in texts["statuses"]
        ]
        if missing_statuses:
            raise ValueError(f"{path}: `statuses` lacks {', '.join(missing_statuses)}")
        if len(texts["digits"]) != 10:
            raise ValueError(f"{path}: `digits` needs ten words, for 0 to 9")
        prompts[locale] = Prompts(locale=locale, texts=texts)
    return prompts


def parse_operator_hours(value: object, path: Path) -> tuple[str, str]:
    """Two "HH:MM" times, the first before the second ("24:00" ends the day)."""
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(
            isinstance(v, str) and re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d|24:00", v) for v in value
        )
        or value[0] >= value[1]
    ):
        raise ValueError(f'{path}: operator_hours must be two times such as ["08:00", "20:00"]')
    return value[0], value[1]


def load_options(path: Path) -> IVROptions:
    """Load the call-flow settings."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return IVROptions(
        queue_name=str(data["queue_name"]),
        operator_hours=parse_operator_hours(data["operator_hours"], path),
        queue_announce_every=int(data["queue_announce_every"]),
        queue_wait_limit=int(data["queue_wait_limit"]),
        seat_ring_timeout=int(data["seat_ring_timeout"]),
        wrap_up_seconds=int(data["wrap_up_seconds"]),
        assumed_handling_seconds=int(data["assumed_handling_seconds"]),
        menu_timeout=int(data["menu_timeout"]),
        menu_max_misses=int(data["menu_max_misses"]),
        greeting_timeout=int(data["greeting_timeout"]),
        record_max_length=int(data["record_max_length"]),
        record_silence_timeout=int(data["record_silence_timeout"]),
        emergency_check_wait=float(data["emergency_check_wait"]),
        report_check_rounds=int(data["report_check_rounds"]),
        knowledge_wait=float(data["knowledge_wait"]),
        speech_check_wait=float(data["speech_check_wait"]),
        speech_threshold_dbfs=float(data["speech_threshold_dbfs"]),
        speech_min_seconds=float(data["speech_min_seconds"]),
        # Routing reads and checks them: one loader for the numbers calls are put through to.
        emergency_numbers=load_emergency_numbers(path),
        sms_join_seconds=float(data["sms_join_seconds"]),
        sms_reports_per_hour=int(data["sms_reports_per_hour"]),
        sms_twilio_answers_keywords=bool(data["sms_twilio_answers_keywords"]),
        sms_keywords=parse_sms_keywords(data.get("sms_keywords"), path),
    )


SMS_KEYWORD_KINDS = ("stop", "start", "help")


def keyword_form(word: str) -> str:
    """A keyword as texts are compared with it: width-folded (NFKC), upper case, trimmed."""
    return unicodedata.normalize("NFKC", word).strip().upper()


def parse_sms_keywords(value: object, path: Path) -> dict[str, frozenset[str]]:
    """The `[sms_keywords]` table: lists of words for stop, start and help, none in two."""
    if not isinstance(value, dict) or set(value) != set(SMS_KEYWORD_KINDS):
        raise ValueError(f"{path}: [sms_keywords] must list exactly stop, start and help")
    keywords: dict[str, frozenset[str]] = {}
    for kind in SMS_KEYWORD_KINDS:
        words = value[kind]
        if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
            raise ValueError(f"{path}: sms_keywords.{kind} must be a list of words")
        keywords[kind] = frozenset(keyword_form(w) for w in words)
    every = [w for kind in SMS_KEYWORD_KINDS for w in keywords[kind]]
    if len(every) != len(set(every)):
        raise ValueError(f"{path}: a word is in two [sms_keywords] lists")
    return keywords
