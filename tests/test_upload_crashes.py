"""SIGKILL the agent at random moments while it records and uploads, again and again; then let it
finish and drain. Every segment it finalised must be at the collector exactly once, byte for byte;
a kill may cut short only the segment each stream was writing, which the next start seals and
flags ``partial`` — nothing is lost, nothing is stored twice, the collector refuses nothing.

The agents are real processes (the real agent on a simulated room with synthetic H.264 and AAC),
forked by ``tests.agent_forkserver`` so that fifty lives fit in a minute; the collector is the real
one on a real port, the broker a real Mosquitto. Each life gets a random length: most are shorter
than a segment (the kill lands while recording, sealing, announcing, uploading or recovering), one
in six lasts a segment or more. Uploads run under a bandwidth limit with small chunks, so a kill
often lands in the middle of a ``PATCH``. The seed is printed; ``CUSTOS_CRASH_SEED`` replays one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import signal
import sqlite3
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from firmware_config.schema import AgentConfig
from protocol.recording import SignedManifest
from simulators.broker import MosquittoBroker
from simulators.room import RoomSpec, room_config
from tests.helpers import RunningCollector, eventually, outbox_rows, post_json

ROOT = Path(__file__).resolve().parent.parent
DEVICE = "crash-room"
FINAL_STATES = {"receipted", "deleted"}


class ForkServer:
    """The test's end of ``tests.agent_forkserver``."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self._process = process
        self.log_path = log_path
        self._answers: asyncio.Queue[str] = asyncio.Queue()
        self._ready: set[int] = set()
        self._ready_changed = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read(), name="forkserver")

    @classmethod
    async def start(cls, log_path: Path) -> ForkServer:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.agent_forkserver",
            str(log_path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"},
        )
        return cls(process, log_path)

    async def _read(self) -> None:
        assert self._process.stdout is not None
        while line := (await self._process.stdout.readline()).decode():
            word, _, rest = line.strip().partition(" ")
            if word == "ready":
                self._ready.add(int(rest))
                self._ready_changed.set()
            else:
                await self._answers.put(line.strip())

    async def _command(self, command: str) -> list[str]:
        assert self._process.stdin is not None
        self._process.stdin.write(f"{command}\n".encode())
        await self._process.stdin.drain()
        answer = await asyncio.wait_for(self._answers.get(), timeout=60)
        assert not answer.startswith("error"), f"{command}: {answer}"
        return answer.split()

    async def spawn(self, config: Path, *, occupy: bool) -> int:
        _, pid = await self._command(f"spawn {config} {'occupy' if occupy else 'idle'}")
        return int(pid)

    def is_ready(self, pid: int) -> bool:
        return pid in self._ready

    async def wait_ready(self, pid: int) -> None:
        while pid not in self._ready:
            self._ready_changed.clear()
            await asyncio.wait_for(self._ready_changed.wait(), timeout=60)

    async def kill(self, pid: int) -> int:
        return int((await self._command(f"kill {pid}"))[2])

    async def stop(self, pid: int) -> int:
        return int((await self._command(f"stop {pid}"))[2])

    async def close(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            assert self._process.stdin is not None
            self._process.stdin.write(b"exit\n")
            await self._process.stdin.drain()
            self._process.stdin.close()
        try:
            await asyncio.wait_for(self._process.wait(), timeout=30)
        finally:
            if self._process.returncode is None:
                self._process.kill()
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def write_config(
    path: Path, broker_url: str, collector_url: str, data_dir: Path, *, bandwidth: int | None
) -> Path:
    """A waiting room (one camera, one microphone) with 2 s segments, uploading in 16 KiB chunks,
    retrying every 2 s at most, keeping receipted files (so they can be compared)."""
    spec = RoomSpec(device_id=DEVICE, site="crash", room="waiting-1", profile="waiting")
    base = room_config(
        spec,
        broker_url=broker_url,
        collector_url=collector_url,
        data_dir=data_dir,
        keepalive_s=4,
        heartbeat_s=1.0,
        resend_after_s=1.0,
    )
    raw: dict[str, Any] = base.model_dump(mode="json")
    raw["recording"].update(segment_s=2.0, pre_roll_s=0.5, post_roll_s=0.0)
    # An agent starts recording at once (nobody knows the room is empty yet) and stops after
    # this long without motion: the last life records its ordinary segments, then drains.
    raw["room"].update(vacancy_timeout_s=10.0)
    raw["upload"].update(
        bandwidth_bytes_per_s=bandwidth, chunk_bytes=16 * 1024, retry_max_s=2.0, free_hours=0
    )
    path.write_text(AgentConfig.model_validate(raw).model_dump_json(), encoding="utf-8")
    return path


@dataclass
class CrashRun:
    seed: int
    kills: int = 0
    killed_running: int = 0
    kill_windows: list[tuple[float, float]] = field(default_factory=list)
    """(just before the kill, just after it was reaped), Unix time."""


def _catalog_rows(data_dir: Path) -> list[sqlite3.Row]:
    path = data_dir / "spool" / "catalog.sqlite3"
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM segments ORDER BY rowid").fetchall()


async def crash_then_drain(
    collector: RunningCollector, broker: MosquittoBroker, tmp_path: Path, kills: int
) -> CrashRun:
    seed = int(os.environ.get("CUSTOS_CRASH_SEED") or random.randrange(2**32))
    print(f"crash test seed {seed} (replay with CUSTOS_CRASH_SEED={seed})")
    rng = random.Random(seed)
    run = CrashRun(seed)
    await post_json(
        f"{collector.url}/api/v1/devices",
        {"device_id": DEVICE, "site": "crash", "room": "waiting-1", "room_kind": "waiting"},
    )
    data_dir = tmp_path / "agent"
    limited = write_config(
        tmp_path / "limited.json", broker.url, collector.url, data_dir, bandwidth=16 * 1024
    )
    unlimited = write_config(
        tmp_path / "unlimited.json", broker.url, collector.url, data_dir, bandwidth=None
    )
    server = await ForkServer.start(tmp_path / "agents.log")
    try:
        for life in range(kills):
            pid = await server.spawn(limited, occupy=True)
            await asyncio.sleep(rng.uniform(2.0, 2.8) if life % 6 == 5 else rng.uniform(0.05, 1.0))
            before = time.time()
            running = server.is_ready(pid)
            status = await server.kill(pid)
            run.kill_windows.append((before, time.time()))
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
                f"life {life} (seed {seed}) ended by itself, status {status}:\n{server.log_tail()}"
            )
            run.kills += 1
            run.killed_running += running
        # One more life, with nobody in the room and no bandwidth limit: it seals what the last
        # kill cut short, records until the room reads empty, uploads everything and stops.
        pid = await server.spawn(unlimited, occupy=False)

        async def drained() -> bool:
            events = outbox_rows(data_dir)
            starts = [seq for seq, kind, _ in events if kind == "agent.started"]
            stopped = any(
                seq > starts[-1] for seq, kind, _ in events if kind == "recording.stopped"
            )
            rows = _catalog_rows(data_dir)
            return stopped and bool(rows) and all(row["state"] in FINAL_STATES for row in rows)

        try:
            await eventually(drained, timeout=120, what="every segment receipted")
        except AssertionError:
            states: dict[str, int] = defaultdict(int)
            for row in _catalog_rows(data_dir):
                states[row["state"]] += 1
            raise AssertionError(f"not drained (seed {seed}): {dict(states)}") from None
        assert await server.stop(pid) == 0, server.log_tail()
    finally:
        await server.close()
    return run


