"""Hearth's Python runtime: the loop that runs a Python function inside an execution environment.

It owns, inside the environment: sys.path, stdout/stderr buffering, the root logger's format, loading
the handler, the Lambda context object, and the Runtime API client loop (next → handler → response or
error). It behaves like AWS's managed Python runtime (error shapes, messages, log formats).

It must never have side effects on import: a zygote imports this module, forks, replaces os.environ in
the child and only then calls `main()`. So every environment variable is read in `main()`, and module
scope only imports the standard library. It runs on Python 3.8 to 3.14: no syntax newer than 3.8 (type
hints are strings thanks to the __future__ import). Started as `python -I bootstrap.py`, so PYTHONPATH is
ignored by the interpreter and rebuilt here.

Response streaming (Hearth's design; AWS's managed Python runtime has none): a handler that returns an
iterator (a generator, typically) streams its response. Each item it yields is sent as it is produced:
`bytes` as they are, `str` as UTF-8. If the first item is a dict, it is the HTTP response's metadata for
a function URL (`{"statusCode": 201, "headers": {...}, "cookies": [...]}`), sent as AWS's Node.js
`awslambda.HttpResponseStream.from` sends it (JSON, then 8 NUL bytes). An exception raised while
iterating ends the stream with the error in the trailers. A handler returning anything else answers at
once, as before.
"""

from __future__ import annotations

import base64
import decimal
import importlib
import io
import json
import logging
import os
import socket
import sys
import time
import traceback

_RUNTIME_PATH = "/2018-06-01/runtime"
_NBSP = "\u00a0"  # AWS indents traceback lines in text error logs with no-break spaces

# The request id the current invocation runs under, for log records (one invocation at a time).
_request_id = ""

# Set by the sandbox zygote in a SnapStart template: called once INIT and the before-snapshot hooks are
# done, it blocks in the template and returns in every environment cloned from it, with that
# environment's variables.
_snapshot = None


class FaultError(Exception):
    """An error of the runtime's own making (bad handler, unmarshalable result)."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace


# -- the context object ----------------------------------------------------------------------------


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, data: dict | None = None) -> None:
        data = data or {}
        self.cognito_identity_id = data.get("cognitoIdentityId")
        self.cognito_identity_pool_id = data.get("cognitoIdentityPoolId")

    def __repr__(self) -> str:
        return (f"CognitoIdentity([cognito_identity_id={self.cognito_identity_id},"
                f"cognito_identity_pool_id={self.cognito_identity_pool_id}])")


class Client:
    __slots__ = ("app_package_name", "app_title", "app_version_code", "app_version_name", "installation_id")

    def __init__(self, data: dict) -> None:
        for name in self.__slots__:
            setattr(self, name, data.get(name))

    def __repr__(self) -> str:
        fields = ",".join(f"{name}={getattr(self, name)}" for name in self.__slots__)
        return f"Client([{fields}])"


class ClientContext:
    __slots__ = ("client", "custom", "env")

    def __init__(self, data: dict) -> None:
        client = data.get("client")
        self.client = Client(client) if isinstance(client, dict) else None
        self.custom = data.get("custom")
        self.env = data.get("env")

    def __repr__(self) -> str:
        return f"ClientContext([custom={self.custom},env={self.env},client={self.client}])"


class LambdaContext:
    """What a handler receives as `context`."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str | None,
                 client_context: dict | None, cognito_identity: dict | None) -> None:
        env = os.environ
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        # A string, as AWS's runtime interface client has it (handlers that echo it answer "128").
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
        self.client_context = ClientContext(client_context) if isinstance(client_context, dict) else None
        self.identity = CognitoIdentity(cognito_identity if isinstance(cognito_identity, dict) else None)
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        left = self._deadline_ms - int(time.time() * 1000)
        return left if left > 0 else 0

    def log(self, msg: str) -> None:
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        names = ("aws_request_id", "log_group_name", "log_stream_name", "function_name", "memory_limit_in_mb",
                 "function_version", "invoked_function_arn", "client_context", "identity")
        fields = ",".join(f"{name}={getattr(self, name)}" for name in names)
        return f"LambdaContext([{fields}])"


