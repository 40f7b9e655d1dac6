"""Saying what is wrong with a value pydantic refused, the same way everywhere.

One problem is ``field.path: what is wrong`` (``devices[3].room: String should match …``); the
input is never echoed back (it may be large, binary or hostile).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError


def field_path(location: Sequence[int | str], *, whole: str = "(top level)") -> str:
    """``cameras[0].id``; ``whole`` for a problem with the value as a whole."""
    parts: list[str] = []
    for item in location:
        parts.append(f"[{item}]" if isinstance(item, int) else ("." if parts else "") + item)
    return "".join(parts) or whole


def problems(exc: ValidationError, *, whole: str = "(top level)", prefix: str = "") -> list[str]:
    """Every problem, one ``prefix + field.path: message`` each."""
    return [
        f"{prefix}{field_path(error['loc'], whole=whole)}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)
    ]


def first_problem(exc: ValidationError, *, whole: str = "(message)") -> tuple[str, str]:
    """(pydantic's error type, ``field.path: message (+N more)``) of the first problem: for a
    one-line log or rejection record."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return first["type"], f"{field_path(first['loc'], whole=whole)}: {first['msg']}{more}"