def check_every_segment_arrived_once(
    collector: RunningCollector, data_dir: Path, run: CrashRun
) -> None:
    rows = _catalog_rows(data_dir)
    assert rows and all(row["state"] in FINAL_STATES for row in rows)
    assert not list((data_dir / "spool").glob("*/*.part")), "a .part file was left behind"
    by_stream: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        by_stream[row["stream"]].append(row["seq"])
    assert set(by_stream) == {"cam-room", "mic-room"}
    for stream, seqs in by_stream.items():
        assert sorted(seqs) == list(range(1, len(seqs) + 1)), f"{stream}: a seq is missing"

    stored = {
        (stream, seq): (sha256, size, manifest_sha256, signed)
        for stream, seq, sha256, size, manifest_sha256, signed in collector.query(
            "SELECT stream, seq, sha256, size, manifest_sha256, signed FROM evidence_segments"
            " WHERE device_id = ?",
            DEVICE,
        )
    }
    # Exactly the finalised segments, each once ((device, stream, seq) is the table's key).
    assert set(stored) == {(row["stream"], row["seq"]) for row in rows}
    evidence = collector.settings.data_dir / "evidence" / "sha256"
    for row in rows:
        signed = SignedManifest.model_validate_json(row["manifest"])
        manifest = signed.parsed()
        sha256, size, manifest_sha256, stored_signed = stored[(row["stream"], row["seq"])]
        assert (sha256, size) == (row["sha256"], row["size"]) == (manifest.sha256, manifest.size)
        assert manifest_sha256 == row["manifest_sha256"] == signed.manifest_sha256
        assert manifest.partial == bool(row["partial"])
        assert json.loads(stored_signed)["manifest"] == signed.manifest  # the same signed bytes
        content = (evidence / sha256[:2] / sha256[2:4] / sha256).read_bytes()
        assert hashlib.sha256(content).hexdigest() == sha256 and len(content) == size
        if row["state"] == "receipted":
            local = (data_dir / "spool" / row["path"]).read_bytes()
            assert local == content

    # A kill cuts short at most the segment each stream was writing: per life (boot) and
    # stream, at most one partial segment, and it is that life's last one.
    lives: dict[tuple[str, str], list[sqlite3.Row]] = defaultdict(list)
    for row in rows:
        lives[(row["boot_id"], row["stream"])].append(row)
    partial = 0
    for (boot, stream), segments in lives.items():
        flagged = [s["seq"] for s in segments if s["partial"]]
        assert len(flagged) <= 1, f"life {boot} cut {stream} more than once: {flagged}"
        if flagged:
            assert flagged[0] == max(s["seq"] for s in segments), (boot, stream, flagged)
            partial += 1
    assert partial >= 1, "no kill ever cut a segment short: the test did not test"
    assert len(lives) > run.kills // 2

    # The collector refused nothing, and at least one upload begun before a kill was finished
    # after it under the same upload id: resumed, not begun again.
    uploads = collector.query(
        "SELECT state, reason, created_ts, finished_at FROM evidence_uploads WHERE device_id = ?",
        DEVICE,
    )
    assert [u for u in uploads if u[0] == "rejected"] == []
    spans = [
        (created, datetime.fromisoformat(finished).timestamp())
        for state, _, created, finished in uploads
        if state == "complete" and finished is not None
    ]
    resumed = [
        span
        for span in spans
        for before, after in run.kill_windows
        if span[0] < before and span[1] > after
    ]
    assert resumed, "no upload was ever interrupted by a kill and resumed"
    assert run.killed_running >= run.kills // 2


async def test_an_agent_killed_fifty_times_while_recording_and_uploading_loses_nothing(
    broker: MosquittoBroker, collector: RunningCollector, tmp_path: Path
) -> None:
    run = await crash_then_drain(collector, broker, tmp_path, kills=50)
    assert run.kills == 50
    check_every_segment_arrived_once(collector, tmp_path / "agent", run)
    log = (tmp_path / "agents.log").read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log, log[log.index("Traceback") - 2000 :][:6000]


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_an_agent_killed_three_hundred_times_loses_nothing(
    broker: MosquittoBroker, collector: RunningCollector, tmp_path: Path
) -> None:
    run = await crash_then_drain(collector, broker, tmp_path, kills=300)
    assert run.kills == 300
    check_every_segment_arrived_once(collector, tmp_path / "agent", run)
