"""Dynamic batching for one model version: many small requests, few large ONNX Runtime runs.

``await batcher.submit(items, deadline)`` queues a request's items (an array whose first axis is
the item axis) and returns one output row per item, in order. A background task forms batches:
it waits for the first queued item, then until ``max_batch_size`` items are queued or
``max_delay_s`` has passed since that item arrived (``time.monotonic()``), then takes up to
``max_batch_size`` items from the head of the queue, runs them in the single worker thread and
hands each request its rows. While a batch runs, new items queue up; their delay has usually
passed when the run ends, so under load batches grow without waiting.

Up to ``max_batches_in_flight`` full batches (default 2) are handed to the worker at once: while
one runs, the next waits in the worker's queue, so the worker starts it the moment the first
ends instead of idling until the event loop, busy with HTTP, gets round to handing out results
and forming the next batch. A partial batch still waits for the running one and grows meanwhile.
The worker assembles a batch only when it is about to run it, leaving out requests that were
cancelled or expired meanwhile.

A request may be split across batches and may be larger than one batch. The queue is bounded in
items (:class:`QueueFull`); a request past its deadline, or whose caller was cancelled (client
disconnected), is dropped from the queue, and its items that were not yet taken are never run.
A failing run is retried request by request, so only the request that makes it fail gets
the error; an exception anywhere else in a round fails that round's requests, and the loop
keeps going either way.

The batcher knows nothing of HTTP or manifests, so other protocols (the v2 routes) share it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

RunFn = Callable[[NDArray[np.float32]], NDArray[np.float32]]


class BatcherError(Exception):
    """Base of the errors :meth:`DynamicBatcher.submit` raises."""


class QueueFull(BatcherError):
    """Admitting the request would exceed ``max_queue_items``."""


class DeadlineExceeded(BatcherError):
    """The request's deadline passed before its results were ready."""


class BatcherClosed(BatcherError):
    """The batcher is shutting down; the request was not (fully) run."""


class InferenceFailed(BatcherError):
    """The run holding some of the request's items raised; ``__cause__`` says why."""


class BatchObserver(Protocol):
    """Receives batching measurements (implemented by :class:`service.metrics.ModelMetrics`)."""

    def queue_depth(self, items: int) -> None: ...

    def batch_started(self, size: int, waits: Sequence[tuple[float, int]]) -> None:
        """``waits`` holds (seconds waited, number of items) per request slice in the batch."""

    def inference_done(self, seconds: float) -> None: ...


@dataclass(eq=False)
class _Request:
    items: NDArray[np.float32]
    deadline: float
    enqueued_at: float
    future: asyncio.Future[NDArray[np.float32]]
    taken: int = 0
    filled: int = 0
    outputs: NDArray[np.float32] | None = None
    abandoned: bool = False

    @property
    def remaining(self) -> int:
        """Items not yet handed to a batch."""
        return len(self.items) - self.taken


@dataclass(eq=False)
class _Slice:
    request: _Request
    start: int
    stop: int


