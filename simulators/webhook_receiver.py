"""A command-center webhook receiver: checks each request's HMAC signature and timestamp the way a
real receiver should, records what arrived, and can be told to fail or to hang."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from simulators.broker import free_port

MAX_SKEW_S = 300


def verify(secret: bytes, headers: dict[str, str], body: bytes, now: float) -> str | None:
    """``None`` when the request is authentic and fresh, else why not."""
    stamp = headers.get("X-Custos-Timestamp", "")
    if not stamp.isdigit():
        return "missing timestamp"
    if abs(now - int(stamp)) > MAX_SKEW_S:
        return "stale timestamp (replay?)"
    expected = "sha256=" + hmac.new(secret, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, headers.get("X-Custos-Signature", "")):
        return "bad signature"
    return None


@dataclass
class WebhookReceiver:
    secret: bytes
    port: int = field(default_factory=free_port)
    fail_next: int = 0
    """Answer this many requests with HTTP 500 first."""
    hang_next: int = 0
    """Hold this many requests without answering (the sender must time out)."""
    received: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    attempts: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        self._release.set()  # let hanging requests end, so shutdown does not wait for them
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.hang_next > 0:
            self.hang_next -= 1
            await self._release.wait()
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=500, text="receiver down")
        body = await request.read()
        problem = verify(self.secret, dict(request.headers), body, time.time())
        if problem is not None:
            self.rejected.append(problem)
            return web.Response(status=401, text=problem)
        self.received.append(json.loads(body))
        self.arrived.set()
        return web.Response(status=204)