# -- the Runtime API client ------------------------------------------------------------------------


class RuntimeClient:
    """A minimal HTTP/1.1 keep-alive client for the Runtime API.

    Why not http.client: it parses every response's headers with the email package, which costs more
    than the rest of a warm invocation's work inside the runtime. The Runtime API always answers with a
    Content-Length, so a small reader is enough.
    """

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self._address = (host.strip("[]") or "127.0.0.1", int(port))
        self._host_header = address.encode("latin-1")
        self._sock: socket.socket | None = None
        self._buf = b""
        # The `GET /next` is sent in the same write as each response (pipelined: the server answers a
        # connection's requests in order), so a warm invocation costs the runtime one send and the
        # server one read; `next()` then only reads. False: the next `next()` must send it.
        self._next_message = (f"GET {_RUNTIME_PATH}/invocation/next HTTP/1.1\r\nHost: ".encode("latin-1")
                              + self._host_header + b"\r\n\r\n")
        self._next_sent = False

    def _connect(self) -> socket.socket:
        host = self._address[0]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            socket.inet_pton(family, host)
        except OSError:
            sock = socket.create_connection(self._address)
        else:
            # An address, not a name: connect without getaddrinfo, whose first call in a process costs
            # milliseconds (the resolver's configuration is loaded), on every cold start.
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.connect(self._address)
            except BaseException:
                sock.close()
                raise
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._buf = b""
        return sock

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def request(self, method: str, path: str, body: bytes = b"",
                headers: dict | None = None, *, then_next: bool = False) -> tuple[int, dict, bytes]:
        """One request and its answer; `then_next` pipelines a `GET /next` behind it (see __init__)."""
        head_bytes = f"{method} {path} HTTP/1.1\r\nHost: ".encode("latin-1") + self._host_header + b"\r\n"
        extra = b""
        if headers:
            extra = "".join(f"{k}: {_clean_header(v)}\r\n" for k, v in headers.items()).encode(
                "utf-8")
        message = head_bytes + extra
        if method == "POST":
            message += b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        else:
            message += b"\r\n"
        if then_next:
            message += self._next_message
        self._next_sent = False
        for attempt in (0, 1):
            sock = self._sock
            fresh = sock is None
            if sock is None:
                sock = self._connect()
            try:
                sock.sendall(message)
                answer = self._read_response(sock)
                # A connection the server closed after answering took the pipelined request with it.
                self._next_sent = then_next and self._sock is not None
                return answer
            except (ConnectionError, _Closed):
                self.close()
                # A kept-alive connection may have been closed by the server while idle: retry once on a
                # new one. A failure on a fresh connection is final.
                if fresh or attempt:
                    raise
        raise ConnectionError("unreachable")

    def _read_response(self, sock: socket.socket) -> tuple[int, dict, bytes]:
        buf = self._buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            chunk = sock.recv(65536)
            if not chunk:
                raise _Closed()
            buf += chunk
        lines = buf[:end].decode("latin-1").split("\r\n")
        buf = buf[end + 4:]
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status == 100:
            self._buf = buf
            return self._read_response(sock)
        length = int(headers.get("content-length", "0"))
        while len(buf) < length:
            chunk = sock.recv(max(65536, length - len(buf)))
            if not chunk:
                raise _Closed()
            buf += chunk
        body, self._buf = buf[:length], buf[length:]
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def next(self) -> tuple[dict, bytes]:
        while True:
            status, headers, body = self._next_answer()
            if status == 200:
                return headers, body
            sys.stderr.write(f"[hearth runtime] invocation/next answered {status}: {body[:200]!r}\n")
            time.sleep(0.01)

    def _next_answer(self) -> tuple[int, dict, bytes]:
        if self._next_sent and self._sock is not None:
            self._next_sent = False
            try:
                return self._read_response(self._sock)
            except (ConnectionError, _Closed):
                self.close()  # the pipelined request was lost with the connection: ask again
        return self.request("GET", _RUNTIME_PATH + "/invocation/next")

    def post_response(self, request_id: str, payload: bytes) -> int:
        return self.request("POST", f"{_RUNTIME_PATH}/invocation/{request_id}/response", payload,
                            then_next=True)[0]

    def post_stream(self, request_id: str, items: object, first: object, json_logs: bool) -> int:
        """Send an iterator's items as a streamed response (chunked, errors as trailers)."""
        self.close()  # a fresh connection: a stale kept-alive one would fail halfway through the body
        sock = self._connect()
        content_type = b"application/octet-stream"
        prelude = b""
        if isinstance(first, dict):
            content_type = b"application/vnd.awslambda.http-integration-response"
            prelude = json.dumps(first, default=_json_default).encode("utf-8") + b"\0" * 8
            first = None
        head = (f"POST {_RUNTIME_PATH}/invocation/{request_id}/response HTTP/1.1\r\nHost: ".encode("latin-1")
                + self._host_header + b"\r\nContent-Type: " + content_type
                + b"\r\nLambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n"
                b"Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n")
        sock.sendall(head + _chunk(prelude))
        error = None
        try:
            if first is not None:
                sock.sendall(_chunk(_stream_bytes(first)))
            for item in items:  # type: ignore[attr-defined]
                sock.sendall(_chunk(_stream_bytes(item)))
        except (ConnectionError, OSError) as exc:
            if isinstance(exc, ConnectionError) or exc.errno in (32, 104):
                self.close()
                raise
            error = _exception_error(exc, request_id)
        except Exception as exc:
            error = _exception_error(exc, request_id)
        trailer = b"0\r\n"
        if error is not None:
            _log_error(error, json_logs)
            trailer += (b"Lambda-Runtime-Function-Error-Type: " + _clean_header(error["errorType"]).encode("utf-8")
                        + b"\r\nLambda-Runtime-Function-Error-Body: " + base64.b64encode(_error_json(error))
                        + b"\r\n")
        sock.sendall(trailer + b"\r\n")
        return self._read_response(sock)[0]

    def post_error(self, request_id: str, error: dict) -> int:
        return self.request("POST", f"{_RUNTIME_PATH}/invocation/{request_id}/error",
                            _error_json(error), {"Lambda-Runtime-Function-Error-Type": error["errorType"]},
                            then_next=True)[0]

    def post_init_error(self, error: dict) -> int:
        return self.request("POST", _RUNTIME_PATH + "/init/error", _error_json(error),
                            {"Lambda-Runtime-Function-Error-Type": error["errorType"]})[0]