@dataclass
class DynamicBatcher:
    """Per-model-version batching queue in front of a synchronous ``run`` function."""

    run: RunFn
    executor: Executor
    max_batch_size: int
    max_delay_s: float
    max_queue_items: int
    observer: BatchObserver | None = None
    name: str = "model"
    #: shape of one item; when set, :meth:`submit` refuses other shapes with ``ValueError``
    item_shape: tuple[int, ...] | None = None
    #: batches handed to the worker at once (one running, full ones waiting behind it)
    max_batches_in_flight: int = 2
    _queue: deque[_Request] = field(default_factory=deque, init=False)
    _queued_items: int = field(default=0, init=False)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _in_flight: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _slot_free: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _closed: bool = field(default=False, init=False)

    @property
    def queued_items(self) -> int:
        """Items admitted and not yet handed to a batch."""
        return self._queued_items

    def start(self) -> None:
        """Start the batching task on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name=f"batcher-{self.name}"
            )

    async def submit(self, items: NDArray[np.float32], deadline: float) -> NDArray[np.float32]:
        """Outputs for ``items`` (one row each, in order), by ``deadline`` (``time.monotonic()``).

        Raises :class:`QueueFull`, :class:`DeadlineExceeded`, :class:`BatcherClosed` or
        :class:`InferenceFailed` (and ``ValueError`` for items of the wrong shape). Cancelling
        the caller removes the request from the queue; its untaken items never run.
        """
        if self._closed:
            raise BatcherClosed()
        if self.item_shape is not None and items.shape[1:] != self.item_shape:
            raise ValueError(f"items have shape {items.shape[1:]}, expected {self.item_shape}")
        items = np.ascontiguousarray(items, dtype=np.float32)
        count = len(items)
        if self._queued_items + count > self.max_queue_items:
            raise QueueFull()
        now = time.monotonic()
        if deadline <= now:
            raise DeadlineExceeded()
        loop = asyncio.get_running_loop()
        request = _Request(items, deadline, now, loop.create_future())
        was_idle = self._queued_items == 0
        self._queue.append(request)
        self._queued_items += count
        self._report_depth()
        if was_idle or self._queued_items >= self.max_batch_size:
            self._wakeup.set()
            self._slot_free.set()  # a full batch may go to the worker beside the running one
        # a timer that fails the future, not asyncio.wait_for: on Python 3.11 that costs a second
        # future and several callbacks per request
        timer = loop.call_later(deadline - now, _expire, request.future)
        try:
            return await request.future
        finally:
            timer.cancel()
            self._abandon(request)

    async def close(self) -> None:
        """Fail queued requests with :class:`BatcherClosed`, let a running batch finish, stop."""
        self._closed = True
        while self._queue:
            request = self._queue.popleft()
            self._fail(request, BatcherClosed())
        self._report_depth()
        self._wakeup.set()
        self._slot_free.set()
        if self._task is not None:
            await self._task
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    # --- the batching loop ----------------------------------------------------------------------

    async def _loop(self) -> None:
        while not self._closed:
            slices: list[_Slice] = []
            try:
                await self._wait_for_slot()
                await self._wait_for_batch()
                slices = self._take_batch()
                if slices:
                    task = asyncio.get_running_loop().create_task(self._run_round(slices))
                    self._in_flight.add(task)
                    task.add_done_callback(self._round_done)
            except Exception as exc:  # a bug anywhere in one round must not stop the loop
                logger.exception("batching round of %s failed; the loop goes on", self.name)
                self._fail_slices(slices, exc)

    async def _wait_for_slot(self) -> None:
        """Until the worker may be handed another batch (see :meth:`_may_hand_over`)."""
        while not self._closed and not self._may_hand_over():
            self._slot_free.clear()
            await self._slot_free.wait()

    def _may_hand_over(self) -> bool:
        """With nothing in flight, always; else only a full batch, up to the in-flight limit.

        A partial batch waits for the running one instead: meanwhile it keeps growing, so
        single-item traffic still gets large batches, while full batches (bulk requests, heavy
        load) reach the worker without a gap between runs.
        """
        in_flight = len(self._in_flight)
        if in_flight == 0:
            return True
        return in_flight < self.max_batches_in_flight and self._queued_items >= self.max_batch_size

    def _round_done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slot_free.set()

    async def _run_round(self, slices: list[_Slice]) -> None:
        try:
            await self._run_batch(slices)
        except Exception as exc:  # as in _loop: fail this round's requests, keep serving
            logger.exception("batching round of %s failed; the loop goes on", self.name)
            self._fail_slices(slices, exc)

    async def _wait_for_batch(self) -> None:
        """Until the batch is full, or ``max_delay_s`` after its first item arrived, or closing."""
        while not self._closed:
            self._drop_dead_head()
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self._queued_items >= self.max_batch_size:
                return
            remaining = self._queue[0].enqueued_at + self.max_delay_s - time.monotonic()
            if remaining <= 0:
                return
            # a timer that sets the event, not asyncio.wait_for (a task per wait on Python 3.11)
            self._wakeup.clear()
            timeout = _Timeout()
            timer = asyncio.get_running_loop().call_later(remaining, timeout.fire, self._wakeup)
            try:
                await self._wakeup.wait()
            finally:
                timer.cancel()
            if timeout.fired:  # the event loop's clock may round the delay down: no re-arming
                return

    def _drop_dead_head(self) -> None:
        while self._queue and self._queue[0].remaining == 0:
            self._queue.popleft()

    def _take_batch(self) -> list[_Slice]:
        """Up to ``max_batch_size`` items from the head of the queue, skipping expired requests."""
        slices: list[_Slice] = []
        space = self.max_batch_size
        now = time.monotonic()
        while space and self._queue:
            request = self._queue[0]
            if request.remaining == 0:
                self._queue.popleft()
                continue
            if request.deadline <= now:
                self._queue.popleft()
                self._fail(request, DeadlineExceeded())
                continue
            take = min(space, request.remaining)
            slices.append(_Slice(request, request.taken, request.taken + take))
            request.taken += take
            self._queued_items -= take
            space -= take
            if request.remaining == 0:
                self._queue.popleft()
        self._report_depth()
        if slices and self.observer is not None:
            _observe(
                self.observer.batch_started,
                self.max_batch_size - space,
                [(now - s.request.enqueued_at, s.stop - s.start) for s in slices],
            )
        return slices

    async def _run_batch(self, slices: list[_Slice]) -> None:
        try:
            slices, outputs, seconds = await self._in_worker(slices)
        except Exception as exc:
            if len(slices) > 1:  # find the culprit: the other requests must not fail with it
                logger.warning(
                    "a batch of %d requests failed on %s (%s); running them one by one",
                    len(slices),
                    self.name,
                    exc,
                )
                for s in slices:
                    if not s.request.future.done():  # not expired or abandoned meanwhile
                        await self._run_batch([s])
                return
            logger.error("inference failed for a request on %s: %s", self.name, exc)
            self._fail_slices(slices, exc)
            return
        if self.observer is not None and slices:
            _observe(self.observer.inference_done, seconds)
        self._distribute(slices, outputs)

    def _in_worker(self, slices: list[_Slice]) -> asyncio.Future[_Ran]:
        """Run the slices as one batch in the executor; the worker resolves the loop's future.

        The worker drops the slices whose request is already answered (cancelled, expired)
        just before it runs, so a batch that waited behind another costs nothing for them; the
        future gets the slices that ran, their output rows and the run's seconds. Cheaper than
        ``loop.run_in_executor``, which chains a ``concurrent.futures.Future`` to an asyncio one
        (locks and several callbacks per batch): one ``call_soon_threadsafe``.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Ran] = loop.create_future()

        def work() -> None:
            try:
                live = [s for s in slices if not s.request.future.done()]
                if not live:
                    result: _Ran = (live, np.empty((0,), np.float32), 0.0)
                else:
                    batch = _concatenate(live)
                    start = time.monotonic()
                    outputs = self.run(batch)
                    result = (live, outputs, time.monotonic() - start)
                    if len(outputs) != len(batch):
                        raise RuntimeError(
                            f"run returned {len(outputs)} rows for {len(batch)} items"
                        )
            except BaseException as exc:
                loop.call_soon_threadsafe(_set_exception, future, exc)
            else:
                loop.call_soon_threadsafe(_set_result, future, result)

        self.executor.submit(work)
        return future

    def _distribute(self, slices: list[_Slice], outputs: NDArray[np.float32]) -> None:
        offset = 0
        for s in slices:
            count = s.stop - s.start
            rows = outputs[offset : offset + count]
            offset += count
            request = s.request
            if request.future.done():
                continue
            if count == len(request.items):
                request.future.set_result(rows)
                continue
            if request.outputs is None:
                request.outputs = np.empty((len(request.items), *rows.shape[1:]), rows.dtype)
            request.outputs[s.start : s.stop] = rows
            request.filled += count
            if request.filled == len(request.items):
                request.future.set_result(request.outputs)

    # --- bookkeeping ----------------------------------------------------------------------------

    def _abandon(self, request: _Request) -> None:
        """Give back the queue space of items never taken (idempotent)."""
        if request.remaining:
            self._queued_items -= request.remaining
            request.taken = len(request.items)
            self._report_depth()
        request.abandoned = True

    def _fail_slices(self, slices: list[_Slice], exc: Exception) -> None:
        """Fail every request with items in a batch that could not be run or handed out."""
        for s in slices:
            failure = InferenceFailed(str(exc)[:300])
            failure.__cause__ = exc
            self._fail(s.request, failure)

    def _fail(self, request: _Request, error: BatcherError) -> None:
        self._abandon(request)
        if not request.future.done():
            request.future.set_exception(error)

    def _report_depth(self) -> None:
        if self.observer is not None:
            self.observer.queue_depth(self._queued_items)


#: what a worker run gives back: the slices that ran, their output rows, the run's seconds
_Ran = tuple[list["_Slice"], NDArray[np.float32], float]


class _Timeout:
    """Remembers whether a timer fired before the event it sets."""

    fired = False

    def fire(self, event: asyncio.Event) -> None:
        self.fired = True
        event.set()


def _expire(future: asyncio.Future[NDArray[np.float32]]) -> None:
    if not future.done():
        future.set_exception(DeadlineExceeded())


def _set_result(future: asyncio.Future[_Ran], result: _Ran) -> None:
    if not future.done():
        future.set_result(result)


def _set_exception(future: asyncio.Future[_Ran], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _observe(hook: Callable[..., None], *args: object) -> None:
    """Call an observer hook; a failing measurement must not fail the requests it measures."""
    try:
        hook(*args)
    except Exception:
        logger.exception("batch observer %s failed", getattr(hook, "__name__", hook))


def _concatenate(slices: list[_Slice]) -> NDArray[np.float32]:
    """The batch array; a single slice is a view, not a copy."""
    if len(slices) == 1:
        only = slices[0]
        return only.request.items[only.start : only.stop]
    return np.concatenate([s.request.items[s.start : s.stop] for s in slices])
