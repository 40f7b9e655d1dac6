"""A small asyncio MQTT 5 client for the collector's ingest: a connection, its session, reconnects.

``MqttConnection.run()`` connects, subscribes, serves and reconnects with jittered backoff until it
is cancelled or ``close()`` is called. The receive path is an ``asyncio.Protocol``: every complete
packet of a ``data_received`` chunk is parsed in one loop (``PacketDecoder.feed``), the chunk's
messages go to the application in one list, and the chunk's PUBACKs go out in one write.

QoS 1 publishes survive a connection loss: what the broker had not acknowledged is sent again
on the next connection, and its future resolves then; only ``close()`` (or cancelling ``run()``)
fails what is still pending, with ``ConnectionLost``. All timing (connect timeouts, keepalive,
backoff) runs on the injected ``Clock``.

Why a client of our own around a maintained codec: the packets are ``mqtt5``'s (Rust, complete
MQTT 5, strictly validated), but the maintained asyncio clients measured receive a fraction of
what the collector must (see bench/README.md, "MQTT clients": gmqtt 0.42 and paho-mqtt 0.14 of
``mosquitto_sub``, this client 2.3), and none delivers a socket chunk's messages in one list or
lets the reader pause, which ingest's backpressure needs.

The client is split by job: this module holds the public face (``MqttConnection``, its options and
counters, ``run()``, ``publish()``, backpressure and delivery), ``cycle`` one connection attempt
(handshake, subscribe, keepalive, timeouts), ``session`` the ``asyncio.Protocol`` of one socket,
and ``codec`` the stream of packets around ``mqtt5``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from collector.mqtt.address import BrokerAddress
from collector.mqtt.codec import (
    DISCONNECT_NORMAL,
    MAX_REMAINING_LENGTH,
    InboundMessage,
    UserProperties,
    Will,
    check_topic_name,
    publish_packet,
)
from collector.mqtt.cycle import _ClosedError, _ConnectionCycle
from collector.mqtt.errors import (
    ConnectionLost,
    ConnectRefused,
    MqttError,
    NotConnected,
    PublishRefused,
)
from collector.mqtt.session import (
    _RC_PACKET_TOO_LARGE,
    _RC_QOS_NOT_SUPPORTED,
    _RC_RETAIN_NOT_SUPPORTED,
    _Clean,
    _Pending,
    _Session,
)
from protocol.backoff import Backoff
from protocol.clock import Clock

log = logging.getLogger(__name__)

MessagesHandler = Callable[[list[InboundMessage]], None]
"""Called on the event-loop thread once per received chunk, in arrival order; must not block."""


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


def _consume_exception(future: asyncio.Future[None]) -> None:
    """Publish futures are often fire-and-forget; their failures are logged by the connection."""
    if not future.cancelled():
        future.exception()


class MqttConnection(_ConnectionCycle):
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
        # QoS 1 publishes not acknowledged yet (by packet id) and those waiting for the broker's
        # Receive Maximum: they outlive a socket and are sent again on the next one.
        self._inflight: dict[int, _Pending] = {}
        self._waiting: deque[_Pending] = deque()

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
            self._fail_pending(_Clean("connection closed"))
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
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
        user_properties: UserProperties = (),
    ) -> asyncio.Future[None]:
        """Publish now, with the MQTT 5 properties of a request or a response if given. QoS 0:
        the future is done once written. QoS 1: it resolves on PUBACK (sent again after a
        reconnect until then), fails with ``PublishRefused`` on an error reason and with
        ``ConnectionLost`` if the connection is closed first. Beyond the broker's Receive
        Maximum, QoS 1 publishes wait in a FIFO. Raises ``NotConnected`` when not connected."""
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
        if response_topic is not None:
            check_topic_name(response_topic)
        packet = publish_packet(
            topic,
            payload,
            qos=qos,
            retain=retain,
            packet_id=1 if qos else None,  # its real one is given when it goes out
            response_topic=response_topic,
            correlation_data=correlation_data,
            user_properties=user_properties,
        )
        if len(packet) > session.max_outgoing_packet:
            raise PublishRefused(
                _RC_PACKET_TOO_LARGE,
                f"{len(packet)} bytes; broker maximum packet size is {session.max_outgoing_packet}",
            )
        future: asyncio.Future[None] = session.loop.create_future()
        future.add_done_callback(_consume_exception)
        if qos == 0:
            session.write_soon(packet)
            self.stats.publishes_sent += 1
            future.set_result(None)
            return future
        pending = _Pending(
            topic, payload, retain, future, response_topic, correlation_data, user_properties
        )
        if not session.waiting and len(session.inflight) < session.quota:
            session.send_qos1(pending)
        else:
            session.waiting.append(pending)
        return future

    def _fail_pending(self, error: MqttError) -> None:
        """Fail every QoS 1 publish not acknowledged yet: the connection is closing for good."""
        lost = error if isinstance(error, ConnectionLost) else ConnectionLost(str(error))
        pending = [*self._inflight.values(), *self._waiting]
        self._inflight.clear()
        self._waiting.clear()
        failed = 0
        for item in pending:
            if not item.future.done():
                item.future.set_exception(lost)
                failed += 1
        if failed:
            log.warning("mqtt.publishes_failed name=%s count=%d error=%s", self.name, failed, error)

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
