"""The HTTP routes of the Extensions, Telemetry and Logs APIs beside the Runtime API of one environment.

It owns the mapping of requests (method, path, headers, body) to `ExtensionsApi` and `TelemetryHub`
calls, and the answers' status, headers and bodies. The connection handling is the Runtime API
server's (`server.py` hands every request outside /2018-06-01/runtime/ here). It never decides a
phase rule itself.

    POST /2020-01-01/extension/register       Lambda-Extension-Name, Lambda-Extension-Accept-Feature
    GET  /2020-01-01/extension/event/next     Lambda-Extension-Identifier (parks until an event)
    POST /2020-01-01/extension/init/error     Lambda-Extension-Function-Error-Type
    POST /2020-01-01/extension/exit/error
    PUT  /2022-07-01/telemetry                the Telemetry API subscription
    PUT  /2020-08-15/logs                     the Logs API subscription
    POST /2020-01-01/hearth/launching         the extensions launcher (private): names, before they start
    POST /2020-01-01/hearth/launched          the extensions launcher (private): parks until all registered
    POST /2020-01-01/hearth/exited            the extensions launcher (private)
"""

from __future__ import annotations

import asyncio
import json
import uuid

from hearth.runtime_api.extensions import ApiError, ExtensionFailure, ExtensionsApi
from hearth.runtime_api.telemetry import SubscribeError, TelemetryHub

# (status, extra header lines, body)
Answer = tuple[int, bytes, bytes]

_OK = (200, b"", b'{"status":"OK"}')
_ACCEPTED = (202, b"", b'{"status":"OK"}')
_NOT_FOUND = (404, b"", b'{"errorMessage":"Not Found","errorType":"NotFound"}')
_NOT_ALLOWED = (405, b"", b'{"errorMessage":"Method Not Allowed","errorType":"MethodNotAllowed"}')

_ROUTES: dict[bytes, bytes] = {
    b"/2020-01-01/extension/register": b"POST",
    b"/2020-01-01/extension/event/next": b"GET",
    b"/2020-01-01/extension/init/error": b"POST",
    b"/2020-01-01/extension/exit/error": b"POST",
    b"/2022-07-01/telemetry": b"PUT",
    b"/2020-08-15/logs": b"PUT",
    b"/2020-01-01/hearth/launching": b"POST",
    b"/2020-01-01/hearth/launched": b"POST",
    b"/2020-01-01/hearth/exited": b"POST",
}


def _text(headers: dict[bytes, bytes], name: bytes) -> str:
    return headers.get(name, b"").decode("utf-8", "replace")


def _error_message(body: bytes) -> str:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    message = value.get("errorMessage") if isinstance(value, dict) else None
    return message if isinstance(message, str) else ""


class ExtensionRoutes:
    def __init__(self, api: ExtensionsApi, telemetry: TelemetryHub) -> None:
        self.api = api
        self.telemetry = telemetry

    def handle(self, method: bytes, path: bytes, headers: dict[bytes, bytes],
               body: bytes) -> Answer | asyncio.Future[Answer]:
        path = path.split(b"?", 1)[0].rstrip(b"/")
        wanted = _ROUTES.get(path)
        if wanted is None:
            return _NOT_FOUND
        if method != wanted:
            return _NOT_ALLOWED
        ext_id = _text(headers, b"lambda-extension-identifier") or None
        try:
            if path.endswith(b"/register"):
                return self._register(headers, body)
            if path.endswith(b"/event/next"):
                return self._next(ext_id)
            if path.endswith(b"/init/error"):
                self.api.init_error(ext_id, _text(headers, b"lambda-extension-function-error-type"),
                                    _error_message(body))
                return _ACCEPTED
            if path.endswith(b"/exit/error"):
                self.api.exit_error(ext_id, _text(headers, b"lambda-extension-function-error-type"),
                                    _error_message(body))
                return _ACCEPTED
            if path.endswith(b"/telemetry") or path.endswith(b"/logs"):
                ext = self.api.get(ext_id)
                self.telemetry.subscribe(ext.name, "telemetry" if path.endswith(b"/telemetry") else "logs", body)
                return 200, b"", b"OK"
            return self._launcher(path, body)
        except ApiError as exc:
            return exc.status, b"", exc.body()
        except SubscribeError as exc:
            return exc.status, b"", exc.body()

    def _register(self, headers: dict[bytes, bytes], body: bytes) -> Answer:
        try:
            req = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "InvalidRequestFormat", "The request body is not valid JSON") from None
        events = req.get("events", []) if isinstance(req, dict) else None
        features = _text(headers, b"lambda-extension-accept-feature")
        ext_id, answer = self.api.register(
            _text(headers, b"lambda-extension-name"), events,
            accept_account_id="accountId" in [f.strip() for f in features.split(",")])
        return 200, b"Lambda-Extension-Identifier: " + ext_id.encode() + b"\r\n", answer

    def _next(self, ext_id: str | None) -> asyncio.Future[Answer]:
        fut = self.api.next_future(ext_id)
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()

        def done(f: asyncio.Future[bytes]) -> None:
            if answer.done():
                if not f.cancelled() and f.exception() is None and ext_id is not None:
                    self.api.abandon(ext_id, f)  # the connection went first: offer the event again
                return
            if f.cancelled() or f.exception() is not None:
                answer.cancel()
                return
            event_id = uuid.uuid4().hex.encode()
            answer.set_result((200, b"Lambda-Extension-Event-Identifier: " + event_id + b"\r\n", f.result()))

        def gone(a: asyncio.Future[Answer]) -> None:
            if a.cancelled() and ext_id is not None:
                self.api.abandon(ext_id, fut)

        fut.add_done_callback(done)
        answer.add_done_callback(gone)
        return answer

    def _launcher(self, path: bytes, body: bytes) -> Answer | asyncio.Future[Answer]:
        try:
            req = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError):
            req = {}
        if not isinstance(req, dict):
            req = {}
        if path.endswith(b"/exited"):
            status = req.get("status")
            self.api.process_exited(str(req.get("name", "")), status if isinstance(status, int) else 1)
            return _ACCEPTED
        names = [n for n in req.get("extensions", []) if isinstance(n, str)]
        if path.endswith(b"/launching"):
            self.api.expect(names)
            return _OK
        waiter = self.api.launched_future(names)
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()

        def done(f: asyncio.Future[None]) -> None:
            if answer.done():
                return
            if f.cancelled() or isinstance(f.exception(), ExtensionFailure):
                answer.set_result((500, b"", b'{"status":"failed"}'))
            else:
                answer.set_result(_OK)

        waiter.add_done_callback(done)
        return answer
