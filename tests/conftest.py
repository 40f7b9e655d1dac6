"""Shared fixtures: a real Mosquitto per test on a free port with a generated config, and an
in-process collector on a real HTTP port with its own SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from simulators.broker import MosquittoBroker
from tests.helpers import RunningCollector, running_collector


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A private Mosquitto (persistence off) for one test."""
    instance = MosquittoBroker(tmp_path / "broker")
    instance.start()
    try:
        yield instance
    finally:
        instance.kill()


@pytest.fixture
async def collector(broker: MosquittoBroker, tmp_path: Path) -> AsyncIterator[RunningCollector]:
    async with running_collector(broker.url, tmp_path / "collector") as running:
        yield running
