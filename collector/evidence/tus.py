"""tus 1.0 at ``/api/v1/uploads``: core, creation, checksum (sha256) and termination.

Every response carries ``Tus-Resumable: 1.0.0`` (added when the response is prepared). Each
upload's ``Upload-Metadata`` must carry ``manifest``: base64 of the ``SignedManifest`` JSON, whose
``size`` is the ``Upload-Length``. The PATCH that completes an upload is answered only once the
segment is verified and durable, with its signed receipt in ``Custos-Receipt``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps

from aiohttp import web
from pydantic import ValidationError

from collector.api.errors import error_response
from collector.evidence.component import service_of
from collector.evidence.errors import EvidenceError
from collector.evidence.receipts import RECEIPT_HEADER, header_value
from collector.evidence.tusheaders import (
    CHECKSUM_ALGORITHMS,
    OFFSET_CONTENT_TYPE,
    TUS_EXTENSIONS,
    TUS_VERSION,
    HeaderError,
    parse_checksum,
    parse_metadata,
    parse_number,
)
from collector.evidence.uploads import PatchBody
from protocol.recording import SignedManifest
from protocol.validation import problems

BASE = "/api/v1/uploads"
MANIFEST_KEY = "manifest"

routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _tus(handler: Handler) -> Handler:
    """Check ``Tus-Resumable`` and turn evidence errors into JSON answers with their headers."""

    @wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            if request.headers.get("Tus-Resumable") != TUS_VERSION:
                raise EvidenceError(
                    412,
                    "unsupported_version",
                    f"this server speaks tus {TUS_VERSION}; send Tus-Resumable: {TUS_VERSION}",
                    {"Tus-Version": TUS_VERSION},
                )
            return await handler(request)
        except HeaderError as exc:
            service_of(request).metrics.upload_errors[exc.code] += 1
            return _answer(EvidenceError(400, exc.code, exc.message))
        except EvidenceError as exc:
            if exc.status == 412:
                service_of(request).metrics.upload_errors[exc.code] += 1
            return _answer(exc)

    return wrapped


def _answer(exc: EvidenceError) -> web.Response:
    response = error_response(exc.status, exc.code, exc.message)
    if exc.status == 460:
        response.set_status(460, "Checksum Mismatch")
    response.headers.update(exc.headers)
    return response


async def add_tus_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every answer under ``/api/v1/uploads`` names the protocol."""
    if request.path == BASE or request.path.startswith(f"{BASE}/"):
        response.headers["Tus-Resumable"] = TUS_VERSION


@routes.options(BASE)
@routes.options(BASE + "/{upload_id}")
async def options(request: web.Request) -> web.Response:
    service = service_of(request)
    return web.Response(
        status=204,
        headers={
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Checksum-Algorithm": CHECKSUM_ALGORITHMS,
            "Tus-Max-Size": str(service.config.max_upload_bytes),
        },
    )


@routes.post(BASE)
@_tus
async def create(request: web.Request) -> web.Response:
    service = service_of(request)
    if "Upload-Defer-Length" in request.headers:
        raise HeaderError("defer_length_unsupported", "Upload-Defer-Length is not supported")
    length = parse_number("Upload-Length", request.headers.get("Upload-Length"))
    if length > service.config.max_upload_bytes:
        service.metrics.upload_errors["oversize"] += 1
        raise EvidenceError(
            413,
            "oversize",
            f"Upload-Length {length} is over Tus-Max-Size {service.config.max_upload_bytes}",
        )
    raw_metadata = request.headers.get("Upload-Metadata", "")
    signed = _manifest(parse_metadata(raw_metadata))
    size = signed.parsed().size
    if size != length:
        raise HeaderError(
            "length_mismatch", f"Upload-Length is {length}, but the manifest's size is {size}"
        )
    created = await service.uploads.create(signed, raw_metadata)
    headers = {"Location": f"{BASE}/{created.upload_id}"}
    if created.receipt is not None:
        headers[RECEIPT_HEADER] = header_value(created.receipt)
    return web.Response(status=201, headers=headers)


def _manifest(metadata: dict[str, bytes]) -> SignedManifest:
    encoded = metadata.get(MANIFEST_KEY)
    if not encoded:
        raise HeaderError(
            "missing_manifest",
            f"Upload-Metadata must carry {MANIFEST_KEY!r}: base64 of the signed manifest JSON",
        )
    try:
        signed = SignedManifest.model_validate_json(encoded)
        signed.parsed()
    except ValidationError as exc:
        listed = "; ".join(problems(exc, whole="(manifest)"))
        raise HeaderError("bad_manifest", f"the signed manifest is not valid: {listed}") from None
    return signed


@routes.head(BASE + "/{upload_id}")
@_tus
async def head(request: web.Request) -> web.Response:
    status = await service_of(request).uploads.status(request.match_info["upload_id"])
    headers = {
        "Upload-Offset": str(status.offset),
        "Upload-Length": str(status.upload.length),
        "Cache-Control": "no-store",
    }
    if status.upload.metadata:
        headers["Upload-Metadata"] = status.upload.metadata
    if status.receipt is not None:
        headers[RECEIPT_HEADER] = header_value(status.receipt)
    return web.Response(status=200, headers=headers)


@routes.patch(BASE + "/{upload_id}")
@_tus
async def patch(request: web.Request) -> web.Response:
    service = service_of(request)
    if request.content_type != OFFSET_CONTENT_TYPE:
        service.metrics.upload_errors["bad_content_type"] += 1
        raise EvidenceError(415, "bad_content_type", f"Content-Type must be {OFFSET_CONTENT_TYPE}")
    offset = parse_number("Upload-Offset", request.headers.get("Upload-Offset"))
    checksum = parse_checksum(request.headers.get("Upload-Checksum"))
    body = PatchBody(request.content, request.content_length, checksum)
    status = await service.uploads.append(request.match_info["upload_id"], offset, body)
    headers = {"Upload-Offset": str(status.offset)}
    if status.receipt is not None:
        headers[RECEIPT_HEADER] = header_value(status.receipt)
    return web.Response(status=204, headers=headers)


@routes.delete(BASE + "/{upload_id}")
@_tus
async def terminate(request: web.Request) -> web.Response:
    await service_of(request).uploads.terminate(request.match_info["upload_id"])
    return web.Response(status=204)


@routes.get(BASE + "/{upload_id}/receipt")
async def receipt(request: web.Request) -> web.Response:
    try:
        status = await service_of(request).uploads.status(request.match_info["upload_id"])
    except EvidenceError as exc:
        return _answer(exc)
    if status.receipt is None:
        return _answer(
            EvidenceError(
                409,
                "upload_incomplete",
                f"the upload holds {status.offset} of {status.upload.length} bytes; no receipt yet",
            )
        )
    return receipt_response(status.receipt)


def receipt_response(signed_receipt_json: str) -> web.Response:
    """The receipt as JSON (``SignedReceipt``) and in the ``Custos-Receipt`` header."""
    return web.Response(
        text=signed_receipt_json,
        content_type="application/json",
        headers={RECEIPT_HEADER: header_value(signed_receipt_json)},
    )
