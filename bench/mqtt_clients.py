"""Receive throughput of MQTT client libraries, for the choice of the collector's client.

Run as ``python -m bench.mqtt_clients [N]``: for each candidate, N event-sized QoS 1 messages are
queued at the broker for a persistent session while it is away, then the candidate connects and
drains them (a PUBACK each, every payload parsed as JSON as ingest would). Each rate is divided by
``mosquitto_sub`` draining the same queue. Candidates: the collector's client (``mqtt5`` codec),
paho-mqtt 2.x driven from asyncio through its socket callbacks (as aiomqtt does), and gmqtt
(acknowledging before the handler, and after it) when it is installed (``pip install gmqtt``).
Two rounds; the best of each counts. Not part of ``custos-bench``: it compares libraries, not
the product (``custos-bench --only ingest,fleet`` measures the collector with its client).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from simulators.broker import MosquittoBroker

TOPIC = "custos/v1/devices/ir-00001/events"
Drain = Callable[[MosquittoBroker, str, int], Coroutine[Any, Any, float]]


def _payload(seq: int) -> bytes:
    return json.dumps(
        {
            "device_id": "ir-00001",
            "boot_id": "8d3b2f7e-1c55-4a3e-9b55-2f1c6a0e9f11",
            "seq": seq,
            "at": "2026-12-04T01:02:03.456789+00:00",
            "mono": 1234.5,
            "clock_synced": True,
            "body": {"type": "presence.detected", "input": "pir"},
        }
    ).encode()


def _mosquitto(tool: str, broker: MosquittoBroker, *args: str, **kwargs: Any) -> None:
    common = ["-h", broker.host, "-p", str(broker.port), "-V", "mqttv5", "-q", "1"]
    subprocess.run([tool, *common, *args], check=True, **kwargs)


def queue_for(broker: MosquittoBroker, client_id: str, count: int, directory: Path) -> None:
    """A persistent session subscribed to TOPIC, then ``count`` messages queued for it."""
    _mosquitto("mosquitto_sub", broker, "-c", "-i", client_id, "-t", TOPIC, "-x", "3600", "-E")
    lines = directory / "lines"
    lines.write_bytes(b"".join(_payload(seq) + b"\n" for seq in range(count)))
    with lines.open("rb") as stdin:
        _mosquitto("mosquitto_pub", broker, "-t", TOPIC, "-l", stdin=stdin)


async def drain_mosquitto_sub(broker: MosquittoBroker, client_id: str, count: int) -> float:
    started = time.perf_counter()
    _mosquitto(
        "mosquitto_sub", broker, "-c", "-i", client_id, "-t", TOPIC, "-x", "3600",
        "-C", str(count), stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - started


async def drain_collector_client(broker: MosquittoBroker, client_id: str, count: int) -> float:
    from collector.mqtt import BrokerAddress, InboundMessage, MqttConnection, SessionOptions
    from protocol.clock import SystemClock

    received = 0
    done = asyncio.Event()

    def on_messages(messages: list[InboundMessage]) -> None:
        nonlocal received
        for message in messages:
            json.loads(message.payload)
        received += len(messages)
        if received >= count:
            done.set()

    connection = MqttConnection(
        BrokerAddress(broker.host, broker.port),
        SessionOptions(client_id=client_id, session_expiry_s=3600),
        subscriptions=[(TOPIC, 1)],
        on_messages=on_messages,
        clock=SystemClock(),
    )
    started = time.perf_counter()
    task = asyncio.create_task(connection.run())
    await done.wait()
    elapsed = time.perf_counter() - started
    await connection.close()
    await task
    return elapsed


async def drain_paho(broker: MosquittoBroker, client_id: str, count: int) -> float:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    loop = asyncio.get_running_loop()
    received = 0
    done = asyncio.Event()
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
    )

    def on_message(_client: Any, _data: Any, message: Any) -> None:
        nonlocal received
        json.loads(message.payload)
        received += 1
        if received >= count:
            done.set()

    def on_connect(session: Any, *_: Any) -> None:
        session.subscribe(TOPIC, qos=1)

    client.on_message = on_message
    client.on_connect = on_connect

    def opened(session: Any, _data: Any, sock: Any) -> None:
        loop.add_reader(sock, session.loop_read)

    def closed(_session: Any, _data: Any, sock: Any) -> None:
        loop.remove_reader(sock)

    def wants_write(session: Any, _data: Any, sock: Any) -> None:
        loop.add_writer(sock, session.loop_write)

    def written(_session: Any, _data: Any, sock: Any) -> None:
        loop.remove_writer(sock)

    client.on_socket_open = opened
    client.on_socket_close = closed
    client.on_socket_register_write = wants_write
    client.on_socket_unregister_write = written
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 3600
    started = time.perf_counter()
    client.connect(broker.host, broker.port, keepalive=30, clean_start=False, properties=properties)

    async def housekeeping() -> None:
        while True:
            client.loop_misc()
            await asyncio.sleep(1)

    misc = asyncio.create_task(housekeeping())
    await done.wait()
    elapsed = time.perf_counter() - started
    misc.cancel()
    client.disconnect()
    return elapsed


async def _drain_gmqtt(
    broker: MosquittoBroker, client_id: str, count: int, *, ack_after_handler: bool
) -> float:
    import gmqtt  # type: ignore[import-not-found]

    received = 0
    done = asyncio.Event()

    def handle(_client: Any, _topic: Any, payload: bytes, _qos: int, _props: Any) -> int:
        nonlocal received
        json.loads(payload)
        received += 1
        if received >= count:
            done.set()
        return 0

    async def handle_then_ack(*args: Any) -> int:
        return handle(*args)

    # Acknowledging after the handler needs a coroutine handler: gmqtt then acknowledges when
    # the coroutine's task is done (a plain function would never be acknowledged).
    client = gmqtt.Client(
        client_id,
        clean_session=False,
        optimistic_acknowledgement=not ack_after_handler,
        session_expiry_interval=3600,
    )
    client.on_message = handle_then_ack if ack_after_handler else handle
    started = time.perf_counter()
    await client.connect(broker.host, broker.port, keepalive=30)
    client.subscribe(TOPIC, qos=1)
    await done.wait()
    elapsed = time.perf_counter() - started
    await client.disconnect()
    return elapsed


async def drain_gmqtt(broker: MosquittoBroker, client_id: str, count: int) -> float:
    return await _drain_gmqtt(broker, client_id, count, ack_after_handler=False)


async def drain_gmqtt_ack_after(broker: MosquittoBroker, client_id: str, count: int) -> float:
    return await _drain_gmqtt(broker, client_id, count, ack_after_handler=True)


CANDIDATES: dict[str, Drain] = {
    "mosquitto_sub": drain_mosquitto_sub,
    "collector client (mqtt5 codec)": drain_collector_client,
    "paho-mqtt 2.x on asyncio": drain_paho,
    "gmqtt, ack before handler": drain_gmqtt,
    "gmqtt, ack after handler": drain_gmqtt_ack_after,
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    count = int(args[0]) if args else 20_000
    have_gmqtt = importlib.util.find_spec("gmqtt") is not None
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch, MosquittoBroker(Path(scratch)) as broker:
        for round_no in range(2):
            for name, drain in CANDIDATES.items():
                if name.startswith("gmqtt") and not have_gmqtt:
                    continue
                client_id = f"bench-{len(best)}-{round_no}-{abs(hash(name)) % 10_000}"
                queue_for(broker, client_id, count, Path(scratch))
                seconds: float = asyncio.run(drain(broker, client_id, count))
                best[name] = max(best.get(name, 0.0), count / seconds)
    reference = best["mosquitto_sub"]
    print(f"{'client':<32} {'msg/s':>10}  / mosquitto_sub   ({count:,} QoS 1 messages drained)")
    for name, rate in best.items():
        print(f"{name:<32} {rate:>10,.0f}  {rate / reference:.2f}")
    if not have_gmqtt:
        print("gmqtt: not installed (pip install gmqtt to measure it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
