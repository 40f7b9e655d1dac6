"""One agent start sends each pending event once. The collector's retained ``online``, delivered
because the agent has just subscribed, describes the collector as it was at connect, which the
connect's own resend already covers; only a live announcement sends everything again."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from collector.mqtt import InboundMessage, MqttConnection
from protocol.messages import CollectorStatus, encode
from protocol.topics import COLLECTOR_STATUS_TOPIC
from simulators.broker import MosquittoBroker, free_port
from simulators.room import SimulatedRoom
from simulators.site import enroll_rooms
from tests.helpers import (
    RunningCollector,
    eventually,
    make_room,
    metric_value,
    mosquitto_pub,
    outbox_rows,
)
from tests.mqtt_support import Inbox, connection, running

NO_TIMER_RESEND_S = 120.0
"""Longer than each test: every copy a watcher sees comes from a link-up or an announcement."""


def _copies(inbox: Inbox) -> Counter[int]:
    """How many times the broker delivered each seq."""
    return Counter(_seq(message) for message in inbox.messages)


def _seq(message: InboundMessage) -> int:
    return int(json.loads(message.payload)["seq"])


def _watcher(broker: MosquittoBroker, inbox: Inbox, device_id: str) -> MqttConnection:
    return connection(
        broker,
        inbox,
        client_id=f"watcher-{uuid.uuid4().hex[:6]}",
        subscriptions=(
            (f"custos/v1/dev/{device_id}/event", 1),
            (f"custos/v1/dev/{device_id}/alarm", 1),
        ),
        clean_start=True,
    )


async def _door_after(inbox: Inbox, seq: int = 0) -> int | None:
    """The seq of the first ``door.opened`` above ``seq`` the watcher received."""
    for message in inbox.messages:
        event = json.loads(message.payload)
        if event["body"]["type"] == "door.opened" and event["seq"] > seq:
            return int(event["seq"])
    return None


async def test_one_start_publishes_each_pending_seq_once(
    broker: MosquittoBroker, collector: RunningCollector, tmp_path: Path
) -> None:
    # A first life with no broker to reach: its events stay in the outbox, undelivered.
    unreachable = f"mqtt://127.0.0.1:{free_port()}"
    first = make_room(unreachable, collector.url, tmp_path, resend_after_s=NO_TIMER_RESEND_S)
    data_dir = tmp_path / first.device_id
    await enroll_rooms([first], collector.url)
    await first.start()
    first.act("door.open")

    async def door_committed() -> bool:
        return any(kind == "door.opened" for _, kind, _ in outbox_rows(data_dir))

    await eventually(door_committed, what="door.opened in the outbox")
    await first.abandon()
    pending = [seq for seq, _, delivered in outbox_rows(data_dir) if delivered is None]
    assert len(pending) >= 2, pending

    inbox = Inbox()
    async with running(_watcher(broker, inbox, first.device_id)):
        room: SimulatedRoom = make_room(
            broker.url, collector.url, tmp_path, resend_after_s=NO_TIMER_RESEND_S
        )
        await room.start()
        try:

            async def all_delivered() -> bool:
                rows = outbox_rows(data_dir)
                return len(rows) > len(pending) and all(delivered for _, _, delivered in rows)

            await eventually(all_delivered, what="the whole outbox acknowledged")
            # A marker published after every copy of the earlier seqs, on the same topic and
            # connection: once the watcher has it, any second copy has arrived too.
            before_marker = outbox_rows(data_dir)[-1][0]
            room.act("door.open")
            marker = await eventually(
                lambda: _door_after(inbox, before_marker), what="the marker event"
            )
        finally:
            await room.stop()
    copies = _copies(inbox)
    twice = {seq: count for seq, count in copies.items() if count > 1}
    assert not twice, f"published more than once after a single start: {twice}"
    assert set(range(1, marker + 1)) <= set(copies), "a seq was never published"
    assert metric_value(await collector.metrics(), "custos_duplicates_total") == 0
    # Whether a resend on the retained online would land before or after the connect's pump is
    # timing; the decision is not: the retained online was seen, and sent nothing again.
    state = room.agent.state
    assert state is not None and state.presence.status is not None
    assert state.presence.status.state == "online"
    assert state.presence.resends == 0


async def test_a_live_collector_announcement_still_sends_everything_unacknowledged(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    """What the fix must keep: a collector that announces itself while the agent is connected
    (it restarted, or a new instance took over) gets everything unacknowledged at once."""
    inbox = Inbox()
    room = make_room(broker.url, "http://127.0.0.1:9", tmp_path, resend_after_s=NO_TIMER_RESEND_S)
    async with running(_watcher(broker, inbox, room.device_id)):
        await room.start()  # no collector: nothing is acknowledged
        try:
            room.act("door.open")
            await eventually(lambda: _door_after(inbox), what="the door event, sent at connect")
            sent_once = set(_copies(inbox))
            online = CollectorStatus(state="online", instance=uuid.uuid4(), at=datetime.now(UTC))
            await mosquitto_pub(broker.port, COLLECTOR_STATUS_TOPIC, encode(online), retain=True)

            async def all_sent_again() -> bool:
                copies = _copies(inbox)
                return all(copies[seq] >= 2 for seq in sent_once)

            await eventually(all_sent_again, what="a resend of everything after the announcement")
        finally:
            await room.stop()
