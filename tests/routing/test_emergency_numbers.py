"""The emergency numbers: one loader reads config/ivr.toml's table; a bad one is named by line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr.prompts import load_options
from routing.classifier import Classifier
from routing.deadlines import WorkingCalendar
from routing.decide import Route, decide
from routing.emergency import DEFAULT_IVR_PATH, EmergencyNumbersError, load_emergency_numbers
from routing.places import Gazetteer

SETTINGS = """\
# IVR settings.
menu_timeout = 6

[emergency_numbers]
fire = "119"     # fire, gas leaks
medical = "120"
police = "110"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ivr.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_table_loads_whatever_else_the_file_holds(tmp_path: Path) -> None:
    numbers = load_emergency_numbers(write(tmp_path, SETTINGS))
    assert numbers == {"fire": "119", "medical": "120", "police": "110"}


def test_the_call_flow_reads_the_same_numbers() -> None:
    assert load_options(DEFAULT_IVR_PATH).emergency_numbers == load_emergency_numbers()


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (SETTINGS.replace('police = "110"', 'police = "110"\ncoast_guard = "95110"'), 8, "kind"),
        (SETTINGS.replace('medical = "120"', "medical = 120"), 6, "medical = 120 is not"),
        (SETTINGS.replace('police = "110"', 'police = "11O"'), 7, "'11O' is not a string of"),
        (SETTINGS.replace('fire = "119"', 'fire = ""'), 5, "fire = '' is not"),
        (SETTINGS.replace('medical = "120"\n', ""), 4, "lacks medical"),
        (SETTINGS.replace("[emergency_numbers]", "emergency_numbers = 3\n[x]"), 4, "needs an"),
        (
            'menu_timeout = 6\nemergency_numbers = { fire = "119", police = "110" }\n',
            2,
            "lacks medical",
        ),
    ],
)
def test_a_bad_table_is_named_with_the_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(EmergencyNumbersError) as raised:
        load_emergency_numbers(path)
    assert str(raised.value).startswith(f"{path}:{line}: ")
    assert message in str(raised.value)


def test_a_missing_table_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "menu_timeout = 6\n")
    with pytest.raises(EmergencyNumbersError, match=r"needs an \[emergency_numbers\] table"):
        load_emergency_numbers(path)


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, SETTINGS.replace('police = "110"', "police = 110 110"))
    with pytest.raises(EmergencyNumbersError) as raised:
        load_emergency_numbers(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert "line 7" in str(raised.value)


def test_a_decision_names_the_number_it_is_given(
    classifier: Classifier,
    directory: dict[str, Route],
    gazetteer: Gazetteer,
    calendar: WorkingCalendar,
) -> None:
    decision = decide(
        "快来人 我们楼三楼着火了 烟特别大",
        classifier=classifier,
        directory=directory,
        gazetteer=gazetteer,
        calendar=calendar,
        emergency_numbers={"fire": "0119", "medical": "0120", "police": "0110"},
        opened_at=datetime(2026, 3, 4, 2, 0, tzinfo=UTC),
    )
    assert decision.explanation["emergency_rule"]["number"] == "0119"
