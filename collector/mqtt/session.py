"""One network connection of the MQTT client: the ``asyncio.Protocol`` and the state that dies with
its socket (flow control, packets in flight, keepalive bookkeeping).

The receive path lives here: every complete packet of a ``data_received`` chunk is parsed in one
loop (``PacketReader.feed``), the chunk's messages go to the owning ``MqttConnection`` in one list,
and the chunk's PUBACKs go out in one write. ``MqttConnection`` creates one ``_Session`` per
connection attempt and drives it; nothing outside this package uses it.

QoS 1 publishes in flight belong to the connection, not to the socket: when a socket is lost they
stay, and the next session sends them again (with the DUP flag and their packet identifiers when
the broker kept the session). Only ``close()`` or cancelling ``run()`` fails them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import mqtt5

from collector.mqtt.codec import (
    MAX_REMAINING_LENGTH,
    PacketReader,
    UserProperties,
    disconnect_packet,
    publish_packet,
)
from collector.mqtt.errors import (
    ConnectionLost,
    MqttError,
    NotConnected,
    ProtocolError,
    PublishRefused,
    reason_name,
)

if TYPE_CHECKING:
    from collector.mqtt.client import MqttConnection

# The client's one logger, whichever of its modules logs: operators filter on this name.
log = logging.getLogger("collector.mqtt.client")

RECEIVE_MAXIMUM = 65535
"""Receive Maximum we advertise: the broker may have this many QoS 1 messages unacknowledged."""

_RC_MALFORMED = 0x81
_RC_PROTOCOL_ERROR = 0x82
_RC_PACKET_TOO_LARGE = 0x95
_RC_RETAIN_NOT_SUPPORTED = 0x9A
_RC_QOS_NOT_SUPPORTED = 0x9B


@dataclass
class _Pending:
    topic: str
    payload: bytes
    retain: bool
    future: asyncio.Future[None]
    response_topic: str | None = None
    correlation_data: bytes | None = None
    user_properties: UserProperties = ()
    packet_id: int = 0
    """The identifier it was last sent with (0: not sent yet)."""


class _Session(asyncio.Protocol):
    """One network connection: the asyncio protocol plus the state that dies with the socket."""

    def __init__(self, owner: MqttConnection, loop: asyncio.AbstractEventLoop) -> None:
        self._owner = owner
        self._stats = owner.stats
        self._monotonic = owner._clock.monotonic
        self._feed = PacketReader(owner._options.max_packet_size).feed
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.connack: asyncio.Future[mqtt5.ConnAckPacket] = loop.create_future()
        self.suback: asyncio.Future[mqtt5.SubAckPacket] | None = None
        self.suback_id = 0
        self.lost: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.error: MqttError | None = None
        self.connect_sent = False
        self.established = False  # CONNACK success and SUBACK seen; the owner is "connected"
        self.was_established = False
        self.reading_paused = False
        # Outgoing QoS 1 flow control (the broker's Receive Maximum).
        self.quota = RECEIVE_MAXIMUM
        self.max_outgoing_packet = MAX_REMAINING_LENGTH + 5
        self.maximum_qos = 2
        self.retain_available = True
        # The connection's own: they outlive this socket (see the module's docstring).
        self.inflight: dict[int, _Pending] = owner._inflight
        self.waiting: deque[_Pending] = owner._waiting
        self._next_id = 0
        # Keepalive bookkeeping, in clock.monotonic() seconds.
        self.keepalive_s = float(owner._options.keepalive_s)
        now = self._monotonic()
        self.last_sent = now
        self.last_received = now
        self.ping_sent_at: float | None = None
        self.received_since_ping = False
        # Publishes of one loop iteration go out in one write (one syscall, not one each).
        self._out: list[bytes] = []
        self._flush_scheduled = False

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.error is not None:
            return
        now = self._monotonic()
        self.last_received = now
        self.received_since_ping = True
        stats = self._stats
        stats.bytes_received += len(data)
        messages, acks, controls, error = self._feed(data)
        if messages:
            stats.messages_received += len(messages)
            self._owner._deliver(messages)
        if acks and self.error is None and self.transport is not None:
            self.transport.write(acks)
            self.last_sent = now
        if controls:
            for packet in controls:
                if self.error is not None:
                    return
                try:
                    self._handle_control(packet)
                except ProtocolError as exc:
                    error = exc
                    break
        if error is not None:
            self.protocol_error(error)

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        detail = f"{type(exc).__name__}: {exc}" if exc else "closed by the broker"
        self.fail(ConnectionLost(f"connection lost ({detail})"))

    # --- control packets ----------------------------------------------------------------------

    def _handle_control(self, packet: object) -> None:
        if isinstance(packet, mqtt5.PubAckPacket):
            self._on_puback(packet)
        elif isinstance(packet, mqtt5.SubAckPacket):
            if self.suback is None or self.suback.done() or packet.packet_id != self.suback_id:
                raise ProtocolError(f"unexpected SUBACK for packet id {packet.packet_id}")
            self.suback.set_result(packet)
        elif isinstance(packet, mqtt5.ConnAckPacket):
            if self.connack.done():
                raise ProtocolError("second CONNACK on one connection")
            self.connack.set_result(packet)
        elif isinstance(packet, mqtt5.DisconnectPacket):
            self._on_disconnect(packet)
        elif not isinstance(packet, mqtt5.PingRespPacket):  # a PINGRESP counted as traffic
            raise ProtocolError(f"unexpected {type(packet).__name__} from the broker")

    def _on_puback(self, packet: mqtt5.PubAckPacket) -> None:
        pending = self.inflight.pop(packet.packet_id, None)
        if pending is None:
            log.warning(
                "mqtt.unexpected_puback name=%s packet_id=%d", self._owner.name, packet.packet_id
            )
            return
        future = pending.future
        code = int(packet.reason_code)
        if not future.done():
            if code >= 0x80:
                log.warning(
                    "mqtt.publish_refused name=%s reason=0x%02x (%s) reason_string=%s",
                    self._owner.name,
                    code,
                    reason_name(code),
                    packet.reason_str,
                )
                future.set_exception(PublishRefused(code, packet.reason_str))
            else:
                future.set_result(None)
        if self.waiting:
            self.pump()

    def _on_disconnect(self, packet: mqtt5.DisconnectPacket) -> None:
        code = int(packet.reason_code)
        log.warning(
            "mqtt.server_disconnect name=%s broker=%s reason=0x%02x (%s) reason_string=%s",
            self._owner.name,
            self._owner.address.url,
            code,
            reason_name(code),
            packet.reason_str,
        )
        self.fail(ConnectionLost(f"broker sent DISCONNECT 0x{code:02x} ({reason_name(code)})"))

    # --- sending ------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Send now, after anything queued (control packets keep their order)."""
        if self.transport is None or self.error is not None:
            raise NotConnected("the connection is closing")
        self.flush()
        self.transport.write(data)
        self.last_sent = self._monotonic()

    def write_soon(self, data: bytes) -> None:
        """Queue a publish; everything queued in this loop iteration leaves in one write."""
        if self.transport is None or self.error is not None:
            raise NotConnected("the connection is closing")
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        if not self._out:
            return
        data = b"".join(self._out)
        self._out.clear()
        if self.transport is not None and self.error is None:
            self.transport.write(data)
            self.last_sent = self._monotonic()

    def next_packet_id(self) -> int:
        for _ in range(0xFFFF):
            self._next_id = self._next_id % 0xFFFF + 1
            if self._next_id not in self.inflight and self._next_id != self.suback_id:
                return self._next_id
        raise RuntimeError("no free packet identifier")  # unreachable: quota <= 65535

    def send_qos1(self, pending: _Pending, *, again: bool = False) -> None:
        """Send ``pending``; ``again``: a resend to a session that kept it (same identifier,
        DUP set)."""
        packet_id = pending.packet_id if again else self.next_packet_id()
        pending.packet_id = packet_id
        self.inflight[packet_id] = pending
        self.write_soon(
            publish_packet(
                pending.topic,
                pending.payload,
                qos=1,
                retain=pending.retain,
                packet_id=packet_id,
                duplicate=again,
                response_topic=pending.response_topic,
                correlation_data=pending.correlation_data,
                user_properties=pending.user_properties,
            )
        )
        self._stats.publishes_sent += 1

    def resend(self, session_present: bool) -> int:
        """Send again what the last socket left unacknowledged, in its order, before anything
        new; returns how many. A broker that kept the session gets them with their identifiers
        and DUP; one that did not gets them as new publishes."""
        unacknowledged = list(self.inflight.values())
        self.inflight.clear()
        for index, pending in enumerate(unacknowledged):
            if pending.future.done():
                continue
            if len(self.inflight) >= self.quota:  # the new Receive Maximum may be smaller
                self.waiting.extendleft(reversed(unacknowledged[index:]))
                break
            self.send_qos1(pending, again=session_present)
        self.pump()  # what waited behind them, as far as the new Receive Maximum allows
        return len(unacknowledged)

    def pump(self) -> None:
        """Send waiting QoS 1 publishes while the broker's Receive Maximum allows."""
        waiting = self.waiting
        while waiting and len(self.inflight) < self.quota and self.error is None:
            pending = waiting.popleft()
            if not pending.future.done():  # the caller may have cancelled it
                self.send_qos1(pending)

    # --- ending -------------------------------------------------------------------------------

    def protocol_error(self, error: ProtocolError) -> None:
        self._stats.protocol_errors += 1
        log.error("mqtt.protocol_error name=%s error=%s", self._owner.name, error)
        reason = _RC_PACKET_TOO_LARGE if "maximum packet size" in str(error) else _RC_MALFORMED
        if self.transport is not None and self.error is None and self.connect_sent:
            self.transport.write(disconnect_packet(reason))
        self.fail(error)

    def fail(self, error: MqttError, *, abort: bool = False) -> None:
        """End this connection: remember why, close the socket, fail what waits on it."""
        if self.error is not None:
            return
        self.error = error
        transport = self.transport
        if transport is not None:
            # A clean close flushes what is buffered (the DISCONNECT) unless the broker is not
            # reading; a dead peer is not waited for.
            if abort or (isinstance(error, _Clean) and transport.get_write_buffer_size() > 0):
                transport.abort()
            else:
                transport.close()
        if not self.lost.done():
            self.lost.set_result(None)
        if not self.connack.done():
            self.connack.cancel()
        if self.suback is not None and not self.suback.done():
            self.suback.cancel()
        # What is pending stays for the next socket; run() fails it when it ends for good.
        if not isinstance(error, _Clean) and (self.inflight or self.waiting):
            log.info(
                "mqtt.publishes_kept name=%s in_flight=%d waiting=%d (sent again on reconnect)",
                self._owner.name,
                len(self.inflight),
                len(self.waiting),
            )
        self._owner._session_ended(self)


class _Clean(ConnectionLost):
    """Internal: the connection was closed by ``close()`` or by cancelling ``run()``."""