class _Closed(Exception):
    pass


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


def _stream_bytes(item: object) -> bytes:
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    if isinstance(item, str):
        return item.encode("utf-8")
    raise TypeError(f"a streamed response takes bytes or str, not {type(item).__name__}")


def _is_stream(result: object) -> bool:
    """An iterator (generator, iter(...)) streams; str, bytes, dict, list and the like do not."""
    return hasattr(result, "__next__") and hasattr(result, "__iter__") and not isinstance(
        result, (str, bytes, bytearray, dict, list, tuple))


def _clean_header(value: object) -> str:
    return str(value).replace("\r", " ").replace("\n", " ")


# -- JSON -------------------------------------------------------------------------------------------


def _json_default(obj: object) -> object:
    if isinstance(obj, decimal.Decimal):
        if obj.is_nan():
            return float("nan")
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _marshal(result: object, ensure_ascii: bool) -> bytes:
    if isinstance(result, (bytes, bytearray)):
        return bytes(result)
    try:
        return json.dumps(result, default=_json_default, ensure_ascii=ensure_ascii).encode("utf-8")
    except Exception as exc:
        raise FaultError("Runtime.MarshalError", f"Unable to marshal response: {exc}") from None


def _error_json(error: dict) -> bytes:
    return json.dumps(error, default=str).encode("utf-8")


def _make_error(message: str, error_type: str, trace: list[str] | None, request_id: str = "") -> dict:
    return {"errorMessage": message or "", "errorType": error_type or "", "requestId": request_id,
            "stackTrace": trace or []}


