"""The collector's MQTT 5 client against a real Mosquitto on real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from collector.mqtt import (
    BrokerAddress,
    ConnectionLost,
    InboundMessage,
    MqttConnection,
    NotConnected,
    PublishRefused,
    SessionOptions,
    Will,
)
from collector.mqtt.packets import PacketDecoder
from protocol.backoff import Backoff
from protocol.clock import Clock, ManualClock, SystemClock
from simulators.broker import MosquittoBroker

TIMEOUT = 10.0


# --- helpers ----------------------------------------------------------------------------------


class Inbox:
    """An ``on_messages`` handler that records every call."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.calls = 0

    def __call__(self, messages: list[InboundMessage]) -> None:
        self.calls += 1
        self.messages.extend(messages)

    @property
    def payloads(self) -> list[bytes]:
        return [message.payload for message in self.messages]

    async def wait_for(self, count: int, limit_s: float = TIMEOUT) -> None:
        await eventually(lambda: len(self.messages) >= count, limit_s, f"{count} messages")


async def eventually(
    predicate: Callable[[], bool], limit_s: float = TIMEOUT, what: str = ""
) -> None:
    """Poll ``predicate`` until it holds; fail after ``limit_s`` real seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.01)


def fast_backoff() -> Backoff:
    return Backoff(initial=0.05, maximum=0.2)


def connection(
    broker: MosquittoBroker,
    inbox: Inbox,
    *,
    client_id: str = "collector-test",
    subscriptions: tuple[tuple[str, int], ...] = (("t/#", 1),),
    clock: Clock | None = None,
    keepalive_s: int = 10,
    clean_start: bool = False,
    will: Will | None = None,
    on_connected: Callable[[bool], None] | None = None,
    on_disconnected: Callable[[], None] | None = None,
    url: str | None = None,
    backoff: Backoff | None = None,
) -> MqttConnection:
    return MqttConnection(
        BrokerAddress.parse(url or broker.url),
        SessionOptions(client_id, keepalive_s=keepalive_s, clean_start=clean_start, will=will),
        subscriptions=subscriptions,
        on_messages=inbox,
        clock=clock or SystemClock(),
        backoff=backoff or fast_backoff(),
        on_connected=on_connected,
        on_disconnected=on_disconnected,
        name=client_id,
    )


@contextlib.asynccontextmanager
async def running(
    conn: MqttConnection, *, connected: bool = True
) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``conn`` in a task; close it (and check ``run()`` returned) on the way out."""
    task = asyncio.create_task(conn.run(), name=f"test.{conn.name}")
    try:
        if connected:
            await asyncio.wait_for(conn.wait_connected(), TIMEOUT)
        yield task
    finally:
        await asyncio.wait_for(conn.close(), TIMEOUT)
        await asyncio.wait_for(task, TIMEOUT)


async def mosquitto_pub(
    broker: MosquittoBroker,
    topic: str,
    message: str | None = None,
    *,
    qos: int = 0,
    retain: bool = False,
    lines: Path | None = None,
) -> None:
    argv = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-t", topic, "-q", str(qos)]
    if retain:
        argv.append("-r")
    if lines is None:
        argv += ["-m", message or ""]
        process = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL)
    else:
        with lines.open("rb") as stdin:
            process = await asyncio.create_subprocess_exec(*argv, "-l", stdin=stdin)
    assert await asyncio.wait_for(process.wait(), 60) == 0


@contextlib.contextmanager
def stopped(broker: MosquittoBroker) -> Iterator[None]:
    """Freeze the broker process (SIGSTOP): sockets stay open, nothing is answered."""
    pid = broker.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


