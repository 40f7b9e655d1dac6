"""Domains that work inside the ingest transaction (alerts, faults): they see each committed
batch and each tick in the writer thread, so what they derive is committed with its cause."""

from __future__ import annotations

from typing import Protocol

from collector.ingest.batch import BatchResult


class BatchHook(Protocol):
    def load(self) -> None:
        """Rebuild in-memory state from the database (at start, after a failed commit)."""
        ...

    def after_batch(self, result: BatchResult) -> None:
        """React to what the batch committed; append what to deliver to ``result``."""
        ...

    def tick(self, result: BatchResult) -> None:
        """Time-based work (deadlines, escalations), about once per second."""
        ...
