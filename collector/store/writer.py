"""The one writer of the collector database: a thread that commits, knowing no domain.

It runs two kinds of work, each in a transaction of its own: the batches of its ``WorkSource``
(ingest's queue of received messages, ``collector.ingest.queue``) with the source's periodic
tick, and the jobs the event loop submits (``submit``: API calls, bookkeeping), between batches.
Each committed batch's result goes back to the loop (``on_result``). A failed commit is rolled
back, the source rebuilds its in-memory state from the database, and the same batch is tried
again: nothing handed over is dropped because a commit failed. (Datasette's ``execute_write_fn``
is the model: one thread owns the connection, everyone else hands it work.)

Failing commits are never quiet. While they fail ``commit_error`` is set (``/healthz`` fails);
after ``commit_attempts`` failures in a row the writer gives up and its thread ends, and so does
one that crashes: ``on_failure`` tells the loop, which ends the process with an error for systemd
to restart it (nothing is lost: devices resend whatever was not acknowledged). A commit that fails
for lack of space is different, as a restart would not free any: the writer releases its
``SpaceReserve``, commits a critical alert through the ``StorageWatch`` in the room that freed,
sets ``storage_error`` (``/healthz`` fails) and keeps trying; it is over once the reserve can be
made again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from collector.errors import DomainError
from collector.store.errors import is_out_of_space
from collector.store.reserve import SpaceReserve
from protocol.backoff import Backoff
from protocol.clock import Clock

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class WriterFailedError(Exception):
    """Commits kept failing (for another reason than space): the writer gave up."""


@dataclass(frozen=True)
class Batch(Generic[R]):
    """One unit of a source's work: ``work`` runs inside the writer's transaction; ``learn``, if
    any, is told the writer thread's CPU seconds the batch and its commit took."""

    work: Callable[[], R]
    learn: Callable[[float], None] | None = None


class WorkSource(Protocol[R]):
    """What the writer runs besides jobs. Called from the writer thread, except ``bind``."""

    def bind(self, wake: Callable[[], None]) -> None:
        """Keep ``wake``: call it (from any thread) when work arrives."""

    def reload(self) -> None:
        """Rebuild in-memory state from the database (at start, after a rollback)."""

    def pending(self) -> bool: ...

    def next_batch(self) -> Batch[R] | None: ...

    def tick(self, *, final: bool = False) -> Callable[[], R]:
        """The periodic work (every ``tick_s``), and the last one before the writer stops."""

    def new_result(self) -> R:
        """An empty result, for the storage watch to fill."""

    def committed(self, seconds: float) -> None: ...

    def commit_failed(self) -> None: ...


class StorageWatch(Protocol[R]):  # type: ignore[misc]
    """Told, in the writer thread and inside a transaction of its own, when commits start
    failing for lack of space and when there is room again; adds to ``result`` what to
    deliver."""

    def storage_failing(self, detail: str, result: R) -> None: ...

    def storage_recovered(self, result: R) -> None: ...


Job = Callable[[sqlite3.Connection], object]
FailureCallback = Callable[[str], None]
COMMIT_ATTEMPTS = 6
"""Failed commits in a row (3 to 6 s of backoff between them) before the writer gives up."""


