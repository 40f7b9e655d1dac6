"""The root of each domain's errors (alerts, faults, …), so that the parts that run a domain's
work (the database writer, the API) can tell what kind of failure it is without knowing the
domain."""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """A domain refused a request: not found, a conflict, a rule it enforces.

    ``retryable``: trying again later can succeed without anybody changing anything (a busy
    resource), as opposed to a permanent refusal (no such alert). ``changed_nothing``: raised
    before the work changed anything, so the writer rolls its job back without rebuilding any
    in-memory state, and logs no stack trace.
    """

    retryable: ClassVar[bool] = False
    changed_nothing: ClassVar[bool] = True

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status that says it (404, 409 …)."""
