"""The collector's MQTT 5 client against a real Mosquitto on real sockets: the broker address and
session options, receiving, publishing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import pytest

from collector.mqtt import (
    BrokerAddress,
    ConnectionLost,
    InboundMessage,
    MqttConnection,
    NotConnected,
    SessionOptions,
)
from protocol.clock import SystemClock
from simulators.broker import MosquittoBroker
from tests.helpers import eventually
from tests.mqtt_support import (
    TIMEOUT,
    Inbox,
    connection,
    mosquitto_pub,
    running,
    stopped,
)

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


async def test_inflight_qos1_is_sent_again_after_the_broker_dies_and_arrives(
    tmp_path: Path,
) -> None:
    # A broker that keeps sessions on disk: both sessions survive its death, so the publish
    # lost with it goes out again with its packet id and DUP, and reaches the subscriber.
    with MosquittoBroker(tmp_path / "broker", persistence=True) as broker:
        inbox = Inbox()
        subscriber = connection(broker, inbox, client_id="sub")
        publisher = connection(broker, Inbox(), client_id="pub", subscriptions=())
        async with running(subscriber), running(publisher):
            await eventually(
                lambda: (broker.directory / "mosquitto.db").exists(), what="sessions saved"
            )
            with stopped(broker):  # no PUBACK can come back
                future = publisher.publish("t/x", b"in flight", qos=1)
                broker.kill()
            assert not future.done()
            broker.start()
            await asyncio.wait_for(future, TIMEOUT)
            await inbox.wait_for(1)
            assert inbox.payloads == [b"in flight"]
            assert publisher.stats.connects == 2


async def test_pending_qos1_fails_with_connection_lost_when_the_connection_closes(
    broker: MosquittoBroker,
) -> None:
    conn = connection(broker, Inbox(), subscriptions=())
    async with running(conn):
        with stopped(broker):
            future = conn.publish("t/x", b"never acknowledged", qos=1)
            await asyncio.wait_for(conn.close(), TIMEOUT)
    with pytest.raises(ConnectionLost):
        await asyncio.wait_for(future, TIMEOUT)


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
