"""Group commit for the engine's writes. Every order being worked on ends each step with
a write (a target applied, a reset recorded, the device's answer): under a burst of
orders these come from many tasks at once, and each was its own transaction (a session,
``BEGIN IMMEDIATE``, the audit head read, a commit and, on SQLite, an fsync), one
after the other behind the store's write lock. Here the writes that arrive while a
transaction runs wait for the next one and go together (``Store.write_batch``): one
alone is written at once, as before; many share a transaction. Each caller still gets
its own result or its own exception (a failing batch is re-run one write at a time)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from enforcer.store.repository import Store, WriteOp

log = logging.getLogger(__name__)
#: Writes per transaction at most: the store's write lock is held for the whole
#: transaction, and intake (a new order) must not wait long behind it.
MAX_BATCH = 8


class GroupWriter:
    def __init__(self, store: Store, *, max_batch: int = MAX_BATCH) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: list[tuple[WriteOp, asyncio.Future[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.transactions = 0  # for tests and the benchmark's notes
        self.writes = 0

    async def write(self, op: WriteOp) -> Any:
        """Run ``op`` in a write transaction (shared with other writes queued meanwhile);
        its result, or the exception it raised."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests): nothing carries over
            self._loop, self._queue, self._drainer = loop, [], None
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.append((op, fut))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain(), name="group-writer")
        return await fut

    async def _drain(self) -> None:
        while self._queue:
            # A caller cancelled before its write started (its device's lease was lost,
            # the daemon stops) has its write dropped, as with a call of its own.
            self._queue = [(op, fut) for op, fut in self._queue if not fut.cancelled()]
            batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
            if not batch:
                continue
            try:
                results = await asyncio.to_thread(self.store.write_batch,
                                                  [op for op, _ in batch])
            except BaseException as e:  # cancelled (shutdown) or the thread failed
                rest, self._queue = self._queue, []
                for _, fut in batch + rest:
                    if not fut.done():
                        fut.set_exception(e if isinstance(e, Exception)
                                          else asyncio.CancelledError())
                raise
            # A transaction that made way for intake ran the first writes only: the
            # others go first in the next one.
            batch, self._queue = batch[:len(results)], batch[len(results):] + self._queue
            # A batch either commits whole or, failing, is re-run one write at a time.
            self.transactions += 1 if len(batch) == 1 or all(ok for ok, _ in results) \
                else len(batch) + 1
            self.writes += len(batch)
            log.debug("group commit: %d write(s) in one transaction", len(batch))
            for (_, fut), (ok, value) in zip(batch, results, strict=True):
                if fut.done():  # the caller was cancelled; the write is done all the same
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(value)
