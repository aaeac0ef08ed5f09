"""Domain errors; the web and TwiML layers turn them into answers."""


class CaseError(Exception):
    """Base class for domain errors."""


class UnknownCaseError(CaseError):
    """No case has that number."""

    def __init__(self, number: str) -> None:
        super().__init__(f"no case with number {number!r}")
        self.number = number


class UnknownCallError(CaseError):
    """No call has that CallSid."""

    def __init__(self, call_sid: str) -> None:
        super().__init__(f"no call with CallSid {call_sid!r}")
        self.call_sid = call_sid
