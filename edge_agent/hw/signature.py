"""What makes one synthetic stream's content its own.

Two simulated cameras or microphones that produced the same bytes would hide a recording filed
under the wrong stream or the wrong device; each synthetic source derives its picture or tone from
its identity (``device/component``) instead, stably across runs.
"""

from __future__ import annotations

import hashlib


def stream_signature(identity: str) -> int:
    """A stable 64-bit number for ``identity`` (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(identity.encode(), digest_size=8).digest(), "big")
