"""Tamper alarms raised by the evidence store, and the hook that hands them to the alert engine.

The evidence side finds things that only tampering (or a badly broken agent) explains: the same
segment number uploaded with different content, a device signing with a new key, a hash-chain link
that turns out wrong once the previous manifest arrives. Each finding is logged and counted here and
passed to every registered hook; the alert engine registers one (``app[TAMPER_HOOKS].add(...)``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

log = logging.getLogger(__name__)


class TamperKind(StrEnum):
    SEQ_CONFLICT = "seq_conflict"
    """The same (device, stream, seq) with a different manifest or content."""
    KEY_CHANGED = "key_changed"
    """A manifest or ``agent.started`` event with a key other than the device's pinned one."""
    CHAIN_BROKEN = "chain_broken"
    """A stored segment's ``prev_manifest_sha256`` does not match the previous manifest."""


class TamperHook(Protocol):
    """Called on the event loop for every tamper finding; must not block.

    ``stream`` and ``seq`` are ``None`` when the finding concerns the device as a whole (a key
    change announced in an ``agent.started`` event)."""

    def __call__(
        self, device_id: str, stream: str | None, seq: int | None, kind: str, detail: str
    ) -> None: ...


@dataclass(frozen=True)
class TamperFinding:
    device_id: str
    stream: str | None
    seq: int | None
    kind: TamperKind
    detail: str


class TamperHooks:
    """The registered hooks. Created with the app, so any component can register at any time."""

    def __init__(self, *hooks: TamperHook) -> None:
        self._hooks: list[TamperHook] = list(hooks)

    def add(self, hook: TamperHook) -> None:
        self._hooks.append(hook)

    def fire(self, finding: TamperFinding) -> None:
        log.warning(
            "evidence.tamper kind=%s device=%s stream=%s seq=%s detail=%s",
            finding.kind.value, finding.device_id, finding.stream, finding.seq, finding.detail,
        )  # fmt: skip
        for hook in self._hooks:
            try:
                hook(
                    finding.device_id,
                    finding.stream,
                    finding.seq,
                    finding.kind.value,
                    finding.detail,
                )
            except Exception:
                log.exception("evidence.tamper_hook_failed hook=%r", hook)
