"""Hostile input on what the agent subscribes to never stops the agent (issue 9, point 9).

- End to end through Mosquitto: a retained collector status whose time has no UTC equivalent, a
  retained ack with the same time, and live acks that are malformed, out of range, for another
  device, too deep or too big, and a command. The real agent starts, keeps running, delivers its
  events, counts every refusal by reason in its heartbeat and logs it; it starts again with the
  poison still retained.
- A bounded fuzz of every handler of an incoming message (ack, collector status, command, any
  other topic, topics that are not UTF-8), fed as paho messages through the agent's real path
  (``link_event_of`` → ``Agent.on_link_event`` → the handlers) of a running agent with a real
  broker and collector: no example raises, each is either acted on or counted, and afterwards
  the agent still delivers and its heartbeat carries the counts.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.mqtt import MqttConnection
from edge_agent.uplink.link import link_event_of
from protocol.topics import COLLECTOR_STATUS_TOPIC
from simulators.broker import MosquittoBroker
from simulators.room import SimulatedRoom
from simulators.site import enroll_rooms
from tests.helpers import (
    RunningCollector,
    eventually,
    make_room,
    mosquitto_pub,
    outbox_rows,
)
from tests.mqtt_support import Inbox, connection, running

DEVICE = "ir-101"
ACK_TOPIC = f"custos/v1/dev/{DEVICE}/ack"
CMD_TOPIC = f"custos/v1/dev/{DEVICE}/cmd"
HB_TOPIC = f"custos/v1/dev/{DEVICE}/hb"
NO_UTC_TIME = "0001-01-01T00:00:00+14:00"
"""A valid ISO time with an offset, whose UTC instant would be in year 0."""
CI_EXAMPLES = 3000
SLOW_EXAMPLES = 30_000


def _ack(**overrides: object) -> dict[str, Any]:
    ack: dict[str, Any] = {
        "schema_version": 1,
        "type": "ack",
        "device_id": DEVICE,
        "upto": 1,
        "also": [],
        "at": datetime.now(UTC).isoformat(),
    }
    ack.update(overrides)
    return ack


def _collector_status(**overrides: object) -> dict[str, Any]:
    status: dict[str, Any] = {
        "schema_version": 1,
        "type": "collector_status",
        "state": "online",
        "instance": str(uuid.uuid4()),
        "at": datetime.now(UTC).isoformat(),
    }
    status.update(overrides)
    return status


def _json(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def _hb_watcher(broker: MosquittoBroker, inbox: Inbox) -> MqttConnection:
    return connection(
        broker,
        inbox,
        client_id=f"hb-watcher-{uuid.uuid4().hex[:6]}",
        subscriptions=((HB_TOPIC, 0),),
        clean_start=True,
    )


async def _heartbeat_with(inbox: Inbox, expected: dict[str, int]) -> dict[str, Any] | None:
    for message in reversed(inbox.messages):
        heartbeat = json.loads(message.payload)
        if heartbeat.get("rejected_inbound") == expected:
            return dict(heartbeat)
    return None


async def _delivers_a_door_event(room: SimulatedRoom, collector: RunningCollector) -> None:
    """The agent still does its job: a door opened now reaches the collector and is acked."""
    before = outbox_rows(room.config.storage.data_dir)[-1][0]
    room.act("door.open")

    async def stored() -> int | None:
        for event in await collector.events(room.device_id):
            if event["type"] == "door.opened" and event["seq"] > before:
                return int(event["seq"])
        return None

    seq = await eventually(stored, what="the door event at the collector")

    async def acked() -> bool:
        state = room.agent.state
        return state is not None and state.outbox.acked_seq >= seq

    await eventually(acked, what="the ack back at the agent")
    room.act("door.close")


# --- end to end ---------------------------------------------------------------------------------


async def test_poisoned_retained_messages_and_bad_acks_leave_the_agent_running_and_delivering(
    broker: MosquittoBroker,
    collector: RunningCollector,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="edge_agent.uplink.inbound")
    room = make_room(broker.url, collector.url, tmp_path)
    await enroll_rooms([room], collector.url)
    # Retained, so every agent that subscribes gets them, at every start.
    await mosquitto_pub(
        broker.port, COLLECTOR_STATUS_TOPIC, _json(_collector_status(at=NO_UTC_TIME)), retain=True
    )
    await mosquitto_pub(broker.port, ACK_TOPIC, _json(_ack(at=NO_UTC_TIME)), retain=True)
    inbox = Inbox()
    async with running(_hb_watcher(broker, inbox)):
        await room.start()
        try:
            live: list[tuple[str, bytes]] = [
                (ACK_TOPIC, b'{"schema_version": 1, "type": "ack", "upto": '),
                (ACK_TOPIC, _json(_ack(upto=10**30))),
                (ACK_TOPIC, _json(_ack(device_id="ir-102", upto=10_000))),
                (ACK_TOPIC, b"\xff\xfe\x00ack"),
                (ACK_TOPIC, b"[" * 5000 + b"]" * 5000),
                (ACK_TOPIC, _json(_ack(also=["x" * 70_000]))),
                (CMD_TOPIC, b'{"command": "self-test"}'),
                (COLLECTOR_STATUS_TOPIC, _json(_collector_status(state="rebooting"))),
            ]
            for topic, payload in live:
                await mosquitto_pub(broker.port, topic, payload)
            expected = {
                "invalid": 4,  # the two retained, the 10**30 ack and the unknown state
                "malformed_json": 2,
                "foreign_device": 1,
                "too_deep": 1,
                "oversized": 1,
                "unsupported_command": 1,
            }

            async def all_counted() -> bool:
                state = room.agent.state
                return state is not None and state.inbound.rejections.counts() == expected

            await _delivers_a_door_event(room, collector)
            assert room.running, "the agent stopped"
            await eventually(all_counted, what="every refusal counted")
            heartbeat = await eventually(
                lambda: _heartbeat_with(inbox, expected), what="a heartbeat with the counts"
            )
            assert heartbeat["device_id"] == DEVICE
        finally:
            await room.stop()
    for reason in expected:
        assert any(
            "uplink.inbound_rejected" in record.getMessage()
            and f"reason={reason} " in record.getMessage()
            for record in caplog.records
        ), f"no log line for {reason}"
    # The collector read the heartbeats with the new field as heartbeats, not as bad input.
    assert collector.query("SELECT COUNT(*) FROM quarantine WHERE topic = ?", HB_TOPIC) == [(0,)]

    # A restart with the poisoned presence still retained: the agent starts and works again.
    again = make_room(broker.url, collector.url, tmp_path)
    await again.start()
    try:

        async def poison_seen() -> bool:
            state = again.agent.state
            return state is not None and state.inbound.rejections.counts().get("invalid", 0) >= 1

        await eventually(poison_seen, what="the retained poison refused after the restart")
        assert again.running
        await _delivers_a_door_event(again, collector)
    finally:
        await again.stop()


# --- the fuzz -----------------------------------------------------------------------------------

TOPICS = [ACK_TOPIC, ACK_TOPIC, COLLECTOR_STATUS_TOPIC, COLLECTOR_STATUS_TOPIC, CMD_TOPIC,
          "custos/v1/dev/ir-102/ack", "custos/v1/alerts", f"{ACK_TOPIC}/x"]  # fmt: skip
EDGE_INTS = [0, 1, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30]
EDGE_TEXT = [
    NO_UTC_TIME, "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59+00:00", "1969-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z", "2024-02-30T00:00:00Z", "2024-01-01T00:00:00", "0000-01-01T00:00:00Z",
    "online", "offline", "ack", "collector_status", DEVICE, "ir-102", "", "\x00", "x" * 300,
    str(uuid.UUID(int=0)), "00000000-0000-0000-0000-00000000000g",
]  # fmt: skip
RAW_TOKENS = ["NaN", "Infinity", "-1e999", "1E400", "9" * 400, "1" * 5000, "-0",
              "[" * 40 + "]" * 40, "[" * 3000 + "]" * 3000, '{"a":' * 1000 + "1" + "}" * 1000]  # fmt: skip
RAW = "__raw_token_{}__"

_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(EDGE_INTS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(EDGE_TEXT),
    st.sampled_from(range(len(RAW_TOKENS))).map(RAW.format),
)
_values = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.text(max_size=8) | st.sampled_from(["type", "at", "upto"]), children, max_size=3
        )
    ),
    max_leaves=8,
)


@dataclass(frozen=True)
class Mutation:
    kind: str  # replace, delete or add
    path_choice: int
    key: str
    value: Any

    def apply(self, tree: Any) -> Any:
        paths = _paths(tree)
        path = paths[self.path_choice % len(paths)]
        if not path:
            return self.value if self.kind == "replace" else tree
        parent = tree
        for part in path[:-1]:
            parent = parent[part]
        if self.kind == "replace":
            parent[path[-1]] = self.value
        elif self.kind == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[self.key] = self.value
        return tree


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            found += _paths(value, (*prefix, index))
    return found


def _render(tree: Any) -> bytes:
    text = json.dumps(tree, ensure_ascii=False)
    for index, token in enumerate(RAW_TOKENS):
        text = text.replace(json.dumps(RAW.format(index)), token)
    return text.encode("utf-8", errors="surrogatepass")


_mutations = st.builds(
    Mutation,
    kind=st.sampled_from(["replace", "replace", "delete", "add"]),
    path_choice=st.integers(min_value=0, max_value=50),
    key=st.text(max_size=8) | st.sampled_from(["upto", "also", "at", "state", "instance"]),
    value=_values,
)


@st.composite
def _json_payloads(draw: st.DrawFn) -> bytes:
    template = draw(
        st.sampled_from(["ack", "collector_status"]).map(
            lambda kind: (
                _ack(upto=0, also=[2, 3]) if kind == "ack" else _collector_status(state="offline")
            )
        )
    )
    if template["type"] == "ack":
        template["upto"] = draw(st.integers(min_value=0, max_value=60))
    else:
        template["state"] = draw(st.sampled_from(["online", "offline"]))
    tree: Any = copy.deepcopy(template)
    for mutation in draw(st.lists(_mutations, max_size=3)):
        tree = mutation.apply(tree)
    return _render(tree)


_payloads = st.one_of(
    _json_payloads(),
    _json_payloads(),
    _values.map(_render),
    st.binary(max_size=200),
    st.sampled_from(RAW_TOKENS).map(str.encode),
)
_topics = st.one_of(
    st.sampled_from(TOPICS).map(str.encode),
    st.sampled_from(TOPICS).map(str.encode),
    st.binary(max_size=40),  # mostly not UTF-8
)


@st.composite
def _paho_messages(draw: st.DrawFn) -> paho.MQTTMessage:
    message = paho.MQTTMessage(mid=1, topic=draw(_topics))
    message.payload = draw(_payloads)
    message.qos = 1
    message.retain = draw(st.booleans())
    return message


def _fuzz_the_handlers(room: SimulatedRoom, loop: asyncio.AbstractEventLoop, examples: int) -> int:
    """Feed hypothesis's messages to the running agent, each on its loop as the link would; return
    how many were fed. Runs in a thread of its own (hypothesis is synchronous)."""
    fed = 0

    async def feed(message: paho.MQTTMessage) -> int:
        state = room.agent.state
        assert state is not None
        before = state.inbound.handled + state.inbound.rejections.total
        room.agent.on_link_event(link_event_of(message))  # must not raise
        assert room.running, "the agent stopped"
        return state.inbound.handled + state.inbound.rejections.total - before

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(message=_paho_messages())
    def handle_any(message: paho.MQTTMessage) -> None:
        nonlocal fed
        accounted = asyncio.run_coroutine_threadsafe(feed(message), loop).result(timeout=60)
        assert accounted == 1, "each message is either acted on or counted as refused"
        fed += 1

    handle_any()
    return fed


async def _fuzz_a_running_agent(
    broker: MosquittoBroker, collector: RunningCollector, tmp_path: Path, examples: int
) -> None:
    room = make_room(broker.url, collector.url, tmp_path)
    await enroll_rooms([room], collector.url)
    inbox = Inbox()
    async with running(_hb_watcher(broker, inbox)):
        await room.start()
        try:
            loop = asyncio.get_running_loop()
            fed = await asyncio.to_thread(_fuzz_the_handlers, room, loop, examples)
            assert fed >= examples // 2
            state = room.agent.state
            assert state is not None and room.running
            counts = state.inbound.rejections.counts()
            assert state.inbound.rejections.total > fed // 2, counts
            assert "handler_error" not in counts, "a message needed the catch-all"
            assert state.inbound.handled > 0, "no valid message was acted on"
            await _delivers_a_door_event(room, collector)
            await eventually(
                lambda: _heartbeat_with(inbox, counts), what="a heartbeat with the counts"
            )
        finally:
            await room.stop()


async def test_fuzzed_messages_on_every_subscribed_topic_never_stop_the_agent(
    broker: MosquittoBroker, collector: RunningCollector, tmp_path: Path
) -> None:
    await _fuzz_a_running_agent(broker, collector, tmp_path, CI_EXAMPLES)


@pytest.mark.slow
async def test_fuzzed_messages_long_run(
    broker: MosquittoBroker, collector: RunningCollector, tmp_path: Path
) -> None:
    await _fuzz_a_running_agent(broker, collector, tmp_path, SLOW_EXAMPLES)
