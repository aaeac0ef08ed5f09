"""Case numbers: nine digits, the last a Luhn check digit, so a mis-keyed number is caught."""

from __future__ import annotations

import secrets

CASE_NUMBER_LENGTH = 9


def luhn_check_digit(digits: str) -> str:
    """The Luhn digit that makes `digits + digit` valid."""
    total = 0
    # Walk from the right; the check digit will sit to the right of these, so double the first.
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return str((10 - total % 10) % 10)


def new_case_number() -> str:
    """A random, well-formed case number; uniqueness is the database's job."""
    # Random rather than sequential: a number reveals neither volume nor its neighbours.
    body = str(secrets.randbelow(9) + 1) + "".join(
        str(secrets.randbelow(10)) for _ in range(CASE_NUMBER_LENGTH - 2)
    )
    return body + luhn_check_digit(body)


def could_be_a_case_number(number: str) -> bool:
    """Whether `number` has a case number's shape (ASCII digits, at most 12): anything else is
    answered "no such case" without a query, so no odd character ever reaches the database."""
    return 0 < len(number) <= 12 and number.isascii() and number.isdigit()


def is_well_formed(number: str) -> bool:
    """Whether `number` could be a case number (right length, digits, valid check digit)."""
    return (
        len(number) == CASE_NUMBER_LENGTH
        and number.isdigit()
        and luhn_check_digit(number[:-1]) == number[-1]
    )
