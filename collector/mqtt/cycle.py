"""The connection cycle of ``MqttConnection``: one attempt from the TCP connect through CONNACK and
SUBACK to serving, with its keepalive, its timeouts and the end of the session.

It is a base class of ``MqttConnection``, split out so that each module stays small; the methods
are the connection's own and work on its state. All timing runs on the injected ``Clock``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, TypeVar, cast

import mqtt5

from collector.mqtt.codec import PINGREQ
from collector.mqtt.errors import ConnectionLost, ConnectRefused, NotConnected, reason_name
from collector.mqtt.session import RECEIVE_MAXIMUM, _Clean, _Session

if TYPE_CHECKING:
    from collections.abc import Callable

    from collector.mqtt.address import BrokerAddress
    from collector.mqtt.client import MqttStats, SessionOptions
    from protocol.backoff import Backoff
    from protocol.clock import Clock

# The client's one logger, whichever of its modules logs: operators filter on this name.
log = logging.getLogger("collector.mqtt.client")

_T = TypeVar("_T")


class _ClosedError(Exception):
    """Internal: ``close()`` was called while ``run()`` was waiting."""


class _ConnectionCycle:
    """The half of ``MqttConnection`` that connects, handshakes, subscribes and keeps alive.

    Only ``MqttConnection`` derives from it. The annotations are the connection state these methods
    share with it; ``MqttConnection.__init__`` sets every one.
    """

    address: BrokerAddress
    name: str
    stats: MqttStats
    _options: SessionOptions
    _subscriptions: tuple[tuple[str, int], ...]
    _clock: Clock
    _backoff: Backoff
    _on_connected: Callable[[bool], None] | None
    _on_disconnected: Callable[[], None] | None
    _connect_timeout_s: float
    _session: _Session | None
    _connected: asyncio.Event
    _closing: asyncio.Event
    _paused: bool

    async def _handshake_and_serve(
        self, session: _Session, loop: asyncio.AbstractEventLoop
    ) -> None:
        address = self.address
        options = self._options
        log.info("mqtt.connecting name=%s broker=%s", self.name, address.url)
        context = address.ssl_context()
        await self._guarded(
            session,
            loop.create_connection(
                lambda: session,
                address.host,
                address.port,
                ssl=context,
                server_hostname=address.tls_server_name if context is not None else None,
            ),
            self._connect_timeout_s,
            "connect",
        )
        session.write(
            mqtt5.ConnectPacket(
                options.client_id,
                username=address.username,
                password=None if address.password is None else address.password.encode(),
                clean_start=options.clean_start,
                will=None if options.will is None else options.will.packet(),
                keep_alive=options.keepalive_s,
                session_expiry_interval=options.session_expiry_s,
                receive_max=RECEIVE_MAXIMUM,
                max_packet_size=options.max_packet_size,
            ).write()
        )
        session.connect_sent = True
        connack = await self._guarded(session, session.connack, self._connect_timeout_s, "CONNACK")
        if connack.reason_code != 0:
            error = ConnectRefused(int(connack.reason_code), connack.reason_str)
            session.fail(error)
            raise error
        self._backoff.reset()
        self.stats.connects += 1
        self._configure(session, connack)
        resent = session.resend(connack.session_present)
        if resent:
            log.info(
                "mqtt.resent name=%s count=%d session_present=%s",
                self.name,
                resent,
                connack.session_present,
            )
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

    def _configure(self, session: _Session, connack: mqtt5.ConnAckPacket) -> None:
        session.quota = connack.receive_max
        session.maximum_qos = int(connack.max_qos)
        session.retain_available = connack.retain_available
        if connack.max_packet_size is not None:
            session.max_outgoing_packet = connack.max_packet_size
        if connack.server_keep_alive is not None:
            session.keepalive_s = float(connack.server_keep_alive)

    async def _subscribe(self, session: _Session) -> None:
        packet_id = session.next_packet_id()
        session.suback_id = packet_id
        session.suback = session.loop.create_future()
        # Retain As Published off: a retained flag means "sent because retained, on subscribe".
        filters = [
            mqtt5.TopicFilter(topic_filter, max_qos=mqtt5.QoS(qos), retain_as_published=False)
            for topic_filter, qos in self._subscriptions
        ]
        session.write(mqtt5.SubscribePacket(packet_id, filters).write())
        suback = await self._guarded(session, session.suback, self._connect_timeout_s, "SUBACK")
        session.suback_id = 0
        if len(suback.reason_codes) != len(self._subscriptions):
            log.error(
                "mqtt.subscribe_mismatch name=%s filters=%d reason_codes=%d",
                self.name,
                len(self._subscriptions),
                len(suback.reason_codes),
            )
        for (topic_filter, qos), reason in zip(
            self._subscriptions, suback.reason_codes, strict=False
        ):
            code = int(reason)
            if code >= 0x80:
                log.error(
                    "mqtt.subscribe_failed name=%s filter=%s reason=0x%02x (%s) reason_string=%s",
                    self.name,
                    topic_filter,
                    code,
                    reason_name(code),
                    suback.reason_str,
                )
            elif code < qos:
                log.warning(
                    "mqtt.subscribe_downgraded name=%s filter=%s requested_qos=%d granted_qos=%d",
                    self.name,
                    topic_filter,
                    qos,
                    code,
                )

    def _established(self, session: _Session, connack: mqtt5.ConnAckPacket) -> None:
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
