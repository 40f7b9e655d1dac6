"""Alerts about the collector itself: the database's disk is full.

The database writer calls this ``StorageWatch`` in its own thread, in a transaction of its own
(committed in the room its space reserve freed), when commits start failing for lack of space and
when there is room again. Nothing is stored while the disk is full, panics included, so the alert
is critical and latched: somebody must see it and acknowledge it, even once it is over.
"""

from __future__ import annotations

import logging

from collector.alerts.engine import AlertEngine
from collector.alerts.rules import Condition, said
from collector.ingest.batch import BatchResult
from protocol.alerts import Severity

log = logging.getLogger(__name__)

STORAGE_RULE = "collector_storage"
STORAGE_KEY = f"{STORAGE_RULE}:database"


def storage_condition(detail: str) -> Condition:
    return said(
        STORAGE_KEY,
        STORAGE_RULE,
        Severity.CRITICAL,
        "Collector storage full: nothing can be stored",
        where="",
        latched=True,
        message="alert.collector_storage",
        note=detail,
    )


class StorageAlerts:
    """A ``StorageWatch`` that raises and ends one alert of no device."""

    def __init__(self, engine: AlertEngine) -> None:
        self._engine = engine

    def storage_failing(self, detail: str, result: BatchResult) -> None:
        self._engine.raise_external(storage_condition(detail[:300]), None, result.alerts)

    def storage_recovered(self, result: BatchResult) -> None:
        """Also called at every start: an alert left active by the last run ends."""
        if any(a.key == STORAGE_KEY and a.condition_active for a in self._engine.open_alerts()):
            self._engine.end_external(STORAGE_KEY, result.alerts)
