"""What the REST handlers of every domain share: the database's readers and its one writer, and
the clock. The composition root (``collector.app``) sets it when the collector has started; the
readiness middleware lets no request through before."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from aiohttp import web

from collector.store.readers import ReadPool
from collector.store.writer import DbWriter
from protocol.clock import Clock

T = TypeVar("T")


class Slot(Generic[T]):
    """A part of the collector, put in place once it has started. The application's state is
    fixed when it starts serving, so each key holds a slot from the start and the composition
    root fills it; the readiness middleware lets no request reach an empty one."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._value: T | None = None

    def fill(self, value: T) -> None:
        self._value = value

    @property
    def value(self) -> T:
        if self._value is None:
            raise RuntimeError(f"{self._name} has not started")
        return self._value


@dataclass(frozen=True)
class StoreAccess:
    readers: ReadPool
    writer: DbWriter
    clock: Clock


STORE: web.AppKey[Slot[StoreAccess]] = web.AppKey("store")
