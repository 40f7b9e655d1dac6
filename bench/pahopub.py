"""The library floor of the agent's publish path: paho-mqtt alone publishing lines at QoS 1.

Run as ``python -m bench.pahopub --port P --topic T --lines FILE``: one MQTT 5 connection, every
line of FILE published at QoS 1 with at most ``--window`` unacknowledged (the agent's default
window), driven through paho's external-loop API as the agent drives it, until the broker has
acknowledged every one. The parent measures this process's CPU with ``wait4``: what any Python
agent built on paho pays per message before doing anything of its own.
"""

from __future__ import annotations

import argparse
import select
import sys
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode


def publish_all(host: str, port: int, topic: str, payloads: list[bytes], window: int) -> int:
    """Publish every payload at QoS 1; return how many the broker acknowledged."""
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="bench-paho-floor",
        protocol=paho.MQTTv5,
    )
    client.max_inflight_messages_set(0)  # the window below bounds what is in flight
    acked = 0

    def on_publish(
        _client: paho.Client, _data: object, _mid: int, _reason: ReasonCode, _props: object
    ) -> None:
        nonlocal acked
        acked += 1

    client.on_publish = on_publish
    client.connect(host, port, keepalive=30)
    sent = 0
    rounds = 0
    while acked < len(payloads):
        rounds += 1
        if rounds > 10 * len(payloads) + 1000:
            break  # bounded: a broker that stops answering ends the run, short
        if client.is_connected():
            while sent < len(payloads) and sent - acked < window:
                client.publish(topic, payloads[sent], qos=1)
                sent += 1
        sock = client.socket()
        if sock is None:
            break
        readable, writable, _ = select.select(
            [sock], [sock] if client.want_write() else [], [], 1.0
        )
        if readable and client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS:
            break
        if writable and client.loop_write() != MQTTErrorCode.MQTT_ERR_SUCCESS:
            break
        client.loop_misc()
    client.disconnect()
    return acked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pahopub", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--lines", type=Path, required=True)
    parser.add_argument("--window", type=int, default=256)
    args = parser.parse_args(argv)
    payloads = args.lines.read_bytes().splitlines()
    acked = publish_all(args.host, args.port, args.topic, payloads, args.window)
    return 0 if acked == len(payloads) else 1


if __name__ == "__main__":
    sys.exit(main())
