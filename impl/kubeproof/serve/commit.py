"""Group commit: many WAL appends share one fsync, and no answer precedes its fsync.

Theory of operation
-------------------
Requests run one at a time on the event loop; each change they make is
appended to the WAL (`DurableStore`) without an fsync.  Before a response
(any response: a read may show a change another request just made) leaves,
the handler awaits ``barrier(log.written)``: it returns at once when
everything written is already synced, else it waits for the next fsync.
One background task runs fsyncs in a worker thread back to back while
anyone waits, so a burst of N concurrent writes costs about two fsyncs,
not N.  Watch events pass the same barrier before they are sent.

An fsync that fails fails every waiter (and every later one): the disk can
no longer be trusted, and the server stops (`failed` is set for it to see).
"""

from __future__ import annotations

import asyncio

from .wal import WriteAheadLog

__all__ = ["GroupCommit"]


class GroupCommit:
    def __init__(self, log: WriteAheadLog) -> None:
        self.log = log
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self.failed: BaseException | None = None
        self.fsyncs = 0

    @property
    def pending(self) -> bool:
        return self.log.synced < self.log.written

    async def barrier(self, offset: int | None = None) -> None:
        """Returns once the log is durable up to ``offset`` (default: all written)."""
        target = self.log.written if offset is None else offset
        if self.failed is not None:
            raise RuntimeError(f"the write-ahead log cannot be synced: {self.failed}")
        if self.log.synced >= target:
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._waiters.append((target, fut))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())
        await fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiters:
            try:
                synced = await loop.run_in_executor(None, self.log.sync)
            except BaseException as e:  # the disk failed: nobody may be told "done"
                self.failed = e
                waiters, self._waiters = self._waiters, []
                for _, fut in waiters:
                    if not fut.done():
                        fut.set_exception(RuntimeError(f"fsync failed: {e}"))
                return
            self.fsyncs += 1
            still: list[tuple[int, asyncio.Future[None]]] = []
            for target, fut in self._waiters:
                if target <= synced:
                    if not fut.done():
                        fut.set_result(None)
                else:
                    still.append((target, fut))
            self._waiters = still

    async def close(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
