"""The evidence side's one error: an API error (status, stable code, message) that may carry
headers (a tus ``Upload-Offset``, ``Tus-Version``)."""

from __future__ import annotations

from collections.abc import Mapping

from collector.api.errors import ApiError


class EvidenceError(ApiError):
    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status, code, message)
        self.headers = dict(headers or {})
