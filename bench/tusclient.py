"""A lean tus 1.0 client for the upload benchmark: the cheapest sender this machine has.

The segment is a pre-written file; its manifest is signed the way an agent signs it (the agent's
``ManifestSigner`` with a device key of its own). ``POST`` creates the upload, then one ``PATCH``
carries the whole file with ``os.sendfile`` (page cache to socket inside the kernel: no copy
through this process), so the client's CPU stays out of the way of the server being measured.
Blocking; raw HTTP/1.1 on a socket, the answers parsed by ``http.client``.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_agent.recording.keys import DeviceKey
from edge_agent.recording.manifest import ManifestSigner, SegmentFacts
from protocol.recording import SignedManifest, StreamKind

UPLOADS = "/api/v1/uploads"
SEGMENT_S = 10.0


class UploadError(RuntimeError):
    """The collector refused or broke off an upload."""


def write_segment(path: Path, size: int, block: int = 4 * 1024 * 1024) -> str:
    """A file of ``size`` bytes that does not compress (a random block, repeated), written out
    (so that no writeback of it competes with what is measured next); its sha256."""
    pattern = os.urandom(block)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            piece = pattern[: min(block, left)]
            out.write(piece)
            digest.update(piece)
            left -= len(piece)
        out.flush()
        os.fdatasync(out.fileno())
    return digest.hexdigest()


@dataclass
class SegmentStream:
    """Chained, signed manifests of one stream of one device, as its agent would make them."""

    device_id: str
    stream: str = "cam-room"
    seq: int = 0
    prev: str | None = None
    recording_id: uuid.UUID = field(default_factory=uuid.uuid4)
    boot_id: uuid.UUID = field(default_factory=uuid.uuid4)
    signer: ManifestSigner | None = None

    def __post_init__(self) -> None:
        if self.signer is None:
            self.signer = ManifestSigner(self.device_id, DeviceKey(Ed25519PrivateKey.generate()))

    def next(self, size: int, sha256: str, now: datetime | None = None) -> SignedManifest:
        assert self.signer is not None
        self.seq += 1
        start = (now or datetime.now(UTC)) - timedelta(seconds=SEGMENT_S)
        facts = SegmentFacts(
            stream=self.stream, kind=StreamKind.VIDEO, seq=self.seq,
            recording_id=self.recording_id, boot_id=self.boot_id, start_at=start,
            end_at=start + timedelta(seconds=SEGMENT_S), start_mono=self.seq * SEGMENT_S,
            end_mono=(self.seq + 1) * SEGMENT_S, clock_synced=True, codec="h264", size=size,
            sha256=sha256, partial=False, alarm=False, pre_roll_s=0.0,
        )  # fmt: skip
        signed = self.signer.sign(facts, self.prev)
        self.prev = signed.manifest_sha256
        return signed


@dataclass(frozen=True)
class UploadTiming:
    size: int
    seconds: float
    """From the first byte of the ``POST`` until the ``PATCH`` was answered with a receipt."""
    patch_s: float
    """From the first byte of the ``PATCH`` until its answer."""
    answer_wait_s: float
    """From the last body byte handed to the kernel until the answer: the server's tail
    (the rest of the stream, fdatasync, verification, rename, database, receipt)."""
    client_cpu_s: float
    """CPU time of the sending thread, user and system (``sendfile`` runs in the kernel)."""


def _request(sock: socket.socket, method: str, path: str, headers: dict[str, str]) -> None:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Tus-Resumable: 1.0.0"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


def _answer(sock: socket.socket) -> http.client.HTTPResponse:
    response = http.client.HTTPResponse(sock)
    response.begin()
    response.read()
    return response


def upload(
    host: str, port: int, path: Path, signed: SignedManifest, *, timeout_s: float = 120.0
) -> UploadTiming:
    """``POST`` then one ``PATCH`` with the whole file (``sendfile``); raises ``UploadError``
    unless the collector answers with a receipt."""
    size = path.stat().st_size
    metadata = "manifest " + base64.b64encode(signed.model_dump_json().encode()).decode()
    with socket.create_connection((host, port), timeout=timeout_s) as sock, path.open("rb") as src:
        started, cpu_started = time.monotonic(), time.thread_time()
        _request(sock, "POST", UPLOADS, {"Upload-Length": str(size), "Upload-Metadata": metadata,
                                         "Content-Length": "0"})  # fmt: skip
        created = _answer(sock)
        location = created.getheader("Location")
        if created.status != 201 or not location:
            raise UploadError(f"POST answered {created.status} {created.reason}")
        patch_started = time.monotonic()
        _request(sock, "PATCH", location, {
            "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(size),
        })  # fmt: skip
        if sock.sendfile(src) != size:  # os.sendfile, waiting while the socket is full
            raise UploadError(f"the file changed size while it was sent ({size} bytes)")
        body_sent = time.monotonic()
        answer = _answer(sock)
        finished, cpu = time.monotonic(), time.thread_time() - cpu_started
    if answer.status != 204 or not answer.getheader("Custos-Receipt"):
        raise UploadError(f"PATCH answered {answer.status} {answer.reason} without a receipt")
    return UploadTiming(
        size, finished - started, finished - patch_started, finished - body_sent, cpu
    )
