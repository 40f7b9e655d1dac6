"""What can go wrong with an upload, as the uploader acts on it (translated from HTTP answers and
connection errors at the tus client's seam)."""

from __future__ import annotations


class UploadError(Exception):
    """Base of every upload failure."""


class CollectorUnavailableError(UploadError):
    """The collector cannot take uploads now (unreachable, timing out, 5xx, disk full, device not
    enrolled yet, token refused): retry the same segment after a backoff."""


class UploadGoneError(UploadError):
    """The upload no longer exists at the collector (404: expired or terminated; 410: it failed
    verification): forget its URL and create a new one."""


class OffsetMismatchError(UploadError):
    """The collector holds a different offset than we sent (409); ``offset`` is its own."""

    def __init__(self, offset: int | None) -> None:
        super().__init__(f"the collector holds offset {offset}")
        self.offset = offset


class ChecksumMismatchError(UploadError):
    """The PATCH body arrived with another sha256 than ours (460): the collector discarded it;
    send it again."""


class UploadCorruptedError(UploadError):
    """The completed upload does not match the manifest (422 ``sha256_mismatch`` /
    ``size_mismatch``): check the spool file, terminate the upload, create a new one."""


class UploadRefusedError(UploadError):
    """The collector will not take this segment as it is (bad signature, chain mismatch, conflict
    with another manifest of the same seq, too large…): no retry will change that soon."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


class ReceiptRejectedError(UploadError):
    """A receipt that does not prove what it must: signed by another key than the pinned one,
    a bad signature, unreadable, or about another segment (``reason``: ``foreign_key``,
    ``bad_signature``, ``malformed``, ``mismatch``)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class KeyPinError(UploadError):
    """The pinned collector key cannot be read or written, or is not a key: a person must look
    (it is never replaced automatically)."""


class SpoolFileChangedError(UploadError):
    """The spooled file is not the size its manifest says: re-hash it (it is probably corrupt)."""
