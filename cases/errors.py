"""Domain errors; the web and TwiML layers turn them into answers."""


def N_(message: str) -> str:
    """Mark a message for translation where it is shown (gettext_noop): the domain speaks no
    language of its own, and `pybabel extract` collects what is marked so."""
    return message


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


class NotAllowedError(CaseError):
    """The actor may see the case but may not do this to it."""


class InvalidTransitionError(CaseError):
    """The case is not in a state that allows this action."""

    def __init__(self, action: str, status: str, *, reason: str | None = None) -> None:
        # The generic refusal; `reason`, where given, says more.
        self.generic = f"cannot {action} a case that is {status}"
        super().__init__(reason or self.generic)
        self.action = action
        self.status = status


class InvalidInputError(CaseError):
    """A value given to a lifecycle action is missing or malformed."""
