"""The WAL fsync thread of the group commit: one fsync at a time, its outcome handed to the loop.

A `ThreadPoolExecutor` did the same with a Python-level future, condition and work item per
fsync, all run under the GIL the event loop needs too (about 8 % of the loop thread's GIL time at
1,000 mails/s). This thread runs three calls per fsync: a C queue's `get`, `os.fsync` (without the
GIL) and the loop's `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections.abc import Callable

_STOP = object()

Done = Callable[[Exception | None], None]


class WalSync:
    """fsyncs `fd` when asked; `done(error or None)` is then called on the asking loop."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._requests: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, Done] | object]
        self._requests = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="wal-fsync", daemon=True)
        self._thread.start()

    def request(self, loop: asyncio.AbstractEventLoop, done: Done) -> None:
        self._requests.put((loop, done))

    def close(self) -> None:
        """Stop once the fsyncs asked for so far are done."""
        self._requests.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        get, fd = self._requests.get, self.fd
        while (request := get()) is not _STOP:
            loop, done = request  # type: ignore[misc]
            del request
            error: Exception | None = None
            try:
                os.fsync(fd)
            except Exception as exc:  # whatever it is, the writers waiting hear it and the thread goes on
                error = exc
            # The batch goes to the loop in a box this thread no longer reads: `call_soon_threadsafe`
            # writes the loop's wake-up socket without the GIL, and the loop can run `done` before this
            # thread's next line. Handed as arguments, `done` (and the batch's pieces, futures and
            # results it holds) was then freed by this thread's `del`, not on the loop's thread where
            # they were made; emptied by the loop, the box leaves this thread nothing of the batch.
            box: list[object] = [done, error]
            del done, error
            try:
                loop.call_soon_threadsafe(_deliver, box)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass
            del box


def _deliver(box: list[object]) -> None:
    """On the loop: take the outcome out of the box, so the loop holds the batch's last reference."""
    done, error = box
    box.clear()
    done(error)  # type: ignore[operator]
