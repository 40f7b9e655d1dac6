"""What received messages wait in until the database writer takes them: the ingest side of the
one writer (``collector.store.writer``), which knows nothing of messages.

The event loop offers chunks (``offer``); the writer thread asks for the next batch. Alarms never
wait behind heartbeat load: waiting alarms make a batch of their own, and a batch of ordinary
messages is cut to about ``batch_budget_s`` of the writer thread's CPU time (at the cost per
message of the last batches), so an alarm that arrives meanwhile waits for about that much work —
and so do the writer's jobs (API calls, webhook bookkeeping), which run between batches. CPU time,
not wall time: on a busy machine the wall time of a batch grows with the load, and batches cut by
it would shrink just when their fixed costs (a commit, an ack per device) matter most.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import deque
from collections.abc import Callable

from collector.ingest.batch import BatchResult, Chunk
from collector.ingest.processor import IngestProcessor
from collector.store.writer import Batch


class IngestQueue:
    """The writer's ``WorkSource`` for ingest: chunks in, batches of the processor's work out."""

    def __init__(
        self, processor: IngestProcessor, *, max_batch: int = 2000, batch_budget_s: float = 0.1
    ) -> None:
        self.processor = processor
        self._max_batch = max_batch
        self._budget_s = batch_budget_s
        self.seconds_per_message = 0.0
        """The writer thread's CPU time per ordinary message in the last batches, the commit's
        share included (0 until the first batch)."""
        self._alarms: deque[Chunk] = deque()
        self._normal: deque[Chunk] = deque()
        self._offered = 0  # written by the loop thread only
        self._taken = 0  # written by the writer thread only
        self._wake: Callable[[], None] = lambda: None

    # --- the event loop's side ------------------------------------------------------------------

    def offer(self, chunk: Chunk, *, alarm: bool = False) -> None:
        (self._alarms if alarm else self._normal).append(chunk)
        self._offered += len(chunk.messages)
        self._wake()

    @property
    def backlog(self) -> int:
        """Messages handed over and not yet taken into a batch."""
        return self._offered - self._taken

    # --- WorkSource: the writer thread's side ---------------------------------------------------

    def bind(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    def reload(self) -> None:
        self.processor.load()

    def pending(self) -> bool:
        return bool(self._alarms or self._normal)

    def next_batch(self) -> Batch[BatchResult] | None:
        """The next batch: waiting alarms alone (not topped up with heartbeats), else ordinary
        chunks up to the budget."""
        alarms = bool(self._alarms)
        queue = self._alarms if alarms else self._normal
        if not queue:
            return None
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
        learn = None if alarms else functools.partial(self._learn, messages=count)
        return Batch(functools.partial(self.processor.process, taken), learn)

    def tick(self, *, final: bool = False) -> Callable[[], BatchResult]:
        if final:
            return self.processor.tick
        return functools.partial(self.processor.tick, self._oldest_waiting())

    def new_result(self) -> BatchResult:
        return BatchResult()

    def committed(self, seconds: float) -> None:
        self.processor.metrics.batches += 1
        self.processor.metrics.batch_seconds += seconds

    def commit_failed(self) -> None:
        self.processor.metrics.commit_failures += 1

    # --- batch sizes ----------------------------------------------------------------------------

    def _oldest_waiting(self) -> float | None:
        """When the oldest message not yet taken was received (only the writer thread takes)."""
        heads = [queue[0].received_mono for queue in (self._alarms, self._normal) if queue]
        return min(heads) if heads else None

    def _ordinary_limit(self) -> int:
        if self.seconds_per_message <= 0:
            return self._max_batch
        return max(1, min(self._max_batch, int(self._budget_s / self.seconds_per_message)))

    def _learn(self, seconds: float, *, messages: int) -> None:
        """Follow the cost per message (it depends on the load: how many heartbeats fold, how
        many are events), smoothed so one slow batch does not halve the next."""
        if messages:
            cost = seconds / messages
            previous = self.seconds_per_message
            self.seconds_per_message = cost if previous <= 0 else 0.7 * previous + 0.3 * cost
