"""A small asyncio MQTT 5 client for the collector's ingest: a connection, its session, reconnects.

``MqttConnection.run()`` connects, subscribes, serves and reconnects with jittered backoff until it
is cancelled or ``close()`` is called. The receive path is an ``asyncio.Protocol``: every complete
packet of a ``data_received`` chunk is parsed in one loop (``PacketDecoder.feed``), the chunk's
messages go to the application in one list, and the chunk's PUBACKs go out in one write.

QoS 1 publishes are not resent after a connection loss: their futures fail with ``ConnectionLost``
and the caller, which has its own application-level acknowledgements, decides what to resend.
All timing (connect timeouts, keepalive, backoff) runs on the injected ``Clock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

from collector.mqtt.address import BrokerAddress
from collector.mqtt.errors import (
    ConnectionLost,
    ConnectRefused,
    MqttError,
    NotConnected,
    ProtocolError,
    PublishRefused,
    reason_name,
)
from collector.mqtt.packets import (
    DISCONNECT_NORMAL,
    MAX_REMAINING_LENGTH,
    PINGREQ,
    Connack,
    ControlPacket,
    Disconnect,
    InboundMessage,
    PacketDecoder,
    Puback,
    Suback,
    Will,
    check_topic_name,
    decode_control,
    encode_connect,
    encode_disconnect,
    encode_publish,
    encode_subscribe,
    publish_packet_size,
)
from protocol.backoff import Backoff
from protocol.clock import Clock

log = logging.getLogger(__name__)

_T = TypeVar("_T")

MessagesHandler = Callable[[list[InboundMessage]], None]
"""Called on the event-loop thread once per received chunk, in arrival order; must not block."""

RECEIVE_MAXIMUM = 65535
"""Receive Maximum we advertise: the broker may have this many QoS 1 messages unacknowledged."""

_RC_MALFORMED = 0x81
_RC_PROTOCOL_ERROR = 0x82
_RC_PACKET_TOO_LARGE = 0x95
_RC_RETAIN_NOT_SUPPORTED = 0x9A
_RC_QOS_NOT_SUPPORTED = 0x9B


@dataclass(frozen=True)
class SessionOptions:
    """The MQTT session this connection asks for."""

    client_id: str
    keepalive_s: int = 10
    clean_start: bool = False
    session_expiry_s: int = 7 * 24 * 3600
    max_packet_size: int = 1024 * 1024
    will: Will | None = None

    def __post_init__(self) -> None:
        if not self.client_id and not self.clean_start:
            raise ValueError("a persistent session (clean_start=False) needs a client id")
        if len(self.client_id.encode("utf-8")) > 0xFFFF:
            raise ValueError("client id is longer than 65535 bytes in UTF-8")
        if not 0 <= self.keepalive_s <= 0xFFFF:
            raise ValueError(f"keepalive_s must be 0..65535, not {self.keepalive_s}")
        if not 0 <= self.session_expiry_s <= 0xFFFFFFFF:
            raise ValueError(f"session_expiry_s must be 0..4294967295, not {self.session_expiry_s}")
        if not 64 <= self.max_packet_size <= MAX_REMAINING_LENGTH + 5:
            raise ValueError(f"max_packet_size must be 64..268435460, not {self.max_packet_size}")


@dataclass
class MqttStats:
    """Counters since the ``MqttConnection`` was created."""

    messages_received: int = 0
    bytes_received: int = 0
    publishes_sent: int = 0
    connects: int = 0
    disconnects: int = 0
    protocol_errors: int = 0
    pings_sent: int = 0


class _ClosedError(Exception):
    """Internal: ``close()`` was called while ``run()`` was waiting."""


@dataclass
class _Pending:
    topic: bytes
    payload: bytes
    retain: bool
    future: asyncio.Future[None]


def _consume_exception(future: asyncio.Future[None]) -> None:
    """Publish futures are often fire-and-forget; their failures are logged by the connection."""
    if not future.cancelled():
        future.exception()


class _Session(asyncio.Protocol):
    """One network connection: the asyncio protocol plus the state that dies with the socket."""

    def __init__(self, owner: MqttConnection, loop: asyncio.AbstractEventLoop) -> None:
        self._owner = owner
        self._stats = owner.stats
        self._monotonic = owner._clock.monotonic
        self._feed = PacketDecoder(owner._options.max_packet_size).feed
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.connack: asyncio.Future[Connack] = loop.create_future()
        self.suback: asyncio.Future[Suback] | None = None
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
        self.inflight: dict[int, asyncio.Future[None]] = {}
        self.waiting: deque[_Pending] = deque()
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
            for first, body in controls:
                if self.error is not None:
                    return
                try:
                    self._handle_control(decode_control(first, body))
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

    def _handle_control(self, packet: ControlPacket) -> None:
        if isinstance(packet, Puback):
            self._on_puback(packet)
        elif isinstance(packet, Suback):
            if self.suback is None or self.suback.done() or packet.packet_id != self.suback_id:
                raise ProtocolError(f"unexpected SUBACK for packet id {packet.packet_id}")
            self.suback.set_result(packet)
        elif isinstance(packet, Connack):
            if self.connack.done():
                raise ProtocolError("second CONNACK on one connection")
            self.connack.set_result(packet)
        elif isinstance(packet, Disconnect):
            self._on_disconnect(packet)
        # Pingresp: receiving it already counted as traffic.

    def _on_puback(self, packet: Puback) -> None:
        future = self.inflight.pop(packet.packet_id, None)
        if future is None:
            log.warning(
                "mqtt.unexpected_puback name=%s packet_id=%d", self._owner.name, packet.packet_id
            )
            return
        if not future.done():
            if packet.reason_code >= 0x80:
                log.warning(
                    "mqtt.publish_refused name=%s reason=0x%02x (%s) reason_string=%s",
                    self._owner.name,
                    packet.reason_code,
                    reason_name(packet.reason_code),
                    packet.reason_string,
                )
                future.set_exception(PublishRefused(packet.reason_code, packet.reason_string))
            else:
                future.set_result(None)
        if self.waiting:
            self.pump()

    def _on_disconnect(self, packet: Disconnect) -> None:
        log.warning(
            "mqtt.server_disconnect name=%s broker=%s reason=0x%02x (%s) reason_string=%s",
            self._owner.name,
            self._owner.address.url,
            packet.reason_code,
            reason_name(packet.reason_code),
            packet.reason_string,
        )
        self.fail(
            ConnectionLost(
                f"broker sent DISCONNECT 0x{packet.reason_code:02x} "
                f"({reason_name(packet.reason_code)})"
            )
        )

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

    def send_qos1(self, pending: _Pending) -> None:
        packet_id = self.next_packet_id()
        self.inflight[packet_id] = pending.future
        self.write_soon(
            encode_publish(
                pending.topic, pending.payload, qos=1, retain=pending.retain, packet_id=packet_id
            )
        )
        self._stats.publishes_sent += 1

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
            self.transport.write(encode_disconnect(reason))
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
        lost = error if isinstance(error, ConnectionLost) else ConnectionLost(str(error))
        failed = 0
        futures = [*self.inflight.values(), *(pending.future for pending in self.waiting)]
        self.inflight.clear()
        self.waiting.clear()
        for future in futures:
            if not future.done():
                future.set_exception(lost)
                failed += 1
        if failed:
            log.warning(
                "mqtt.publishes_failed name=%s count=%d error=%s", self._owner.name, failed, error
            )
        self._owner._session_ended(self)


class _Clean(ConnectionLost):
    """Internal: the connection was closed by ``close()`` or by cancelling ``run()``."""


class MqttConnection:
    """One MQTT 5 connection with a (by default persistent) session, kept up by ``run()``.

    Use it from the event-loop thread only. Messages the broker queued for a persistent session
    arrive right after CONNACK, so ``on_messages`` may be called before ``on_connected``.
    ``on_messages`` gets a fresh list it may keep.
    """

    def __init__(
        self,
        address: BrokerAddress,
        options: SessionOptions,
        *,
        subscriptions: Sequence[tuple[str, int]],
        on_messages: MessagesHandler,
        clock: Clock,
        backoff: Backoff | None = None,
        on_connected: Callable[[bool], None] | None = None,
        on_disconnected: Callable[[], None] | None = None,
        name: str = "mqtt",
        connect_timeout_s: float = 10.0,
    ) -> None:
        for topic_filter, qos in subscriptions:
            if not topic_filter:
                raise ValueError("topic filter must not be empty")
            if qos not in (0, 1):
                raise ValueError(f"subscription QoS must be 0 or 1, not {qos!r} ({topic_filter})")
        if connect_timeout_s <= 0:
            raise ValueError("connect_timeout_s must be positive")
        self.address = address
        self.name = name
        self.stats = MqttStats()
        self._options = options
        self._subscriptions = tuple(subscriptions)
        self._on_messages = on_messages
        self._clock = clock
        self._backoff = backoff if backoff is not None else Backoff()
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._connect_timeout_s = connect_timeout_s
        self._session: _Session | None = None
        self._connected = asyncio.Event()
        self._closing = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopped.set()
        self._running = False
        self._paused = False
        self._held: list[InboundMessage] = []

    # --- public -------------------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """Connected, CONNACK accepted and subscriptions acknowledged."""
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def run(self) -> None:
        """Connect, subscribe and serve; after any loss reconnect with backoff; until cancelled or
        ``close()``. Cancellation closes the socket."""
        if self._running:
            raise RuntimeError(f"{self.name}: run() is already running")
        if self._closing.is_set():
            raise RuntimeError(f"{self.name}: the connection was closed")
        self._running = True
        self._stopped.clear()
        try:
            while not self._closing.is_set():
                try:
                    await self._connect_and_serve()
                except _ClosedError:
                    break
                except ConnectRefused as exc:
                    log.error(
                        "mqtt.connect_refused name=%s broker=%s reason=0x%02x error=%s",
                        self.name,
                        self.address.url,
                        exc.reason_code,
                        exc,
                    )
                except (MqttError, OSError) as exc:
                    session = self._session
                    log.warning(
                        "mqtt.connection_lost name=%s broker=%s error=%s"
                        if session is not None and session.was_established
                        else "mqtt.connect_failed name=%s broker=%s error=%s",
                        self.name,
                        self.address.url,
                        str(exc) or type(exc).__name__,
                    )
                except Exception:
                    log.exception("mqtt.unexpected_error name=%s", self.name)
                if self._closing.is_set():
                    break
                delay = self._backoff.next_delay()
                log.info(
                    "mqtt.reconnect_scheduled name=%s delay_s=%.2f attempt=%d",
                    self.name,
                    delay,
                    self._backoff.attempt,
                )
                try:
                    await self._guarded(None, self._clock.sleep(delay), None, "backoff")
                except _ClosedError:
                    break
        finally:
            session = self._session
            if session is not None:
                session.fail(_Clean("connection closed"))
            self._running = False
            self._stopped.set()

    async def close(self) -> None:
        """Send DISCONNECT (normal, so no Last Will), close the socket, and let ``run()`` return."""
        self._closing.set()
        session = self._session
        if session is not None and session.connect_sent and session.error is None:
            with contextlib.suppress(NotConnected):
                session.write(DISCONNECT_NORMAL)
            session.fail(_Clean("connection closed"))
        await self._stopped.wait()
        if session is not None and session.transport is not None:
            await session.closed
        log.info("mqtt.closed name=%s", self.name)

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[None]:
        """Publish now. QoS 0: the future is done once written. QoS 1: it resolves on PUBACK,
        fails with ``PublishRefused`` on an error reason and with ``ConnectionLost`` if the
        connection drops first (no automatic resend). Beyond the broker's Receive Maximum,
        QoS 1 publishes wait in a FIFO. Raises ``NotConnected`` when not connected."""
        session = self._session
        if session is None or not session.established or session.error is not None:
            raise NotConnected(f"{self.name}: not connected to {self.address.url}")
        if qos not in (0, 1):
            raise ValueError(f"publish QoS must be 0 or 1, not {qos!r}")
        check_topic_name(topic)
        if qos > session.maximum_qos:
            raise PublishRefused(
                _RC_QOS_NOT_SUPPORTED, f"broker maximum QoS is {session.maximum_qos}"
            )
        if retain and not session.retain_available:
            raise PublishRefused(_RC_RETAIN_NOT_SUPPORTED)
        raw_topic = topic.encode("utf-8")
        size = publish_packet_size(raw_topic, len(payload), qos)
        if size > session.max_outgoing_packet:
            raise PublishRefused(
                _RC_PACKET_TOO_LARGE,
                f"{size} bytes; broker maximum packet size is {session.max_outgoing_packet}",
            )
        future: asyncio.Future[None] = session.loop.create_future()
        future.add_done_callback(_consume_exception)
        if qos == 0:
            session.write_soon(encode_publish(raw_topic, payload, qos=0, retain=retain))
            self.stats.publishes_sent += 1
            future.set_result(None)
            return future
        pending = _Pending(raw_topic, payload, retain, future)
        if not session.waiting and len(session.inflight) < session.quota:
            session.send_qos1(pending)
        else:
            session.waiting.append(pending)
        return future

    def pause_reading(self) -> None:
        """Stop reading from the socket (backpressure); stays in force across reconnects.

        While paused, the client still sends PINGREQs but does not judge the broker by missing
        PINGRESPs (it cannot read them)."""
        self._paused = True
        session = self._session
        if session is not None and session.established and not session.reading_paused:
            session.reading_paused = True
            if session.transport is not None:
                session.transport.pause_reading()

    def resume_reading(self) -> None:
        """Deliver what was held back and read again."""
        self._paused = False
        if self._held:
            asyncio.get_running_loop().call_soon(self._flush_held)
        session = self._session
        if session is not None and session.reading_paused:
            session.reading_paused = False
            session.ping_sent_at = None
            session.last_received = self._clock.monotonic()
            if session.transport is not None and session.error is None:
                session.transport.resume_reading()

    # --- the connection cycle -----------------------------------------------------------------

    async def _connect_and_serve(self) -> None:
        loop = asyncio.get_running_loop()
        session = _Session(self, loop)
        self._session = session
        try:
            await self._handshake_and_serve(session, loop)
        finally:
            # Whatever ended this attempt (cancellation, a bug), the socket goes with it.
            session.fail(_Clean("connection closed"))

    async def _handshake_and_serve(
        self, session: _Session, loop: asyncio.AbstractEventLoop
    ) -> None:
        address = self.address
        options = self._options
        log.info("mqtt.connecting name=%s broker=%s", self.name, address.url)
        context = ssl.create_default_context() if address.tls else None
        await self._guarded(
            session,
            loop.create_connection(lambda: session, address.host, address.port, ssl=context),
            self._connect_timeout_s,
            "connect",
        )
        session.write(
            encode_connect(
                client_id=options.client_id,
                keepalive_s=options.keepalive_s,
                clean_start=options.clean_start,
                session_expiry_s=options.session_expiry_s,
                receive_maximum=RECEIVE_MAXIMUM,
                maximum_packet_size=options.max_packet_size,
                username=address.username,
                password=address.password,
                will=options.will,
            )
        )
        session.connect_sent = True
        connack = await self._guarded(session, session.connack, self._connect_timeout_s, "CONNACK")
        if connack.reason_code != 0:
            error = ConnectRefused(connack.reason_code, connack.reason_string)
            session.fail(error)
            raise error
        self._backoff.reset()
        self.stats.connects += 1
        self._configure(session, connack)
        keepalive = asyncio.create_task(self._keepalive(session), name=f"{self.name}.keepalive")
        try:
            if self._subscriptions:
                await self._subscribe(session)
            self._established(session, connack)
            await self._guarded(session, session.lost, None, "serve")
            if session.error is not None and not isinstance(session.error, _Clean):
                raise session.error
        finally:
            keepalive.cancel()
            await asyncio.wait({keepalive})
            if not keepalive.cancelled() and keepalive.exception() is not None:
                log.error(
                    "mqtt.keepalive_failed name=%s", self.name, exc_info=keepalive.exception()
                )

    def _configure(self, session: _Session, connack: Connack) -> None:
        session.quota = connack.receive_maximum
        session.maximum_qos = connack.maximum_qos
        session.retain_available = connack.retain_available
        if connack.maximum_packet_size is not None:
            session.max_outgoing_packet = connack.maximum_packet_size
        if connack.server_keepalive is not None:
            session.keepalive_s = float(connack.server_keepalive)

    async def _subscribe(self, session: _Session) -> None:
        packet_id = session.next_packet_id()
        session.suback_id = packet_id
        session.suback = session.loop.create_future()
        session.write(encode_subscribe(packet_id, self._subscriptions))
        suback = await self._guarded(session, session.suback, self._connect_timeout_s, "SUBACK")
        session.suback_id = 0
        if len(suback.reason_codes) != len(self._subscriptions):
            log.error(
                "mqtt.subscribe_mismatch name=%s filters=%d reason_codes=%d",
                self.name,
                len(self._subscriptions),
                len(suback.reason_codes),
            )
        for (topic_filter, qos), code in zip(
            self._subscriptions, suback.reason_codes, strict=False
        ):
            if code >= 0x80:
                log.error(
                    "mqtt.subscribe_failed name=%s filter=%s reason=0x%02x (%s) reason_string=%s",
                    self.name,
                    topic_filter,
                    code,
                    reason_name(code),
                    suback.reason_string,
                )
            elif code < qos:
                log.warning(
                    "mqtt.subscribe_downgraded name=%s filter=%s requested_qos=%d granted_qos=%d",
                    self.name,
                    topic_filter,
                    qos,
                    code,
                )

    def _established(self, session: _Session, connack: Connack) -> None:
        session.established = True
        session.was_established = True
        if self._paused:
            session.reading_paused = True
            if session.transport is not None:
                session.transport.pause_reading()
        self._connected.set()
        log.info(
            "mqtt.connected name=%s broker=%s session_present=%s keepalive_s=%g receive_maximum=%d",
            self.name,
            self.address.url,
            connack.session_present,
            session.keepalive_s,
            session.quota,
        )
        if self._on_connected is not None:
            try:
                self._on_connected(connack.session_present)
            except Exception:
                log.exception("mqtt.callback_failed name=%s callback=on_connected", self.name)

    def _session_ended(self, session: _Session) -> None:
        """Called once per session, synchronously, when it fails or is closed."""
        if not session.established:
            return
        session.established = False
        if self._session is session:
            self._connected.clear()
        self.stats.disconnects += 1
        if self._on_disconnected is not None:
            try:
                self._on_disconnected()
            except Exception:
                log.exception("mqtt.callback_failed name=%s callback=on_disconnected", self.name)

    async def _guarded(
        self,
        session: _Session | None,
        awaitable: Coroutine[object, object, _T] | asyncio.Future[_T],
        timeout_s: float | None,
        what: str,
    ) -> _T:
        """Await ``awaitable`` unless the session is lost, ``close()`` is called or the clock
        runs out first."""
        main: asyncio.Future[_T] = (
            awaitable
            if isinstance(awaitable, asyncio.Future)
            else asyncio.create_task(awaitable, name=f"{self.name}.{what}")
        )
        closing = asyncio.create_task(self._closing.wait(), name=f"{self.name}.closing.{what}")
        waiters: set[asyncio.Future[object]] = {
            cast("asyncio.Future[object]", main),
            cast("asyncio.Future[object]", closing),
        }
        timer: asyncio.Task[None] | None = None
        if timeout_s is not None:
            timer = asyncio.create_task(
                self._clock.sleep(timeout_s), name=f"{self.name}.timeout.{what}"
            )
            waiters.add(cast("asyncio.Future[object]", timer))
        if session is not None and main is not session.lost:
            waiters.add(cast("asyncio.Future[object]", session.lost))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if main.done() and not main.cancelled():
                return main.result()
            if closing.done():
                raise _ClosedError
            if session is not None and session.error is not None:
                raise session.error
            if main.done():
                raise ConnectionLost(f"{what} was cancelled")
            error = ConnectionLost(f"{what} timed out after {timeout_s:g} s")
            if session is not None:
                session.fail(error, abort=True)
            raise error
        finally:
            closing.cancel()
            if timer is not None:
                timer.cancel()
            if not main.done():
                main.cancel()

    async def _keepalive(self, session: _Session) -> None:
        """PINGREQ when nothing was sent (or received) for the keepalive; the connection is lost
        when nothing at all arrives within 1.5 x keepalive of a PINGREQ."""
        period = session.keepalive_s
        if period <= 0:
            return
        clock = self._clock
        while session.error is None:
            now = clock.monotonic()
            if session.reading_paused:
                if now - session.last_sent >= period:
                    self._ping(session, now, track=False)
                deadline = session.last_sent + period
            else:
                if session.ping_sent_at is not None and session.received_since_ping:
                    session.ping_sent_at = None
                if session.ping_sent_at is not None and now - session.ping_sent_at >= 1.5 * period:
                    log.warning(
                        "mqtt.keepalive_timeout name=%s broker=%s silent_s=%.1f",
                        self.name,
                        self.address.url,
                        now - session.last_received,
                    )
                    session.fail(
                        ConnectionLost(f"no packet from the broker within {1.5 * period:g} s"),
                        abort=True,
                    )
                    return
                if now - session.last_sent >= period or (
                    session.ping_sent_at is None and now - session.last_received >= period
                ):
                    self._ping(session, now, track=True)
                deadline = session.last_sent + period
                if session.ping_sent_at is None:
                    deadline = min(deadline, session.last_received + period)
                else:
                    deadline = min(deadline, session.ping_sent_at + 1.5 * period)
            await clock.sleep(max(deadline - now, 0.001))

    def _ping(self, session: _Session, now: float, *, track: bool) -> None:
        try:
            session.write(PINGREQ)
        except NotConnected:
            return
        self.stats.pings_sent += 1
        if track and session.ping_sent_at is None:
            session.ping_sent_at = now
            session.received_since_ping = False

    # --- delivery -----------------------------------------------------------------------------

    def _deliver(self, messages: list[InboundMessage]) -> None:
        if self._paused:
            self._held.extend(messages)
            return
        if self._held:
            messages = self._held + messages
            self._held = []
        try:
            self._on_messages(messages)
        except Exception:
            log.exception(
                "mqtt.handler_failed name=%s messages=%d first_topic=%s",
                self.name,
                len(messages),
                messages[0].topic,
            )

    def _flush_held(self) -> None:
        if self._paused or not self._held:
            return
        messages, self._held = self._held, []
        self._deliver(messages)


__all__ = ["MessagesHandler", "MqttConnection", "MqttStats", "SessionOptions"]
