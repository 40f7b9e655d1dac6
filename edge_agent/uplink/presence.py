"""What the agent knows of the collector (``custos/v1/collector/status``), and what it does when
the collector comes back.

A *live* ``online`` of a collector not known to be online (it restarted, or another instance took
over) resends everything unacknowledged at once: what went out before it may have missed that
collector, and the resend timer may have grown long during the outage.

A status delivered *retained*, because the agent has just subscribed, is the collector as it was
before this connection: it was subscribed before anything of this connection went out, and the
connection's own resend already sends everything unacknowledged. Resending on it too would send
every backlog twice at every agent start and at every fleet-wide reconnect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from protocol.messages import CollectorStatus

log = logging.getLogger(__name__)


class CollectorPresence:
    def __init__(
        self, *, resend: Callable[[], None], uploads_back: Callable[[], None] | None = None
    ) -> None:
        self._resend = resend
        self._uploads_back = uploads_back
        self.status: CollectorStatus | None = None
        self.resends = 0
        """Resends caused by a live announcement."""

    def observe(self, status: CollectorStatus, retained: bool) -> None:
        previous = self.status
        self.status = status
        back = status.state == "online" and (
            previous is None or previous.state != "online" or previous.instance != status.instance
        )
        log.info(
            "uplink.collector state=%s instance=%s retained=%s back=%s",
            status.state,
            status.instance,
            retained,
            back,
        )
        if not back:
            return
        if not retained:
            self.resends += 1
            self._resend()
        if self._uploads_back is not None:
            self._uploads_back()  # an upload waiting out its backoff may go now, either way
