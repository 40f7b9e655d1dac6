"""``/api/v1/segments``: what was recorded and uploaded, per-stream seq gaps, each segment with
its manifest, verification and receipt, and its bytes (with HTTP range requests)."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from aiohttp import web

from collector.api.params import (
    choice_param,
    int_param,
    not_found,
    path_id,
    text_param,
    time_param,
)
from collector.evidence.component import service_of
from collector.evidence.errors import EvidenceError
from collector.evidence.playback import PLAYABLE_AS_STORED, NotPlayableError
from collector.evidence.queries import (
    SegmentFilter,
    list_segments,
    segment_detail,
    stored_content,
    stream_summaries,
)
from collector.evidence.tus import receipt_response
from collector.ingest.queries import device_exists

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

SEGMENT = "/api/v1/segments/{device_id}/{stream}/{seq}"
SEGMENT_PATH = "/api/v1/segments/{}/{}/{}"
STATES = ("announced", "uploading", "uploaded", "purged")
CONTENT_TYPES = {
    ("mpegts", "video"): "video/mp2t",
    ("mpegts", "audio"): "audio/mp2t",
    ("fmp4", "video"): "video/mp4",
    ("fmp4", "audio"): "audio/mp4",
}
EXTENSIONS = {"mpegts": "ts", "fmp4": "mp4"}


def _key(request: web.Request) -> tuple[str, str, int]:
    info = request.match_info
    return info["device_id"], info["stream"], path_id(request, "seq", "segment")


@routes.get("/api/v1/segments")
async def list_all(request: web.Request) -> web.Response:
    service = service_of(request)
    state = choice_param(request, "state", STATES)
    since, until = time_param(request, "since"), time_param(request, "until")
    where = SegmentFilter(
        device_id=text_param(request, "device"),
        stream=text_param(request, "stream"),
        site=text_param(request, "site"),
        room=text_param(request, "room"),
        since_ts=since.timestamp() if since else None,
        until_ts=until.timestamp() if until else None,
        state=state,
        limit=int_param(request, "limit", 500, 1, 5000),
        offset=int_param(request, "offset", 0, 0, 10**9),
    )
    segments = await service.readers.run(lambda db: list_segments(db, where))
    return web.json_response({"segments": segments, "count": len(segments)})


@routes.get("/api/v1/segments/{device_id}")
async def device_streams(request: web.Request) -> web.Response:
    service = service_of(request)
    device_id = request.match_info["device_id"]
    limit = int_param(request, "limit", 100, 1, 10000)

    def query(db: sqlite3.Connection) -> list[dict[str, Any]] | None:
        streams = stream_summaries(db, device_id, limit=limit)
        return streams if streams or device_exists(db, device_id) else None

    streams = await service.readers.run(query)
    if streams is None:
        raise not_found(f"device {device_id!r} is not enrolled and has no segments")
    return web.json_response({"device_id": device_id, "streams": streams})


@routes.get("/api/v1/segments/{device_id}/{stream}")
async def one_stream(request: web.Request) -> web.Response:
    service = service_of(request)
    device_id, stream = request.match_info["device_id"], request.match_info["stream"]
    limit = int_param(request, "limit", 100, 1, 10000)
    streams = await service.readers.run(
        lambda db: stream_summaries(db, device_id, stream, limit=limit)
    )
    if not streams:
        raise not_found(f"no segment of {device_id}/{stream} is known")
    return web.json_response({"device_id": device_id, **streams[0]})


@routes.get(SEGMENT)
async def detail(request: web.Request) -> web.Response:
    service = service_of(request)
    device_id, stream, seq = _key(request)
    found = await service.readers.run(lambda db: segment_detail(db, device_id, stream, seq))
    if found is None:
        raise not_found(f"no segment {device_id}/{stream}/{seq}")
    if found["upload_state"] == "uploaded":
        found["content_url"] = f"{request.path}/content"
        found["play_url"] = f"{request.path}/play"
    return web.json_response(found)


@routes.get(SEGMENT + "/receipt")
async def receipt(request: web.Request) -> web.Response:
    service = service_of(request)
    device_id, stream, seq = _key(request)
    row = await service.readers.run(lambda db: stored_content(db, device_id, stream, seq))
    if row is None:
        raise not_found(f"{device_id}/{stream}/{seq} is not stored")
    return receipt_response(row["receipt"])


@routes.get(SEGMENT + "/content")
async def content(request: web.Request) -> web.StreamResponse:
    """The bytes, with ``Range`` support (206 + ``Content-Range``) so a player can seek."""
    service = service_of(request)
    device_id, stream, seq = _key(request)
    row = await service.readers.run(lambda db: stored_content(db, device_id, stream, seq))
    if row is None:
        raise not_found(f"{device_id}/{stream}/{seq} is not stored")
    if row["purged_at"] is not None:
        raise EvidenceError(
            410, "purged", f"{device_id}/{stream}/{seq} was purged at {row['purged_at']}"
        )
    path = service.store.path(row["sha256"])
    filename = f"{device_id}_{stream}_{seq}.{EXTENSIONS.get(row['container'], 'bin')}"
    log.info(
        "evidence.content_served device=%s stream=%s seq=%d range=%s remote=%s",
        device_id, stream, seq, request.headers.get("Range", "-"), request.remote,
    )  # fmt: skip
    return web.FileResponse(
        path,
        headers={
            "Content-Type": CONTENT_TYPES.get(
                (row["container"], row["kind"]), "application/octet-stream"
            ),
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "private, max-age=3600",
            "Custos-Sha256": row["sha256"],
        },
    )


@routes.get(SEGMENT + "/play")
async def play(request: web.Request) -> web.StreamResponse:
    """A copy a browser plays (MP4, the same packets remuxed, see ``playback.py``), with
    ``Range`` support; ``Custos-Derived-From`` names the stored original's sha256."""
    service = service_of(request)
    device_id, stream, seq = _key(request)
    row = await service.readers.run(lambda db: stored_content(db, device_id, stream, seq))
    if row is None:
        raise not_found(f"{device_id}/{stream}/{seq} is not stored")
    if row["purged_at"] is not None:
        raise EvidenceError(
            410, "purged", f"{device_id}/{stream}/{seq} was purged at {row['purged_at']}"
        )
    sha256 = row["sha256"]
    if row["container"] in PLAYABLE_AS_STORED:
        raise web.HTTPFound(f"{SEGMENT_PATH.format(device_id, stream, seq)}/content")
    try:
        path = await service.playback.playable(sha256)
    except NotPlayableError as exc:
        service.metrics.playback_failures += 1
        log.warning("evidence.playback_failed sha256=%s error=%s", sha256, exc)
        raise EvidenceError(
            422, "not_playable", f"{device_id}/{stream}/{seq} cannot be remuxed for playback: {exc}"
        ) from None
    return web.FileResponse(
        path,
        headers={
            "Content-Type": f"{row['kind']}/mp4",
            "Content-Disposition": f'inline; filename="{device_id}_{stream}_{seq}.mp4"',
            "Cache-Control": "private, max-age=3600",
            "Custos-Derived-From": f"sha256={sha256}",
        },
    )
