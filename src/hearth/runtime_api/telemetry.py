"""The Telemetry API (2022-07-01) and the older Logs API (2020-08-15) of one execution environment.

It owns the subscriptions extensions make (`PUT /2022-07-01/telemetry`, `PUT /2020-08-15/logs`),
their validation (AWS's bounds and error texts), each subscription's buffer (maxItems, maxBytes,
timeoutMs) and the delivery of batches to the subscriber's HTTP (or TCP) listener inside the sandbox,
and the records themselves: `emit(type, record)` takes a Telemetry API event and each subscription
gets it in its own API's shape (the Logs API has `platform.start/end/report/runtimeDone/extension/
logsSubscription/logsDropped/fault` and plain strings for log lines).

Records emitted before the first subscription, during INIT, are kept (bounded) and handed to a
subscription made during INIT, so that an extension that subscribes while INIT runs sees
`platform.initStart` and the function's INIT output, as on AWS.

It exists only in environments with extensions. It never blocks the event loop and never lets a slow
or broken subscriber hold anything but its own buffer: a delivery that fails drops the batch and the
next batch starts with `platform.logsDropped`. While the environment is frozen nothing is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

Connector = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]

TELEMETRY_SCHEMAS = ("2022-07-01", "2022-12-13", "2025-01-29")
CATEGORIES = ("platform", "function", "extension")
# AWS's buffering bounds and defaults (both APIs).
MAX_ITEMS = (1000, 10000, 1000)  # (min, max, default)
MAX_BYTES = (262144, 1048576, 262144)
TIMEOUT_MS = (25, 30000, 1000)
LOGS_DEFAULTS = (10000, 262144, 1000)  # the Logs API's defaults: maxItems, maxBytes, timeoutMs
EARLY_LIMIT = 1000  # records kept for a subscription made during INIT
BACKLOG_FACTOR = 4  # a subscriber that falls behind keeps at most this many batches' worth
DELIVERY_TIMEOUT_S = 5.0
# Host names a destination may use: all mean the sandbox's own loopback.
SANDBOX_HOSTS = ("sandbox.localdomain", "sandbox", "localhost", "127.0.0.1")


class SubscribeError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    def body(self) -> bytes:
        return json.dumps({"errorMessage": self.message, "errorType": self.error_type}).encode()


def iso_time(epoch_s: float | None = None) -> str:
    now = time.time() if epoch_s is None else epoch_s
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def category_of(event_type: str) -> str:
    return "platform" if event_type.startswith("platform.") else event_type


@dataclass
class Subscription:
    name: str  # the extension's name
    api: str  # "telemetry" or "logs"
    types: frozenset[str]
    max_items: int
    max_bytes: int
    timeout_ms: int
    protocol: str  # HTTP or TCP
    host: str
    port: int
    path: str
    items: list[bytes] = field(default_factory=list)
    size: int = 0
    dropped_records: int = 0
    dropped_bytes: int = 0
    timer: asyncio.TimerHandle | None = None
    sending: asyncio.Task[None] | None = None


def parse_subscription(name: str, api: str, body: bytes) -> Subscription:
    """Validate a subscription request as AWS does. Raises SubscribeError (400 ValidationError)."""
    try:
        req = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise SubscribeError(400, "ValidationError", "The request body is not valid JSON") from None
    if not isinstance(req, dict):
        raise SubscribeError(400, "ValidationError", "The request body must be a JSON object")
    if api == "telemetry":
        schema = req.get("schemaVersion")
        if schema not in TELEMETRY_SCHEMAS:
            raise SubscribeError(400, "ValidationError",
                                 f"schemaVersion must be one of {', '.join(TELEMETRY_SCHEMAS)}")
    types = req.get("types")
    if not isinstance(types, list) or not types or not all(t in CATEGORIES for t in types):
        raise SubscribeError(400, "ValidationError",
                             "types must be a non-empty list of: platform, function, extension")
    defaults = (MAX_ITEMS[2], MAX_BYTES[2], TIMEOUT_MS[2]) if api == "telemetry" else LOGS_DEFAULTS
    buffering = req.get("buffering") or {}
    if not isinstance(buffering, dict):
        raise SubscribeError(400, "ValidationError", "buffering must be an object")
    values = []
    for key, bounds, default in (("maxItems", MAX_ITEMS, defaults[0]), ("maxBytes", MAX_BYTES, defaults[1]),
                                 ("timeoutMs", TIMEOUT_MS, defaults[2])):
        value = buffering.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not bounds[0] <= value <= bounds[1]:
            raise SubscribeError(400, "ValidationError",
                                 f"buffering.{key} must be an integer from {bounds[0]} to {bounds[1]}")
        values.append(value)
    dest = req.get("destination")
    if not isinstance(dest, dict):
        raise SubscribeError(400, "ValidationError", "destination is required")
    protocol = dest.get("protocol")
    if protocol not in ("HTTP", "TCP"):
        raise SubscribeError(400, "ValidationError", "destination.protocol must be HTTP or TCP")
    if protocol == "HTTP":
        uri = dest.get("URI")
        parts = urlsplit(uri) if isinstance(uri, str) else None
        if parts is None or parts.scheme != "http" or not parts.hostname:
            raise SubscribeError(400, "ValidationError", "destination.URI must be an http:// URI")
        host, path = parts.hostname, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            port = parts.port or 80
        except ValueError:
            raise SubscribeError(400, "ValidationError", "destination.URI has a bad port") from None
    else:
        host, path, tcp_port = "sandbox.localdomain", "", dest.get("port")
        if not isinstance(tcp_port, int) or not 1 <= tcp_port <= 65535:
            raise SubscribeError(400, "ValidationError", "destination.port must be a port number")
        port = tcp_port
    if host not in SANDBOX_HOSTS:
        raise SubscribeError(400, "ValidationError",
                             "destination must be a listener inside the execution environment "
                             "(sandbox.localdomain)")
    return Subscription(name, api, frozenset(types), values[0], values[1], values[2], protocol, host, port, path)


def _legacy(event_type: str, record: Any) -> list[tuple[str, Any]]:
    """A Telemetry API event in the Logs API's shapes (an empty list: the Logs API has no such event)."""
    if event_type in ("function", "extension"):
        return [(event_type, record if isinstance(record, str) else json.dumps(record))]
    if event_type == "platform.start":
        return [(event_type, {"requestId": record["requestId"], "version": record.get("version", "$LATEST")})]
    if event_type == "platform.runtimeDone":
        return [(event_type, {"requestId": record["requestId"], "status": record["status"]})]
    if event_type == "platform.report":
        metrics = {k: v for k, v in record["metrics"].items()
                   if k in ("durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB", "initDurationMs")}
        return [("platform.end", {"requestId": record["requestId"]}),
                (event_type, {"requestId": record["requestId"], "metrics": metrics})]
    if event_type == "platform.extension":
        return [(event_type, {"name": record["name"], "state": record["state"], "events": record["events"]})]
    if event_type == "platform.telemetrySubscription":
        return [("platform.logsSubscription", record)]
    if event_type in ("platform.logsDropped", "platform.fault"):
        return [(event_type, record)]
    return []