async def advance_until(clock: ManualClock, predicate: Callable[[], bool], what: str) -> None:
    """Move a manual clock in half-second steps (letting real I/O happen) until ``predicate``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await clock.advance(0.5)
        await asyncio.sleep(0.02)


# --- BrokerAddress and options ----------------------------------------------------------------


def test_broker_address_parse() -> None:
    assert BrokerAddress.parse("mqtt://broker.local:1884") == BrokerAddress("broker.local", 1884)
    assert BrokerAddress.parse("mqtts://col%40lector:p%3Ass@mq.example:8883") == BrokerAddress(
        "mq.example", 8883, "col@lector", "p:ss", tls=True
    )
    assert BrokerAddress.parse("mqtts://mq.example").port == 8883
    assert BrokerAddress.parse("10.0.0.5:1999") == BrokerAddress("10.0.0.5", 1999)
    assert BrokerAddress.parse("broker") == BrokerAddress("broker", 1883)
    assert BrokerAddress.parse("mqtt://[::1]:1883").host == "::1"
    assert "secret" not in repr(BrokerAddress.parse("mqtt://u:secret@h"))
    assert BrokerAddress.parse("mqtt://u:secret@h").url == "mqtt://h:1883"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://h:1883",
        "mqtt://",
        "mqtt://h:99999",
        "mqtt://h:port",
        "mqtt://h/x",
        "h:0",
        "mqtt://h?q=1",
    ],
)
def test_broker_address_parse_rejects_junk(url: str) -> None:
    with pytest.raises(ValueError, match="broker"):
        BrokerAddress.parse(url)


def test_session_options_and_subscriptions_are_validated() -> None:
    with pytest.raises(ValueError, match="client id"):
        SessionOptions("")
    with pytest.raises(ValueError, match="keepalive"):
        SessionOptions("c", keepalive_s=70_000)
    with pytest.raises(ValueError, match="QoS"):
        MqttConnection(
            BrokerAddress("h"),
            SessionOptions("c"),
            subscriptions=[("t/#", 2)],
            on_messages=Inbox(),
            clock=SystemClock(),
        )


# --- receiving --------------------------------------------------------------------------------


async def test_receives_qos0_and_qos1_from_mosquitto_pub(broker: MosquittoBroker) -> None:
    inbox = Inbox()
    sessions: list[bool] = []
    conn = connection(
        broker, inbox, subscriptions=(("t/#", 1), ("low/#", 0)), on_connected=sessions.append
    )
    async with running(conn):
        assert conn.is_connected
        assert sessions == [False]  # first connect: the broker had no session for us
        await mosquitto_pub(broker, "t/zero", "a", qos=0)
        await mosquitto_pub(broker, "t/one", "b", qos=1)
        await mosquitto_pub(broker, "low/one", "c", qos=1)  # downgraded by our subscription
        await inbox.wait_for(3)
    assert inbox.messages == [
        InboundMessage("t/zero", b"a", 0, False),
        InboundMessage("t/one", b"b", 1, False),
        InboundMessage("low/one", b"c", 0, False),
    ]
    assert conn.stats.messages_received == 3
    assert conn.stats.connects == 1
    assert conn.stats.disconnects == 1  # the close
    assert not conn.is_connected


async def test_receives_from_another_connection(broker: MosquittoBroker) -> None:
    inbox = Inbox()
    subscriber = connection(broker, inbox, client_id="sub")
    publisher = connection(broker, Inbox(), client_id="pub", subscriptions=())
    async with running(subscriber), running(publisher):
        first = publisher.publish("t/a", b"zero", qos=0)
        assert first.done()  # QoS 0: done once written
        await asyncio.wait_for(publisher.publish("t/b", b"one", qos=1), TIMEOUT)
        await inbox.wait_for(2)
        assert publisher.stats.publishes_sent == 2
    assert inbox.messages == [
        InboundMessage("t/a", b"zero", 0, False),
        InboundMessage("t/b", b"one", 1, False),
    ]


async def test_retained_message_delivered_on_subscribe(broker: MosquittoBroker) -> None:
    await mosquitto_pub(broker, "t/dev-1/status", "online", qos=1, retain=True)
    inbox = Inbox()
    async with running(connection(broker, inbox)):
        await inbox.wait_for(1)
        assert inbox.messages[0] == InboundMessage("t/dev-1/status", b"online", 1, True)
        # A retained publish to a live subscription is forwarded as an ordinary message.
        await mosquitto_pub(broker, "t/dev-1/status", "stopped", qos=1, retain=True)
        await inbox.wait_for(2)
        assert inbox.messages[1] == InboundMessage("t/dev-1/status", b"stopped", 1, False)


async def test_handler_exception_keeps_connection_and_still_acknowledges(
    broker: MosquittoBroker, caplog: pytest.LogCaptureFixture
) -> None:
    received: list[InboundMessage] = []

    def failing(messages: list[InboundMessage]) -> None:
        received.extend(messages)
        raise RuntimeError("handler bug")

    conn = MqttConnection(
        BrokerAddress.parse(broker.url),
        SessionOptions("failing"),
        subscriptions=[("t/#", 1)],
        on_messages=failing,
        clock=SystemClock(),
    )
    lines = Path(broker.directory) / "lines.txt"
    lines.write_text("".join(f"m{i}\n" for i in range(300)))
    with caplog.at_level(logging.ERROR, logger="collector.mqtt.client"):
        async with running(conn):
            await mosquitto_pub(broker, "t/x", qos=1, lines=lines)
            await eventually(lambda: len(received) == 300, what="300 messages")
            assert conn.is_connected
            assert conn.stats.connects == 1
    assert [m.payload for m in received] == [f"m{i}".encode() for i in range(300)]
    assert any(r.getMessage().startswith("mqtt.handler_failed") for r in caplog.records)
    # Every message was acknowledged: back in the same session, the broker resends none of them.
    inbox = Inbox()
    sessions: list[bool] = []
    again = connection(broker, inbox, client_id="failing", on_connected=sessions.append)
    async with running(again):
        await mosquitto_pub(broker, "t/x", "marker", qos=1)
        await inbox.wait_for(1)
    assert sessions == [True]
    assert inbox.payloads == [b"marker"]


async def test_burst_of_20000_messages_arrives_complete_and_in_order(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    # Stay below 65,535: mosquitto_pub -l -q 1 (2.0.11) compares message ids that wrap there and
    # disconnects early, silently dropping the rest of a longer file.
    count = 20_000
    lines = tmp_path / "burst.txt"
    lines.write_text("".join(f'{{"seq":{i},"pad":"{"x" * 300}"}}\n' for i in range(count)))
    inbox = Inbox()
    conn = connection(broker, inbox, subscriptions=(("custos/v1/dev/+/hb", 1),))
    async with running(conn):
        await mosquitto_pub(broker, "custos/v1/dev/dev-0001/hb", qos=1, lines=lines)
        await inbox.wait_for(count, limit_s=60)
    expected = [f'{{"seq":{i},"pad":"{"x" * 300}"}}'.encode() for i in range(count)]
    assert inbox.payloads == expected
    assert conn.stats.messages_received == count
    assert inbox.calls < count  # messages come in lists per chunk, not one call each
    assert conn.stats.connects == 1


async def test_pause_reading_holds_delivery_and_resume_delivers_backlog(
    broker: MosquittoBroker,
) -> None:
    inbox = Inbox()
    subscriber = connection(broker, inbox, client_id="sub")
    publisher = connection(broker, Inbox(), client_id="pub", subscriptions=())
    async with running(subscriber), running(publisher):
        subscriber.pause_reading()
        read_before = subscriber.stats.bytes_received
        futures = [publisher.publish("t/p", str(i).encode(), qos=1) for i in range(200)]
        await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT)  # the broker took them all
        await asyncio.sleep(0.5)  # give the broker time to push them (a negative check)
        assert inbox.messages == []
        assert subscriber.stats.bytes_received == read_before  # the socket is not read at all
        subscriber.resume_reading()
        await inbox.wait_for(200)
        assert inbox.payloads == [str(i).encode() for i in range(200)]
        assert subscriber.stats.connects == 1


# --- publishing -------------------------------------------------------------------------------


async def test_publish_qos1_resolves_on_puback_and_reaches_mosquitto_sub(
    broker: MosquittoBroker,
) -> None:
    sub = await asyncio.create_subprocess_exec(
        "mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-t", "custos/v1/alerts",
        "-q", "1", "-C", "1", "-W", "10",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        conn = connection(broker, Inbox(), client_id="alerts", subscriptions=())
        async with running(conn):
            # mosquitto_sub says nothing when it has subscribed: publish until it has one (-C 1).
            for _ in range(100):
                future = conn.publish("custos/v1/alerts", b'{"alert":"panic"}', qos=1)
                assert not future.done()  # waits for the broker's PUBACK
                await asyncio.wait_for(future, TIMEOUT)
                assert future.result() is None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(sub.wait()), 0.1)
                if sub.returncode is not None:
                    break
        output, _ = await asyncio.wait_for(sub.communicate(), TIMEOUT)
        assert sub.returncode == 0
        assert output.splitlines() == [b'{"alert":"panic"}']
    finally:
        if sub.returncode is None:
            sub.kill()
            await sub.wait()


async def test_publish_while_not_connected_raises(broker: MosquittoBroker) -> None:
    disconnected = asyncio.Event()
    conn = connection(broker, Inbox(), on_disconnected=disconnected.set)
    with pytest.raises(NotConnected):
        conn.publish("t/x", b"before run")
    async with running(conn):
        conn.publish("t/x", b"fine", qos=0)
        broker.kill()
        await asyncio.wait_for(disconnected.wait(), TIMEOUT)
        assert not conn.is_connected
        with pytest.raises(NotConnected):
            conn.publish("t/x", b"while down")


async def test_inflight_qos1_fails_with_connection_lost_when_broker_killed(
    broker: MosquittoBroker,
) -> None:
    conn = connection(broker, Inbox(), subscriptions=())
    async with running(conn):
        with stopped(broker):  # no PUBACK can come back
            future = conn.publish("t/x", b"in flight", qos=1)
            broker.kill()
            with pytest.raises(ConnectionLost):
                await asyncio.wait_for(future, TIMEOUT)
        assert not conn.is_connected


async def test_publishes_beyond_receive_maximum_wait_their_turn(tmp_path: Path) -> None:
    # Mosquitto advertises max_inflight_messages as its Receive Maximum and answers a QoS 1
    # PUBLISH beyond it with "quota exceeded".
    with MosquittoBroker(tmp_path / "broker", extra_config=("max_inflight_messages 3",)) as broker:
        inbox = Inbox()
        subscriber = connection(broker, inbox, client_id="sub")
        publisher = connection(broker, Inbox(), client_id="pub", subscriptions=())
        async with running(subscriber), running(publisher):
            futures = [publisher.publish("t/q", str(i).encode(), qos=1) for i in range(500)]
            results = await asyncio.wait_for(
                asyncio.gather(*futures, return_exceptions=True), TIMEOUT
            )
            assert results == [None] * 500
            await inbox.wait_for(500)
            assert inbox.payloads == [str(i).encode() for i in range(500)]
            assert publisher.stats.connects == 1


# --- sessions and reconnects ------------------------------------------------------------------


async def test_persistent_session_delivers_what_was_published_while_away(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    first_inbox = Inbox()
    async with running(connection(broker, first_inbox, client_id="collector-1")):
        pass  # subscribed once, then a clean DISCONNECT; the session stays on the broker
    lines = tmp_path / "away.txt"
    lines.write_text("".join(f"away-{i}\n" for i in range(50)))
    await mosquitto_pub(broker, "t/away", qos=1, lines=lines)

    inbox = Inbox()
    sessions: list[bool] = []
    conn = connection(broker, inbox, client_id="collector-1", on_connected=sessions.append)
    async with running(conn):
        await inbox.wait_for(50)
        assert sessions == [True]
    assert inbox.payloads == [f"away-{i}".encode() for i in range(50)]
    assert first_inbox.messages == []


async def test_clean_start_discards_the_session(broker: MosquittoBroker) -> None:
    async with running(connection(broker, Inbox(), client_id="c-1")):
        pass
    await mosquitto_pub(broker, "t/away", "lost", qos=1)
    sessions: list[bool] = []
    inbox = Inbox()
    conn = connection(
        broker, inbox, client_id="c-1", clean_start=True, on_connected=sessions.append
    )
    async with running(conn):
        await mosquitto_pub(broker, "t/now", "live", qos=1)
        await inbox.wait_for(1)
    assert sessions == [False]
    assert inbox.payloads == [b"live"]


async def test_broker_restart_reconnects_resubscribes_and_receives(
    broker: MosquittoBroker,
) -> None:
    inbox = Inbox()
    sessions: list[bool] = []
    downs: list[None] = []
    backoff = fast_backoff()
    conn = connection(
        broker,
        inbox,
        on_connected=sessions.append,
        on_disconnected=lambda: downs.append(None),
        backoff=backoff,
    )
    async with running(conn):
        await mosquitto_pub(broker, "t/before", "1", qos=1)
        await inbox.wait_for(1)
        await asyncio.to_thread(broker.restart)  # persistence off: the session is gone
        await eventually(lambda: conn.stats.connects == 2 and conn.is_connected, what="reconnect")
        assert backoff.attempt == 0  # reset by the successful CONNACK
        await mosquitto_pub(broker, "t/after", "2", qos=1)
        await inbox.wait_for(2)
    assert inbox.payloads == [b"1", b"2"]
    assert sessions == [False, False]  # subscribed again although the broker forgot us
    assert len(downs) == 2  # the restart, then the close


async def test_session_taken_over_drops_the_old_connection(
    broker: MosquittoBroker, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()  # the first client's backoff waits until we move this clock
    first = connection(broker, Inbox(), client_id="same-id", clock=clock)
    second = connection(broker, Inbox(), client_id="same-id")
    with caplog.at_level(logging.WARNING, logger="collector.mqtt.client"):
        async with running(first):
            async with running(second):
                await eventually(lambda: not first.is_connected, what="takeover")
                assert first.stats.disconnects == 1
                assert second.is_connected
            await advance_until(clock, lambda: first.is_connected, "reconnect")
            assert first.stats.connects == 2
    # Mosquitto 2.0.11 just closes the old socket; it does not send DISCONNECT 0x8E.
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("mqtt.connection_lost name=same-id") for m in messages)


async def test_connect_refused_then_credentials_from_url(tmp_path: Path) -> None:
    passwords = tmp_path / "passwords"
    process = await asyncio.create_subprocess_exec(
        "mosquitto_passwd", "-b", "-c", str(passwords), "collector", "s3cret:x"
    )
    assert await process.wait() == 0
    config = ("allow_anonymous false", f"password_file {passwords}")
    with MosquittoBroker(tmp_path / "broker", extra_config=config) as broker:
        backoff = Backoff(initial=60.0, maximum=60.0)
        anonymous = connection(broker, Inbox(), client_id="anon", backoff=backoff)
        async with running(anonymous, connected=False):
            await eventually(lambda: backoff.attempt == 1, what="backoff after refusal")
            assert not anonymous.is_connected
            assert anonymous.stats.connects == 0
        url = f"mqtt://collector:s3cret%3Ax@{broker.host}:{broker.port}"
        inbox = Inbox()
        async with running(connection(broker, inbox, client_id="auth", url=url)):
            await mosquitto_pub_auth(broker, "t/auth", "ok")
            await inbox.wait_for(1)
        assert inbox.payloads == [b"ok"]


async def mosquitto_pub_auth(broker: MosquittoBroker, topic: str, message: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "mosquitto_pub",
        "-h",
        broker.host,
        "-p",
        str(broker.port),
        "-u",
        "collector",
        "-P",
        "s3cret:x",
        "-t",
        topic,
        "-m",
        message,
        "-q",
        "1",
    )
    assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0


async def test_will_is_published_on_abrupt_loss_but_not_on_close(broker: MosquittoBroker) -> None:
    observer_inbox = Inbox()
    observer = connection(broker, observer_inbox, client_id="observer", subscriptions=(("w/#", 1),))
    will = Will("w/agent/status", b"offline", qos=1)
    async with running(observer):
        polite = connection(broker, Inbox(), client_id="polite", subscriptions=(), will=will)
        async with running(polite):
            pass
        await mosquitto_pub(broker, "w/marker", "after close", qos=1)
        await observer_inbox.wait_for(1)
        assert observer_inbox.payloads == [b"after close"]  # no Last Will before the marker

        abrupt = connection(broker, Inbox(), client_id="abrupt", subscriptions=(), will=will)
        task = asyncio.create_task(abrupt.run())
        await asyncio.wait_for(abrupt.wait_connected(), TIMEOUT)
        task.cancel()  # cancellation closes the socket without DISCONNECT
        with pytest.raises(asyncio.CancelledError):
            await task
        await observer_inbox.wait_for(2)
        assert observer_inbox.messages[1] == InboundMessage("w/agent/status", b"offline", 1, False)


async def run_command(*argv: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    assert await asyncio.wait_for(process.wait(), 60) == 0, argv


async def test_mqtts_verifies_the_broker_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_key, ca_crt = tmp_path / "ca.key", tmp_path / "ca.crt"
    key, csr, crt = tmp_path / "server.key", tmp_path / "server.csr", tmp_path / "server.crt"
    extensions = tmp_path / "ext.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    await run_command("openssl", "req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_crt),
                      "-days", "1", "-subj", "/CN=Custos test CA")  # fmt: skip
    await run_command("openssl", "req", *ec, "-keyout", str(key), "-out", str(csr),
                      "-subj", "/CN=127.0.0.1")  # fmt: skip
    await run_command("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_crt),
                      "-CAkey", str(ca_key), "-CAcreateserial", "-out", str(crt), "-days", "1",
                      "-extfile", str(extensions))  # fmt: skip
    tls = (f"cafile {ca_crt}", f"certfile {crt}", f"keyfile {key}")
    with MosquittoBroker(tmp_path / "broker", extra_config=tls) as broker:
        url = f"mqtts://{broker.host}:{broker.port}"
        assert BrokerAddress.parse(url).tls
        # The system CAs do not know our test CA: the handshake fails and the client retries.
        backoff = Backoff(initial=60.0, maximum=60.0)
        untrusting = connection(broker, Inbox(), client_id="untrusting", url=url, backoff=backoff)
        async with running(untrusting, connected=False):
            await eventually(lambda: backoff.attempt == 1, what="failed TLS handshake")
            assert untrusting.stats.connects == 0
        # OpenSSL reads SSL_CERT_FILE when ssl.create_default_context() loads the default CAs.
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_crt))
        inbox = Inbox()
        trusting = connection(broker, inbox, client_id="trusting", url=url)
        async with running(trusting):
            await asyncio.wait_for(trusting.publish("t/tls", b"secret", qos=1), TIMEOUT)
            await inbox.wait_for(1)
        assert inbox.messages == [InboundMessage("t/tls", b"secret", 1, False)]


# --- keepalive --------------------------------------------------------------------------------


async def test_keepalive_pings_when_idle_and_stays_connected(broker: MosquittoBroker) -> None:
    clock = ManualClock()
    conn = connection(broker, Inbox(), clock=clock, keepalive_s=10)
    async with running(conn):
        await clock.advance(9.9)
        assert conn.stats.pings_sent == 0
        received = conn.stats.bytes_received
        await clock.advance(0.2)
        assert conn.stats.pings_sent == 1
        await eventually(lambda: conn.stats.bytes_received == received + 2, what="PINGRESP")
        for _ in range(5):  # an idle minute: a ping every 10 s, each answered
            await clock.advance(10.0)
            expected = received + 2 * conn.stats.pings_sent
            await eventually(lambda: conn.stats.bytes_received == expected, what="PINGRESP")  # noqa: B023
        assert conn.stats.pings_sent == 6
        assert conn.is_connected
        assert conn.stats.connects == 1


async def test_server_keep_alive_overrides_ours(tmp_path: Path) -> None:
    with MosquittoBroker(tmp_path / "broker", extra_config=("max_keepalive 10",)) as broker:
        clock = ManualClock()
        conn = connection(broker, Inbox(), clock=clock, keepalive_s=60)
        async with running(conn):
            await clock.advance(10.1)
            assert conn.stats.pings_sent == 1


async def test_broker_enforces_keepalive_and_our_pings_satisfy_it(broker: MosquittoBroker) -> None:
    # Mosquitto drops a client silent for 1.5 x keepalive (checked coarsely: about 6 s for a
    # keepalive of 1 s). A client whose clock never moves sends no PINGREQ and is dropped; one
    # whose clock follows real time is kept.
    frozen_clock = ManualClock()
    silent = connection(broker, Inbox(), client_id="silent", clock=frozen_clock, keepalive_s=1)
    clock = ManualClock()
    pinging = connection(broker, Inbox(), client_id="pinging", clock=clock, keepalive_s=1)
    async with running(silent), running(pinging):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20.0
        while silent.stats.disconnects == 0:
            assert loop.time() < deadline, "Mosquitto never dropped the silent client"
            await asyncio.sleep(0.25)
            await clock.advance(0.25)
        assert pinging.is_connected
        assert pinging.stats.disconnects == 0
        assert pinging.stats.pings_sent >= 3


async def test_unanswered_ping_drops_the_connection_and_reconnects(
    broker: MosquittoBroker, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    downs: list[None] = []
    conn = connection(
        broker, Inbox(), clock=clock, keepalive_s=10, on_disconnected=lambda: downs.append(None)
    )
    with caplog.at_level(logging.WARNING, logger="collector.mqtt.client"):
        async with running(conn):
            with stopped(broker):
                await clock.advance(10.0)
                assert conn.stats.pings_sent == 1
                await clock.advance(14.9)  # 1.5 x keepalive after the PINGREQ is not over yet
                assert conn.is_connected
                await clock.advance(0.2)
                await eventually(lambda: not conn.is_connected, what="keepalive timeout")
                assert downs == [None]
            # The broker answers again; the client reconnects after its backoff.
            await advance_until(clock, lambda: conn.is_connected, "reconnect")
            assert conn.stats.connects == 2
    assert any(r.getMessage().startswith("mqtt.keepalive_timeout") for r in caplog.records)


# --- a broker that misbehaves -----------------------------------------------------------------


class FakeBroker:
    """A TCP server that answers CONNECT with ``connack`` and then sends ``after_connack``.

    Only for what a real Mosquitto never does (malformed packets) or cannot show (how many
    publishes a client has in flight)."""

    def __init__(
        self, after_connack: bytes = b"", connack: bytes = b"\x20\x03\x00\x00\x00"
    ) -> None:
        self.connack = connack
        self.after_connack = after_connack
        self.connections: list[bytearray] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received = bytearray()
        self.connections.append(received)
        self.writers.append(writer)
        received += await reader.read(1024)  # the CONNECT
        writer.write(self.connack + self.after_connack)
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(1024):
                received += chunk
        writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port


async def test_malformed_packet_is_a_protocol_error_then_reconnect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeBroker(after_connack=bytes.fromhex("30 ff ff ff ff 01"))
    fake.server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    inbox = Inbox()
    conn = MqttConnection(
        BrokerAddress("127.0.0.1", fake.port),
        SessionOptions("victim"),
        subscriptions=[],
        on_messages=inbox,
        clock=SystemClock(),
        backoff=fast_backoff(),
    )
    with caplog.at_level(logging.ERROR, logger="collector.mqtt.client"):
        async with fake.server, running(conn, connected=False) as task:
            await eventually(lambda: conn.stats.protocol_errors >= 2, what="two protocol errors")
            assert not task.done()  # run() survives and keeps reconnecting
            assert len(fake.connections) >= 2
            # We told the broker why: DISCONNECT with reason 0x81 (malformed packet).
            await eventually(lambda: fake.connections[0].endswith(b"\xe0\x01\x81"))
    assert any(r.getMessage().startswith("mqtt.protocol_error") for r in caplog.records)
    assert inbox.messages == []


async def test_packet_larger_than_our_maximum_is_a_protocol_error() -> None:
    huge_publish = bytes((0x30,)) + bytes.fromhex("80 80 80 01")  # 2 MiB announced
    fake = FakeBroker(after_connack=huge_publish)
    fake.server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    conn = MqttConnection(
        BrokerAddress("127.0.0.1", fake.port),
        SessionOptions("victim", max_packet_size=1024 * 1024),
        subscriptions=[],
        on_messages=Inbox(),
        clock=SystemClock(),
        backoff=fast_backoff(),
    )
    async with fake.server, running(conn, connected=False):
        await eventually(lambda: conn.stats.protocol_errors >= 1, what="protocol error")
        await eventually(lambda: fake.connections[0].endswith(b"\xe0\x01\x95"))


async def test_server_disconnect_is_logged_with_its_reason_then_reconnect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeBroker(after_connack=bytes.fromhex("e0 01 8e"))  # session taken over
    fake.server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    conn = MqttConnection(
        BrokerAddress("127.0.0.1", fake.port),
        SessionOptions("taken"),
        subscriptions=[],
        on_messages=Inbox(),
        clock=SystemClock(),
        backoff=fast_backoff(),
        name="taken",
    )
    with caplog.at_level(logging.WARNING, logger="collector.mqtt.client"):
        async with fake.server, running(conn, connected=False):
            await eventually(lambda: len(fake.connections) >= 2, what="reconnect")
    assert conn.stats.protocol_errors == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        m.startswith("mqtt.server_disconnect name=taken")
        and "reason=0x8e (session taken over)" in m
        for m in messages
    )


async def test_receive_maximum_limits_publishes_in_flight() -> None:
    # CONNACK with Receive Maximum 2. (Mosquitto acknowledges at once, so it cannot show this.)
    fake = FakeBroker(connack=bytes.fromhex("20 06 00 00 03 21 0002"))
    fake.server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    conn = MqttConnection(
        BrokerAddress("127.0.0.1", fake.port),
        SessionOptions("limited"),
        subscriptions=[],
        on_messages=Inbox(),
        clock=SystemClock(),
    )

    def published() -> list[bytes]:
        return [m.payload for m in PacketDecoder().feed(bytes(fake.connections[0])).messages]

    async with fake.server, running(conn):
        futures = [conn.publish("t/q", str(i).encode(), qos=1) for i in range(5)]
        await eventually(lambda: len(published()) == 2, what="two publishes")
        await asyncio.sleep(0.2)  # a negative check: nothing more goes out without a PUBACK
        assert published() == [b"0", b"1"]
        fake.writers[0].write(bytes.fromhex("40 02 0001"))  # PUBACK for packet id 1
        await asyncio.wait_for(futures[0], TIMEOUT)
        await eventually(lambda: len(published()) == 3, what="the third publish")
        fake.writers[0].write(bytes.fromhex("40 03 0002 97"))  # quota exceeded
        with pytest.raises(PublishRefused) as refused:
            await asyncio.wait_for(futures[1], TIMEOUT)
        assert refused.value.reason_code == 0x97
        await eventually(lambda: published() == [b"0", b"1", b"2", b"3"], what="the fourth")
        assert not futures[4].done()
    with pytest.raises(ConnectionLost):  # still queued when the connection closed
        await futures[4]
