"""Adaptive batching: rows that arrive while the model is busy are predicted in one call.

One consumer per worker takes whatever has queued (up to `max_batch_size` rows, after an optional
`max_wait_ms`) and predicts it in a thread, so a lone request is answered at once and a burst
shares model calls. Nothing is ever rejected for load: the queue holds what the clients sent.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from mmp.serving.columns import join


class Batcher:
    def __init__(self, predict: Callable[[Any], Any], max_batch_size: int = 4096,
                 max_wait_ms: float = 0.0, enabled: bool = True):
        self.predict = predict
        self.max_batch_size = max_batch_size if enabled else 1
        self.max_wait = max_wait_ms / 1000.0
        self.queue: asyncio.Queue | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmp-model")
        self.task: asyncio.Task | None = None  # a strong reference keeps the consumer alive

    async def submit(self, rows: Any) -> Any:
        """Predict `rows` (a `Columns` block, or a list of requests); returns one result per row, in order."""
        if self.queue is None:
            self.queue = asyncio.Queue()
            self.task = asyncio.get_running_loop().create_task(self._consume())
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((rows, future))
        return await future

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        assert self.queue is not None
        while True:
            batch = [await self.queue.get()]
            size = len(batch[0][0])
            if self.max_wait and size < self.max_batch_size:
                await asyncio.sleep(self.max_wait)
            while size < self.max_batch_size and not self.queue.empty():
                rows, future = self.queue.get_nowait()
                batch.append((rows, future))
                size += len(rows)
            everything = join([rows for rows, _ in batch])  # one frame for the whole model call
            try:
                results = await loop.run_in_executor(self.executor, self.predict, everything)
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exception=exc)
                    continue
                # One request's rows broke the shared call: predict each request alone, so only
                # the request that caused it fails.
                for rows, future in batch:
                    try:
                        _settle(future, await loop.run_in_executor(self.executor, self.predict, rows))
                    except Exception as alone:
                        _settle(future, exception=alone)
                continue
            start = 0
            for rows, future in batch:
                _settle(future, results[start:start + len(rows)])
                start += len(rows)


def _settle(future: asyncio.Future, result: Any = None, exception: BaseException | None = None) -> None:
    if future.done():  # the client went away
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
