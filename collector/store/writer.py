"""The one writer of the collector database: a thread that commits batches.

The event loop only hands over chunks of raw messages (``offer``) and jobs (``submit``); this thread
validates, writes and commits them in batched transactions, alarms first, and hands each committed
result back to the loop. A failed commit is rolled back, the in-memory state is rebuilt from the
database, and the same batch is tried again: messages are never dropped because a commit failed.

Failing commits are never quiet. While they fail ``commit_error`` is set (``/healthz`` fails);
after ``commit_attempts`` failures in a row the writer gives up and its thread ends, and so does
one that crashes: ``on_failure`` tells the loop, which ends the process with an error for systemd
to restart it (nothing is lost: devices resend whatever was not acknowledged). A commit that fails
for lack of space is different, as a restart would not free any: the writer releases its
``SpaceReserve``, commits a critical alert through the ``StorageWatch`` in the room that freed,
sets ``storage_error`` (``/healthz`` fails) and keeps trying; it is over once the reserve can be
made again.

Alarms never wait behind heartbeat load: waiting alarms make a batch of their own, and a batch of
ordinary messages is cut to about ``batch_budget_s`` of this thread's CPU time (at the cost per
message of the last batches), so an alarm that arrives meanwhile waits for about that much work —
and so do the jobs (API calls, webhook bookkeeping), which run between batches. CPU time, not
wall time: on a busy machine the wall time of a batch grows with the load, and batches cut by it
would shrink just when their fixed costs (a commit, an ack per device) matter most.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol, TypeVar

from collector.ingest.batch import BatchResult, Chunk
from collector.ingest.processor import IngestProcessor
from collector.store.errors import is_out_of_space
from collector.store.reserve import SpaceReserve
from protocol.backoff import Backoff
from protocol.clock import Clock

log = logging.getLogger(__name__)

T = TypeVar("T")


class JobRejectedError(Exception):
    """A job refused its work before changing anything (not found, conflict): it is rolled back
    and the in-memory state stays as it is."""


class WriterFailedError(Exception):
    """Commits kept failing (for another reason than space): the writer gave up."""


class StorageWatch(Protocol):
    """Told, in the writer thread and inside a transaction of its own, when commits start
    failing for lack of space and when there is room again; appends what to deliver."""

    def storage_failing(self, detail: str, result: BatchResult) -> None: ...

    def storage_recovered(self, result: BatchResult) -> None: ...


Job = Callable[[sqlite3.Connection], object]
FailureCallback = Callable[[str], None]
COMMIT_ATTEMPTS = 6
"""Failed commits in a row (3 to 6 s of backoff between them) before the writer gives up."""


class DbWriter:
    def __init__(
        self,
        connection: sqlite3.Connection,
        processor: IngestProcessor,
        clock: Clock,
        *,
        max_batch: int = 2000,
        tick_s: float = 1.0,
        batch_budget_s: float = 0.1,
        reserve: SpaceReserve | None = None,
        storage_watch: StorageWatch | None = None,
        commit_attempts: int = COMMIT_ATTEMPTS,
    ) -> None:
        self._db = connection
        self.processor = processor
        self._clock = clock
        self._on_result: Callable[[BatchResult], None] = lambda result: None
        self._on_failure: FailureCallback | None = None
        self._reserve = reserve
        self._storage_watch = storage_watch
        self._commit_attempts = commit_attempts
        self._max_batch = max_batch
        self._tick_s = tick_s
        self._budget_s = batch_budget_s
        self.seconds_per_message = 0.0
        """The writer thread's CPU time per ordinary message in the last batches, the commit's
        share included (0 until the first batch)."""
        self._alarms: deque[Chunk] = deque()
        self._normal: deque[Chunk] = deque()
        self._jobs: deque[tuple[Job, asyncio.Future[object]]] = deque()
        self._wake = threading.Event()
        self._retry_pause = threading.Event()  # never set: an interruptible sleep
        self._stopping = False
        self._tick_requested = False
        self._offered = 0  # written by the loop thread only
        self._taken = 0  # written by the writer thread only
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
        on_result: Callable[[BatchResult], None],
        on_failure: FailureCallback | None = None,
    ) -> None:
        """Start the thread; ``on_result`` runs on ``loop`` after every committed batch, and
        ``on_failure`` (with the reason) if the thread ends other than by ``stop()``."""
        self._loop = loop
        self._on_result = on_result
        self._on_failure = on_failure
        self.processor.load()
        if self._reserve is not None and not self._reserve.ensure():
            self.storage_error = "less free space than the reserve needs"
        self.alive = True
        self._thread = threading.Thread(target=self._run, name="db-writer", daemon=True)
        self._thread.start()

    def offer(self, chunk: Chunk, *, alarm: bool = False) -> None:
        (self._alarms if alarm else self._normal).append(chunk)
        self._offered += len(chunk.messages)
        self._wake.set()

    @property
    def healthy(self) -> bool:
        """Running, committing, and with room on its disk."""
        return self.alive and self.commit_error is None and self.storage_error is None

    @property
    def backlog(self) -> int:
        """Messages handed over and not yet taken into a batch."""
        return self._offered - self._taken

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
                chunks, alarms = self._take()
                if chunks:
                    started = time.thread_time()
                    self._post(
                        self._commit_retrying(functools.partial(self.processor.process, chunks))
                    )
                    if not alarms:
                        self._learn(time.thread_time() - started, chunks)
                    if self._alarms or self._normal:
                        self._wake.set()
                self._run_jobs()
                if self._tick_requested or self._clock.monotonic() >= next_tick:
                    self._tick_requested = False
                    next_tick = self._clock.monotonic() + self._tick_s
                    self._check_storage()
                    tick = functools.partial(self.processor.tick, self._oldest_waiting())
                    self._post(self._commit_retrying(tick))
                if self._stopping and not (self._alarms or self._normal or self._jobs):
                    self._post(self._commit_retrying(self.processor.tick))
                    break
        except BaseException as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
            log.critical("writer.crashed error=%s", self.failure, exc_info=exc)
        finally:
            self.alive = False
            self._fail_pending_jobs()
            if self.failure is not None and self._on_failure is not None:
                self._call_loop(self._on_failure, self.failure)

    def _oldest_waiting(self) -> float | None:
        """When the oldest message not yet taken was received (only this thread takes)."""
        heads = [queue[0].received_mono for queue in (self._alarms, self._normal) if queue]
        return min(heads) if heads else None

    def _take(self) -> tuple[list[Chunk], bool]:
        """The next batch, and whether it is one of alarms: waiting alarms go alone (not topped
        up with heartbeats), ordinary chunks up to the budget."""
        alarms = bool(self._alarms)
        queue = self._alarms if alarms else self._normal
        limit = self._max_batch if alarms else self._ordinary_limit()
        taken: list[Chunk] = []
        count = 0
        while queue and count < limit:
            chunk = queue.popleft()
            room = limit - count
            if len(chunk.messages) > room:
                # One socket read of a firehose can hold more than a budget: the rest waits at
                # the head of the queue, in order, for the next batch.
                queue.appendleft(dataclasses.replace(chunk, messages=chunk.messages[room:]))
                chunk = dataclasses.replace(chunk, messages=chunk.messages[:room])
            taken.append(chunk)
            count += len(chunk.messages)
        self._taken += count
        return taken, alarms

    def _ordinary_limit(self) -> int:
        if self.seconds_per_message <= 0:
            return self._max_batch
        return max(1, min(self._max_batch, int(self._budget_s / self.seconds_per_message)))

    def _learn(self, seconds: float, chunks: list[Chunk]) -> None:
        """Follow the cost per message (it depends on the load: how many heartbeats fold, how
        many are events), smoothed so one slow batch does not halve the next."""
        messages = sum(len(chunk.messages) for chunk in chunks)
        if messages:
            cost = seconds / messages
            previous = self.seconds_per_message
            self.seconds_per_message = cost if previous <= 0 else 0.7 * previous + 0.3 * cost

    def _commit_retrying(self, work: Callable[[], BatchResult]) -> BatchResult:
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
                self.processor.metrics.commit_failures += 1
                self.processor.load()  # if even this fails, the thread ends: nothing to trust
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
            metrics = self.processor.metrics
            metrics.batches += 1
            metrics.batch_seconds += time.perf_counter() - started
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
        result = BatchResult()
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
            self.processor.load()
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
            except JobRejectedError as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                self._resolve(future, None, exc)
            except Exception as exc:
                log.exception("writer.job_failed")
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                self.processor.load()
                self._resolve(future, None, exc)
            else:
                self._resolve(future, value, None)

    def _post(self, result: BatchResult) -> None:
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
