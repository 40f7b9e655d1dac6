"""The ``WHERE`` clause of the API's list queries, from optional filters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def where(filters: Iterable[tuple[str, Any]]) -> tuple[str, list[Any]]:
    """``WHERE a = ? AND b IN (?, ?)`` and its parameters from ``(column, value)`` pairs: a tuple
    is any of its values, ``None`` is no filter. Columns come from code, never from a request."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in filters:
        if value is None:
            continue
        if isinstance(value, tuple):
            clauses.append(f"{column} IN ({', '.join('?' * len(value))})")
            params.extend(value)
        else:
            clauses.append(f"{column} = ?")
            params.append(value)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params
