"""Receipts: the collector's signed statement that it holds a segment, verified and durable."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from pydantic import ValidationError

from collector.evidence.keys import CollectorKey, verify_signature
from protocol.recording import Receipt, SegmentManifest, SignedReceipt

RECEIPT_HEADER = "Custos-Receipt"
"""Response header carrying ``base64(SignedReceipt JSON)``."""


def issue_receipt(
    key: CollectorKey,
    manifest: SegmentManifest,
    manifest_sha256: str,
    stored_at: datetime,
    location: str,
) -> SignedReceipt:
    receipt = Receipt(
        device_id=manifest.device_id,
        stream=manifest.stream,
        seq=manifest.seq,
        size=manifest.size,
        sha256=manifest.sha256,
        manifest_sha256=manifest_sha256,
        stored_at=stored_at,
        location=location,
    )
    body = receipt.model_dump_json()
    return SignedReceipt(
        receipt=body,
        signature=base64.b64encode(key.sign(body.encode())).decode(),
        public_key=key.public_b64,
    )


def header_value(signed_receipt_json: str) -> str:
    return base64.b64encode(signed_receipt_json.encode()).decode()


def read_header(value: str) -> SignedReceipt:
    """Decode a ``Custos-Receipt`` header (what an uploader does). Raises ``ValueError``."""
    try:
        return SignedReceipt.model_validate_json(base64.b64decode(value, validate=True))
    except (binascii.Error, ValidationError) as exc:
        raise ValueError(f"not a Custos-Receipt header: {exc}") from exc


def receipt_is_valid(signed: SignedReceipt, collector_public_key_b64: str) -> bool:
    """Whether the receipt is signed by the collector key with that (base64, raw) public key."""
    return signed.public_key == collector_public_key_b64 and verify_signature(
        collector_public_key_b64, signed.signed_bytes(), signed.signature
    )
