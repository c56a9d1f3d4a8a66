"""Graceful shutdown: on SIGTERM lose no request that was accepted.

uvicorn alone, on SIGTERM, stops accepting, waits up to its graceful timeout for open requests,
then *cancels* the rest (each becomes a 500) and re-raises the signal, so the process dies by
SIGTERM instead of exiting 0. :class:`GracefulServer` changes the order of events:

1. **not ready** — ``/readyz`` and ``/v2/health/ready`` answer 503 and ``ood_model_ready`` drops
   to 0, while everything is still served, for ``shutdown_delay_s`` (0 by default; a few seconds
   behind a load balancer, so it notices before connections are refused);
2. **stop accepting** — uvicorn closes the listening socket; a request arriving on a kept-alive
   connection gets 503 ``shutting_down``; accepted requests run to their answer;
3. **fail what cannot finish** — shortly before ``graceful_shutdown_s`` runs out, requests still
   queued get 503 ``shutting_down`` (with ``Retry-After``) instead of uvicorn's 500;
4. **exit 0** — the lifespan closes the batchers and the process exits normally.

SIGINT works the same. A second signal during step 1 skips the rest of the delay; signals after
step 2 began get uvicorn's own handling (a second SIGINT forces the exit).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from types import FrameType
from typing import Any

import uvicorn

from service.state import AppState

logger = logging.getLogger(__name__)

#: Queued requests are failed this long (at most; a quarter of a short grace) before the grace ends.
FAIL_QUEUED_MARGIN_S = 1.0


class GracefulServer(uvicorn.Server):
    """``uvicorn.Server`` with the shutdown sequence of the module docstring."""

    def __init__(
        self,
        config: uvicorn.Config,
        state: AppState,
        *,
        shutdown_delay_s: float = 0.0,
        graceful_shutdown_s: float = 10.0,
    ) -> None:
        super().__init__(config)
        self._state = state
        self._shutdown_delay_s = shutdown_delay_s
        self._graceful_shutdown_s = graceful_shutdown_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False
        self._stopping = False
        self._background: set[asyncio.Future[Any]] = set()

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Signal handler: run the sequence on the event loop (signal-safe).

        First signal: begin. Second, during ``shutdown_delay_s``: stop accepting now. Later
        ones: uvicorn's own handling.
        """
        if self._loop is None or self._stopping:
            super().handle_exit(sig, frame)
        elif not self._draining:
            self._draining = True
            self._loop.call_soon_threadsafe(self._begin, sig)
        else:
            self._loop.call_soon_threadsafe(self._stop)

    def _begin(self, sig: int) -> None:
        registry = self._state.registry
        if registry is None:  # still starting: nothing accepted yet
            self._stopping = True
            self.should_exit = True
            return
        registry.begin_drain()
        logger.info(
            "%s: not ready; stop accepting in %.1f s, then finish accepted requests (at most %g s)",
            signal.Signals(sig).name,
            self._shutdown_delay_s,
            self._graceful_shutdown_s,
        )
        assert self._loop is not None
        self._loop.call_later(self._shutdown_delay_s, self._stop)

    def _stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        registry = self._state.registry
        assert registry is not None and self._loop is not None
        registry.begin_stop()
        margin = min(FAIL_QUEUED_MARGIN_S, self._graceful_shutdown_s / 4)
        self._loop.call_later(self._graceful_shutdown_s - margin, self._fail_queued)
        self.should_exit = True  # uvicorn closes the listener on its next tick

    def _fail_queued(self) -> None:
        registry = self._state.registry
        if registry is None:
            return
        queued = sum(
            served.batcher.queued_items
            for served in registry.all_served()
            if served.batcher is not None
        )
        if queued:
            logger.warning("grace period ending: failing %d queued items with 503", queued)
        task = asyncio.ensure_future(registry.fail_queued())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
