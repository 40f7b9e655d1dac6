"""The collector's receipts, checked on the agent: only a valid receipt lets a segment become
``receipted`` (and, later, deletable).

A receipt is valid when it is signed (Ed25519) by the pinned collector key and names exactly the
segment that was uploaded: device, stream, seq, size, sha256 and the manifest's own sha256. The
agent has its own check (it never imports the collector's code).
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from edge_agent.upload.errors import ReceiptRejectedError
from protocol.recording import Receipt, SignedManifest, SignedReceipt

KEY_BYTES = 32


def public_key_bytes(public_key_b64: str) -> bytes:
    """The raw 32 bytes of a base64 Ed25519 public key; ``ValueError`` if it is not one."""
    try:
        raw = base64.b64decode(public_key_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64: {exc}") from exc
    if len(raw) != KEY_BYTES:
        raise ValueError(f"an Ed25519 public key has {KEY_BYTES} bytes, not {len(raw)}")
    return raw


def verify_receipt(
    signed: SignedReceipt, *, collector_key_b64: str, manifest: SignedManifest
) -> Receipt:
    """The receipt, if it is the collector's (pinned key) and is about ``manifest``'s segment.
    Raises :class:`ReceiptRejectedError` otherwise."""
    if signed.public_key != collector_key_b64:
        raise ReceiptRejectedError(
            f"receipt signed by {signed.public_key}, not the pinned collector key", "foreign_key"
        )
    try:
        key = Ed25519PublicKey.from_public_bytes(public_key_bytes(collector_key_b64))
        key.verify(base64.b64decode(signed.signature, validate=True), signed.signed_bytes())
    except (InvalidSignature, ValueError, binascii.Error) as exc:
        raise ReceiptRejectedError(
            "the receipt's signature does not verify", "bad_signature"
        ) from exc
    try:
        receipt = signed.parsed()
    except ValidationError as exc:
        raise ReceiptRejectedError(
            f"the signed receipt is not readable: {exc}", "malformed"
        ) from exc
    facts = manifest.parsed()
    expected = (
        facts.device_id,
        facts.stream,
        facts.seq,
        facts.size,
        facts.sha256,
        manifest.manifest_sha256,
    )
    named = (
        receipt.device_id,
        receipt.stream,
        receipt.seq,
        receipt.size,
        receipt.sha256,
        receipt.manifest_sha256,
    )
    if named != expected:
        raise ReceiptRejectedError(
            f"the receipt names {named[:5]}, not the uploaded segment {expected[:5]}", "mismatch"
        )
    return receipt
