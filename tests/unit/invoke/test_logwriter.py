"""The background log writer: group commit merges neighbouring batches of one stream, keeps the order,
and `close()` writes everything queued."""

from __future__ import annotations

import queue

from hearth.invoke.logwriter import BackgroundLogSink, _Batch, _drain, _merge


def _b(stream: str, *events: str) -> _Batch:
    return _Batch("000000000000", "us-east-1", "/aws/lambda/f", stream, [(i, e) for i, e in enumerate(events)])


def test_neighbouring_batches_of_a_stream_merge_in_order() -> None:
    merged = _merge([_b("s1", "a"), _b("s1", "b", "c"), _b("s2", "x"), _b("s1", "d")])
    assert [(m.stream, [e for _, e in m.events]) for m in merged] == [("s1", ["a", "b", "c"]), ("s2", ["x"]),
                                                                      ("s1", ["d"])]


def test_draining_stops_at_the_stop_mark() -> None:
    q: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
    for item in (_b("s1", "b"), None, _b("s1", "late")):
        q.put(item)
    gathered, stop = _drain(q, _b("s1", "a"))
    assert [b.events[0][1] for b in gathered] == ["a", "b"] and stop


class _Recorder:
    def __init__(self) -> None:
        self.appended: list[tuple[str, list[str]]] = []

    def ensure_group(self, account: str, region: str, group: str) -> None:
        pass

    def ensure_stream(self, account: str, region: str, group: str, stream: str) -> None:
        pass

    def append(self, account: str, region: str, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        self.appended.append((stream, [e for _, e in events]))


def test_close_writes_everything_in_queue_order() -> None:
    sink = _Recorder()
    writer = BackgroundLogSink(sink)
    for i in range(50):
        writer.append("000000000000", "us-east-1", "/aws/lambda/f", f"s{i % 2}", [(i, f"e{i}")])
    writer.close()
    per_stream: dict[str, list[str]] = {}
    for stream, events in sink.appended:
        per_stream.setdefault(stream, []).extend(events)
    assert per_stream == {"s0": [f"e{i}" for i in range(0, 50, 2)], "s1": [f"e{i}" for i in range(1, 50, 2)]}
