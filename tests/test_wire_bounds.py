"""The wire contract's bounds, shared by both sides (issue 9, point 8): 63-bit integers, datetimes
that exist in UTC between 1970 and 9999, finite numbers, and JSON nesting checked before parsing
(``protocol.wire.decode_json``, ``check_payload``)."""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from protocol.messages import Ack, EventEnvelope
from protocol.wire import MAX_INT, MAX_JSON_DEPTH, PayloadError, decode_json, json_depth

_EVENT: dict[str, Any] = {
    "device_id": "ir-101", "boot_id": str(uuid.uuid4()), "seq": 1,
    "at": "2025-01-01T00:00:00Z", "mono": 1.0, "clock_synced": True,
    "body": {"type": "door.opened", "input": "door"},
}  # fmt: skip


def _event(**changes: Any) -> bytes:
    return json.dumps(_EVENT | changes).encode()


@pytest.mark.parametrize("seq", [MAX_INT + 1, 2**64, 0, -1])
def test_integers_outside_63_bits_are_invalid(seq: int) -> None:
    with pytest.raises(ValidationError, match="seq"):
        EventEnvelope.model_validate_json(_event(seq=seq))
    assert EventEnvelope.model_validate_json(_event(seq=MAX_INT)).seq == MAX_INT


@pytest.mark.parametrize(
    "at",
    [
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC: used to raise OverflowError
        "9999-12-31T23:59:59-14:00",  # after 9999 in UTC
        "1969-12-31T23:59:59Z",
        "2025-01-01T00:00:00",  # naive
    ],
)
def test_datetimes_that_do_not_exist_in_utc_or_predate_1970_are_invalid(at: str) -> None:
    with pytest.raises(ValidationError, match="at"):
        EventEnvelope.model_validate_json(_event(at=at))


def test_a_datetime_is_converted_to_utc() -> None:
    event = EventEnvelope.model_validate_json(_event(at="2025-01-01T08:00:00+08:00"))
    assert event.at.isoformat() == "2025-01-01T00:00:00+00:00"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "1e999"])
def test_numbers_are_finite(number: str) -> None:
    payload = _event(mono=0.5).replace(b'"mono": 0.5', f'"mono": {number}'.encode())
    with pytest.raises(ValidationError, match="mono"):
        EventEnvelope.model_validate_json(payload)


def test_ack_seqs_are_bounded_too() -> None:
    with pytest.raises(ValidationError):
        Ack(device_id="ir-101", upto=MAX_INT + 1, at="2025-01-01T00:00:00Z")


def test_decode_json_refuses_deep_nesting_before_parsing() -> None:
    deep = b'{"a":' * 1000 + b"1" + b"}" * 1000
    with pytest.raises(PayloadError) as refused:
        decode_json(deep)
    assert refused.value.reason == "too_deep"
    nested = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert decode_json(nested) == json.loads(nested)
    in_strings = json.dumps(["[" * 40 + '\\"[{', {"{": "]]]"}]).encode()
    assert decode_json(in_strings) == json.loads(in_strings)  # brackets in strings do not count


def test_decode_json_names_what_is_wrong() -> None:
    assert decode_json(b'{"a": [1, 2]}') == {"a": [1, 2]}
    for payload, reason in [
        (b"x" * 70_000, "oversized"),
        (b"\xff", "malformed_json"),
        (b'{"a": ', "malformed_json"),
        (b"9" * 5000, "malformed_json"),  # beyond Python's digit limit for int()
    ]:
        with pytest.raises(PayloadError) as refused:
            decode_json(payload)
        assert refused.value.reason == reason, payload[:20]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab', max_size=6),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\ab', max_size=4), children, max_size=3)
    ),
    max_leaves=20,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@settings(max_examples=500, deadline=None)
@given(_json)
def test_json_depth_is_the_nesting_of_the_document(value: Any) -> None:
    assert json_depth(json.dumps(value).encode()) == _depth(value)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300) | st.text(alphabet='[]{}"\\:,1a ', max_size=300).map(str.encode))
def test_decode_json_raises_only_payload_errors(payload: bytes) -> None:
    with contextlib.suppress(PayloadError):
        decode_json(payload)
