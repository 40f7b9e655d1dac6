"""Query-string parameters of the evidence API, each error a clear 400."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from collector.evidence.errors import EvidenceError


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise EvidenceError(
            400, "bad_parameter", f"{name} must be an integer, not {raw!r}"
        ) from None
    if not low <= value <= high:
        raise EvidenceError(400, "bad_parameter", f"{name} must be between {low} and {high}")
    return value


def time_param(request: web.Request, name: str) -> datetime | None:
    """An ISO 8601 time with its offset (``2026-01-05T08:00:00Z``), as UTC."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise EvidenceError(
            400, "bad_parameter", f"{name} must be an ISO 8601 time, not {raw!r}"
        ) from None
    if value.tzinfo is None:
        raise EvidenceError(400, "bad_parameter", f"{name} must carry its UTC offset (e.g. {raw}Z)")
    return value.astimezone(UTC)