def _user_frames(tb: object) -> list[str]:
    """The traceback from the first frame that is not this file (AWS hides its runtime's frames)."""
    # Plain tuples, not FrameSummary objects: AWS's traces carry no column carets (Python 3.11+).
    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]  # type: ignore[arg-type]
    for i, frame in enumerate(frames):
        if not frame[0].endswith("/bootstrap.py"):
            frames = frames[i:]
            break
    return traceback.format_list(frames)  # type: ignore[arg-type]


def _exception_error(exc: BaseException, request_id: str = "") -> dict:
    return _make_error(str(exc), type(exc).__name__, _user_frames(exc.__traceback__), request_id)


# -- logging ----------------------------------------------------------------------------------------


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _request_id
        return True


class _StdoutHandler(logging.Handler):
    """Writes formatted records (the formatter adds the newline) straight to stdout."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record))
        except Exception:
            self.handleError(record)


_RESERVED = frozenset((
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info",
    "exc_text", "stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated", "thread",
    "threadName", "processName", "process", "aws_request_id", "taskName",
))


class _JsonFormatter(logging.Formatter):
    """AWS's JSON log format for application logs (AWS_LAMBDA_LOG_FORMAT=JSON)."""

    def __init__(self) -> None:
        super().__init__(datefmt="%Y-%m-%dT%H:%M:%SZ")

    def format(self, record: logging.LogRecord) -> str:
        level = min(50, max(0, record.levelno)) // 10 * 10
        message = record.msg if isinstance(record.msg, dict) and not record.args else record.getMessage()
        exc_info = record.exc_info
        out = {
            "timestamp": self.formatTime(record, self.datefmt),
            "level": logging.getLevelName(level),
            "message": message,
            "logger": record.name,
        }
        if exc_info and exc_info[0] is not None:
            out["stackTrace"] = traceback.format_tb(exc_info[2])
            out["errorType"] = exc_info[0].__name__
            out["errorMessage"] = str(exc_info[1])
        out["requestId"] = getattr(record, "aws_request_id", "") or None
        if exc_info:
            out["location"] = f"{record.pathname}:{record.funcName}:{record.lineno}"
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in out:
                out[key] = value
        clean = {k: v for k, v in out.items() if v is not None}
        return json.dumps(clean, default=str, ensure_ascii=False) + "\n"


