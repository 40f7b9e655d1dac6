"""Everything the agent receives over MQTT (the collector's acks, its presence, commands), parsed
and handed to the part that acts on it.

Every incoming message is untrusted, and some are retained: a message that made the handler raise
would stop the agent again after every restart for as long as the broker keeps it. So ``handle``
never raises. Whatever cannot be read or applied is counted by reason (the heartbeat's
``rejected_inbound``), logged as ``uplink.inbound_rejected``, and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from pydantic import ValidationError

from edge_agent.uplink.link import LinkMessage
from protocol.messages import Ack, CollectorStatus, WireModel
from protocol.topics import COLLECTOR_STATUS_TOPIC, TopicKind, device_topic
from protocol.validation import first_problem
from protocol.wire import PayloadError, check_payload

log = logging.getLogger(__name__)

M = TypeVar("M", bound=WireModel)

MAX_DETAIL_CHARS = 200


class RejectReason(StrEnum):
    OVERSIZED = "oversized"
    TOO_DEEP = "too_deep"
    MALFORMED_JSON = "malformed_json"
    INVALID = "invalid"
    """Well-formed JSON that is not the message its topic carries."""
    FOREIGN_DEVICE = "foreign_device"
    """An ack for another device."""
    UNSUPPORTED_COMMAND = "unsupported_command"
    UNEXPECTED_TOPIC = "unexpected_topic"
    UNREADABLE_TOPIC = "unreadable_topic"
    """A topic that is not UTF-8 (the link could not even tell where the message came from)."""
    HANDLER_ERROR = "handler_error"
    """A readable message whose handler failed: a bug or a local fault, logged with its trace."""


class InboundError(Exception):
    """A received message that cannot be used, with a stable reason."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class InboundRejections:
    """Counts of refused incoming messages by reason, since the agent started."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def reject(self, reason: RejectReason, topic: str, detail: str) -> None:
        self._counts[reason.value] = self._counts.get(reason.value, 0) + 1
        log.warning(
            "uplink.inbound_rejected reason=%s topic=%s count=%d detail=%s",
            reason.value,
            _loggable(topic),
            self._counts[reason.value],
            _loggable(detail),
        )

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    @property
    def total(self) -> int:
        return sum(self._counts.values())


def _loggable(text: str) -> str:
    """Short, on one line, control characters escaped: the text came from the network."""
    return repr(text[:MAX_DETAIL_CHARS])[1:-1]


def parse(model: type[M], payload: bytes) -> M:
    """One message of ``model`` from ``payload``, or ``InboundError`` (never another
    exception)."""
    try:
        check_payload(payload)  # size and nesting, before the parser sees it
        return model.model_validate_json(payload)
    except PayloadError as exc:
        raise InboundError(_payload_reason(exc.reason), str(exc)) from None
    except ValidationError as exc:
        kind, detail = first_problem(exc)
        reason = RejectReason.MALFORMED_JSON if kind == "json_invalid" else RejectReason.INVALID
        raise InboundError(reason, detail) from None
    except Exception as exc:  # a validator that raised something else: still the message's fault
        raise InboundError(RejectReason.INVALID, f"{type(exc).__name__}: {exc}") from None


def _payload_reason(code: str) -> RejectReason:
    try:
        return RejectReason(code)
    except ValueError:
        return RejectReason.INVALID


class Inbound:
    """Routes each message by topic to its handler; ``handle`` never raises."""

    def __init__(
        self,
        device_id: str,
        *,
        on_ack: Callable[[Ack], None],
        on_collector_status: Callable[[CollectorStatus, bool], None],
        rejections: InboundRejections | None = None,
    ) -> None:
        """``on_collector_status`` gets the status and whether it was delivered retained."""
        self._device_id = device_id
        self._on_ack = on_ack
        self._on_collector_status = on_collector_status
        self.rejections = rejections or InboundRejections()
        self.ack_topic = device_topic(device_id, TopicKind.ACK)
        self.cmd_topic = device_topic(device_id, TopicKind.CMD)
        self.handled = 0
        """Messages accepted and acted on."""

    def handle(self, message: LinkMessage) -> None:
        try:
            self._route(message)
        except InboundError as exc:
            self.rejections.reject(exc.reason, message.topic, exc.detail)
        except Exception as exc:  # the one place a bad message stops: never the agent's loop
            log.exception("uplink.inbound_failed topic=%s", message.topic)
            self.rejections.reject(
                RejectReason.HANDLER_ERROR, message.topic, f"{type(exc).__name__}: {exc}"
            )
        else:
            self.handled += 1

    def unreadable(self, detail: str) -> None:
        """The link received something it could not even turn into a message."""
        self.rejections.reject(RejectReason.UNREADABLE_TOPIC, "?", detail)

    def _route(self, message: LinkMessage) -> None:
        if message.topic == self.ack_topic:
            ack = parse(Ack, message.payload)
            if ack.device_id != self._device_id:
                raise InboundError(RejectReason.FOREIGN_DEVICE, f"ack for {ack.device_id}")
            self._on_ack(ack)
        elif message.topic == COLLECTOR_STATUS_TOPIC:
            self._on_collector_status(parse(CollectorStatus, message.payload), message.retained)
        elif message.topic == self.cmd_topic:
            # The topic is reserved: no command is implemented yet, so none is obeyed.
            raise InboundError(RejectReason.UNSUPPORTED_COMMAND, f"{len(message.payload)} bytes")
        else:
            raise InboundError(RejectReason.UNEXPECTED_TOPIC, f"{len(message.payload)} bytes")
