"""The collector's Ed25519 signing key (it signs receipts) and verification of device signatures.

The private key lives in ``<data_dir>/keys/collector-ed25519.pem`` (PKCS#8 PEM, mode 0600, in a
0700 directory). It is created once, atomically: written and fsynced under a temporary name, then
hard-linked into place (which never replaces a key that appeared in the meantime), and the
directory is fsynced.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import uuid
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from protocol.durable import fsync_dir, make_dirs
from protocol.wire import sha256_hex

log = logging.getLogger(__name__)

KEY_FILE = "collector-ed25519.pem"


class KeyFileError(Exception):
    """The key file exists but cannot be used."""


class CollectorKey:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self.public_raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public_raw).decode()

    @property
    def fingerprint(self) -> str:
        """sha256 of the raw 32-byte public key, hex."""
        return sha256_hex(self.public_raw)

    @property
    def public_pem(self) -> str:
        return (
            self._private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    @classmethod
    def load_or_create(cls, directory: Path) -> CollectorKey:
        """Load the key, creating it first if there is none. Blocking."""
        make_dirs(directory, mode=0o700)
        path = directory / KEY_FILE
        if not path.exists():
            _create(path)
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning("keys.permissions_too_open path=%s mode=%o", path, mode)
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"{path}: not a usable PEM private key ({exc})") from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise KeyFileError(f"{path}: not an Ed25519 key")
        key = cls(private)
        log.info("keys.loaded path=%s fingerprint=%s", path, key.fingerprint)
        return key


def _create(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)
        log.info("keys.created path=%s", path)
    except FileExistsError:
        log.info("keys.created_concurrently path=%s", path)
    finally:
        temporary.unlink()
    fsync_dir(path.parent)


def verify_signature(public_key_b64: str, data: bytes, signature_b64: str) -> bool:
    """Whether ``signature_b64`` is a valid Ed25519 signature of ``data`` by that raw key."""
    try:
        raw_key = base64.b64decode(public_key_b64, validate=True)
        signature = base64.b64decode(signature_b64, validate=True)
        Ed25519PublicKey.from_public_bytes(raw_key).verify(signature, data)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True
