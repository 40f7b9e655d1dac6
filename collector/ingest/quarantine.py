"""Rejected messages: a reason, a readable detail, a counter, and a row in a quarantine table.

Never silently dropped. Junk goes to ``quarantine`` (first 4 KiB of the payload), which is capped.
What may be evidence of tampering (``TAMPER_REASONS``: a second, different event under a stored
seq, a payload naming another device) goes whole to ``tamper_quarantine``, which is never capped:
a flood of junk must not wash away the only copy of a real event a forged one displaced.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Final

from pydantic import ValidationError

from collector.ingest.batch import Batch, Chunk, Rejection
from collector.metrics import IngestMetrics
from protocol.validation import first_problem
from protocol.wire import MAX_INT, PayloadError, decode_json

log = logging.getLogger(__name__)

PAYLOAD_KEPT_BYTES = 4096
TAMPER_REASONS: Final = frozenset({"seq_conflict", "device_mismatch"})

INSERT_QUARANTINE = (
    "INSERT INTO quarantine (received_at, topic, device_id, seq, reason, detail, payload_size, "
    "payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_TAMPER = (
    "INSERT INTO tamper_quarantine (received_at, last_received_at, topic, device_id, seq, reason, "
    "detail, payload_size, payload, payload_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (topic, payload_sha256) DO UPDATE SET repeats = repeats + 1, "
    "last_received_at = excluded.received_at"
)
"""The same payload on the same topic again (a replay) is counted, not stored twice."""


def quarantine(batch: Batch, chunk: Chunk, rejection: Rejection, metrics: IngestMetrics) -> None:
    metrics.rejected[rejection.reason] += 1
    log.warning(
        "ingest.rejected reason=%s topic=%s size=%d detail=%s",
        rejection.reason,
        rejection.topic[:200],
        len(rejection.payload),
        rejection.detail,
    )
    topic, detail, payload = rejection.topic[:500], rejection.detail[:1000], rejection.payload
    if rejection.reason in TAMPER_REASONS:
        batch.tamper_rows.append(
            (
                chunk.received_at, chunk.received_at, topic, rejection.device_id, rejection.seq,
                rejection.reason, detail, len(payload), payload,
                hashlib.sha256(payload).hexdigest(),
            )
        )  # fmt: skip
        return
    batch.quarantine_rows.append(
        (
            chunk.received_at, topic, rejection.device_id, rejection.seq, rejection.reason,
            detail, len(payload), payload[:PAYLOAD_KEPT_BYTES],
        )
    )  # fmt: skip


def describe_validation_error(exc: ValidationError) -> tuple[str, str]:
    """A reason code (``malformed_json``, ``schema_version``, ``invalid``) and a one-line detail
    naming the field path."""
    kind, detail = first_problem(exc)
    if kind == "json_invalid":
        reason = "malformed_json"
    elif detail.startswith("schema_version:"):
        reason = "schema_version"
    else:
        reason = "invalid"
    return reason, detail


def claimed_seq(payload: bytes, device_id: str) -> int | None:
    """The seq of an event that failed validation, if it is plainly this device's event (and a
    seq that could be stored: 1 to 2^63 - 1)."""
    try:
        data = decode_json(payload)
    except PayloadError:
        return None
    if not isinstance(data, dict) or data.get("device_id") != device_id:
        return None
    seq = data.get("seq")
    valid = isinstance(seq, int) and not isinstance(seq, bool) and 0 < seq <= MAX_INT
    return seq if valid else None
