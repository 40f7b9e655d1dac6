"""Requests reach the collector's services only while they run.

The port opens at once; the collector's parts start behind it (the database and its migrations,
the registry file, the evidence store, the MQTT sessions). Until every part has started, and again
once stopping has begun, each request is answered ``503`` with ``Retry-After`` (``/healthz``
included, which says so in its body): a load balancer or an agent retries instead of meeting a
half-built service.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from aiohttp import web

from collector.api.errors import Handler, error_response

RETRY_AFTER_S = 2


class Phase(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"


@dataclass
class Readiness:
    phase: Phase = Phase.STARTING

    @property
    def running(self) -> bool:
        return self.phase is Phase.RUNNING


READINESS = web.AppKey("readiness", Readiness)


@web.middleware
async def readiness_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    phase = request.app[READINESS].phase
    if phase is Phase.RUNNING:
        return await handler(request)
    response = error_response(503, phase.value, f"the collector is {phase.value}; try again")
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response
