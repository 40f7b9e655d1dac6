"""A fork server for crash tests: real agent processes, started dozens of times a minute.

A cold ``python`` start of the agent spends about a second importing PyAV, numpy, pydantic,
aiohttp and cryptography; a test that SIGKILLs an agent fifty times would spend most of its
minute importing. This server imports everything once and then forks one fresh process per agent
life. Each child is a whole agent process — its own event loop, threads, SQLite connections,
encoders and sockets, nothing inherited but the imported modules — and is killed with SIGKILL
like any other process. The server has no thread and no event loop when it forks (checked), so
the child starts clean; ``OPENBLAS_NUM_THREADS=1`` keeps numpy from starting a thread pool.

Run as ``python -m tests.agent_forkserver LOG_FILE``; commands on stdin, one per line, answers on
stdout:

- ``spawn CONFIG_JSON occupy|idle`` → ``spawned PID``; later the child prints ``ready PID`` once
  its agent runs (``occupy``: the door opens and someone moves, so it records);
- ``kill PID`` → SIGKILL and reap → ``killed PID WAIT_STATUS``;
- ``stop PID`` → SIGTERM (a clean stop) and reap → ``stopped PID WAIT_STATUS``;
- ``exit`` (or end of input): kill what still runs and leave.

Children log to LOG_FILE (appending), each line with its pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

# Imported here, once, so that every forked agent starts with them loaded.
import aiohttp  # noqa: F401
import av  # noqa: F401
import cryptography.hazmat.primitives.asymmetric.ed25519  # noqa: F401
import numpy  # noqa: F401

import edge_agent.hw.cameras.synthetic
import edge_agent.hw.microphones.synthetic
import edge_agent.recording.factory  # noqa: F401
from firmware_config.schema import AgentConfig
from simulators.room import SimulatedRoom


def _say(line: str) -> None:
    # One write per line, shorter than PIPE_BUF: lines of the server and its children never mix.
    os.write(1, f"{line}\n".encode())


async def _run_agent(config: AgentConfig, occupy: bool, server_pid: int) -> None:
    room = SimulatedRoom(config, media="synthetic")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    orphaned = asyncio.get_running_loop().create_task(_until_orphaned(server_pid, stop))
    await room.start()
    if occupy:
        room.act("door.open")
        room.act("motion.start")
    _say(f"ready {os.getpid()}")
    await stop.wait()
    orphaned.cancel()
    await room.stop()


async def _until_orphaned(server_pid: int, stop: asyncio.Event) -> None:
    """Stop if the server died without killing us: no agent outlives a crashed test."""
    while True:
        await asyncio.sleep(1.0)
        if os.getppid() != server_pid:
            stop.set()
            return


def _child(config_path: str, mode: str, log_path: str) -> None:
    code = 1
    server_pid = os.getppid()
    try:
        os.setsid()
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        logging.basicConfig(
            level=logging.INFO,
            format=f"%(asctime)s {os.getpid()} %(levelname)s %(name)s %(message)s",
            stream=sys.stderr,
            force=True,
        )
        config = AgentConfig.model_validate_json(Path(config_path).read_text(encoding="utf-8"))
        asyncio.run(_run_agent(config, mode == "occupy", server_pid))
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def _reap(pid: int, signum: signal.Signals) -> int:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
    _, status = os.waitpid(pid, 0)
    return status


def main() -> int:
    log_path = sys.argv[1]
    children: set[int] = set()
    for line in sys.stdin:
        command, *args = line.split()
        if command == "spawn":
            if threading.active_count() != 1:
                _say(f"error threads {threading.active_count()}")
                continue
            pid = os.fork()
            if pid == 0:
                _child(args[0], args[1], log_path)
            children.add(pid)
            _say(f"spawned {pid}")
        elif command in ("kill", "stop"):
            pid = int(args[0])
            children.discard(pid)
            signum = signal.SIGKILL if command == "kill" else signal.SIGTERM
            answer = "killed" if command == "kill" else "stopped"
            _say(f"{answer} {pid} {_reap(pid, signum)}")
        elif command == "exit":
            break
    for pid in children:
        _reap(pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
