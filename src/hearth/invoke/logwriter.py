"""Writes invocation logs on a worker thread, so a durable commit never sits on the invoke path.

It owns the queue between the invoker (on the event loop) and the log store. Events are written in
the order they were queued. Group commit (perf, issue 17): after the first batch arrives the writer
waits `COALESCE_S` and takes everything queued by then, merging consecutive batches of one stream into
one append (one transaction, one fsync): a warm environment answering a thousand invocations a second
otherwise cost the host a thousand commits a second, CPU the invocations themselves need on a small
host. Logs become readable at most that much later. It never drops a batch unless the store refuses it
(then the error is logged). `close()` writes everything still queued.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from hearth.invoke.logs import LogSink

log = logging.getLogger(__name__)

COALESCE_S = 0.005  # how long the writer lets batches gather after the first one
MAX_GATHERED = 512  # batches taken at once at most (bounds one transaction's size)


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
            first = self._queue.get()
            if first is None:
                return
            time.sleep(COALESCE_S)  # releases the GIL: the event loop runs while batches gather
            gathered, stop = _drain(self._queue, first)
            for batch in _merge(gathered):
                try:
                    self._sink.ensure_group(batch.account, batch.region, batch.group)
                    self._sink.ensure_stream(batch.account, batch.region, batch.group, batch.stream)
                    self._sink.append(batch.account, batch.region, batch.group, batch.stream, batch.events)
                except Exception:  # one bad batch must not stop the writer
                    log.exception("writing %d log events to %s failed", len(batch.events), batch.group)
            if stop:
                return

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)


def _drain(q: queue.SimpleQueue[_Batch | None], first: _Batch) -> tuple[list[_Batch], bool]:
    """`first` and whatever is queued now (at most MAX_GATHERED); True when the stop mark was met."""
    gathered = [first]
    while len(gathered) < MAX_GATHERED:
        try:
            item = q.get_nowait()
        except queue.Empty:
            break
        if item is None:
            return gathered, True
        gathered.append(item)
    return gathered, False


def _merge(batches: list[_Batch]) -> list[_Batch]:
    """Consecutive batches of the same stream as one (order kept: only neighbours are merged)."""
    merged: list[_Batch] = []
    for batch in batches:
        last = merged[-1] if merged else None
        if last is not None and (last.account, last.region, last.group, last.stream) == (
                batch.account, batch.region, batch.group, batch.stream):
            merged[-1] = _Batch(last.account, last.region, last.group, last.stream, last.events + batch.events)
        else:
            merged.append(batch)
    return merged
