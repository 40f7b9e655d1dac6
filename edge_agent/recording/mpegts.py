"""A small MPEG-TS writer and reader for one elementary stream per file.

Written by hand (not through PyAV) for two reasons: the recorder must not import media libraries
(they live in ``edge_agent/hw``), and it must control durability exactly. Every access unit becomes
whole 188-byte packets handed to the file in one ``write``, so a process killed at any moment
leaves a file that is a whole number of packets except possibly the last, and truncating to a
multiple of 188 bytes gives a playable file.

Supported: H.264 (Annex B; an access unit delimiter is added when missing), AAC (ADTS headers are
added to raw frames), MPEG audio layer II. PAT/PMT are repeated before keyframes (at most twice a
second for audio), and every PES carries a PCR.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from edge_agent.capture.ports import EncodedPacket, StreamFormat
from protocol.recording import StreamKind

TS_PACKET: Final = 188
PTS_HZ: Final = 90_000
_PTS_MASK: Final = (1 << 33) - 1
_PTS_OFFSET: Final = 63_000
"""PTS/DTS are written 0.7 s after the PCR (as FFmpeg does), so the PCR is never ahead of them."""
_PMT_PID: Final = 0x1000
_ES_PID: Final = 0x100
_PSI_REPEAT: Final = PTS_HZ // 2
_AUD: Final = b"\x00\x00\x00\x01\x09\xf0"
_AAC_RATES: Final = (
    96000,
    88200,
    64000,
    48000,
    44100,
    32000,
    24000,
    22050,
    16000,
    12000,
    11025,
    8000,
    7350,
)


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE: Final = _crc_table()


def crc32_mpeg2(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[(crc >> 24) ^ byte]
    return crc


def _stream_type(fmt: StreamFormat) -> int:
    if fmt.codec == "h264":
        return 0x1B
    if fmt.codec == "aac":
        return 0x0F
    if fmt.codec == "mp2":
        return 0x03 if fmt.sample_rate >= 32_000 else 0x04
    raise ValueError(f"MPEG-TS writer does not carry {fmt.codec}")


def _timestamp(prefix: int, value: int) -> bytes:
    value &= _PTS_MASK
    return bytes(
        (
            (prefix << 4) | (((value >> 30) & 0x07) << 1) | 1,
            (value >> 22) & 0xFF,
            (((value >> 15) & 0x7F) << 1) | 1,
            (value >> 7) & 0xFF,
            ((value & 0x7F) << 1) | 1,
        )
    )


def _pcr(base: int) -> bytes:
    base &= _PTS_MASK
    return bytes(
        (
            (base >> 25) & 0xFF,
            (base >> 17) & 0xFF,
            (base >> 9) & 0xFF,
            (base >> 1) & 0xFF,
            ((base & 1) << 7) | 0x7E,
            0x00,
        )
    )


class TsWriter:
    """Turns packets of one stream into MPEG-TS bytes. Not thread-safe; one per segment file."""

    def __init__(self, fmt: StreamFormat) -> None:
        self._fmt = fmt
        self._stream_type = _stream_type(fmt)
        self._stream_id = 0xE0 if fmt.kind is StreamKind.VIDEO else 0xC0
        self._counters: dict[int, int] = {}
        self._last_psi: int | None = None
        self._adts = _adts_fixed(fmt) if fmt.codec == "aac" else None

    def packet(self, packet: EncodedPacket) -> bytes:
        pts = _to_90k(packet.pts, packet.time_base)
        dts = pts if packet.dts is None else _to_90k(packet.dts, packet.time_base)
        out = bytearray()
        if packet.keyframe and (self._last_psi is None or abs(dts - self._last_psi) >= _PSI_REPEAT):
            out += self._psi()
            self._last_psi = dts
        pes = self._pes(self._payload(packet), pts, dts)
        out += self._packets(_ES_PID, pes, pcr=dts, random_access=packet.keyframe)
        return bytes(out)

    def _payload(self, packet: EncodedPacket) -> bytes:
        data = packet.data
        if self._fmt.codec == "h264":
            if not (data.startswith(_AUD) or data.startswith(b"\x00\x00\x01\x09")):
                data = _AUD + data
        elif self._adts is not None and not (
            len(data) > 1 and data[0] == 0xFF and data[1] >> 4 == 0xF
        ):
            data = _adts_header(self._adts, len(data)) + data
        return data

    def _pes(self, payload: bytes, pts: int, dts: int) -> bytes:
        pts += _PTS_OFFSET
        dts += _PTS_OFFSET
        if pts == dts:
            header = b"\x80\x05" + _timestamp(0b0010, pts)
        else:
            header = b"\xc0\x0a" + _timestamp(0b0011, pts) + _timestamp(0b0001, dts)
        body = b"\x84" + header + payload
        length = len(body) if self._stream_id == 0xC0 and len(body) <= 0xFFFF else 0
        return b"\x00\x00\x01" + bytes((self._stream_id, length >> 8, length & 0xFF)) + body

    def _psi(self) -> bytes:
        pat = bytes(
            (0x00, 0x01, 0xC1, 0x00, 0x00, 0x00, 0x01, 0xE0 | (_PMT_PID >> 8), _PMT_PID & 0xFF)
        )
        pmt = bytes(
            (
                0x00, 0x01, 0xC1, 0x00, 0x00,
                0xE0 | (_ES_PID >> 8), _ES_PID & 0xFF,
                0xF0, 0x00,
                self._stream_type,
                0xE0 | (_ES_PID >> 8), _ES_PID & 0xFF,
                0xF0, 0x00,
            )
        )  # fmt: skip
        return self._section(0x0000, 0x00, pat) + self._section(_PMT_PID, 0x02, pmt)

    def _section(self, pid: int, table_id: int, body: bytes) -> bytes:
        length = len(body) + 4
        section = bytes((table_id, 0xB0 | (length >> 8), length & 0xFF)) + body
        section += crc32_mpeg2(section).to_bytes(4, "big")
        payload = b"\x00" + section
        return self._header(pid, start=True, adaptation=False) + payload.ljust(184, b"\xff")

    def _header(self, pid: int, *, start: bool, adaptation: bool) -> bytes:
        counter = self._counters.get(pid, 0)
        self._counters[pid] = (counter + 1) & 0x0F
        return bytes(
            (
                0x47,
                (0x40 if start else 0x00) | (pid >> 8),
                pid & 0xFF,
                (0x30 if adaptation else 0x10) | counter,
            )
        )

    def _packets(self, pid: int, pes: bytes, *, pcr: int, random_access: bool) -> bytes:
        out = bytearray()
        position = 0
        first = True
        while position < len(pes):
            fields = b""
            if first:
                fields = bytes(((0x40 if random_access else 0x00) | 0x10,)) + _pcr(pcr)
            room = 184 - (1 + len(fields) if first else 0)
            remaining = len(pes) - position
            if remaining < room:
                stuffing = room - remaining
                if first:
                    fields += b"\xff" * stuffing
                elif stuffing == 1:
                    fields = b""
                else:
                    fields = b"\x00" + b"\xff" * (stuffing - 2)
                room = remaining
            has_field = first or remaining < 184
            chunk = pes[position : position + room]
            out += self._header(pid, start=first, adaptation=has_field)
            if has_field:
                out += bytes((len(fields),)) + fields
            out += chunk
            position += len(chunk)
            first = False
        return bytes(out)


def _to_90k(value: int, time_base: Fraction) -> int:
    return round(value * time_base * PTS_HZ)


@dataclass(frozen=True)
class _AdtsFixed:
    rate_index: int
    channels: int


def _adts_fixed(fmt: StreamFormat) -> _AdtsFixed:
    if fmt.sample_rate not in _AAC_RATES:
        raise ValueError(f"AAC cannot carry {fmt.sample_rate} Hz in ADTS")
    return _AdtsFixed(_AAC_RATES.index(fmt.sample_rate), fmt.channels)


def _adts_header(fixed: _AdtsFixed, size: int) -> bytes:
    length = size + 7
    profile = 1  # AAC LC (object type 2), what FFmpeg's encoder produces
    return bytes(
        (
            0xFF,
            0xF1,
            (profile << 6) | (fixed.rate_index << 2) | ((fixed.channels >> 2) & 1),
            ((fixed.channels & 3) << 6) | ((length >> 11) & 0x03),
            (length >> 3) & 0xFF,
            ((length & 0x07) << 5) | 0x1F,
            0xFC,
        )
    )


# --- reading back (crash recovery) ------------------------------------------------------------


def whole_packets_length(data: bytes) -> int:
    """How many leading bytes of ``data`` are whole, well-formed (sync byte) TS packets."""
    length = 0
    while length + TS_PACKET <= len(data) and data[length] == 0x47:
        length += TS_PACKET
    return length


def _read_timestamp(field: bytes) -> int:
    return (
        ((field[0] >> 1) & 0x07) << 30
        | field[1] << 22
        | (field[2] >> 1) << 15
        | field[3] << 7
        | field[4] >> 1
    )


def pes_timestamps(data: bytes) -> Iterator[int]:
    """The PTS (90 kHz, as written) of every PES that starts in ``data``."""
    for offset in range(0, len(data) - TS_PACKET + 1, TS_PACKET):
        packet = data[offset : offset + TS_PACKET]
        if packet[0] != 0x47 or not packet[1] & 0x40:
            continue
        pid = ((packet[1] & 0x1F) << 8) | packet[2]
        if pid != _ES_PID:
            continue
        start = 4 + (1 + packet[4] if packet[3] & 0x20 else 0)
        pes = packet[start:]
        if len(pes) >= 14 and pes[:3] == b"\x00\x00\x01" and pes[7] & 0x80:
            yield _read_timestamp(pes[9:14])


def media_span_s(data: bytes) -> float:
    """Seconds from the first to the last PES timestamp in ``data`` (0 with fewer than two)."""
    stamps = list(pes_timestamps(data))
    if len(stamps) < 2:
        return 0.0
    first, last = stamps[0], stamps[-1]
    return ((last - first) & _PTS_MASK) / PTS_HZ
