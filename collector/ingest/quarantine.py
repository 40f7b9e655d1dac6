"""Rejected messages: a reason, a readable detail, a counter, and a row in ``quarantine``.

Never silently dropped: the payload (first 4 KiB) is kept for whoever investigates.
"""

from __future__ import annotations

import json
import logging

from pydantic import ValidationError

from collector.ingest.batch import Batch, Chunk, Rejection
from collector.metrics import IngestMetrics

log = logging.getLogger(__name__)

PAYLOAD_KEPT_BYTES = 4096


def quarantine(batch: Batch, chunk: Chunk, rejection: Rejection, metrics: IngestMetrics) -> None:
    metrics.rejected[rejection.reason] += 1
    log.warning(
        "ingest.rejected reason=%s topic=%s size=%d detail=%s",
        rejection.reason,
        rejection.topic[:200],
        len(rejection.payload),
        rejection.detail,
    )
    batch.quarantine_rows.append(
        (
            chunk.received_at,
            rejection.topic[:500],
            rejection.device_id,
            rejection.seq,
            rejection.reason,
            rejection.detail[:1000],
            len(rejection.payload),
            rejection.payload[:PAYLOAD_KEPT_BYTES],
        )
    )


def describe_validation_error(exc: ValidationError) -> tuple[str, str]:
    """A reason code (``malformed_json``, ``schema_version``, ``invalid``) and a one-line detail
    naming the field path."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        reason = "malformed_json"
    elif first["loc"][:1] == ("schema_version",):
        reason = "schema_version"
    else:
        reason = "invalid"
    where = ".".join(str(part) for part in first["loc"]) or "(message)"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return reason, f"{where}: {first['msg']}{more}"


def claimed_seq(payload: bytes, device_id: str) -> int | None:
    """The seq of an event that failed validation, if it is plainly this device's event."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("device_id") != device_id:
        return None
    seq = data.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and seq > 0 else None
