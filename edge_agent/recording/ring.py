"""The pre-roll: the last ``pre_roll_s`` of one stream, kept whether or not anyone records.

Video is kept back to the keyframe at or before the pre-roll's start, so a recording can start
with a decodable picture from at least ``pre_roll_s`` before the trigger. A hard packet limit
bounds memory when a source never sends a keyframe.
"""

from __future__ import annotations

from collections import deque

from edge_agent.capture.ports import EncodedPacket


class PreRollBuffer:
    def __init__(self, pre_roll_s: float, max_packets: int = 5_000) -> None:
        self._pre_roll_s = pre_roll_s
        self._max_packets = max_packets
        self._packets: deque[EncodedPacket] = deque()
        self._keyframes: deque[EncodedPacket] = deque()

    def __len__(self) -> int:
        return len(self._packets)

    def append(self, packet: EncodedPacket) -> None:
        self._packets.append(packet)
        if packet.keyframe:
            self._keyframes.append(packet)
        cutoff = packet.mono - self._pre_roll_s
        # Keep from the newest keyframe that is at or before the cutoff.
        while len(self._keyframes) > 1 and self._keyframes[1].mono <= cutoff:
            self._keyframes.popleft()
        oldest_key = self._keyframes[0] if self._keyframes else None
        while (
            self._packets
            and self._packets[0] is not oldest_key
            and (oldest_key is not None or self._packets[0].mono < cutoff)
        ):
            self._packets.popleft()
        while len(self._packets) > self._max_packets:
            dropped = self._packets.popleft()
            if self._keyframes and dropped is self._keyframes[0]:
                self._keyframes.popleft()

    def select(self, trigger_mono: float, after_mono: float | None = None) -> list[EncodedPacket]:
        """What to record for a trigger at ``trigger_mono``: from the newest keyframe at or
        before ``trigger_mono - pre_roll_s`` (the oldest keyframe held if the buffer is younger).
        ``after_mono``, the last packet of the previous recording, moves that point forward so
        recordings follow on instead of repeating each other (they overlap by less than a GOP)."""
        cutoff = trigger_mono - self._pre_roll_s
        if after_mono is not None:
            cutoff = max(cutoff, after_mono)
        start: EncodedPacket | None = None
        for keyframe in self._keyframes:
            if start is None or keyframe.mono <= cutoff:
                start = keyframe
            else:
                break
        if start is None:
            return []
        packets = list(self._packets)
        return packets[next(i for i, p in enumerate(packets) if p is start) :]
