"""Request parameters of the REST API: one set of rules for every route module.

- A path id (alert, fault, maintenance window, hold, segment seq) is a positive integer that fits
  SQLite's INTEGER (1 … 2**63 − 1), in ASCII digits. Anything else names nothing: 404
  ``not_found``, the same answer as a well-formed id that is unknown.
- A query parameter given empty (``?site=``) is the same as one not given.
- An integer out of its range or not an integer, an enum filter value not among its choices, a
  time or date that does not parse: 400 ``bad_parameter``.
- A JSON body that is not JSON: 400 ``bad_json``; one that is not what the route takes: 422
  ``invalid_request`` (``errors.validation_error``).
- A ``DELETE`` needs no body: who and why come from the query string (a JSON body is accepted too).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from collector.api.errors import ApiError, validation_error

M = TypeVar("M", bound=BaseModel)

MAX_ID = 2**63 - 1
"""SQLite's largest INTEGER: a larger id cannot be stored, so it names nothing."""
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
"""Times outside these bounds are refused: nothing was recorded then, and date arithmetic on them
(a day before, a month after) would overflow."""

_ID = re.compile(r"[0-9]+")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DIGITS = 19
"""No integer in range has more significant digits; longer strings are refused unparsed."""
_TRUE, _FALSE = ("true", "1"), ("false", "0")


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def bad_parameter(message: str) -> ApiError:
    return ApiError(400, "bad_parameter", message)


def path_id(request: web.Request, name: str, what: str) -> int:
    """The id in the path segment ``name``; 404 when it cannot be the id of any ``what``."""
    raw = request.match_info[name]
    value = parse_integer(raw, 1, MAX_ID) if _ID.fullmatch(raw) else None
    if value is None:
        raise not_found(f"no {what} {raw!r}: ids are integers from 1 to {MAX_ID}")
    return value


def text_param(request: web.Request, name: str) -> str | None:
    return request.query.get(name) or None


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = text_param(request, name)
    if raw is None:
        return default
    value = parse_integer(raw, low, high)
    if value is None:
        raise bad_parameter(f"{name} must be an integer from {low} to {high}, not {raw!r}")
    return value


def parse_integer(raw: str, low: int, high: int) -> int | None:
    """``raw`` as an integer in ``[low, high]`` (ASCII digits, an optional sign), else ``None``."""
    if not _INTEGER.fullmatch(raw) or len(raw.lstrip("+-").lstrip("0")) > _DIGITS:
        return None
    value = int(raw)
    return value if low <= value <= high else None


def choice_param(request: web.Request, name: str, choices: Collection[str]) -> str | None:
    raw = text_param(request, name)
    if raw is not None and raw not in choices:
        raise bad_parameter(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


def bool_param(request: web.Request, name: str) -> bool | None:
    raw = text_param(request, name)
    if raw is None:
        return None
    if raw not in _TRUE + _FALSE:
        raise bad_parameter(f"{name} must be true or false, not {raw!r}")
    return raw in _TRUE


def time_param(request: web.Request, name: str) -> datetime | None:
    """An ISO 8601 time with its offset (``2026-01-05T08:00:00Z``), as UTC."""
    raw = text_param(request, name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise bad_parameter(f"{name} must be an ISO 8601 time, not {raw!r}") from None
    if value.tzinfo is None:
        raise bad_parameter(f"{name} must carry its UTC offset (e.g. {raw}Z)")
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 moved past the calendar's end by its offset
        raise _out_of_range(name) from None
    if not EARLIEST <= value < LATEST:
        raise _out_of_range(name)
    return value


def date_param(request: web.Request, name: str) -> date | None:
    """An ISO 8601 day (``2026-11-21``)."""
    raw = text_param(request, name)
    if raw is None:
        return None
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise bad_parameter(f"{name} must look like 2026-11-21, not {raw!r}") from None
    if not EARLIEST.date() <= value < LATEST.date():
        raise _out_of_range(name)
    return value


def _out_of_range(name: str) -> ApiError:
    return bad_parameter(f"{name} must be from {EARLIEST:%Y} up to {LATEST:%Y}")


async def json_body(request: web.Request, model: type[M]) -> M:
    """The body as ``model``: 400 when it is not JSON, 422 when it is not a valid ``model``."""
    try:
        raw: Any = await request.json()
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deep to parse
        raise ApiError(400, "bad_json", "the request body must be a JSON object") from None
    return _validated(model, raw)


async def delete_fields(request: web.Request, model: type[M]) -> M:
    """What a ``DELETE`` records (who, why): from the query string, or a JSON body if one came."""
    if request.body_exists:
        return await json_body(request, model)
    fields = {name: request.query[name] for name in model.model_fields if name in request.query}
    return _validated(model, fields)


def _validated(model: type[M], raw: Any) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None
