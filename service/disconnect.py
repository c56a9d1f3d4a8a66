"""Stop working for a client that has gone away.

A request waiting for its batch holds queue space; if its client disconnects, the work is
cancelled so the batcher drops its items before they run (see :mod:`service.batcher`). Both
protocols' handlers wrap the queued part of a request in :func:`unless_disconnected`, after the
body has been read in full (the ASGI ``receive`` channel then only carries ``http.disconnect``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from starlette.types import Receive

from service import errors

T = TypeVar("T")


async def unless_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """The result of ``work``, unless the client disconnects first.

    Then ``work`` is cancelled and :func:`service.errors.client_disconnected` (499) is raised;
    nobody reads that answer, but it is counted (``reason="disconnected"``). Call it only once
    the body has been read.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # the handler itself was cancelled
        task.cancel()
        watcher.cancel()
        raise
    if task in done or watcher.exception() is not None:
        watcher.cancel()
        return await task
    task.cancel()
    task.add_done_callback(_retrieve)
    raise errors.client_disconnected()


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a cancelled task's outcome as seen (no 'exception never retrieved' warnings)."""
    if not task.cancelled():
        task.exception()


async def _disconnected(receive: Receive) -> None:
    """Return when the client disconnects (the body has been read: nothing else arrives)."""
    while (await receive())["type"] != "http.disconnect":
        pass
