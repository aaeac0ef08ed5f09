"""What both APIs (the department's and Open311) answer for a path they do not serve: the
methods another endpoint takes there (a 405 names them), else nothing (a 404)."""

from __future__ import annotations

from flask import current_app, request
from werkzeug.exceptions import HTTPException

CATCH_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def methods_elsewhere() -> list[str]:
    """The methods another endpoint takes at this request's path."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    methods = []
    for method in CATCH_ALL_METHODS:
        try:
            endpoint, _ = adapter.match(method=method)
        except HTTPException:
            continue
        if endpoint != request.endpoint:
            methods.append(method)
    return methods
