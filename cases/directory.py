"""Import the directory of departments and categories from config/directory.toml into the
database.

Names and departments follow the file on every run; time limits only when a category is new.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from sqlalchemy.orm import Session

from cases.locales import LOCALES
from cases.models import Category, Department


def import_directory(session: Session, *, path: Path) -> tuple[int, int]:
    """Insert or update every department and category in the file; returns their counts."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    for code, entry in data["departments"].items():
        department = session.get(Department, code) or Department(code=code)
        department.names = {key: entry[key] for key in LOCALES if key in entry}
        session.add(department)
    session.flush()
    for code, entry in data["categories"].items():
        if entry["department"] not in data["departments"]:
            raise ValueError(f"category {code}: unknown department {entry['department']!r}")
        if ("hours" in entry) == ("working_days" in entry):
            raise ValueError(f"category {code}: give exactly one of hours or working_days")
        category = session.get(Category, code)
        if category is None:
            # Time limits are loaded once: afterwards admins own them in the console, and a
            # deploy (which runs init) must not quietly reset what they set.
            category = Category(code=code)
            category.time_limit_hours = entry.get("hours")
            category.time_limit_working_days = entry.get("working_days")
        category.department_code = entry["department"]
        category.names = {key: entry[key] for key in LOCALES if key in entry}
        session.add(category)
    session.flush()
    return len(data["departments"]), len(data["categories"])
