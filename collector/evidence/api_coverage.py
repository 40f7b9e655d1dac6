"""``/api/v1/rooms/{room}/coverage`` and ``/api/v1/keys/…``."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from collector.api.params import bad_parameter, not_found, text_param, time_param
from collector.evidence.component import service_of
from collector.evidence.coverage import room_coverage
from collector.evidence.errors import EvidenceError
from collector.evidence.queries import device_key

routes = web.RouteTableDef()

MAX_WINDOW = timedelta(days=31)


@routes.get("/api/v1/rooms/{room}/coverage")
async def coverage(request: web.Request) -> web.Response:
    """Occupied vs recorded vs uploaded time of a room over ``[since, until)`` (default: the
    last 24 hours; ``until`` is capped at now; at most 31 days)."""
    service = service_of(request)
    room = request.match_info["room"]
    now = service.clock.now()
    until = min(time_param(request, "until") or now, now)
    since = time_param(request, "since") or until - timedelta(days=1)
    if since > until or until - since > MAX_WINDOW:
        raise bad_parameter("since must be before until, at most 31 days")
    site = text_param(request, "site")
    if site is None:
        sites = await service.readers.run(
            lambda db: [
                row[0]
                for row in db.execute("SELECT DISTINCT site FROM devices WHERE room = ?", (room,))
            ]
        )
        if not sites:
            raise not_found(f"no device is enrolled in room {room!r}")
        if len(sites) > 1:
            raise EvidenceError(
                400, "site_required", f"room {room!r} is in sites {sites}: name one with site="
            )
        site = sites[0]
    chosen_site = site
    found = await service.readers.run(lambda db: room_coverage(db, chosen_site, room, since, until))
    if found is None:
        raise not_found(f"no device is enrolled in {site}/{room}")
    return web.json_response(found)


@routes.get("/api/v1/keys/collector")
async def collector_key(request: web.Request) -> web.Response:
    """The public key that verifies the collector's receipts."""
    key = service_of(request).key
    return web.json_response(
        {
            "algorithm": "ed25519",
            "public_key": key.public_b64,
            "fingerprint": key.fingerprint,
            "pem": key.public_pem,
        }
    )


@routes.get("/api/v1/keys/devices/{device_id}")
async def pinned_device_key(request: web.Request) -> web.Response:
    """The key pinned for a device (which verifies its manifests)."""
    service = service_of(request)
    device_id = request.match_info["device_id"]
    key = await service.readers.run(lambda db: device_key(db, device_id))
    if key is None:
        raise not_found(f"no key is pinned for {device_id!r}")
    return web.json_response({"device_id": device_id, "algorithm": "ed25519", **key})
