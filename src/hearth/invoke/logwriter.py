"""Writes invocation logs on a worker thread, so a durable commit never sits on the invoke path.

It owns the queue between the invoker (on the event loop) and the log store. Events are written in
the order they were queued, each batch in one transaction of the store. It never drops a batch
unless the store refuses it (then the error is logged). `close()` writes everything still queued.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass

from hearth.invoke.logs import LogSink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Batch:
    account: str
    region: str
    group: str
    stream: str
    events: list[tuple[int, str]]


class BackgroundLogSink:
    """A LogSink that queues batches for one writer thread in front of a synchronous sink."""

    def __init__(self, sink: LogSink) -> None:
        self._sink = sink
        self._queue: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="hearth-log-writer", daemon=True)
        self._thread.start()
        self._closed = False

    # The invoker calls ensure_group, ensure_stream, then append: only append carries data, and the
    # writer thread creates the group and stream itself before the first batch of a stream.
    def ensure_group(self, account: str, region: str, group: str) -> None:
        pass

    def ensure_stream(self, account: str, region: str, group: str, stream: str) -> None:
        pass

    def append(self, account: str, region: str, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        if self._closed:
            raise RuntimeError("the log writer is closed")
        self._queue.put(_Batch(account, region, group, stream, events))

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            try:
                self._sink.ensure_group(batch.account, batch.region, batch.group)
                self._sink.ensure_stream(batch.account, batch.region, batch.group, batch.stream)
                self._sink.append(batch.account, batch.region, batch.group, batch.stream, batch.events)
            except Exception:  # one bad batch must not stop the writer
                log.exception("writing %d log events to %s failed", len(batch.events), batch.group)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
