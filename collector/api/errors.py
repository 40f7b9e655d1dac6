"""API errors: one JSON shape, ``{"error": {"code": …, "message": …}}``, and the middlewares that
produce it and guard state-changing requests."""

from __future__ import annotations

import hmac
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Middleware
from pydantic import ValidationError

from protocol.validation import problems

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class ApiRefusals:
    """Requests the API refused, by status and code (``custos_api_refused_total``): bad input
    is logged and counted, as every message the collector refuses is."""

    counts: Counter[tuple[int, str]] = field(default_factory=Counter)


REFUSALS = web.AppKey("api_refusals", ApiRefusals)


def _refused(request: web.Request, status: int, code: str) -> None:
    refusals = request.app.get(REFUSALS)
    if refusals is not None:
        refusals.counts[status, code] += 1


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def validation_error(exc: ValidationError) -> ApiError:
    return ApiError(422, "invalid_request", describe_problems(exc, whole="(body)"))


def describe_problems(exc: ValidationError, *, whole: str) -> str:
    """``field.path: what is wrong; …`` (``whole`` names a problem with the value as a whole),
    without echoing the input back."""
    return "; ".join(problems(exc, whole=whole))


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        log.debug(
            "api.refused status=%d code=%s method=%s path=%s",
            exc.status, exc.code, request.method, request.path,
        )  # fmt: skip
        _refused(request, exc.status, exc.code)
        return error_response(exc.status, exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status >= 400 and request.path.startswith("/api/"):
            code = exc.reason.lower().replace(" ", "_")
            _refused(request, exc.status, code)
            return error_response(exc.status, code, exc.reason)
        raise
    except Exception:
        log.exception("api.unhandled method=%s path=%s", request.method, request.path)
        _refused(request, 500, "internal_error")
        return error_response(500, "internal_error", "internal error; see the collector log")


def auth_middleware(admin_token: str | None) -> Middleware:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if admin_token and request.method not in ("GET", "HEAD", "OPTIONS"):
            supplied = request.headers.get("Authorization", "")
            if not hmac.compare_digest(supplied.encode(), f"Bearer {admin_token}".encode()):
                _refused(request, 401, "unauthorized")
                return error_response(401, "unauthorized", "this request needs the admin token")
        return await handler(request)

    return check