class TelemetryHub:
    """Subscriptions and delivery for one environment. All methods run on the event loop."""

    def __init__(self, connector: Connector) -> None:
        self._connect = connector
        self._subs: dict[tuple[str, str], Subscription] = {}
        self._early: list[tuple[str, str, Any]] | None = []  # (time, type, record) until INIT ends
        self._frozen = False
        self._closed = False

    # -- subscriptions -------------------------------------------------------------------------

    def subscribe(self, name: str, api: str, body: bytes) -> None:
        """Add or replace `name`'s subscription on `api`. Raises SubscribeError."""
        sub = parse_subscription(name, api, body)
        old = self._subs.pop((name, api), None)
        if old is not None and old.timer is not None:
            old.timer.cancel()
        self._subs[(name, api)] = sub
        if self._early:
            for when, event_type, record in self._early:
                self._add(sub, when, event_type, record)
        self.emit("platform.telemetrySubscription", {"name": name, "state": "Subscribed", "types": sorted(sub.types)})

    @property
    def subscribed(self) -> bool:
        return bool(self._subs)

    # -- records -------------------------------------------------------------------------------

    def emit(self, event_type: str, record: Any, when: str | None = None) -> None:
        stamp = when or iso_time()
        if self._early is not None and len(self._early) < EARLY_LIMIT:
            self._early.append((stamp, event_type, record))
        for sub in self._subs.values():
            self._add(sub, stamp, event_type, record)

    def init_ended(self) -> None:
        self._early = None

    def _add(self, sub: Subscription, when: str, event_type: str, record: Any) -> None:
        if category_of(event_type) not in sub.types:
            return
        shaped = _legacy(event_type, record) if sub.api == "logs" else [(event_type, record)]
        for kind, rec in shaped:
            item = json.dumps({"time": when, "type": kind, "record": rec}, separators=(",", ":")).encode()
            if sub.size + len(item) > sub.max_bytes * BACKLOG_FACTOR:
                sub.dropped_records += 1
                sub.dropped_bytes += len(item)
                continue
            sub.items.append(item)
            sub.size += len(item)
        if len(sub.items) >= sub.max_items or sub.size >= sub.max_bytes:
            self._flush_soon(sub, 0)
        elif sub.items and sub.timer is None:
            self._flush_soon(sub, sub.timeout_ms / 1000)

    # -- delivery ------------------------------------------------------------------------------

    def _flush_soon(self, sub: Subscription, delay_s: float) -> None:
        if sub.timer is not None:
            if delay_s > 0:
                return
            sub.timer.cancel()
        sub.timer = asyncio.get_running_loop().call_later(delay_s, self._start_send, sub)

    def _start_send(self, sub: Subscription) -> None:
        sub.timer = None
        if self._frozen or self._closed or (sub.sending is not None and not sub.sending.done()):
            return  # sent on thaw, or when the batch in flight is done
        if not sub.items and not sub.dropped_records:
            return
        sub.sending = asyncio.get_running_loop().create_task(self._deliver(sub))

    async def _deliver(self, sub: Subscription) -> None:
        await self._send(sub)

    def _take_batch(self, sub: Subscription) -> list[bytes]:
        batch: list[bytes] = []
        if sub.dropped_records:
            record = {"reason": "Some logs were dropped because the extension could not keep up",
                      "droppedRecords": sub.dropped_records, "droppedBytes": sub.dropped_bytes}
            batch.append(json.dumps({"time": iso_time(), "type": "platform.logsDropped", "record": record},
                                    separators=(",", ":")).encode())
            sub.dropped_records = sub.dropped_bytes = 0
        size = 0
        count = 0
        for item in sub.items:
            if count >= sub.max_items or (count and size + len(item) > sub.max_bytes):
                break
            size += len(item)
            count += 1
        batch.extend(sub.items[:count])
        del sub.items[:count]
        sub.size -= size
        return batch

    async def _send(self, sub: Subscription) -> bool:
        """Deliver one batch; False when it failed (and was counted as dropped)."""
        batch = self._take_batch(sub)
        delivered = True
        try:
            await asyncio.wait_for(self._post(sub, batch), DELIVERY_TIMEOUT_S)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            log.debug("telemetry delivery to %s failed: %s", sub.name, exc)
            sub.dropped_records += len(batch)
            sub.dropped_bytes += sum(len(b) for b in batch)
            delivered = False
        finally:
            sub.sending = None
        if sub.items and not self._closed:
            self._flush_soon(sub, 0 if len(sub.items) >= sub.max_items or sub.size >= sub.max_bytes
                             else sub.timeout_ms / 1000)
        return delivered

    async def _post(self, sub: Subscription, batch: list[bytes]) -> None:
        reader, writer = await self._connect(sub.host, sub.port)
        try:
            if sub.protocol == "TCP":
                writer.write(b"".join(item + b"\n" for item in batch))
                await writer.drain()
                return
            body = b"[" + b",".join(batch) + b"]"
            writer.write(b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n"
                         % (sub.path.encode(), sub.host.encode(), sub.port, len(body)) + body)
            await writer.drain()
            status_line = await reader.readline()
            parts = status_line.split()
            if len(parts) < 2 or not parts[1].startswith(b"2"):
                raise ValueError(f"answered {status_line[:80]!r}")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def flush(self) -> None:
        """Deliver everything buffered now (before SHUTDOWN reaches the extensions)."""
        for sub in list(self._subs.values()):
            if sub.sending is not None:
                with contextlib.suppress(Exception):
                    await sub.sending
            if sub.timer is not None:
                sub.timer.cancel()
                sub.timer = None
            # Until empty; a failed delivery ends the attempt (a subscriber that is gone stays gone).
            while (sub.items or sub.dropped_records) and not self._closed:
                if not await self._send(sub):
                    break

    def freeze(self) -> None:
        self._frozen = True

    def thaw(self) -> None:
        self._frozen = False
        for sub in self._subs.values():
            if sub.items and sub.timer is None and sub.sending is None:
                self._flush_soon(sub, sub.timeout_ms / 1000)

    def close(self) -> None:
        self._closed = True
        for sub in self._subs.values():
            if sub.timer is not None:
                sub.timer.cancel()
            if sub.sending is not None:
                sub.sending.cancel()


