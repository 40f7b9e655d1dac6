"""The device's Ed25519 key, which signs every segment manifest.

Generated at the first start and never replaced automatically: the file (32 raw private bytes,
mode 0600) is written to a temporary name created with ``O_CREAT | O_EXCL``, fsynced, and then
hard-linked to its final name, which fails if a key is already there — so two starting processes
can never end up with different keys, and a crash never leaves a half-written key under the real
name.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from edge_agent.recording.errors import DeviceKeyError
from protocol.durable import fsync_dir
from protocol.recording import SignedManifest

log = logging.getLogger(__name__)

_KEY_BYTES = 32


class DeviceKey:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self.public_key_raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def public_key_b64(self) -> str:
        """What ``AgentStarted.public_key`` carries and every ``SignedManifest`` names."""
        return base64.b64encode(self.public_key_raw).decode()

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    @classmethod
    def load_or_create(cls, path: Path) -> DeviceKey:
        try:
            return cls._load(path)
        except FileNotFoundError:
            pass
        key = Ed25519PrivateKey.generate()
        if cls._create(path, key.private_bytes_raw()):
            log.info("device_key.created path=%s", path)
            return cls(key)
        return cls._load(path)  # another process created it first: use theirs

    @classmethod
    def _load(cls, path: Path) -> DeviceKey:
        try:
            with path.open("rb") as handle:
                mode = os.fstat(handle.fileno()).st_mode
                raw = handle.read(_KEY_BYTES + 1)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise DeviceKeyError(f"cannot read device key {path}: {exc}") from exc
        if len(raw) != _KEY_BYTES:
            raise DeviceKeyError(f"{path} is not a device key ({len(raw)} bytes)")
        if stat.S_IMODE(mode) & 0o077:
            log.warning("device_key.permissions path=%s mode=%o", path, stat.S_IMODE(mode))
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    @staticmethod
    def _create(path: Path, raw: bytes) -> bool:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, raw)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(temporary, path)
            except FileExistsError:
                return False
            fsync_dir(path.parent)
        except OSError as exc:
            raise DeviceKeyError(f"cannot create device key {path}: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        return True


def verify_manifest(signed: SignedManifest, public_key_b64: str | None = None) -> bool:
    """Whether ``signed`` carries a valid signature by ``public_key_b64`` (default: the key it
    names itself, which only proves integrity, not origin)."""
    key_b64 = public_key_b64 if public_key_b64 is not None else signed.public_key
    if key_b64 != signed.public_key:
        return False
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(key_b64))
        key.verify(base64.b64decode(signed.signature), signed.signed_bytes())
    except (InvalidSignature, ValueError):
        return False
    return True
