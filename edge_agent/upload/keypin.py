"""The collector's receipt key, pinned on the agent.

Configured (``upload.collector_key``) or, failing that, fetched from
``GET /api/v1/keys/collector`` on first use and kept in ``<data_dir>/collector_key.b64`` (mode
0600, written durably: temporary file → fsync → rename → fsync directory). From then on a receipt
signed by any other key is refused, so a collector that lost its key (or an impostor) can never
make the agent delete recordings. To accept a new collector key, an operator removes the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from edge_agent.upload.errors import KeyPinError
from edge_agent.upload.receipts import public_key_bytes
from protocol.durable import fsync_dir

log = logging.getLogger(__name__)

PIN_FILE = "collector_key.b64"


class CollectorKeyPin:
    def __init__(self, path: Path, configured: str | None = None) -> None:
        self.path = path
        self._configured = configured
        self._key: str | None = None

    @property
    def key(self) -> str | None:
        """The pinned key, once known."""
        return self._key

    async def get(self, fetch: Callable[[], Awaitable[str]]) -> str:
        """The key receipts must be signed with: configured, pinned, or fetched and pinned now."""
        if self._key is not None:
            return self._key
        if self._configured is not None:
            self._key = _checked(self._configured, "upload.collector_key")
            return self._key
        pinned = await asyncio.to_thread(self._read)
        if pinned is None:
            pinned = _checked(await fetch(), "the collector's published key")
            await asyncio.to_thread(self._write, pinned)
            log.warning("upload.collector_key_pinned path=%s key=%s", self.path, pinned)
        self._key = pinned
        return pinned

    def _read(self) -> str | None:
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyPinError(f"cannot read the pinned collector key {self.path}: {exc}") from exc
        return _checked(text, str(self.path))

    def _write(self, key: str) -> None:
        temporary = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, f"{key}\n".encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, self.path)
            fsync_dir(self.path.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise KeyPinError(f"cannot pin the collector key in {self.path}: {exc}") from exc


def _checked(key: str, source: str) -> str:
    try:
        public_key_bytes(key)
    except ValueError as exc:
        raise KeyPinError(f"{source} is not an Ed25519 public key: {exc}") from exc
    return key