MARK = b"\x1ehearth-ext:"  # the extensions launcher's prefix for a line an extension wrote


class OutputSplitter:
    """Splits an environment's output into function and extension lines (the launcher marks the
    latter), strips the marks, and emits each line to the Telemetry API."""

    def __init__(self, hub: TelemetryHub, *, json_format: bool = False) -> None:
        self._hub = hub
        self._json = json_format  # LogFormat JSON: a line that is a JSON object is sent as that object
        self._partial = b""

    def feed(self, data: bytes) -> bytes:
        """The bytes to log (marks removed); emits `function` and `extension` records."""
        data = self._partial + data
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        if len(self._partial) > 262144:  # a function writing without newlines: pass it on as is
            cut, self._partial = len(data), b""
        if not cut:
            return b""
        out: list[bytes] = []
        for line in data[:cut].split(b"\n")[:-1]:
            if line.startswith(MARK):
                _name, _, text = line[len(MARK):].partition(b"\x00")
                out.append(text)
                self._hub.emit("extension", text.decode("utf-8", "replace"))
            else:
                out.append(line)
                self._hub.emit("function", self._record(line))
        return b"\n".join(out) + b"\n"

    def _record(self, line: bytes) -> Any:
        text = line.decode("utf-8", "replace")
        if self._json and text.startswith("{"):
            with contextlib.suppress(ValueError):
                value = json.loads(text)
                if isinstance(value, dict):
                    return value
        return text

    def close(self) -> bytes:
        rest, self._partial = self._partial, b""
        return self.feed(rest + b"\n") if rest else b""
