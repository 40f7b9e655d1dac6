"""The wire contract: topics, models, JSON Schemas."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from protocol.messages import (
    Ack,
    DeviceState,
    EventEnvelope,
    InputEvent,
    InputEventType,
    Status,
    encode,
)
from protocol.schemas import json_schemas, render
from protocol.topics import TopicKind, device_filter, device_topic, parse_device_topic

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "protocol" / "schemas"


def _envelope(**overrides: object) -> EventEnvelope:
    fields: dict[str, object] = {
        "device_id": "ir-101",
        "boot_id": uuid.uuid4(),
        "seq": 7,
        "at": datetime(2026, 11, 21, 8, 0, tzinfo=UTC),
        "mono": 12.5,
        "clock_synced": True,
        "body": InputEvent(type=InputEventType.PANIC_PRESSED, input="panic"),
    }
    fields.update(overrides)
    return EventEnvelope.model_validate(fields)


def test_topics_round_trip_and_reject_what_is_not_a_device_topic() -> None:
    topic = device_topic("ir-101", TopicKind.ALARM)
    assert topic == "custos/v1/dev/ir-101/alarm"
    assert parse_device_topic(topic) == ("ir-101", TopicKind.ALARM)
    assert device_filter(TopicKind.HEARTBEAT) == "custos/v1/dev/+/hb"
    for bad in (
        "custos/v1/dev/IR_101/event",
        "custos/v1/dev/ir-101/nope",
        "other/ir-101/event",
        "custos/v1/dev/ir-101",
    ):
        assert parse_device_topic(bad) is None
    with pytest.raises(ValueError, match="invalid device id"):
        device_topic("../etc", TopicKind.EVENT)


def test_an_event_survives_the_wire_and_knows_it_is_an_alarm() -> None:
    envelope = _envelope()
    decoded = EventEnvelope.model_validate_json(encode(envelope))
    assert decoded == envelope
    assert decoded.is_alarm
    assert not _envelope(body=InputEvent(type=InputEventType.DOOR_OPENED, input="door")).is_alarm
    # An alarm's end travels with it, so it never waits behind ordinary events.
    assert _envelope(body=InputEvent(type=InputEventType.PANIC_RESET, input="panic")).is_alarm
    assert _envelope(body=InputEvent(type=InputEventType.TAMPER_CLOSED, input="tamper")).is_alarm


def test_times_are_converted_to_utc_and_naive_times_are_refused() -> None:
    china = timezone(timedelta(hours=8))
    assert _envelope(at=datetime(2026, 11, 21, 16, 0, tzinfo=china)).at == datetime(
        2026, 11, 21, 8, 0, tzinfo=UTC
    )
    with pytest.raises(ValidationError, match="timezone"):
        _envelope(at=datetime(2026, 11, 21, 8, 0))


def test_unknown_fields_wrong_versions_and_unknown_event_types_are_refused() -> None:
    good = json.loads(encode(_envelope()))
    mutations: list[Callable[[dict[str, Any]], None]] = [
        lambda m: m.update(colour="red"),
        lambda m: m.update(schema_version=2),
        lambda m: m["body"].update(type="door.wedged"),
        lambda m: m.update(seq=0),
    ]
    for mutate in mutations:
        message = json.loads(json.dumps(good))
        mutate(message)
        with pytest.raises(ValidationError):
            EventEnvelope.model_validate(message)


def test_status_order_puts_later_connections_and_connection_ends_last() -> None:
    def status(state: DeviceState, boot: int, conn: int) -> Status:
        return Status(
            device_id="ir-101", state=state, boot_id=uuid.uuid4(), boot_no=boot, conn_no=conn,
            version="1", config_hash="0" * 64, at=datetime.now(UTC),
        )  # fmt: skip

    late_will = status(DeviceState.OFFLINE, 1, 3)
    newer_online = status(DeviceState.ONLINE, 2, 1)
    assert newer_online.order_key > late_will.order_key
    assert status(DeviceState.OFFLINE, 2, 1).order_key > newer_online.order_key


def test_ack_lists_at_most_512_seqs_above_the_mark() -> None:
    Ack(device_id="ir-101", upto=3, also=tuple(range(5, 517)), at=datetime.now(UTC))
    with pytest.raises(ValidationError):
        Ack(device_id="ir-101", upto=3, also=tuple(range(5, 518)), at=datetime.now(UTC))


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_exported_json_schemas_match_the_models(name: str) -> None:
    """A change of the wire contract must be deliberate: re-export with
    ``python -m protocol export-schemas`` and review the diff."""
    committed = (SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8")
    assert committed == render(json_schemas()[name])
