"""The agent's MQTT link: paho-mqtt 2.x, MQTT 5, in its own network thread.

- Retained ``online`` after every connect; the broker's Last Will publishes ``offline``; a clean
  stop publishes ``stopped`` and then DISCONNECTs, which suppresses the Will.
- Each connection attempt uses a fresh paho client, so paho's in-memory queue of a dead connection
  is dropped with it: the durable outbox, not paho, decides what gets (re)sent.
- Reconnects back off exponentially with jitter (``protocol.backoff``).
- Everything the link learns is posted to the asyncio loop through a ``ThreadBridge``; a message
  it cannot read becomes a ``LinkUnreadable``, never an exception in paho's loop.
- Only the network thread touches paho. ``publish`` queues the message and wakes the thread (one
  wake per batch, not per message); the thread drives paho's external-loop API (``loop_read``,
  ``loop_write``, ``loop_misc``) around its own ``select``, so paho needs no internal socket pair
  and a burst of publishes costs one wake-up instead of one per message.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
from collections import deque
from dataclasses import dataclass
from uuid import UUID

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.bridge import ThreadBridge
from protocol.backoff import Backoff
from protocol.clock import Clock
from protocol.messages import DeviceState, Status, encode
from protocol.topics import COLLECTOR_STATUS_TOPIC, TopicKind, device_topic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkSettings:
    host: str
    port: int
    keepalive_s: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    connect_timeout_s: float = 5.0
    stop_timeout_s: float = 3.0


@dataclass(frozen=True)
class Identity:
    device_id: str
    boot_id: UUID
    boot_no: int
    version: str
    config_hash: str


@dataclass(frozen=True)
class LinkUp:
    conn_no: int


@dataclass(frozen=True)
class LinkDown:
    reason: str


@dataclass(frozen=True)
class LinkMessage:
    topic: str
    payload: bytes
    retained: bool = False
    """Delivered because the agent (re)subscribed, not forwarded live: MQTT 5 sets the retain
    flag only on those (the subscriptions leave Retain As Published off)."""


@dataclass(frozen=True)
class LinkUnreadable:
    """A message the link could not turn into a ``LinkMessage`` (a topic that is not UTF-8)."""

    detail: str


LinkEvent = LinkUp | LinkDown | LinkMessage | LinkUnreadable


@dataclass(frozen=True)
class _Outgoing:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class MqttLink:
    def __init__(
        self,
        settings: LinkSettings,
        identity: Identity,
        *,
        clock: Clock,
        events: ThreadBridge[LinkEvent],
        backoff: Backoff | None = None,
    ) -> None:
        self._settings = settings
        self._identity = identity
        self._clock = clock
        self._events = events
        self._backoff = backoff or Backoff(initial=0.5, maximum=30.0)
        self._thread: threading.Thread | None = None
        self._stop_requested = threading.Event()
        self._abort = threading.Event()
        self._stopped = threading.Event()
        self._client: paho.Client | None = None
        self._connected = False
        self._outgoing: deque[_Outgoing] = deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._wake_pending = False
        self._conn_no = 0
        self.status_topic = device_topic(identity.device_id, TopicKind.STATUS)
        self.ack_topic = device_topic(identity.device_id, TopicKind.ACK)
        self.cmd_topic = device_topic(identity.device_id, TopicKind.CMD)

    # --- called from the asyncio loop ---------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the link is already started")
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)
        self._thread.start()

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def conn_no(self) -> int:
        """The current connection (or the attempt under way): ``LinkUp`` carries the same."""
        return self._conn_no

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> bool:
        """Queue a message for the current connection; ``False`` if there is none. A message
        queued as the connection drops is lost with it: the outbox sends it again."""
        if not self._connected:
            return False
        self._outgoing.append(_Outgoing(topic, payload, qos, retain))
        self._wake()
        return True

    def request_stop(self) -> None:
        """Ask the network thread to publish ``stopped``, DISCONNECT and exit."""
        self._stop_requested.set()
        self._wake()

    def abort(self) -> None:
        """Drop the connection without a goodbye (the broker then sends the Last Will) and end
        the thread. For a process that cannot stop cleanly."""
        self._abort.set()
        self._stop_requested.set()
        self._wake()

    def _wake(self) -> None:
        # The flag spares a syscall per message; the thread clears it after reading the wake-up
        # bytes and before draining the queue, so a message appended after the drain always finds
        # it clear and wakes the thread again.
        if self._wake_pending:
            return
        self._wake_pending = True
        try:
            self._wake_w.send(b"w")
        except BlockingIOError:
            pass  # full of wake-ups already
        except OSError:
            pass  # the link has ended and closed its wake-up sockets

    def wait_stopped(self, timeout: float) -> bool:
        """Block until the network thread has exited (run it in an executor)."""
        return self._stopped.wait(timeout)

    # --- the network thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop_requested.is_set():
                self._serve_one_connection()
                if self._stop_requested.is_set():
                    break
                delay = self._backoff.next_delay()
                log.info(
                    "link.reconnect_wait seconds=%.2f attempt=%d", delay, self._backoff.attempt
                )
                self._stop_requested.wait(delay)
        finally:
            self._wake_r.close()
            self._wake_w.close()
            self._stopped.set()

    def _serve_one_connection(self) -> None:
        self._conn_no += 1
        conn_no = self._conn_no
        client = self._new_client(conn_no)
        try:
            client.connect(
                self._settings.host,
                self._settings.port,
                keepalive=self._settings.keepalive_s,
                clean_start=True,
            )
        except (OSError, ValueError) as exc:
            log.warning(
                "link.connect_failed host=%s port=%d error=%s",
                self._settings.host,
                self._settings.port,
                exc,
            )
            return
        self._client = client
        # paho sends PINGREQ from loop_misc only once a keepalive has passed: wake up often
        # enough that the ping leaves well before the broker's 1.5 x keepalive limit.
        idle_wait_s = min(1.0, self._settings.keepalive_s / 4)
        stop_info: paho.MQTTMessageInfo | None = None
        stop_deadline = 0.0
        disconnecting = False
        try:
            while True:
                if self._abort.is_set():
                    sock = client.socket()
                    if sock is not None:
                        sock.close()
                    break
                if self._stop_requested.is_set() and not disconnecting:
                    if not self._connected:
                        client.disconnect()
                        break
                    if stop_info is None:
                        stop_info = client.publish(
                            self.status_topic, self._status(DeviceState.STOPPED, conn_no), 1, True
                        )
                        stop_deadline = self._clock.monotonic() + self._settings.stop_timeout_s
                    elif stop_info.is_published() or self._clock.monotonic() > stop_deadline:
                        # A clean DISCONNECT: the broker drops the Last Will.
                        client.disconnect()
                        disconnecting = True
                if disconnecting and client.socket() is None:
                    break  # DISCONNECT written and the socket closed by paho
                if not self._service(client, timeout=idle_wait_s):
                    break
        finally:
            was_connected = self._connected
            self._connected = False
            self._client = None
            self._outgoing.clear()
            if was_connected:
                self._events.post(LinkDown("stopped" if stop_info else "connection lost"))

    def _service(self, client: paho.Client, timeout: float) -> bool:
        """One round of paho's external loop; ``False`` when the connection is gone."""
        sock = client.socket()
        if sock is None:
            return False
        pending = getattr(sock, "pending", None)  # TLS may hold decrypted bytes select cannot see
        buffered = bool(pending()) if pending is not None else False
        readable, writable, _ = select.select(
            [sock, self._wake_r],
            [sock] if client.want_write() else [],
            [],
            0.0 if buffered else timeout,
        )
        read_failed = (sock in readable or buffered) and (
            client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS
        )
        if read_failed:
            return False
        if self._wake_r in readable:
            self._drain_wakes()
        self._publish_queued(client)
        if sock in writable and client.loop_write() != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        return client.loop_misc() == MQTTErrorCode.MQTT_ERR_SUCCESS

    def _drain_wakes(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        # Cleared only once the socket is empty, and before the queue is drained: a wake-up
        # byte sent meanwhile and read above must not leave the flag set with no byte behind it
        # (every later message would then wait for the idle timeout).
        self._wake_pending = False

    def _publish_queued(self, client: paho.Client) -> None:
        # Called on the network thread, so paho writes each message straight to the socket.
        while self._outgoing:
            message = self._outgoing.popleft()
            client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)

    def _new_client(self, conn_no: int) -> paho.Client:
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self._identity.device_id,
            protocol=paho.MQTTv5,
        )
        client.connect_timeout = self._settings.connect_timeout_s
        client.max_inflight_messages_set(0)
        client.enable_logger(logging.getLogger("paho"))
        if self._settings.username:
            client.username_pw_set(self._settings.username, self._settings.password)
        if self._settings.tls:
            client.tls_set()
        client.will_set(self.status_topic, self._status(DeviceState.OFFLINE, conn_no), 1, True)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.user_data_set(conn_no)
        return client

    def _status(self, state: DeviceState, conn_no: int) -> bytes:
        identity = self._identity
        return encode(
            Status(
                device_id=identity.device_id,
                state=state,
                boot_id=identity.boot_id,
                boot_no=identity.boot_no,
                conn_no=conn_no,
                version=identity.version,
                config_hash=identity.config_hash,
                at=self._clock.now(),
                keepalive_s=self._settings.keepalive_s if state is DeviceState.ONLINE else None,
            )
        )

    def _on_connect(
        self,
        client: paho.Client,
        conn_no: int,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: object,
    ) -> None:
        if reason.is_failure:
            log.error("link.connect_refused reason=%s", reason)
            return
        self._backoff.reset()
        client.subscribe([(self.ack_topic, 1), (self.cmd_topic, 1), (COLLECTOR_STATUS_TOPIC, 1)])
        client.publish(self.status_topic, self._status(DeviceState.ONLINE, conn_no), 1, True)
        self._connected = True
        log.info("link.connected conn_no=%d", conn_no)
        self._events.post(LinkUp(conn_no))

    def _on_message(self, client: paho.Client, conn_no: int, message: paho.MQTTMessage) -> None:
        # An exception here would leave paho's loop_read and end the network thread for good.
        self._events.post(link_event_of(message))


def link_event_of(message: paho.MQTTMessage) -> LinkMessage | LinkUnreadable:
    """What the loop is told of one received message; never raises."""
    try:
        return LinkMessage(message.topic, bytes(message.payload), retained=bool(message.retain))
    except Exception as exc:  # paho decodes the topic lazily: invalid UTF-8 raises here
        return LinkUnreadable(f"{type(exc).__name__}: {exc}")