class DbWriter:
    """The writer thread. Results are the source's own (``Any`` here: the writer only carries
    them from its thread to ``on_result`` on the loop)."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        source: WorkSource[Any],
        clock: Clock,
        *,
        tick_s: float = 1.0,
        reserve: SpaceReserve | None = None,
        storage_watch: StorageWatch[Any] | None = None,
        commit_attempts: int = COMMIT_ATTEMPTS,
    ) -> None:
        self._db = connection
        self._source = source
        self._clock = clock
        self._on_result: Callable[[Any], None] = lambda result: None
        self._on_failure: FailureCallback | None = None
        self._reserve = reserve
        self._storage_watch = storage_watch
        self._commit_attempts = commit_attempts
        self._tick_s = tick_s
        self._jobs: deque[tuple[Job, asyncio.Future[object]]] = deque()
        self._wake = threading.Event()
        self._retry_pause = threading.Event()  # never set: an interruptible sleep
        self._stopping = False
        self._tick_requested = False
        source.bind(self._wake.set)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.alive = False
        self.failure: str | None = None
        """Why the thread ended, when it did not end by ``stop()``."""
        self.commit_error: str | None = None
        """The last error, while commits fail (not for lack of space)."""
        self.storage_error: str | None = None
        """Set while the database's disk is full (see the module docstring)."""

    # --- the event loop's side ------------------------------------------------------------------

    def start(
        self,
        loop: asyncio.AbstractEventLoop,
        on_result: Callable[[Any], None],
        on_failure: FailureCallback | None = None,
    ) -> None:
        """Start the thread; ``on_result`` runs on ``loop`` after every committed batch, and
        ``on_failure`` (with the reason) if the thread ends other than by ``stop()``."""
        self._loop = loop
        self._on_result = on_result
        self._on_failure = on_failure
        self._source.reload()
        if self._reserve is not None and not self._reserve.ensure():
            self.storage_error = "less free space than the reserve needs"
        self.alive = True
        self._thread = threading.Thread(target=self._run, name="db-writer", daemon=True)
        self._thread.start()

    @property
    def healthy(self) -> bool:
        """Running, committing, and with room on its disk."""
        return self.alive and self.commit_error is None and self.storage_error is None

    def submit(self, job: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Run ``job`` in the writer thread, in its own transaction."""
        assert self._loop is not None, "start() the writer first"
        future: asyncio.Future[T] = self._loop.create_future()
        if not self.alive:
            future.set_exception(RuntimeError("the database writer is not running"))
            return future
        self._jobs.append((job, future))  # type: ignore[arg-type]
        self._wake.set()
        return future

    def request_tick(self) -> None:
        """Flush live state and sweep freshness now (tests with a manual clock use this)."""
        self._tick_requested = True
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what was handed over, flush, and end the thread. Blocking: run in an executor."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # --- the writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        next_tick = self._clock.monotonic() + self._tick_s
        try:
            self._notify_storage(self.storage_error)  # also ends what the last run left raised
            while True:
                self._wake.wait(max(0.0, min(self._tick_s, next_tick - self._clock.monotonic())))
                self._wake.clear()
                source = self._source
                batch = source.next_batch()
                if batch is not None:
                    started = time.thread_time()
                    self._post(self._commit_retrying(batch.work))
                    if batch.learn is not None:
                        batch.learn(time.thread_time() - started)
                    if source.pending():
                        self._wake.set()
                self._run_jobs()
                if self._tick_requested or self._clock.monotonic() >= next_tick:
                    self._tick_requested = False
                    next_tick = self._clock.monotonic() + self._tick_s
                    self._check_storage()
                    self._post(self._commit_retrying(source.tick()))
                if self._stopping and not (source.pending() or self._jobs):
                    self._post(self._commit_retrying(source.tick(final=True)))
                    break
        except BaseException as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
            log.critical("writer.crashed error=%s", self.failure, exc_info=exc)
        finally:
            self.alive = False
            self._fail_pending_jobs()
            if self.failure is not None and self._on_failure is not None:
                self._call_loop(self._on_failure, self.failure)

    def _commit_retrying(self, work: Callable[[], T]) -> T:
        backoff = Backoff(initial=0.2, maximum=10.0)
        failures = 0
        while True:
            started = time.perf_counter()
            try:
                self._db.execute("BEGIN IMMEDIATE")
                result = work()
                self._db.execute("COMMIT")
            except Exception as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                self._source.commit_failed()
                self._source.reload()  # if even this fails, the thread ends: nothing to trust
                delay = backoff.next_delay()
                if is_out_of_space(exc):
                    log.error("writer.commit_failed_no_space error=%s retry_in_s=%.1f", exc, delay)
                    self._out_of_space(str(exc))
                else:
                    failures += 1
                    self.commit_error = f"{type(exc).__name__}: {exc}"
                    log.error(
                        "writer.commit_failed error=%s attempt=%d of=%d retry_in_s=%.1f",
                        self.commit_error, failures, self._commit_attempts, delay,
                    )  # fmt: skip
                    if failures >= self._commit_attempts:
                        raise WriterFailedError(
                            f"{failures} commits failed in a row, the last: {self.commit_error}"
                        ) from exc
                if self._stopping and backoff.attempt > 3:
                    raise WriterFailedError(f"stopping, and commits still fail: {exc}") from exc
                self._retry_pause.wait(delay)
                self._run_jobs()  # API calls answer (with an error, if they cannot commit either)
                self._check_storage()
                continue
            self.commit_error = None
            if self.storage_error is not None and self._reserve is None:
                self._storage_recovered()
            self._source.committed(time.perf_counter() - started)
            return result

    # --- running out of space -------------------------------------------------------------------

    def _out_of_space(self, detail: str) -> None:
        if self.storage_error is not None:
            return
        self.storage_error = detail
        freed = self._reserve.release() if self._reserve is not None else False
        log.critical("writer.storage_full error=%s reserve_released=%s", detail, freed)
        self._notify_storage(detail)

    def _check_storage(self) -> None:
        """While out of space: over once the reserve can be made again (with no reserve to make,
        at the next commit that succeeds)."""
        if self.storage_error is None or self._reserve is None or not self._reserve.ensure():
            return
        self._storage_recovered()

    def _storage_recovered(self) -> None:
        log.warning("writer.storage_recovered was=%s", self.storage_error)
        self.storage_error = None
        self._notify_storage(None)

    def _notify_storage(self, failing: str | None) -> None:
        """Tell the storage watch in a transaction of its own (in the room the reserve freed),
        and deliver what it raised or ended."""
        watch = self._storage_watch
        if watch is None:
            return
        result = self._source.new_result()
        try:
            self._db.execute("BEGIN IMMEDIATE")
            if failing is not None:
                watch.storage_failing(failing, result)
            else:
                watch.storage_recovered(result)
            self._db.execute("COMMIT")
        except Exception as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            self._source.reload()
            log.critical("writer.storage_alert_failed error=%s", exc)
            return
        self._post(result)

    def _run_jobs(self) -> None:
        while self._jobs:
            job, future = self._jobs.popleft()
            try:
                self._db.execute("BEGIN IMMEDIATE")
                value = job(self._db)
                self._db.execute("COMMIT")
            except DomainError as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                if not exc.changed_nothing:
                    self._source.reload()
                self._resolve(future, None, exc)
            except Exception as exc:
                log.exception("writer.job_failed")
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                self._source.reload()
                self._resolve(future, None, exc)
            else:
                self._resolve(future, value, None)

    def _post(self, result: object) -> None:
        self._call_loop(self._on_result, result)

    def _resolve(
        self, future: asyncio.Future[object], value: object, error: BaseException | None
    ) -> None:
        def settle() -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

        self._call_loop(settle)

    def _call_loop(self, callback: Callable[..., None], *args: object) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: shutting down
            self._loop.call_soon_threadsafe(callback, *args)

    def _fail_pending_jobs(self) -> None:
        while self._jobs:
            _, future = self._jobs.popleft()
            self._resolve(future, None, RuntimeError("the database writer stopped"))
