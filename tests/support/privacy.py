"""Whether a page shows a caller's number, for the pages that must show counts only."""

from __future__ import annotations

import re


def shows_number(text: str, number: str) -> bool:
    """Whether `text` holds `number` (E.164, "+86..."): whole, without +86, or its last four
    digits on their own, as a masked number ends. Four digits inside a longer word are not a
    number shown: other tests' departments have random hex codes, and CI met one holding the
    last four digits of a test's caller."""
    national = number.removeprefix("+86")
    last_four = re.compile(rf"(?<![0-9A-Za-z_]){re.escape(number[-4:])}(?![0-9A-Za-z_])")
    return number in text or national in text or last_four.search(text) is not None