def _setup_logging(json_format: bool, level: str) -> None:
    logging.Formatter.converter = time.gmtime
    root = logging.getLogger()
    for old in list(root.handlers):  # a zygote's parent may have configured logging
        root.removeHandler(old)
    handler = _StdoutHandler()
    if json_format:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(_RequestIdFilter())
    root.addHandler(handler)
    if level in ("TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL", "CRITICAL"):
        root.setLevel({"TRACE": "DEBUG", "WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level))
    elif json_format:
        root.setLevel(logging.INFO)  # AWS's default application log level for JSON logs


def _log_error(error: dict, json_format: bool) -> None:
    """An unhandled error as AWS's runtime prints it: one log event (lines joined with CR)."""
    if json_format:
        record = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": "ERROR"}
        record.update(error)
        _write_log(json.dumps(record, default=str) + "\n")
        return
    title = "[ERROR]"
    if error.get("errorType"):
        title += " " + error["errorType"]
    if error.get("errorMessage"):
        title += (":" if error.get("errorType") else "") + " " + error["errorMessage"]
    lines = [title]
    trace = error.get("stackTrace")
    if trace is not None:
        lines.append("Traceback (most recent call last):")
        for element in trace:
            for line in element.splitlines() or [""]:
                stripped = line.lstrip(" ")
                lines.append(_NBSP * (len(line) - len(stripped)) + stripped)
    _write_log("\r".join(lines) + "\n")


def _write_log(text: str) -> None:
    # The function may have closed or replaced stdout; losing a log line must not end the runtime.
    try:
        sys.stdout.write(text)
    except (OSError, ValueError):
        pass


# -- startup ----------------------------------------------------------------------------------------


def _unbuffered_stdio() -> None:
    # -I ignores PYTHONUNBUFFERED; do what -u does: no binary buffer, text written through at once.
    for name, fd in (("stdout", 1), ("stderr", 2)):
        try:
            raw = io.FileIO(fd, "w", closefd=False)
        except OSError:
            continue
        stream = io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace" if fd == 2 else "strict",
                                  line_buffering=True, write_through=True)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _build_sys_path(env: dict) -> None:
    task_root = env.get("LAMBDA_TASK_ROOT", "/var/task")
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    front = [task_root, f"/opt/python/lib/{version}/site-packages", "/opt/python"]
    front += [p for p in env.get("PYTHONPATH", "").split(":") if p]
    rest = [p for p in sys.path if p and p not in front]
    # The directory of this script is not a place for user modules (-I already leaves it out).
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in front:
        rest = [p for p in rest if p != here]
    sys.path[:] = front + rest


def _load_handler(spec: str) -> object:
    try:
        module_name, function_name = spec.rsplit(".", 1)
    except ValueError as exc:
        raise FaultError("Runtime.MalformedHandlerName", f"Bad handler '{spec}': {exc}") from None
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise FaultError("Runtime.BuiltInModuleConflict",
                         f"Cannot use built-in module {module_name} as a handler module")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise FaultError("Runtime.ImportModuleError",
                         f"Unable to import module '{module_name}': {exc}") from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise FaultError("Runtime.UserCodeSyntaxError",
                         f"Syntax error in module '{module_name}': {exc}", trace) from None
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise FaultError("Runtime.HandlerNotFound",
                         f"Handler '{function_name}' missing on module '{module_name}'") from None


def _parse_json_header(value: str | None, name: str) -> dict | None:
    if not value:
        return None
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise FaultError("Runtime.LambdaContextUnmarshalError",
                         f"Unable to parse {name} JSON: {exc}") from None
    return parsed if isinstance(parsed, dict) else None


_TRACE_KEY = "_X_AMZN_TRACE_ID"


def _set_trace_id(trace_id: str | None) -> None:
    """`os.environ["_X_AMZN_TRACE_ID"]` for this invocation, without calling putenv(3).

    Why: assigning to os.environ calls setenv(3), and glibc's setenv never frees a value it installed
    (getenv's callers may still hold it), so every distinct trace header stays in the process: ~200
    bytes per invocation, ~100 MB after a few hundred thousand invocations of a long-lived environment.
    AWS's own runtime client assigns os.environ and so grows the same way. The value is written into
    os.environ's mapping only: os.environ, os.getenv and copies of the environment passed to
    subprocess (`env=os.environ`, `{**os.environ}`) see it; a child started with the inherited C
    environment (subprocess without `env=`) and C code calling getenv do not. `main()` removes any
    inherited value from the C environment once, so they see nothing rather than a stale header.
    """
    environ = os.environ
    key = environ.encodekey(_TRACE_KEY)  # type: ignore[attr-defined]  # os._Environ's own encoding
    if trace_id:
        environ._data[key] = environ.encodevalue(trace_id)  # type: ignore[attr-defined]
    else:
        environ._data.pop(key, None)  # type: ignore[attr-defined]


def _handle(client: RuntimeClient, handler: object, headers: dict, body: bytes, json_logs: bool,
            ensure_ascii: bool) -> None:
    global _request_id
    request_id = headers.get("lambda-runtime-aws-request-id", "")
    _request_id = request_id
    _set_trace_id(headers.get("lambda-runtime-trace-id"))
    try:
        deadline = int(headers.get("lambda-runtime-deadline-ms", "0") or 0)
    except ValueError:
        deadline = 0
    error = None
    try:
        context = LambdaContext(
            request_id, deadline, headers.get("lambda-runtime-invoked-function-arn"),
            _parse_json_header(headers.get("lambda-runtime-client-context"), "Client Context"),
            _parse_json_header(headers.get("lambda-runtime-cognito-identity"), "Cognito Identity"),
        )
        try:
            event = json.loads(body) if body else None
        except ValueError as exc:
            raise FaultError("Runtime.UnmarshalError", f"Unable to unmarshal input: {exc}") from None
        result = handler(event, context)  # type: ignore[operator]
        if _is_stream(result):
            try:
                first = next(result)  # type: ignore[call-overload]
            except StopIteration:
                first = b""
            client.post_stream(request_id, result, first, json_logs)
            return
        payload = _marshal(result, ensure_ascii)
    except FaultError as exc:
        error = _make_error(exc.message, exc.error_type, exc.trace, request_id)
    except Exception as exc:
        error = _exception_error(exc, request_id)
    if error is not None:
        _log_error(error, json_logs)
        client.post_error(request_id, error)
    else:
        client.post_response(request_id, payload)


def _run_hooks(hooks: list, error_type: str) -> dict | None:
    for func, args, kwargs in hooks:
        try:
            func(*args, **kwargs)
        except Exception as exc:
            error = _exception_error(exc)
            error["errorType"] = error_type
            error["errorMessage"] = f"{type(exc).__name__}: {exc}"
            return error
    return None


def _snapshot_and_restore(client: RuntimeClient) -> tuple[RuntimeClient, dict | None]:
    """SnapStart: before-snapshot hooks (newest first), the snapshot, then in each clone its own
    environment variables, a new Runtime API connection and the after-restore hooks (oldest first)."""
    import snapshot_restore_py as hooks  # the module the function registered its hooks with

    error = _run_hooks(list(reversed(hooks.get_before_snapshot())), "Runtime.BeforeSnapshotError")
    if error is not None:
        return client, error
    client.close()
    env = _snapshot()  # type: ignore[misc]  # returns in the clone
    os.environ.clear()
    os.environ.update(env)
    client = RuntimeClient(env.get("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"))
    return client, _run_hooks(list(hooks.get_after_restore()), "Runtime.AfterRestoreError")


def _exec_template(instructions: str, env: dict) -> None:
    """SnapStart through AWS_LAMBDA_EXEC_WRAPPER: this process (exec'd by the wrapper, not forked by the
    zygote) is the template. The zygote's code, mounted in the sandbox, waits for clone requests; each
    clone keeps what the wrapper changed in the environment (as a snapshot would), over its own
    variables."""
    global _snapshot
    import importlib.util

    spec = json.loads(instructions)
    module_spec = importlib.util.spec_from_file_location("_hearth_zygote", spec["module"])
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot load {spec['module']}")
    zygote = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(zygote)
    started = spec["env"]
    by_wrapper = {k: v for k, v in env.items() if started.get(k) != v}
    base = {"uid": spec["uid"], "gid": spec["gid"]}

    def snapshot() -> dict:
        return {**zygote._template(base), **by_wrapper}

    _snapshot = snapshot


def main() -> None:
    """Run the runtime until the process is killed. Reads the environment now, not at import."""
    snapshot = os.environ.pop("_HEARTH_SNAPSHOT", None)  # set by the zygote for an exec'd template only
    env = dict(os.environ)
    if snapshot is not None and _snapshot is None:
        _exec_template(snapshot, env)
    os.environ.pop(_TRACE_KEY, None)  # a real unsetenv, once: the per-invocation value never reaches C
    _unbuffered_stdio()
    _build_sys_path(env)
    task_root = env.get("LAMBDA_TASK_ROOT")
    if task_root:
        try:
            os.chdir(task_root)
        except OSError:
            pass
    json_logs = env.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"
    _setup_logging(json_logs, env.get("AWS_LAMBDA_LOG_LEVEL", "").upper())
    # AWS's runtimes for Python 3.12 and later write non-ASCII characters as they are.
    ensure_ascii = sys.version_info < (3, 12)
    client = RuntimeClient(env.get("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"))

    try:
        handler = _load_handler(env.get("_HANDLER", ""))
    except FaultError as exc:
        init_error = _make_error(exc.message, exc.error_type, exc.trace)
    except Exception as exc:
        init_error = _exception_error(exc)
    else:
        init_error = None
    if init_error is None and _snapshot is not None:
        client, init_error = _snapshot_and_restore(client)
    if init_error is not None:
        _log_error(init_error, json_logs)
        client.post_init_error(init_error)
        sys.exit(1)

    while True:
        headers, body = client.next()
        _handle(client, handler, headers, body, json_logs, ensure_ascii)


if __name__ == "__main__":
    main()
