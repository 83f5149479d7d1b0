from __future__ import annotations

import base64

from hearth.invoke import logs


def test_capture_splits_lines_and_keeps_partial_until_close() -> None:
    cap = logs.LogCapture()
    cap.feed(b"one\ntw")
    cap.feed(b"o\nthree")
    assert [line for _, line in cap.events] == ["one\n", "two\n"]
    cap.close()
    assert [line for _, line in cap.events] == ["one\n", "two\n", "three\n"]


def test_capture_is_bounded_and_says_what_it_dropped() -> None:
    cap = logs.LogCapture()
    chunk = b"x" * 1023 + b"\n"
    for _ in range(2 * 1024 + 10):  # a little over 2 MiB
        cap.feed(chunk)
    cap.close()
    assert cap.size == logs.MAX_CAPTURE_BYTES
    assert cap.dropped == (2 * 1024 + 10) * 1024 - logs.MAX_CAPTURE_BYTES
    assert cap.events[-1][1].startswith(f"[hearth] {cap.dropped} bytes of output dropped")


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    cap = logs.LogCapture()
    cap.feed(b"\xff\xfe\n")
    assert cap.events[0][1] == "\ufffd\ufffd\n"


def test_report_line_matches_aws_format() -> None:
    line = logs.report_line("rid", duration_ms=1.234, memory_mb=128, max_memory_used_mb=38, init_duration_ms=120.456)
    assert line == ("REPORT RequestId: rid\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t"
                    "Max Memory Used: 38 MB\tInit Duration: 120.46 ms\t\n")
    warm = logs.report_line("rid", duration_ms=0.2, memory_mb=128, max_memory_used_mb=38)
    assert "Billed Duration: 1 ms" in warm and "Init Duration" not in warm
    timeout = logs.report_line("rid", duration_ms=3000.5, memory_mb=128, max_memory_used_mb=40,
                               status="timeout", error_type="Sandbox.Timedout")
    assert timeout.endswith("Status: timeout\tError Type: Sandbox.Timedout\t\n")


def test_start_end_lines() -> None:
    assert logs.start_line("r", "$LATEST") == "START RequestId: r Version: $LATEST\n"
    assert logs.end_line("r") == "END RequestId: r\n"


def test_tail_is_last_4kb_base64() -> None:
    events = [(0, "a" * 3000 + "\n"), (1, "b" * 3000 + "\n")]
    text = base64.b64decode(logs.tail(events))
    assert len(text) == 4096 and text.endswith(b"b\n")


def test_log_stream_name_like_aws() -> None:
    name = logs.log_stream_name("$LATEST", "0123456789abcdef0123456789abcdef")
    assert name.endswith("/[$LATEST]0123456789abcdef0123456789abcdef")
    assert len(name.split("/")) == 4
