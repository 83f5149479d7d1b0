"""Process wiring: builds every component from the settings, serves the API, shuts down in order.

It owns the order of start and stop and the few plain HTTP routes under `/_hearth/` (health, code
downloads). It never holds business rules.

Shutdown is a sequence (uvicorn drives the first two steps on SIGINT/SIGTERM):
1. stop accepting new connections; 2. let in-flight requests finish, up to a deadline;
3. SHUTDOWN every execution environment (SIGTERM, a short grace, then kill);
4. stop the sandbox backend (its zygote) and close the stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sys
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import uvicorn

from hearth import __version__
from hearth.aws.gateway import AwsGateway
from hearth.aws.keys import KeyStore
from hearth.config import Settings
from hearth.esm.manager import MappingManager
from hearth.esm.store import MappingStore
from hearth.esm.target import PlatformInvoke
from hearth.events.delivery import DeliveryRouter
from hearth.functions.model import FunctionVersion
from hearth.functions.service import FunctionService
from hearth.invoke.async_queue import AsyncQueue, AsyncQueueConfig
from hearth.invoke.aws_proxy import serve_proxy
from hearth.invoke.invoker import Invoker
from hearth.invoke.keepalive import make_policy
from hearth.invoke.launch import Credentials
from hearth.invoke.limiter import ConcurrencyLimiter, ConcurrencyStore
from hearth.invoke.logwriter import BackgroundLogSink
from hearth.invoke.pool import EnvironmentPool, PoolConfig
from hearth.invoke.provisioned import ProvisionedManager, ProvisionedStore
from hearth.observability import metrics
from hearth.observability.logstore import LogStore
from hearth.sandbox.backends import choose_backend
from hearth.sandbox.types import IsolationBackend, Sandbox
from hearth.services.events.component import EventBridge, clock_for
from hearth.services.kinesis.provider import KinesisProvider
from hearth.services.kinesis.streams import StreamService
from hearth.services.lambda_.code_url import CodeUrlSigner, serve_code_download
from hearth.services.lambda_.concurrency import ConcurrencyProvider
from hearth.services.lambda_.esm import EventSourceMappingProvider
from hearth.services.lambda_.event_invoke_config import EventInvokeConfigProvider, EventInvokeConfigStore
from hearth.services.lambda_.invoke_api import LambdaInvokeProvider
from hearth.services.lambda_.layers import LambdaLayersProvider
from hearth.services.lambda_.policies import LambdaPolicyProvider
from hearth.services.lambda_.provider import LambdaProvider
from hearth.services.lambda_.provisioned import ProvisionedConcurrencyProvider, target_resolver
from hearth.services.lambda_.stream_api import LambdaStreamProvider
from hearth.services.lambda_.urls import FunctionUrlProvider, UrlConfigStore
from hearth.services.lambda_.versions import LambdaVersionsProvider
from hearth.services.logs.provider import LogsProvider
from hearth.services.sns.provider import SnsDelivery, SnsProvider
from hearth.services.sns.topics import TopicService
from hearth.services.sqs.provider import SqsDelivery, SqsProvider
from hearth.services.sqs.queues import QueueService
from hearth.store.blobs import BlobStore
from hearth.store.db import open_store
from hearth.urls.front import UrlFront
from hearth.urls.front import match as url_match

log = logging.getLogger("hearth")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Hearth:
    """Every long-lived component of one Hearth server, started and stopped together."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started = False
        self.backend: IsolationBackend | None = None
        self.isolation_warning: str | None = None
        self.gateway: AwsGateway | None = None
        self.pool: EnvironmentPool | None = None
        self.invoker: Invoker | None = None
        self.functions: FunctionService | None = None

    async def start(self) -> None:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        s.data_dir.chmod(0o700)
        self.keys, generated = KeyStore.load(s)
        if generated:
            key = self.keys.admin_key()
            print(
                "hearth: generated an admin key pair in "
                f"{s.data_dir / 'keys.json'} (mode 0600).\n"
                f"        Use it with: eval \"$(hearth env --data-dir {s.data_dir})\"\n"
                f"        (access key id {key.access_key_id}, account {key.account_id})",
                file=sys.stderr, flush=True,
            )
        if s.auth == "any":
            print("hearth: WARNING: --auth any accepts ANY well-formed signature. Development only; "
                  "bound to loopback.", file=sys.stderr, flush=True)
        self.store = open_store(s.data_dir)
        self.blobs = BlobStore(s.data_dir)
        self.log_store = LogStore(s.data_dir / "logs.db")
        self.code_signer = CodeUrlSigner.load(s.data_dir)
        self.functions = FunctionService(s, self.store, self.blobs)
        self.backend, self.isolation_warning = await choose_backend(s.isolation, s.data_dir,
                                                                            favor_dynmods=s.cgroup_favor_dynmods)
        if self.isolation_warning:
            print(f"hearth: WARNING: {self.isolation_warning}", file=sys.stderr, flush=True)
        self.invoke_metrics = metrics.InvokeMetrics(metrics.REGISTRY)
        policy_name = s.keep_alive_policy
        self.pool = EnvironmentPool(
            self.backend,
            PoolConfig(keep_alive_s=s.keep_alive_s, snapstart_latest=s.snapstart_latest),
            credentials=self._credentials,
            endpoint_url=s.endpoint_url,
            start_aws_proxy=self._start_aws_proxy,
            policy=make_policy(policy_name, s.keep_alive_s),
            metrics=self.invoke_metrics,
        )
        self.pool.start()
        self.limiter = ConcurrencyLimiter(s.account_concurrency, ConcurrencyStore(s.data_dir))
        self._metrics_collector = metrics.REGISTRY.add_collector(self._collect_metrics)
        self.log_writer = BackgroundLogSink(self.log_store)
        self.invoker = Invoker(self.pool, self.log_writer)
        self.invoker.limiter = self.limiter
        self.invoker.metrics = self.invoke_metrics
        # SnapStart: versions wait for their snapshot while Pending; the templates' INIT logs are written
        # like an invocation's.
        self.functions.snapshot_applies = self.pool.snapshots.applies
        self.functions.take_snapshot = self.pool.prepare_snapshot
        self.pool.snapshots.write_logs = self.invoker.write_logs
        self.functions.add_listener(self._on_function_change)
        await self.functions.recover()
        # Asynchronous invocation: the durable event queue, its configs, the router's "lambda" handler.
        # The router is how every component delivers to every other (queues, topics, functions, buses).
        self.router = DeliveryRouter()
        self.event_configs = EventInvokeConfigStore(s.data_dir)
        self.functions.add_listener(self._on_function_change_async)
        self.async_queue = AsyncQueue(s.data_dir, self.invoker, self.functions, self.router,
                                      policies=self.event_configs, config=AsyncQueueConfig.from_settings(s))
        self.router.register("lambda", self.async_queue.deliver_to_function)
        lambda_providers: list[object] = [
            ConcurrencyProvider(self.functions, self.limiter),
            LambdaProvider(s, self.store, self.functions, self.code_signer, reserved_concurrency=self.limiter.reserved),
            LambdaInvokeProvider(self.functions, self.invoker, self.async_queue),
            EventInvokeConfigProvider(self.functions, self.event_configs),
            LambdaVersionsProvider(self.functions),
            LambdaPolicyProvider(self.functions),
            LambdaLayersProvider(s, self.functions.layers, self.code_signer),
        ]
        # Provisioned concurrency: durable configurations; their environments are re-created now.
        self.provisioned = ProvisionedManager(self.pool, target_resolver(self.functions), self.limiter,
                                              ProvisionedStore(s.data_dir))
        self.functions.add_listener(self._on_function_change_provisioned)
        lambda_providers.append(ProvisionedConcurrencyProvider(self.functions, self.provisioned, self.limiter))
        self.provisioned.start()
        # Function URLs: configurations (a provider), InvokeWithResponseStream, and the HTTP front.
        self.url_configs = UrlConfigStore(s.data_dir)
        self.functions.add_listener(self.url_configs.on_function_change)
        lambda_providers += [FunctionUrlProvider(self.url_configs, self.functions, s.endpoint_url),
                             LambdaStreamProvider(self.functions, self.invoker)]
        self.url_front = UrlFront(s, self.keys, self.url_configs, self.functions, self.invoker)
        self.queues = QueueService(s.data_dir)
        self.router.register("sqs", SqsDelivery(self.queues))
        self.topics = TopicService(s.data_dir, self.router, s.endpoint_url)
        self.router.register("sns", SnsDelivery(self.topics))
        # The bus registers the router's "events" handler.
        self.eventbridge = EventBridge(s.data_dir, self.router, clock_for(s.schedule_time_scale))
        self.streams = StreamService(s.data_dir)
        # Event source mappings: durable mappings and their pollers (started below, with the other consumers).
        self.esm = MappingManager(MappingStore(s.data_dir), self.queues, self.streams,
                                  PlatformInvoke(self.functions, self.invoker,
                                                 recursion_allowed=self.event_configs.recursion_allowed),
                                  self.router.deliver)
        lambda_providers.append(EventSourceMappingProvider(self.functions, self.queues, self.streams, self.esm))
        self.gateway = AwsGateway(s, self.keys, {
            "lambda": lambda_providers,
            "logs": [LogsProvider(self.log_store)],
            "sqs": [SqsProvider(self.queues, s.endpoint_url)],
            "sns": [SnsProvider(self.topics)],
            "events": [self.eventbridge.provider],
            "kinesis": [KinesisProvider(self.streams)],
        })
        self.async_queue.start()  # last: resumed events may deliver to any registered component
        self.esm.start()  # queue and stream pollers, now that queues, streams and the invoker are up
        self.eventbridge.start()  # schedules and pending deliveries, now that every target handler is registered
        self.started = True

    def begin_shutdown(self) -> None:
        """Before uvicorn waits for in-flight requests: end the waits that would hold them (SQS long polls)."""
        if getattr(self, "queues", None) is not None:
            self.queues.stop_waiting()

    async def stop(self) -> None:
        if getattr(self, "esm", None) is not None:
            await self.esm.stop()  # first: pollers start no batch into components that are stopping
            self.esm.store.close()
        if getattr(self, "eventbridge", None) is not None:
            await self.eventbridge.stop()  # first: no new deliveries into components that are stopping
        if getattr(self, "streams", None) is not None:
            self.streams.close()
        if getattr(self, "url_front", None) is not None:
            await self.url_front.close()  # in-flight URL invocations finish before the invoker closes
        if getattr(self, "async_queue", None) is not None:
            await self.async_queue.close()  # running events drain briefly; the rest stay stored
        if self.invoker is not None:
            await self.invoker.close()
        if getattr(self, "provisioned", None) is not None:
            await self.provisioned.close()  # no re-creation while the pool shuts environments down
        if self.pool is not None:
            await self.pool.close()
        if getattr(self, "limiter", None) is not None:
            self._metrics_collector()
            self.limiter.close()
        if self.backend is not None:
            await self.backend.close()
        if self.functions is not None:
            await self.functions.close()
        if getattr(self, "log_writer", None) is not None:
            self.log_writer.close()  # environments are down: their last logs are queued
        if getattr(self, "log_store", None) is not None:
            self.log_store.close()
        if getattr(self, "queues", None) is not None:
            self.queues.close()
        if getattr(self, "topics", None) is not None:
            self.topics.close()
        if getattr(self, "url_configs", None) is not None:
            self.url_configs.close()
        if getattr(self, "event_configs", None) is not None:
            self.event_configs.close()
        if getattr(self, "store", None) is not None:
            self.store.close()

    def _credentials(self, account_id: str) -> Credentials:
        key = self.keys.key_for_account(account_id)
        return Credentials(key.access_key_id, key.secret_access_key)

    def _start_aws_proxy(self, sandbox: Sandbox) -> asyncio.Task[None] | None:
        if sandbox.aws_api_sock is None:
            return None
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "::") else self.settings.host
        return asyncio.create_task(serve_proxy(sandbox.aws_api_sock, host, self.settings.port))

    def _collect_metrics(self) -> None:
        """Gauges from the owners' statistics, just before a scrape."""
        m = self.invoke_metrics
        names = {arn: arn.rsplit(":", 1)[-1] for arn, _ in self.limiter.in_flight_by_qualifier()}
        m.concurrent.replace({(("function", names[arn]), ("qualifier", q)): n
                              for (arn, q), n in self.limiter.in_flight_by_qualifier().items()})
        by_state = self.pool.statistics()["by_state"] if self.pool is not None else {}
        assert isinstance(by_state, dict)
        m.environments.replace({(("state", str(state)),): float(n) for state, n in by_state.items()})

    def _on_function_change(self, event: str, fv: FunctionVersion) -> None:
        whole_function = event == "deleted" and fv.version == "$LATEST"
        if whole_function and getattr(self, "limiter", None) is not None:
            self.limiter.forget_function(fv.function_arn)
        if self.pool is None:
            return
        # Only the changed (or deleted) version's idle environments go; other versions keep theirs.
        keep = fv.revision_id if event == "updated" else None
        version = None if whole_function else fv.version
        asyncio.get_running_loop().create_task(
            self.pool.retire(fv.function_arn, version=version, keep_revision=keep))

    def _on_function_change_provisioned(self, event: str, fv: FunctionVersion) -> None:
        if event == "deleted" and fv.version == "$LATEST":
            self.provisioned.forget_function(fv.account_id, fv.region, fv.name)

    def _on_function_change_async(self, event: str, fv: FunctionVersion) -> None:
        if event == "deleted" and fv.version == "$LATEST":
            self.event_configs.forget_function(fv.account_id, fv.region, fv.name)

    def health(self) -> dict[str, Any]:
        return {
            "status": "running" if self.started else "starting",
            "version": __version__,
            "services": {name: "running" for name in self.gateway.services} if self.started and self.gateway else {},
            "isolation": self.backend.name if self.backend else "unknown",
            "isolation_warning": self.isolation_warning,
            "environments": self.pool.statistics() if self.pool else {},
            "async_events": self.async_queue.statistics() if getattr(self, "async_queue", None) else {},
            "provisioned": self.provisioned.statistics() if getattr(self, "provisioned", None) else {},
            "sqs": self.queues.statistics() if self.started and getattr(self, "queues", None) else {},
            "event_source_mappings": self.esm.statistics() if self.started and getattr(self, "esm", None) else {},
            # perf (issue 17, soak benchmark): the server's own task count, to see it stay flat under load.
            "process": {"asyncio_tasks": _asyncio_tasks()},
        }


