"""Case numbers: short, digits only, and a mis-keyed digit is caught by the check digit."""

from __future__ import annotations

from cases import numbers


def test_new_numbers_are_nine_digits_without_a_leading_zero_and_well_formed() -> None:
    for _ in range(2000):
        number = numbers.new_case_number()
        assert len(number) == 9 and number.isdigit() and number[0] != "0"
        assert numbers.is_well_formed(number)


def test_any_single_mistyped_digit_is_caught() -> None:
    number = numbers.new_case_number()
    for position in range(len(number)):
        for digit in "0123456789":
            if digit != number[position]:
                typo = number[:position] + digit + number[position + 1 :]
                assert not numbers.is_well_formed(typo), typo


def test_luhn_check_digit_matches_the_reference_example() -> None:
    assert numbers.luhn_check_digit("7992739871") == "3"


def test_malformed_input_is_not_a_case_number() -> None:
    assert not any(numbers.is_well_formed(s) for s in ["", "12345678", "1234567890", "12345678a"])
