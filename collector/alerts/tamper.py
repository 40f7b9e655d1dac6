"""Evidence tampering as alerts: the hook the alert engine registers with the evidence side.

The evidence store calls the hook on the event loop for every finding (the same segment with other
content, a new signing key, a broken hash chain). Raising an alert needs the engine's database, so
the hook hands the work to the writer thread and delivers the transitions when it is done; the
upload that triggered the finding never waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from collector.alerts.delivery import AlertDelivery
from collector.alerts.engine import AlertEngine
from collector.alerts.rules import Condition
from collector.messages import CATALOGUE, Message
from collector.store.writer import DbWriter
from protocol.alerts import AlertMessage, Severity

log = logging.getLogger(__name__)

RULE = "evidence_tamper"

_SEVERITY = {
    # Content altered after it was recorded: nothing but tampering explains it.
    "seq_conflict": Severity.CRITICAL,
    "chain_broken": Severity.CRITICAL,
    # A reinstalled agent also signs with a new key: serious, but it may be maintenance.
    "key_changed": Severity.HIGH,
}

_TITLES = {
    "seq_conflict": "Recording altered: the same segment with different content",
    "chain_broken": "Recording altered: the hash chain is broken",
    "key_changed": "Recording key changed",
}


def tamper_condition(
    device_id: str, stream: str | None, seq: int | None, kind: str, detail: str
) -> Condition:
    """One alert per device and kind: a repeated finding updates it (and counts an occurrence)."""
    segment = "" if stream is None else f"{stream}#{seq}"
    where = device_id if stream is None else f"{device_id} {segment}"
    key = f"alert.{RULE}.{kind}"
    return Condition(
        key=f"{RULE}:{device_id}:{kind}",
        rule=RULE,
        severity=_SEVERITY.get(kind, Severity.HIGH),
        title=_TITLES.get(kind, f"Evidence tampering ({kind})"),
        detail=f"{where}: {detail}",
        latched=True,
        # The evidence side's finding is English text: the English rendering carries it as it is.
        message=Message(
            key if key in CATALOGUE else f"alert.{RULE}",
            {"segment": segment, "kind": kind, "note": detail},
        ),
    )


class TamperAlerts:
    """A ``TamperHook``: raise the alert in the writer thread, then deliver its transitions."""

    def __init__(self, engine: AlertEngine, writer: DbWriter, delivery: AlertDelivery) -> None:
        self._engine = engine
        self._writer = writer
        self._delivery = delivery

    def __call__(
        self, device_id: str, stream: str | None, seq: int | None, kind: str, detail: str
    ) -> None:
        condition = tamper_condition(device_id, stream, seq, kind, detail)

        def raise_alert(_db: sqlite3.Connection) -> list[AlertMessage]:
            out: list[AlertMessage] = []
            self._engine.raise_external(condition, device_id, out, one_off=True)
            return out

        self._writer.submit(raise_alert).add_done_callback(self._delivered)

    def _delivered(self, future: asyncio.Future[list[AlertMessage]]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            # The finding itself is logged and counted by the evidence side; only the alert is lost.
            log.error("alerts.tamper_failed error=%r", error)
            return
        self._delivery.deliver(future.result())
