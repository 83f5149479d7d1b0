"""The Python runtime's client pipelines `GET /next` behind each response, and asks again when the server
closed the connection after answering (the pipelined request went with it)."""

from __future__ import annotations

import importlib.util
import socket
import threading
from types import ModuleType

from tests.unit.runtimes.harness import PY_BOOTSTRAP

NEXT = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1"


def _bootstrap() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hearth_test_bootstrap", PY_BOOTSTRAP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # no side effects on import: main() is never called
    return module


def _invocation(request_id: str) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: " + request_id.encode()
            + b"\r\nContent-Length: 2\r\n\r\n{}")


def _serve(listener: socket.socket, close_after_answer: bool, seen: list[bytes]) -> None:
    """First connection: hand out `r1`, take its response (one read holding the pipelined GET),
    answer 202 (and close, if asked); then hand out `r2` on whichever connection asks next."""
    conn, _ = listener.accept()
    seen.append(conn.recv(65536))
    conn.sendall(_invocation("r1"))
    data = b""
    while NEXT not in data:
        data += conn.recv(65536)
    seen.append(data)
    if close_after_answer:
        conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        conn.close()
        conn, _ = listener.accept()
        seen.append(conn.recv(65536))
        conn.sendall(_invocation("r2"))
    else:
        conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n" + _invocation("r2"))
    conn.close()


def _run(close_after_answer: bool) -> list[bytes]:
    bootstrap = _bootstrap()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    seen: list[bytes] = []
    server = threading.Thread(target=_serve, args=(listener, close_after_answer, seen), daemon=True)
    server.start()
    client = bootstrap.RuntimeClient(f"127.0.0.1:{listener.getsockname()[1]}")
    try:
        headers, _ = client.next()
        assert headers["lambda-runtime-aws-request-id"] == "r1"
        assert client.post_response("r1", b'{"ok": 1}') == 202
        headers, _ = client.next()
        assert headers["lambda-runtime-aws-request-id"] == "r2"
    finally:
        client.close()
        server.join(10)
        listener.close()
    return seen


def test_the_next_request_travels_with_the_response() -> None:
    seen = _run(close_after_answer=False)
    assert len(seen) == 2
    assert seen[1].startswith(b"POST /2018-06-01/runtime/invocation/r1/response") and NEXT in seen[1]


def test_a_connection_closed_after_the_answer_is_asked_again() -> None:
    seen = _run(close_after_answer=True)
    assert len(seen) == 3 and seen[2].startswith(NEXT)
