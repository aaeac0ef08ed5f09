"""Routing fixtures: the shipped corpus trained once per session; no app, database or network."""

from __future__ import annotations

import pytest

from routing.classifier import Classifier, train
from routing.corpus import load_category_examples, load_urgency_examples
from routing.deadlines import WorkingCalendar, load_calendar
from routing.decide import Route, routes_from_file
from routing.emergency import load_emergency_numbers
from routing.places import Gazetteer, load_gazetteer


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    """The category and urgency models trained on the shipped corpus (a few seconds)."""
    return train(load_category_examples(), urgency_examples=load_urgency_examples())


@pytest.fixture(scope="session")
def directory() -> dict[str, Route]:
    """The default directory from config/directory.toml."""
    return routes_from_file()


@pytest.fixture(scope="session")
def gazetteer() -> Gazetteer:
    """The gazetteer from config/places.toml."""
    return load_gazetteer()


@pytest.fixture(scope="session")
def calendar() -> WorkingCalendar:
    """The working-day calendar from config/holidays.toml."""
    return load_calendar()


@pytest.fixture(scope="session")
def emergency_numbers() -> dict[str, str]:
    """The emergency numbers from config/ivr.toml."""
    return load_emergency_numbers()