def _asyncio_tasks() -> int:
    """Tasks of the running event loop (0 when called outside it)."""
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:
        return 0


class HearthApp:
    """The ASGI application: `/_hearth/*` routes, everything else to the AWS gateway."""

    def __init__(self, hearth: Hearth) -> None:
        self.hearth = hearth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        url_target = url_match(scope)  # function URLs (host or /_hearth/url/ form) before anything else
        if url_target is not None and getattr(self.hearth, "url_front", None) is not None:
            await self.hearth.url_front(scope, receive, send, url_target)
            return
        if path.startswith("/_hearth/"):
            await self._hearth_route(scope, send)
            return
        gateway = self.hearth.gateway
        if gateway is None:
            await _send(send, 503, {"content-type": "application/json"}, b'{"message": "starting"}')
            return
        await gateway(scope, receive, send)

    async def _hearth_route(self, scope: Scope, send: Send) -> None:
        path: str = scope["path"]
        if path == "/_hearth/health":
            body = json.dumps(self.hearth.health()).encode()
            await _send(send, 200, {"content-type": "application/json"}, body)
        elif path == "/_hearth/metrics" and self.hearth.started:
            await _send(send, 200, {"content-type": metrics.CONTENT_TYPE}, metrics.REGISTRY.render().encode())
        elif path.startswith("/_hearth/code/") and self.hearth.started:
            status, headers, body = await serve_code_download(
                self.hearth.code_signer, self.hearth.blobs, path, scope.get("query_string", b"").decode())
            await _send(send, status, headers, body)
        else:
            await _send(send, 404, {"content-type": "application/json"}, b'{"message": "Not Found"}')

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.hearth.start()
                except Exception as exc:
                    log.exception("hearth failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
                print(f"hearth: ready on {self.hearth.settings.endpoint_url} "
                      f"(isolation: {self.hearth.health()['isolation']})", file=sys.stderr, flush=True)
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.hearth.stop()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return


async def _send(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def is_loopback(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    import ipaddress

    return all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def serve(settings: Settings) -> None:
    """Run Hearth until SIGINT/SIGTERM."""
    if settings.auth == "any" and not is_loopback(settings.host):
        raise SystemExit("hearth: --auth any is only allowed when bound to a loopback address")
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    hearth = Hearth(settings)
    config = uvicorn.Config(
        HearthApp(hearth),
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_level="warning" if settings.log_level == "info" else settings.log_level,
        access_log=False,
        loop="uvloop" if sys.platform == "linux" else "asyncio",
        http="httptools",
        timeout_graceful_shutdown=10,
        server_header=False,
        date_header=True,
    )
    server = _Server(config)
    server.on_shutdown = hearth.begin_shutdown
    server.run()


class _Server(uvicorn.Server):
    """uvicorn's server, except that a SIGTERM/SIGINT that ended in a graceful shutdown exits 0.

    uvicorn re-raises the captured signal after shutting down, so the process would die by it; for
    Hearth a completed graceful shutdown is a clean exit, and supervisors should see it as one.
    """

    on_shutdown: Callable[[], None] | None = None  # runs before in-flight requests are awaited

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.on_shutdown is not None:
            self.on_shutdown()
        await super().shutdown(sockets)
