"""Serving the collector until it is told to stop, or until it cannot go on.

``custos-collector serve`` runs :func:`serve`: the aiohttp application on its port until SIGTERM
or SIGINT (exit code 0), or until a part it cannot work without fails and says so through the
app's :class:`Fatal` (exit code 1: a failed unit, which systemd restarts).
Either way the application shuts down cleanly first.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field

from aiohttp import web

log = logging.getLogger(__name__)


@dataclass
class Fatal:
    """The first failure the collector cannot carry on after (its database writer ended)."""

    reason: str | None = None
    _happened: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def fail(self, reason: str) -> None:
        """Call on the event loop."""
        if self.reason is None:
            self.reason = reason
            log.critical("collector.fatal reason=%s", reason)
            self._happened.set()

    async def wait(self) -> None:
        await self._happened.wait()


FATAL = web.AppKey("fatal", Fatal)


async def serve(
    app: web.Application, host: str, port: int, *, shutdown_timeout: float = 5.0
) -> int:
    """Serve ``app`` until a signal (0) or a fatal failure (1)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    fatal = app[FATAL]
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("collector.listening url=http://%s:%d", host, port)
        ends = [
            asyncio.create_task(stop.wait(), name="serve-signal"),
            asyncio.create_task(fatal.wait(), name="serve-fatal"),
        ]
        try:
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in ends:
                task.cancel()
    finally:
        await runner.cleanup()
    if fatal.reason is not None:
        log.critical("collector.exit code=1 reason=%s", fatal.reason)
        return 1
    return 0
